"""What a search costs (tuner.cost): exploration time and energy, and the payback of the held config."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.config import Config
from tuner.cost import Exploration, exploration, payback_s
from tuner.measurement import Measurement, Trial


def m(energy_j: float, time_s: float, inferences: int = 100, feasible: bool = True) -> Measurement:
    return Measurement(config=Config({"batch_size": 8}), simulated=True, energy_j=energy_j, time_s=time_s,
                       inferences=inferences, feasible=feasible)


def test_exploration_sums_every_repeat_of_every_trial():
    trials = [Trial(Config({"batch_size": 8}), m(30, 3, 300), [m(10, 1), m(10, 1), m(10, 1)]),
              Trial(Config({"batch_size": 16}), m(float("nan"), 2, 0, feasible=False),
                    [m(float("nan"), 2, 0, feasible=False)])]  # an out-of-memory repeat: its time still passed
    e = exploration(trials)
    assert (e.time_s, e.energy_j, e.trials, e.repeats, e.inferences) == (5, 30, 2, 4, 300)
    assert e.to_dict() == {"time_s": 5, "energy_j": 30, "trials": 2, "repeats": 4}


def test_payback_is_the_extra_exploration_energy_over_the_saving_rate():
    held, dvfs = m(50, 10, 100), m(80, 8, 100)  # 0.5 J vs 0.8 J per inference, 10 inferences/s held
    explored = Exploration(time_s=100, energy_j=700, trials=5, repeats=15, inferences=1000)
    # 700 J spent; the held config would have spent 500 J on those 1000 inferences: 200 J extra,
    # repaid at (0.8 - 0.5) J x 10/s = 3 W
    assert payback_s(explored, held, dvfs) == pytest.approx(200 / 3)
    cheap = Exploration(time_s=100, energy_j=400, trials=5, repeats=15, inferences=1000)
    assert payback_s(cheap, held, dvfs) == 0.0  # cheaper than holding: paid back at once
    assert payback_s(explored, dvfs, held) is None  # the held config costs more than DVFS: never
    assert payback_s(explored, held, None) is None


def test_tune_reports_what_it_spent_and_matches_its_trials_csv(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--budget", "6",
                                   "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    e = doc["exploration"]
    with (out / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert e["repeats"] == len(rows)  # every measured repeat, the DVFS reference's included
    assert e["trials"] == doc["n_trials"] + 1
    assert e["time_s"] == pytest.approx(sum(float(r["time_s"]) for r in rows), rel=1e-6)
    assert e["energy_j"] == pytest.approx(sum(float(r["energy_j"]) for r in rows), rel=1e-6)
    assert doc["saving_vs_dvfs"] > 0 and doc["payback_s"] > 0
    assert json.loads((out / "summary.json").read_text())["exploration"] == e
    text = CliRunner().invoke(app, ["tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--budget", "6",
                                    "--out", str(out)])
    assert "exploration:" in text.stdout and "pays back after" in text.stdout


def test_bench_reports_the_median_cost_at_its_budget():
    res = CliRunner().invoke(app, ["bench", "--board", "sim:jetson-nano", "--workload", "alexnet", "--seeds", "2",
                                   "--strategies", "random", "--cpu-freqs", "403.2MHz,921.6MHz,1479MHz",
                                   "--gpu-freqs", "307.2MHz,614.4MHz,921.6MHz", "--batch-sizes", "8,16", "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["strategies"][0]
    assert row["exploration_at_budget"]["time_s"]["median"] > 0
    assert row["exploration_at_budget"]["energy_j"]["median"] > 0
    assert row["payback_s_at_budget"]["median"] is None or row["payback_s_at_budget"]["median"] >= 0
    assert row["payback_s_at_budget"]["p90"] is None or row["payback_s_at_budget"]["p90"] >= \
        (row["payback_s_at_budget"]["median"] or 0)


def test_a_board_without_energy_reports_time_and_no_payback():
    no_energy = Trial(Config({"batch_size": 8}), m(float("nan"), 2), [m(float("nan"), 1), m(float("nan"), 1)])
    e = exploration([no_energy])
    assert e.time_s == 2 and e.energy_j is None and e.to_dict()["energy_j"] is None
    assert payback_s(e, m(50, 10), m(80, 8)) is None
    from tuner.units import cost_text

    assert "energy not measured" in cost_text(e.to_dict(), None)


def test_a_simulated_board_without_power_monitor_measures_no_energy(tmp_path):
    res = CliRunner().invoke(app, ["tune", "--board", "sim:jetson-nano-2gb", "--workload", "alexnet", "--objective",
                                   "time", "--budget", "3", "--out", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["exploration"]["energy_j"] is None and doc["payback_s"] is None
    assert doc["best"]["energy_j"] is None and doc["exploration"]["time_s"] > 0

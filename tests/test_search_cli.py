"""sweep / tune / bench end to end: run directories, resume, replay, restore."""

from __future__ import annotations

import csv
import importlib.util
import json
import math

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import build_space, measure_reference, search
from tuner.sim.board import SimBoard
from tuner.store import Store
from tuner.strategies import make_strategy

cli = CliRunner()
SMALL = ["--cpu-freqs", "403.2MHz,921.6MHz,1479MHz", "--gpu-freqs", "307.2MHz,614.4MHz,921.6MHz",
         "--batch-sizes", "8,16"]


def invoke(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_sweep_writes_the_run_directory_and_a_second_run_measures_nothing(tmp_path):
    out = tmp_path / "run"
    doc = invoke("sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", "--out", str(out), *SMALL)
    for key in ("board", "workload", "simulated", "objective", "space_size", "n_trials", "best", "dvfs",
                "saving_vs_dvfs", "latency_cost_vs_dvfs"):
        assert key in doc
    assert doc["simulated"] is True and doc["space_size"] == 18
    assert doc["n_trials"] == 18 + 5 and doc["n_measured_now"] == 23  # the map, then 5 leaders again
    assert set(doc["best"]) >= {"config", "energy_j", "time_s", "energy_per_inference_mj"}
    assert doc["dvfs"]["config"]["gpu_governor"] == "nvhost_podgov"
    assert 0 < doc["saving_vs_dvfs"] < 0.6
    assert set(doc["per_batch"]) == {"8", "16"} and doc["per_batch"]["16"]["dvfs"]["config"]["batch_size"] == 16
    assert json.loads((out / "summary.json").read_text())["best"] == doc["best"]
    with (out / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["batch_size", "cpu_freq_khz", "cpu_governor"]  # config columns first
    assert len(rows) == doc["trials_csv_rows"] and len(rows) >= 3 * (23 + 2)  # one row per repeat
    assert {r["simulated"] for r in rows} == {"1"}
    if importlib.util.find_spec("matplotlib"):
        assert sorted(doc["plots"]) == ["heatmap_batch16.png", "heatmap_batch8.png", "surface_batch16.png",
                                        "surface_batch8.png"]
        assert all((out / name).stat().st_size > 10_000 for name in doc["plots"])
    else:  # the core install (an extra brings matplotlib): the skip is said, not silent
        assert "matplotlib is not installed" in doc["plots"]
    again = invoke("sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", "--out", str(out), *SMALL,
                   "--no-plots")
    assert again["n_measured_now"] == 0 and again["best"] == doc["best"]


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    def session(seed: int):
        board = SimBoard("jetson-nano", seed=seed)
        runner = TrialRunner(board, "resnet18", RunPolicy(min_repeats=1, max_repeats=1))
        space = build_space(runner, {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": (8, 16)})
        return runner, space

    class Interrupt(Exception):
        pass

    runner, space = session(1)
    store = Store(tmp_path / "s.sqlite")
    run = store.open_run("sweep", "sim:jetson-nano", "resnet18", True, {"space": space.names})
    ref = measure_reference(runner, space, run)

    def stop_half_way(step):
        if step.index + 1 == len(space) // 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        search(make_strategy("sweep", space), runner, Objective(), len(space) + 5, run=run, reference=ref,
               on_step=stop_half_way)
    assert runner.measured == len(space) // 2 + 1  # half the map and the reference
    store.close()

    runner, space = session(2)
    store = Store(tmp_path / "s.sqlite")
    run = store.open_run("sweep", "sim:jetson-nano", "resnet18", True, {"space": space.names})
    assert run.resumed == len(space) // 2 + 1
    ref = measure_reference(runner, space, run)
    result = search(make_strategy("sweep", space), runner, Objective(), len(space) + 5, run=run, reference=ref)
    assert runner.measured == len(space) - len(space) // 2 + 5  # only the rest, and the confirmations
    assert sum(1 for s in result.steps if s.reused) == len(space) // 2
    configs = [t.config for _, t in run.trials("search")]
    assert len(set(configs)) == len(space)  # every config exactly once in the map


def knob_files(root) -> dict[str, str]:
    from tuner.boards.jetson import JetsonBoard
    from tuner.sysfs import Sysfs

    return JetsonBoard(Sysfs(root)).snapshot()


def test_tune_on_an_emulated_tree_restores_or_applies_and_restore_undoes_it(make_tree):
    root = make_tree("jetson-nano")
    before = knob_files(root)
    assert len(before) >= 7  # governors, min/max of CPU and GPU
    args = ["tune", "--root", str(root), "--workload", "resnet18", "--strategy", "ogd", "--budget", "4",
            "--inferences", "16", "--repeats", "1", "--sim-time-scale", "50", *SMALL]
    doc = invoke(*args)
    assert doc["simulated"] is True and doc["board"] == "jetson-nano" and doc["n_trials"] == 4
    assert doc["best"]["energy_j"] > 0
    assert knob_files(root) == before  # every knob file back, without --apply
    applied = invoke(*args, "--apply")
    best = applied["applied"]
    gpu = (root / "sys/devices/gpu.0/devfreq/57000000.gpu/max_freq").read_text().split()[0]
    assert int(gpu) == best["gpu_freq_hz"]
    result = cli.invoke(app, ["restore", "--root", str(root)])
    assert result.exit_code == 0
    assert knob_files(root) == before


def test_bench_reports_every_strategy_and_replays_a_recorded_sweep(tmp_path):
    doc = invoke("bench", "--board", "sim:jetson-nano", "--workload", "alexnet", "--strategies", "ogd,random",
                 "--seeds", "3", "--batch-sizes", "32,64")
    assert doc["space_size"] == 15 * 12 * 2 and doc["seeds"] == 3 and doc["objective"] == "energy"
    names = [r["name"] for r in doc["strategies"]]
    assert names == ["ogd", "random"]
    for r in doc["strategies"]:
        assert set(r) >= {"name", "fraction_to_2pct", "regret_at_budget", "budget_fraction"}
        assert r["regret_at_budget"]["median"] >= 0 and r["budget_fraction"] == 0.1
        assert 0 < r["fraction_to_2pct"]["median"] <= 0.3
        per_seed = r["regret_per_seed"]  # the tail a p90 hides: every seed's regret
        assert len(per_seed) == 3 and sorted(per_seed)[1] == r["regret_at_budget"]["median"]
    text = cli.invoke(app, ["bench", "--board", "sim:jetson-nano", "--workload", "alexnet", "--strategies", "random",
                            "--seeds", "3", "--batch-sizes", "32,64"])
    assert text.exit_code == 0 and "> 5 %" in text.stdout and " of 3 " in text.stdout, text.stdout
    out = tmp_path / "rec"
    invoke("sweep", "--board", "sim:jetson-orin-nx", "--workload", "bert_tiny", "--out", str(out), "--no-plots",
           "--batch-sizes", "16,32")
    replay = invoke("bench", "--board", f"replay:{out}", "--workload", "bert_tiny", "--strategies", "ogd,random",
                    "--seeds", "2")
    assert replay["space_size"] == 26 * 7 * 2 and replay["simulated"] is True
    assert all(math.isfinite(r["regret_at_budget"]["median"]) for r in replay["strategies"])


def test_a_workload_knob_is_a_dimension_like_the_clocks(tmp_path):
    doc = invoke("tune", "--board", "sim:jetson-nano", "--workload", "alexnet", *SMALL, "--knob", "concurrency=1,2",
                 "--strategy", "sweep", "--budget", "36", "--out", str(tmp_path / "run"))
    assert doc["space_size"] == 3 * 3 * 2 * 2
    assert doc["best"]["config"]["concurrency"] in (1, 2)
    rows = (tmp_path / "run" / "trials.csv").read_text().splitlines()
    assert "concurrency" in rows[0].split(",")


@pytest.mark.parametrize("args,message", [
    (["sweep", "--board", "sim:jetson-nano", "--workload", "vgg99"], "no simulated model"),
    (["sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", "--gpu-freqs", "600MHz"], "not one of"),
    (["tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--strategy", "annealing"], "unknown strategy"),
    (["tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--objective", "joules"], "unknown objective"),
    (["bench", "--board", "auto", "--workload", "alexnet"], "sim:PROFILE"),
    (["tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--knob", "turbo"], "turbo cannot be searched"),
    (["tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--knob", "concurrency=0"], "not one of"),
    (["bench", "--board", "replay:/nonexistent", "--workload", "alexnet"], "not a sweep run directory"),
])
def test_bad_input_is_a_one_line_error(args, message, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tuner.cli.main", *args, "--out", str(tmp_path / "x")]
                          if args[0] != "bench" else [sys.executable, "-m", "tuner.cli.main", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and message in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "x" / "trials.csv").exists()

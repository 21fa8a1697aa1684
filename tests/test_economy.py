"""An economical search (issue 18): early stopping, racing repeats, and the time to a tuned config."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import until, workload_status
from tuner.boards.factory import open_board
from tuner.cli.main import app
from tuner.config import DEFAULT_BATCH_SIZES
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import DEFAULT_KNOBS, plan_space, race, search
from tuner.strategies import make_strategy

ENERGY = Objective.parse("energy")


def _setup(board: str = "sim:jetson-nano", workload: str = "alexnet", min_repeats: int = 2, seed: int = 0):
    truth_board = open_board(board, seed=0)
    policy = RunPolicy(min_repeats=min_repeats, max_repeats=2 * min_repeats)
    knobs = {k: None for k in DEFAULT_KNOBS}
    knobs["batch_size"] = DEFAULT_BATCH_SIZES  # tune's
    space, _ = plan_space(TrialRunner(truth_board, workload, policy), knobs, DEFAULT_KNOBS)
    truth = {c: ENERGY.cost(truth_board.expected(workload, c, policy.inferences)) for c in space}
    runner = TrialRunner(open_board(board, seed=1000 + seed), workload, policy)
    return space, truth, runner


@pytest.mark.parametrize("board,workload", [("sim:jetson-nano", "alexnet"), ("sim:jetson-xavier-nx", "resnet18")])
def test_the_default_tune_is_tuned_within_2_percent_in_half_an_hour_and_repays_it_within_an_hour(board, workload):
    """The issue's goal, through the command a user runs (simulated boards, default settings)."""
    res = CliRunner().invoke(app, ["tune", "--board", board, "--workload", workload, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["simulated"] is True
    assert doc["stopped"] == "converged" and doc["n_trials"] < math.ceil(0.1 * doc["space_size"])
    assert doc["exploration"]["time_s"] <= 1800
    assert doc["payback_s"] is not None and doc["payback_s"] <= 3600
    space, truth, _ = _setup(board, workload)
    best = next(c for c in space if c.to_dict() == doc["best"]["config"])
    assert truth[best] <= min(truth.values()) * 1.02


def test_without_stop_improvement_the_budget_is_spent_and_every_config_repeated():
    res = CliRunner().invoke(app, ["tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--budget", "20",
                                   "--stop-improvement", "0", "--repeats", "3", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["stopped"] == "budget" and doc["n_trials"] == 20
    assert doc["exploration"]["repeats"] >= 3 * 21  # the DVFS reference and 20 trials, none cut short


@pytest.mark.parametrize("value", ["1", "-0.1", "1.5"])
def test_a_stop_improvement_outside_0_to_1_is_one_clear_line(value, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tuner.cli.main", "tune", "--board", "sim:jetson-nano",
                           "--workload", "alexnet", "--stop-improvement", value, "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: --stop-improvement") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "x" / "trials.csv").exists()


def test_bo_stops_early_where_the_model_rules_out_a_gain_and_not_before_its_minimum():
    space, truth, runner = _setup()
    strategy = make_strategy("bo", space, seed=0)
    result = search(strategy, runner, ENERGY, 72, stop_improvement=0.01)
    assert result.stopped == "converged"
    knobs = sum(1 for k in space.knobs if len(k) > 1)
    assert strategy.init_points + strategy.MIN_TRIALS_PER_KNOB * knobs <= len(result.steps) < 72
    assert strategy.chance_of_improvement(0.01) < strategy.STOP_CHANCE
    assert truth[result.best] <= min(truth.values()) * 1.02


def test_a_larger_improvement_asked_for_stops_no_later():
    space, _, runner = _setup(seed=3)
    small = search(make_strategy("bo", space, seed=3), runner, ENERGY, 72, stop_improvement=0.01)
    _, _, runner = _setup(seed=3)
    large = search(make_strategy("bo", space, seed=3), runner, ENERGY, 72, stop_improvement=0.10)
    assert len(large.steps) <= len(small.steps)


def test_strategies_without_a_model_spend_the_budget():
    space, _, runner = _setup()
    result = search(make_strategy("random", space, seed=0), runner, ENERGY, 15, stop_improvement=0.01)
    assert result.stopped == "budget" and len(result.steps) == 15


def test_descent_stops_once_its_minimum_is_confirmed():
    space, truth, runner = _setup()
    strategy = make_strategy("ogd", space, seed=0)
    result = search(strategy, runner, ENERGY, 720, stop_improvement=0.01)
    assert result.stopped == "converged" and strategy.converged(0.01)
    assert len(result.steps) < 720 and strategy.restarts == 0
    assert truth[result.best] <= min(truth.values()) * 1.02


def test_racing_cuts_a_clearly_worse_config_to_one_repeat_and_repeats_a_contender():
    space, truth, runner = _setup(min_repeats=3)
    strategy = make_strategy("random", space, seed=0)
    best = min(truth, key=truth.__getitem__)
    worst = max((c for c in truth if math.isfinite(truth[c])), key=truth.__getitem__)
    first = runner.measure(best)
    strategy.tell(best, ENERGY.cost(first.measurement), first.measurement)
    enough = race(strategy, ENERGY)
    assert len(runner.measure(worst, enough).repeats) == 1
    again = runner.measure(best, enough)  # the incumbent itself is never cut short
    assert len(again.repeats) >= 3
    close = min((c for c in truth if c != best), key=lambda c: abs(truth[c] / truth[best] - 1.0))
    assert len(runner.measure(close, None).repeats) >= 3  # without the rule: the policy's repeats


def test_racing_uses_fewer_repeats_for_the_same_trials():
    space, _, runner = _setup(min_repeats=3)
    economical = search(make_strategy("bo", space, seed=1), runner, ENERGY, 12, stop_improvement=0.5)
    _, _, plain_runner = _setup(min_repeats=3)
    plain = search(make_strategy("bo", space, seed=1), plain_runner, ENERGY, len(economical.steps))
    assert len(plain.steps) == len(economical.steps) and runner.measured < plain_runner.measured
    assert all(len(s.trial.repeats) >= 1 for s in economical.steps)


def test_the_default_daemon_holds_within_2_percent_after_half_an_hour_of_exploration(tmp_path):
    """The issue's goal for the daemon: default [search] settings, simulated Nano x AlexNet."""
    import threading

    from tuner.daemon.service import Daemon
    from tuner.daemon.settings import parse_settings

    settings = parse_settings({
        "daemon": {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "ctl.sock"), "socket_group": None},
        "board": {"spec": "sim:jetson-nano", "time_scale": 1e6},
        "workloads": [{"name": "alexnet"}]})
    assert settings.search.strategy == "bo" and settings.search.stop_improvement == 0.01
    d = Daemon(settings)
    t = threading.Thread(target=d.run)
    t.start()
    sock = tmp_path / "ctl.sock"
    try:
        held = until(lambda: workload_status(sock).get("state") == "holding" and workload_status(sock), "holding",
                     timeout=120)
    finally:
        d.request_stop()
        t.join(timeout=60)
    assert held["exploration"]["time_s"] <= 1800
    assert held["payback_s"] is not None and held["payback_s"] <= 3600
    board = open_board("sim:jetson-nano", seed=0)
    runner = TrialRunner(board, "alexnet", RunPolicy())
    space, _ = plan_space(runner, settings.search.knobs(), settings.search.optional())  # the space it searched
    truth = {c: ENERGY.cost(board.expected("alexnet", c, 3200)) for c in space}
    best = next(c for c in space if all(c[k] == v for k, v in held["applied"].items() if k in c.to_dict()))
    assert truth[best] <= min(truth.values()) * 1.02


class _Recorded:
    """A runner over a cost table: every config one repeat, infinite cost as a failure."""

    def __init__(self, cost) -> None:
        self.cost, self.measured = cost, 0

    def measure(self, config, enough=None):
        from tuner.measurement import Measurement, Trial

        self.measured += 1
        c = self.cost(config)
        if not math.isfinite(c):
            m = Measurement.infeasible(config, "over the power cap", simulated=True)
        else:
            m = Measurement(config=config, simulated=True, energy_j=c * 100, time_s=1.0, inferences=100, repeats=1)
        return Trial(config, m, [m])


@pytest.mark.parametrize("name", ["ogd", "bo"])
def test_an_economical_search_never_stops_converged_on_nothing_feasible(name):
    """A cap that makes the top clocks infeasible: descent's first minimum is all failures, yet
    the search goes on until it holds a feasible config (or the budget ends)."""
    from tuner.config import Knob, Space

    space = Space((Knob("cpu_freq_khz", tuple(range(100, 1300, 100)), "kHz", True),
                   Knob("gpu_freq_hz", tuple(range(10, 130, 10)), "Hz", True)))

    def capped(c) -> float:
        a, b = c["cpu_freq_khz"], c["gpu_freq_hz"]
        return math.inf if a + 10 * b > 1200 else 1.0 + ((a - 500) / 1000) ** 2 + ((b - 40) / 100) ** 2

    result = search(make_strategy(name, space, seed=0), _Recorded(capped), ENERGY, 100, stop_improvement=0.01)
    assert result.best is not None and math.isfinite(capped(result.best))
    assert result.stopped in ("converged", "budget") and (result.stopped == "budget") == (len(result.steps) == 100)


def test_a_daemon_on_a_space_of_one_config_pauses_with_the_reason_and_stays_up(tmp_path):
    """bo (the default) cannot model one config: a one-line reason, the board's own settings, no crash."""
    import threading

    from tuner.daemon.service import Daemon
    from tuner.daemon.settings import parse_settings

    d = Daemon(parse_settings({
        "daemon": {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "ctl.sock"), "socket_group": None},
        "board": {"spec": "sim:jetson-nano", "time_scale": 1e6},
        "search": {"strategy": "bo", "inferences": 800, "batch_sizes": [8], "cpu_freqs": ["1479MHz"],
                   "gpu_freqs": ["921.6MHz"]},
        "workloads": [{"name": "alexnet"}]}))
    t = threading.Thread(target=d.run)
    t.start()
    try:
        paused = until(lambda: workload_status(tmp_path / "ctl.sock").get("state") == "paused"
                       and workload_status(tmp_path / "ctl.sock"), "paused", timeout=60)
        assert "single config" in paused["reason"] and "\n" not in paused["reason"]
        assert t.is_alive()
    finally:
        d.request_stop()
        t.join(timeout=60)
    assert not t.is_alive()

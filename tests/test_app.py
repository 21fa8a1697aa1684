"""The application layer (tuner.app): one search sequence and one way of opening, for the CLI and the daemon."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tuner import app
from tuner.boards.factory import open_board
from tuner.errors import ConfigError
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import measure_reference, plan_space, search
from tuner.store import Store
from tuner.strategies import make_strategy


def opened(seed: int = 3):
    board = open_board("sim:jetson-nano", "/", seed=seed)
    runner = TrialRunner(board, app.open_workload("alexnet", board),
                         RunPolicy(inferences=800, min_repeats=2, max_repeats=4))
    space, _ = plan_space(runner, {"batch_size": (8, 16)}, ("cpu_freq_khz", "gpu_freq_hz"))
    return runner, space


def trials(result) -> list[str]:
    return [f"{s.trial.config.to_json()} x{len(s.trial.repeats)}" for s in result.steps]


@pytest.mark.parametrize("name", ["ogd", "bo"])
def test_explore_measures_what_the_reference_then_search_sequence_measured(name):
    """Same board seed and strategy seed: explore asks, measures and recommends what the steps did by hand."""
    runner, space = opened()
    reference = measure_reference(runner, space, None)
    by_hand = search(make_strategy(name, space, seed=1), runner, Objective("energy"), 10, reference=reference,
                     stop_improvement=0.01)

    runner, space = opened()
    got = app.explore(runner, space, Objective("energy"), lambda: make_strategy(name, space, seed=1), 10, run=None,
                      stop_improvement=0.01)
    assert trials(got.result) == trials(by_hand)
    assert got.result.best == by_hand.best and got.result.stopped == by_hand.stopped
    assert got.reference is not None and got.reference.config == reference.config
    assert list(got.references) == [None] and got.result.reference is got.reference


def test_explore_calls_back_in_order_and_leaves_a_context_strategy():
    """References first, then the prior, then the strategy (entered for the search only), then the steps."""
    runner, space = opened()
    events: list[Any] = []

    class Managed:
        def __init__(self) -> None:
            self.inner = make_strategy("random", space, seed=2)

        def __enter__(self):
            events.append("enter")
            return self.inner

        def __exit__(self, *exc: object) -> None:
            events.append("exit")

    def made() -> Managed:
        events.append("strategy")
        return Managed()

    def prior() -> None:
        events.append("prior")
        return None

    got = app.explore(runner, space, Objective("energy"), made, 3, run=None, prior=prior,
                      on_reference=lambda trial, now: events.append(("reference", trial.config["batch_size"], now)),
                      on_step=lambda step: events.append("step"), reference_batches=(8, 16))
    steps = len(got.result.steps)
    assert 1 <= steps <= 3
    assert events == [("reference", 8, True), ("reference", 16, True), "prior", "strategy", "enter",
                      *["step"] * steps, "exit"]
    assert sorted(got.references) == [8, 16]
    assert got.reference is got.references[16]  # the default batch's reference, not measured twice


def test_explore_takes_the_reference_from_the_store_and_says_so(tmp_path):
    runner, space = opened()
    store = Store(tmp_path / app.STORE_NAME)
    run = store.open_run("tune", "sim:jetson-nano", "alexnet", True, {"space": space.names})
    seen: list[bool] = []
    app.explore(runner, space, Objective("energy"), lambda: make_strategy("random", space, seed=0), 2, run=run,
                on_reference=lambda trial, now: seen.append(now))
    store.close()
    runner, space = opened()
    store = Store(tmp_path / app.STORE_NAME)
    run = store.open_run("tune", "sim:jetson-nano", "alexnet", True, {"space": space.names})
    app.explore(runner, space, Objective("energy"), lambda: make_strategy("random", space, seed=0), 2, run=run,
                on_reference=lambda trial, now: seen.append(now))
    store.close()
    assert seen == [True, False] and runner.measured == 0


def test_explore_without_references_measures_none():
    """compare's tune: no DVFS reference (its governor rows measure DVFS themselves)."""
    runner, space = opened()
    got = app.explore(runner, space, Objective("energy"), lambda: make_strategy("random", space, seed=0), 4,
                      run=None, reference_batches=())
    assert got.reference is None and got.references == {} and got.result.reference is None


def test_explore_refuses_an_objective_that_needs_a_reference_the_recording_lacks():
    runner, space = opened()
    runner.board.covers = lambda config: False  # a recording that holds nothing of the DVFS reference
    with pytest.raises(ConfigError, match="needs the DVFS reference"):
        app.explore(runner, space, Objective.parse("weighted"), lambda: make_strategy("random", space), 2, run=None)
    assert runner.measured == 0


def test_board_names_are_made_in_one_place(tmp_path):
    sim = open_board("sim:jetson-nano", "/", seed=0)
    assert app.board_name(sim, "sim:jetson-nano") == "sim:jetson-nano"
    assert app.board_name(sim, "sim:jetson-nano", by_flag=True) == "sim:jetson-nano"
    from tuner.daemon import service

    assert service.STORE_NAME is app.STORE_NAME == "edgetune.sqlite"


def test_trapped_signals_interrupt_and_are_put_back():
    before = signal.getsignal(signal.SIGHUP)
    old = app.trap_signals({signal.SIGHUP: app.interrupt})
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGHUP"):
            signal.raise_signal(signal.SIGHUP)
    finally:
        app.restore_signals(old)
    assert signal.getsignal(signal.SIGHUP) == before and old == {}


class Batches:
    """A workload whose batch size is its only knob: on a board without clock knobs, each
    batch's DVFS reference is a config of the space."""

    name = "batches"

    def knobs(self):
        from tuner.config import Knob

        return [Knob("batch_size", (1, 2, 4))]

    def setup(self, config):
        self.batch = config["batch_size"]

    def run(self, inferences):
        from workloads.base import RunResult

        return RunResult(inferences, [0.001] * max(1, inferences // self.batch))

    def teardown(self):
        pass


def test_a_reference_that_is_a_config_of_the_space_is_not_measured_again(tmp_path):
    """No cpufreq, no power sensor (a container): the sweep's per-batch references are the
    space's own configs, so the sweep tells them instead of measuring them a second time."""
    from tuner.boards.linux import LinuxBoard
    from tuner.sysfs import Sysfs

    def sweep():
        runner = TrialRunner(LinuxBoard(Sysfs(tmp_path)), Batches(),
                             RunPolicy(inferences=8, min_repeats=1, max_repeats=1, settle_s=0.0))
        space, _ = plan_space(runner, {"batch_size": None})
        store = Store(tmp_path / app.STORE_NAME)
        run = store.open_run("sweep", "linux", "batches", False, {"space": space.names})
        got = app.explore(runner, space, Objective("time"), lambda: make_strategy("sweep", space), 3 * len(space),
                          run=run, reference_batches=(1, 2, 4))
        store.close()
        return runner, got

    runner, got = sweep()
    assert sorted(c["batch_size"] for c in (t.config for t in got.references.values())) == [1, 2, 4]
    steps = got.result.steps
    assert [s.reused for s in steps[:3]] == [True] * 3  # the map: the references themselves
    assert [s.trial for s in steps[:3]] == [got.references[b] for b in (1, 2, 4)]
    assert runner.measured == 3 + got.result.measured == 6  # the references, then the leaders confirmed
    runner, again = sweep()  # resumed from the store: nothing measured twice
    assert runner.measured == 0 and again.result.best == got.result.best

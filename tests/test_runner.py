"""The trial runner: repeats, failures as results, sampled and analytic measurement."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tuner.boards.base import Channel, BoardInfo
from tuner.config import Config, Knob
from tuner.errors import ConfigError
from tuner.runner import RunPolicy, TrialRunner, dvfs_config
from tuner.sim.board import SimBoard
from workloads.base import Infeasible, RunResult


class ConstantPower:
    channels = (Channel("VDD_IN", "total"),)
    total = ("VDD_IN",)

    def __init__(self, mw: float) -> None:
        self.mw = mw

    def read(self) -> dict[str, float]:
        return {"VDD_IN": self.mw}


class FakeBoard:
    """A real-board stand-in: configs apply to a dict, the rail reads 5 W, or 2 W at low clocks."""

    def __init__(self) -> None:
        self.info = BoardInfo("fake", simulated=True)
        self.source = ConstantPower(5000.0)
        self.applied: list[Config] = []

    def knobs(self):
        return [Knob("gpu_freq_hz", (100, 200)), Knob("gpu_governor", ("nvhost_podgov", "performance"), ordered=False)]

    def apply(self, config):
        self.applied.append(config.hardware())
        self.source.mw = 2000.0 if config.get("gpu_freq_hz") == 100 else 5000.0

    def power_source(self):
        return self.source

    def temperatures(self):
        return {"GPU-therm": 40.0}

    def restore(self):
        return []


class SleepWorkload:
    name = "sleeper"

    def __init__(self, per_inference_s: float = 0.002, fail: Exception | None = None) -> None:
        self.per = per_inference_s
        self.fail = fail
        self.setups: list[Config] = []

    def knobs(self):
        return [Knob("batch_size", (1, 2, 4))]

    def setup(self, config):
        if config.get("batch_size") == 4:
            raise Infeasible("4 images do not fit", memory=True)
        self.setups.append(config)

    def run(self, inferences):
        if self.fail:
            raise self.fail
        time.sleep(self.per * inferences)
        batches = max(1, inferences // 2)
        return RunResult(inferences, [self.per * 2] * batches)

    def teardown(self):
        pass


FAST = RunPolicy(inferences=50, warmup_inferences=0, min_repeats=2, max_repeats=3, settle_s=0.0,
                 sample_rate_hz=100)


def test_sampled_trial_integrates_the_rail_over_the_inference_window():
    board, wl = FakeBoard(), SleepWorkload()
    runner = TrialRunner(board, wl, FAST)
    trial = runner.measure(Config({"gpu_freq_hz": 100, "batch_size": 2}))
    m = trial.measurement
    assert m.feasible and len(trial.repeats) in (2, 3) and m.repeats == len(trial.repeats)
    assert m.inferences == 50
    assert m.avg_power_w == pytest.approx(2.0, rel=0.05)  # the low-clock rail reading, integrated
    assert m.energy_j == pytest.approx(2.0 * m.time_s, rel=0.05)
    assert m.batch_latency_p95_s == pytest.approx(0.004)
    assert m.temperatures_c == {"GPU-therm": 40.0}
    assert board.applied[-1] == Config({"gpu_freq_hz": 100})
    # the workload is set up once per workload config, not per repeat or per clock change
    runner.measure(Config({"gpu_freq_hz": 200, "batch_size": 2}))
    assert wl.setups == [Config({"batch_size": 2})]


def test_failures_of_the_config_are_infeasible_trials_not_crashes():
    board = FakeBoard()
    oom = TrialRunner(board, SleepWorkload(), FAST).measure(Config({"gpu_freq_hz": 100, "batch_size": 4}))
    assert not oom.measurement.feasible and oom.measurement.memory_failure
    crash = TrialRunner(board, SleepWorkload(fail=RuntimeError("CUDA error")), FAST).measure(
        Config({"gpu_freq_hz": 100, "batch_size": 1}))
    assert not crash.measurement.feasible and "RuntimeError: CUDA error" in crash.measurement.failure
    assert len(crash.repeats) == 1  # a failed repeat ends the trial
    slow = TrialRunner(board, SleepWorkload(per_inference_s=0.004), RunPolicy(
        inferences=50, warmup_inferences=0, min_repeats=1, settle_s=0, timeout_s=0.05)).measure(
        Config({"gpu_freq_hz": 100, "batch_size": 1}))
    assert not slow.measurement.feasible and slow.measurement.failure.startswith("timeout")


def test_a_value_the_device_does_not_offer_is_an_error_not_an_infeasible_trial():
    runner = TrialRunner(SimBoard("jetson-nano"), "alexnet")
    with pytest.raises(ConfigError):
        runner.measure(Config({"gpu_freq_hz": 600000000, "batch_size": 8}))


def test_analytic_repeats_until_the_spread_is_small():
    noisy = SimBoard("jetson-nano", seed=3)
    runner = TrialRunner(noisy, "resnet18", RunPolicy(min_repeats=3, max_repeats=8, max_spread=0.001))
    trial = runner.measure(Config({"gpu_freq_hz": 614400000, "cpu_freq_khz": 1479000, "batch_size": 16}))
    assert len(trial.repeats) == 8  # 0.1 % is tighter than the simulated noise: the limit stops it
    loose = TrialRunner(noisy, "resnet18", RunPolicy(min_repeats=3, max_repeats=8, max_spread=0.5))
    assert len(loose.measure(Config({"batch_size": 16})).repeats) == 3
    oom = runner.measure(Config({"batch_size": 128}))
    assert not oom.measurement.feasible and oom.measurement.memory_failure


def test_dvfs_config_is_the_default_governor_pair():
    assert dvfs_config(SimBoard("jetson-nano"), Config({"batch_size": 16})) == Config(
        {"cpu_governor": "schedutil", "gpu_governor": "nvhost_podgov", "batch_size": 16})


def test_governor_without_frequency_releases_a_pinned_clock(nano):
    from tuner.boards.jetson import JetsonBoard
    from tuner.sysfs import Sysfs

    board = JetsonBoard(Sysfs(nano))
    gpu = nano / "sys/devices/gpu.0/devfreq/57000000.gpu"
    board.apply(Config({"gpu_freq_hz": 614400000, "cpu_freq_khz": 921600}))
    assert (gpu / "max_freq").read_text().split()[0] == "614400000"
    board.apply(dvfs_config(board))
    assert (gpu / "min_freq").read_text().split()[0] == "76800000"
    assert (gpu / "max_freq").read_text().split()[0] == "921600000"
    policy = nano / "sys/devices/system/cpu/cpufreq/policy0"
    assert (policy / "scaling_max_freq").read_text().split()[0] == "1479000"
    assert board.restore() == []


class CoarseCounter:
    """An energy counter (mJ) that, like NVML's, changes only every ``period`` s: each change adds
    what was drawn up to that instant, 20 W while the workload runs and 2 W otherwise."""

    def __init__(self, period: float) -> None:
        self.channels = (Channel("GPU0", "gpu", "energy_mj"),)
        self.total = ("GPU0",)
        self.period = period
        self.start = time.monotonic()
        self.changes = [(self.start, 2.0)]  # (since, watts)

    @property
    def update_period_s(self) -> float:
        return self.period

    def draw(self, watts: float) -> None:
        self.changes.append((time.monotonic(), watts))

    def read(self) -> dict[str, float]:
        until = self.start + (time.monotonic() - self.start) // self.period * self.period  # the last update
        joules = 0.0
        for (since, watts), (nxt, _) in zip(self.changes, self.changes[1:] + [(until, 0.0)]):
            joules += watts * max(0.0, min(nxt, until) - since)
        return {"GPU0": joules * 1000.0}


class DrawingWorkload(SleepWorkload):
    """A sleeper that draws 20 W from the counter while it runs."""

    def __init__(self, counter: CoarseCounter, per_inference_s: float) -> None:
        super().__init__(per_inference_s)
        self.counter = counter

    def run(self, inferences):
        self.counter.draw(20.0)
        try:
            return super().run(inferences)
        finally:
            self.counter.draw(2.0)


def _coarse_runner(period: float, **policy) -> tuple[TrialRunner, CoarseCounter]:
    board = FakeBoard()
    board.source = CoarseCounter(period)
    # 50 inferences: 125 ms, about 6 updates of a 20 ms counter, so a window of 25 needs a multiple.
    # Batches of 5 ms, not less: the multiple comes from the warm-up's rate over one update, and a
    # sleep's overshoot on a loaded machine (~1 ms) made a 0.4 ms batch's rate half the window's
    # (a window of 0.25 s for the 0.5 s asked, once, with both cores busy)
    wl = DrawingWorkload(board.source, 0.0025)
    return TrialRunner(board, wl, RunPolicy(inferences=50, warmup_inferences=2, min_repeats=3, max_repeats=3,
                                            settle_s=0.0, sample_rate_hz=100, **policy)), board.source


def test_a_coarse_counter_gets_windows_of_many_updates_and_a_warm_up_of_one():
    runner, counter = _coarse_runner(0.02)
    trial = runner.measure(Config({"gpu_freq_hz": 200, "batch_size": 2}))
    multiples = {m.inferences for m in trial.repeats}
    assert len(multiples) == 1 and multiples.pop() % 50 == 0  # whole multiples, the same for every repeat
    for m in trial.repeats:
        assert m.time_s >= 25 * counter.period * 0.7  # the multiple comes from the warm-up's rate: an estimate
        # read at the window's ends, the counter is at most one update stale at each: within 1/25
        assert m.avg_power_w == pytest.approx(20.0, rel=0.08)
    assert trial.measurement.energy_spread < 0.1


def test_the_multiple_follows_the_policy_when_the_daemon_swaps_it():
    """The daemon measures its watch windows (fewer inferences) on the search's runner."""
    runner, counter = _coarse_runner(0.02)
    config = Config({"gpu_freq_hz": 200, "batch_size": 2})
    searched = runner.measure(config).repeats[0]
    runner.policy = replace(runner.policy, inferences=10, min_repeats=1, max_repeats=1)
    watched = runner.measure(config).repeats[0]
    assert watched.inferences % 10 == 0 and watched.inferences > searched.inferences / 50 * 10
    assert watched.time_s >= 25 * counter.period * 0.7


def test_with_no_minimum_window_a_coarse_counter_runs_exactly_the_work_asked():
    runner, _ = _coarse_runner(0.02, min_window_updates=0)
    trial = runner.measure(Config({"gpu_freq_hz": 200, "batch_size": 2}))
    assert [m.inferences for m in trial.repeats] == [50, 50, 50]

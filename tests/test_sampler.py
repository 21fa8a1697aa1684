"""The background sampler on emulated rails and on fake sources."""

from __future__ import annotations

import time

import pytest

from tuner.boards.base import Channel
from tuner.boards.jetson import JetsonBoard
from tuner.sampler import Sampler, update_period
from tuner.sysfs import Sysfs


class FlakySource:
    channels = (Channel("VDD_IN", "total"), Channel("VDD_SOC", "soc"))
    total = ("VDD_IN",)

    def __init__(self) -> None:
        self.n = 0

    def read(self):
        self.n += 1
        if self.n % 5 == 0:
            raise OSError("i2c timeout")
        if self.n % 7 == 0:
            return {"VDD_IN": 3000.0}  # one channel missing
        return {"VDD_IN": 3000.0, "VDD_SOC": 1000.0}


def test_sampler_reads_emulated_rails_at_rate(nano):
    board = JetsonBoard(Sysfs(nano))
    sampler = Sampler(board.power_source(), rate_hz=50)
    with sampler:
        time.sleep(0.6)
    tr = sampler.trace
    assert 20 <= len(tr.times) <= 40
    assert all(b > a for a, b in zip(tr.times, tr.times[1:]))  # monotonic
    rep = tr.energy()
    # the tree's idle power is 1180 mW on POM_5V_IN
    assert rep.avg_power_w == pytest.approx(1.18, rel=1e-6)
    assert tr.read_errors == 0


def test_sampler_counts_transient_errors_and_keeps_going():
    src = FlakySource()
    sampler = Sampler(src, rate_hz=100)
    sampler.start()
    time.sleep(0.4)
    tr = sampler.stop()
    assert tr.read_errors > 0
    assert len(tr.times) > 20
    assert tr.energy().avg_power_w == pytest.approx(3.0)


class StepSource:
    """One rail that reads ``mw`` (set by the test: idle, then loaded)."""

    channels = (Channel("VDD_IN", "total"),)
    total = ("VDD_IN",)

    def __init__(self) -> None:
        self.mw = 2000.0

    def read(self):
        return {"VDD_IN": self.mw}


def test_a_mark_takes_a_reading_so_a_window_starts_measured_not_interpolated():
    """The load starts at the mark, between two readings of a slow sampler (2 Hz): the window's
    first quarter second was interpolated from the idle reading before it (19 % low here)."""
    src = StepSource()
    sampler = Sampler(src, rate_hz=2).start()  # a reading at 0 (idle), the next at 0.5 s
    time.sleep(0.25)
    src.mw = 20000.0
    t0 = sampler.mark("inference")
    time.sleep(0.3)
    trace = sampler.stop()
    assert trace.phase("inference").avg_power_w == pytest.approx(20.0, rel=0.02)
    assert trace.energy(t0, trace.end).total_j == pytest.approx(20.0 * (trace.end - t0), rel=0.02)


def test_marks_phases_and_idle_baseline(nano):
    board = JetsonBoard(Sysfs(nano))
    sampler = Sampler(board.power_source(), rate_hz=50).start()
    idle = sampler.idle_baseline(0.2)
    sampler.mark("inference")
    time.sleep(0.2)
    tr = sampler.stop()
    assert idle == pytest.approx(1.18)
    assert set(tr.phases()) == {"idle", "inference"}
    assert tr.phase("inference").duration_s == pytest.approx(0.2, abs=0.05)


def test_sampler_rejects_bad_rate(nano):
    board = JetsonBoard(Sysfs(nano))
    with pytest.raises(ValueError):
        Sampler(board.power_source(), rate_hz=0)


class SteppedClock:
    """A fake clock that ``sleep`` advances: polling costs no real time."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_update_period_is_the_gap_between_changes_of_a_stepped_reading():
    clock = SteppedClock()
    read = lambda: {"GPU0": float(int((clock.t + 0.037) / 0.1))}  # noqa: E731 - steps every 0.1 s, mid-period start
    assert update_period(read, clock=clock, sleep=clock.sleep) == pytest.approx(0.1, abs=0.003)


def test_update_period_of_a_reading_that_never_changes_is_the_polling_limit():
    clock = SteppedClock()
    assert update_period(lambda: {"GPU0": 5.0}, max_s=0.7, clock=clock, sleep=clock.sleep) == 0.7
    assert update_period(lambda: {}, max_s=0.7, clock=clock, sleep=clock.sleep) == 0.7  # a failing sensor


def test_hwmon_rails_say_how_often_they_update_when_the_driver_does(make_tree):
    """The mainline ina3221 driver's update_interval (ms) is the period of new readings; an
    emulated tree without it (and the iio driver) counts as continuous."""
    root = make_tree("jetson-orin-nx")
    source = JetsonBoard(Sysfs(root)).power_source()
    assert source.update_period_s is None
    monitors = sorted(root.glob("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"))
    assert monitors
    for i, hw in enumerate(monitors):
        (hw / "update_interval").write_text(f"{140 + i}\n")  # heavy averaging: a reading every 140 ms
    assert JetsonBoard(Sysfs(root)).power_source().update_period_s == pytest.approx((140 + len(monitors) - 1) / 1000)

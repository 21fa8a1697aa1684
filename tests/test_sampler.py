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

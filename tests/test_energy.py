"""Energy integration against synthetic traces with known integrals."""

from __future__ import annotations

import math

import pytest

from tuner.boards.base import ENERGY, POWER, Channel
from tuner.energy import Trace, counter_delta, integrate_power


def smooth_power_mw(t: float) -> float:
    # 5 W base, a 2 W swing over 3 s and a slow ramp: smooth, like a board under load
    return 5000.0 + 2000.0 * math.sin(2 * math.pi * t / 3.0) + 300.0 * t


def smooth_energy_j(t0: float, t1: float) -> float:
    def prim(t: float) -> float:
        return 5000.0 * t - 2000.0 * 3.0 / (2 * math.pi) * math.cos(2 * math.pi * t / 3.0) + 150.0 * t * t

    return (prim(t1) - prim(t0)) / 1000.0


def test_trapezoid_on_smooth_trace_at_10hz_within_half_percent():
    ts = [k / 10.0 for k in range(0, 301)]  # 30 s at 10 Hz
    mw = [smooth_power_mw(t) for t in ts]
    got = integrate_power(ts, mw, 0.0, 30.0)
    want = smooth_energy_j(0.0, 30.0)
    assert abs(got - want) / want < 0.005


def test_window_between_samples_is_interpolated():
    ts = [k / 10.0 for k in range(0, 101)]
    mw = [smooth_power_mw(t) for t in ts]
    got = integrate_power(ts, mw, 1.234, 7.891)
    want = smooth_energy_j(1.234, 7.891)
    assert abs(got - want) / want < 0.005


def test_constant_power_exact_and_gaps_spanned():
    ts = [0.0, 0.1, 0.2, 0.3, 0.4]
    assert integrate_power(ts, [1000.0] * 5, 0.0, 0.4) == pytest.approx(0.4)
    assert integrate_power(ts, [1000.0, math.nan, 1000.0, math.nan, 1000.0], 0.0, 0.4) == pytest.approx(0.4)
    assert integrate_power(ts, [1000.0] * 5, 0.3, 0.3) == 0.0
    assert integrate_power(ts, [1000.0] * 5, -5.0, 5.0) == pytest.approx(0.4)  # clamped to the samples


def test_counter_delta_interpolates():
    ts = [0.0, 1.0, 2.0]
    mj = [100.0, 1100.0, 2100.0]  # 1 W
    assert counter_delta(ts, mj, 0.5, 1.5) == pytest.approx(1.0)


def test_trace_total_uses_total_channels_and_phases():
    chans = (Channel("VDD_IN", "total"), Channel("VDD_CPU_GPU_CV", "cpu_gpu_cv"))
    tr = Trace(chans, ("VDD_IN",))
    for k in range(0, 41):
        t = k / 10.0
        power = 2000.0 if t < 1.0 else 6000.0
        tr.add(t, {"VDD_IN": power, "VDD_CPU_GPU_CV": power / 2})
    tr.marks = [(0.0, "load"), (1.0, "warmup"), (2.0, "inference")]
    tr.end = 4.0
    rep = tr.energy()
    assert rep.rails_j["VDD_CPU_GPU_CV"] == pytest.approx(rep.total_j / 2)
    phases = tr.phases()
    assert phases == {"load": (0.0, 1.0), "warmup": (1.0, 2.0), "inference": (2.0, 4.0)}
    inf = tr.phase("inference")
    assert inf.total_j == pytest.approx(12.0)
    assert inf.avg_power_w == pytest.approx(6.0)
    assert tr.energy_above(inf, idle_power_w=2.0) == pytest.approx(8.0)
    with pytest.raises(KeyError, match="no phase 'idle'"):
        tr.phase("idle")


def test_energy_channel_in_trace():
    tr = Trace((Channel("rapl:package-0", "cpu", ENERGY), Channel("x", "other", POWER)), ("rapl:package-0",))
    tr.add(0.0, {"rapl:package-0": 0.0, "x": 1.0})
    tr.add(2.0, {"rapl:package-0": 30000.0, "x": 1.0})
    assert tr.energy().total_j == pytest.approx(30.0)

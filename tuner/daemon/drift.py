"""Watching a held config: when has the workload changed enough to search again?

While holding, the daemon measures the workload in short windows. The first
feasible window after a config is applied only warms up (a freshly set-up
model runs its first batches slowly: allocator, cuDNN autotuning, caches);
the second is the *signature* (throughput and average power at that config).
A window whose throughput or power is off the signature by more than the
tolerance counts as off; ``windows`` consecutive off windows mean the
workload (or the board) has changed — a new model, a different input mix, a
thermal regime — and the held config is stale. One noisy window never
triggers a search: sensor noise is 1–3 %, tolerance 15 %.

Constraint misses (latency SLO, throughput floor, power cap) are counted
separately: they are what the user asked for, so ``slo_windows`` consecutive
misses trigger a search even when the signature has not moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuner.measurement import Measurement


@dataclass
class Signature:
    """The held config's reference window: throughput (inferences/s) and average power (W) that later
    windows are compared against."""

    throughput_ips: float
    power_w: float


class DriftWatch:
    """Decides when a held config is stale: ``windows`` consecutive windows off the signature by more
    than ``tolerance`` (relative) or failed, or ``slo_windows`` consecutive constraint misses."""

    WARMUP_WINDOWS = 1

    def __init__(self, tolerance: float = 0.15, windows: int = 3, slo_windows: int = 3) -> None:
        self.tolerance = tolerance
        self.windows = windows
        self.slo_windows = slo_windows
        self.reset()

    def reset(self) -> None:
        """A new config is held: after the warm-up window, the next feasible one is its signature."""
        self.signature: Signature | None = None
        self.warmup = self.WARMUP_WINDOWS
        self.off = self.misses = self.failures = 0

    def observe(self, window: Measurement, violation: str | None = None) -> str | None:
        """Take one window; return why the held config is stale, or None.

        ``violation`` is the objective's constraint failure for this window, if
        any. A window the workload could not finish counts as off-signature.
        """
        if not window.feasible:
            self.failures += 1
            self.off += 1
            if self.off >= self.windows:
                return f"the workload failed in {self.off} windows in a row ({window.failure})"
            return None
        if self.warmup > 0:
            self.warmup -= 1
            return None
        if violation is not None:
            self.misses += 1
            if self.misses >= self.slo_windows:
                return f"constraint missed in {self.misses} windows in a row ({violation})"
        else:
            self.misses = 0
        thr, power = window.throughput_ips, window.avg_power_w
        if self.signature is None:
            self.signature = Signature(thr, power)
            self.off = 0
            return None
        change = _rel(thr, self.signature.throughput_ips), _rel(power, self.signature.power_w)
        if any(c > self.tolerance for c in change if math.isfinite(c)):
            self.off += 1
        else:
            self.off = 0
        if self.off >= self.windows:
            return (f"drift: throughput {_signed(thr, self.signature.throughput_ips)}, power "
                    f"{_signed(power, self.signature.power_w)} against the held config's signature")
        return None


def _rel(value: float, base: float) -> float:
    if not (math.isfinite(value) and math.isfinite(base)) or base == 0:
        return math.nan
    return abs(value / base - 1.0)


def _signed(value: float, base: float) -> str:
    if not (math.isfinite(value) and math.isfinite(base)) or base == 0:
        return "n/a"
    return f"{(value / base - 1.0) * 100:+.0f} %"

"""Frequency residency: the share of time each clock spent at each frequency.

While a workload runs, a thread samples the board's current CPU and GPU
frequency (``scaling_cur_freq``, devfreq ``cur_freq``) at a fixed rate; the
shares are what the reference study reports for the default governors (on
the Nano, the top CPU step 89 % of the time). Under a pinned config the
residency is a single step with share 1 — which the sampler also confirms.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable


class ResidencySampler:
    """Counts the frequency each clock domain is at (``read``: domain -> frequency), sampled on a thread
    at ``rate_hz``; ``stop`` returns the shares. A failed read is counted, not fatal."""

    def __init__(self, read: Callable[[], dict[str, int]], rate_hz: float = 10.0) -> None:
        self.read = read
        self.period = 1.0 / rate_hz
        self.counts: dict[str, Counter[int]] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        try:
            clocks = self.read()
        except (OSError, ValueError):  # a clock that cannot be read this time is a gap
            self.errors += 1
            return
        for domain, freq in clocks.items():
            self.counts.setdefault(domain, Counter())[int(freq)] += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.period)

    def start(self) -> ResidencySampler:
        self._thread = threading.Thread(target=self._run, name="edgetune-residency", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return shares(self.counts)


def shares(counts: dict[str, Counter[int]]) -> dict[str, dict[str, float]]:
    """Counts per frequency -> shares that sum to 1, keyed by the frequency as text (JSON keys)."""
    out = {}
    for domain, counter in counts.items():
        total = sum(counter.values())
        if total:
            out[domain] = {str(f): n / total for f, n in sorted(counter.items())}
    return out


def merge(parts: list[tuple[float, dict[str, dict[str, float]]]]) -> dict[str, dict[str, float]]:
    """Time-weighted mean of residencies ``(seconds, residency)``: the residency of the whole."""
    acc: dict[str, dict[str, float]] = {}
    total = sum(w for w, _ in parts)
    if total <= 0:
        return {}
    for weight, residency in parts:
        for domain, table in residency.items():
            d = acc.setdefault(domain, {})
            for f, share in table.items():
                d[f] = d.get(f, 0.0) + share * weight / total
    return {dom: dict(sorted(t.items(), key=lambda kv: int(kv[0]))) for dom, t in acc.items()}

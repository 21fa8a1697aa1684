"""The result of measuring one config: what every strategy, store and report reads.

One :class:`Measurement` aggregates the repeats of one trial. A failed trial
(out of memory, timeout, SLO miss) is still a Measurement with ``feasible``
False and a ``failure`` reason: strategies learn from infeasible points too.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from tuner.config import Config
from tuner.residency import merge

#: Failure reasons that start with this are memory failures: a larger batch or
#: more instances fail too, whatever the clocks (strategies prune them).
OOM_PREFIX = "out of memory"


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Measurement:
    """One measured config.

    Units: energy in joules, time in seconds, power in watts, latency in
    seconds, temperature in °C. ``energy_j`` is above nothing: it is the board
    input energy (total rail, or the sum of rails where no total rail exists);
    ``idle_power_w`` lets a reader subtract the idle baseline when wanted.
    ``simulated`` is True for every number that did not come from hardware.
    """

    config: Config
    simulated: bool
    energy_j: float = math.nan
    time_s: float = math.nan
    inferences: int = 0
    rail_energy_j: dict[str, float] = field(default_factory=dict)
    batch_latency_p50_s: float = math.nan
    batch_latency_p95_s: float = math.nan
    temperatures_c: dict[str, float] = field(default_factory=dict)
    residency: dict[str, dict[str, float]] = field(default_factory=dict)
    tenants: dict[str, int] = field(default_factory=dict)  # multi-tenant runs: inferences per tenant
    idle_power_w: float = math.nan
    repeats: int = 1
    energy_spread: float = 0.0
    feasible: bool = True
    failure: str | None = None

    @property
    def memory_failure(self) -> bool:
        return not self.feasible and (self.failure or "").startswith(OOM_PREFIX)

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.time_s if self.time_s > 0 else math.nan

    @property
    def energy_per_inference_j(self) -> float:
        return self.energy_j / self.inferences if self.inferences > 0 else math.nan

    @property
    def throughput_ips(self) -> float:
        return self.inferences / self.time_s if self.time_s > 0 else math.nan

    @classmethod
    def infeasible(cls, config: Config, reason: str, *, simulated: bool) -> Measurement:
        return cls(config=config, simulated=simulated, feasible=False, failure=reason)

    @classmethod
    def combine(cls, repeats: list[Measurement]) -> Measurement:
        """Aggregate repeats of one config: means, and the relative energy spread.

        The spread (max-min over mean) is what the runner's repeat-until-stable
        rule reads, and what a report shows next to a best config.
        """
        if not repeats:
            raise ValueError("no repeats to combine")
        first = repeats[0]
        failed = [m for m in repeats if not m.feasible]
        if failed:
            out = cls.infeasible(first.config, failed[0].failure or "infeasible", simulated=first.simulated)
            out.repeats = len(repeats)
            return out
        energies = [m.energy_j for m in repeats]
        mean_e = statistics.fmean(energies)
        rails = {name: statistics.fmean(m.rail_energy_j.get(name, math.nan) for m in repeats)
                 for name in first.rail_energy_j}
        temps = {name: max(m.temperatures_c.get(name, math.nan) for m in repeats)
                 for name in first.temperatures_c}
        return cls(
            config=first.config,
            simulated=any(m.simulated for m in repeats),
            energy_j=mean_e,
            time_s=statistics.fmean(m.time_s for m in repeats),
            inferences=round(statistics.fmean(m.inferences for m in repeats)),
            rail_energy_j=rails,
            batch_latency_p50_s=statistics.fmean(m.batch_latency_p50_s for m in repeats),
            batch_latency_p95_s=statistics.fmean(m.batch_latency_p95_s for m in repeats),
            temperatures_c=temps,
            residency=merge([(m.time_s, m.residency) for m in repeats]),
            tenants={k: round(statistics.fmean(m.tenants.get(k, 0) for m in repeats)) for k in first.tenants},
            idle_power_w=statistics.fmean(m.idle_power_w for m in repeats),
            repeats=sum(m.repeats for m in repeats),
            energy_spread=(max(energies) - min(energies)) / mean_e if mean_e > 0 else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = self.config.to_dict()
        data["avg_power_w"] = self.avg_power_w
        data["energy_per_inference_j"] = self.energy_per_inference_j
        data["throughput_ips"] = self.throughput_ips
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: (math.nan if v is None and k not in ("failure",) else v)
                  for k, v in data.items() if k in known}
        kwargs["config"] = Config(data["config"])
        return cls(**kwargs)


@dataclass
class Trial:
    """One measured config: the combined measurement and the repeats behind it (what a
    search tells a strategy, a store keeps and a report shows)."""

    config: Config
    measurement: Measurement
    repeats: list[Measurement] = field(default_factory=list)

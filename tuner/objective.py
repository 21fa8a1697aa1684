"""Objectives and constraints: one number to minimise per measured config.

Every strategy, report and the daemon read costs through :class:`Objective`,
so "what is best" is defined once. Costs are per inference, so trials that
ran different amounts of work (fixed work vs. a time window) compare fairly.

A config that failed (out of memory, timeout, crash) or broke a constraint
(p95 batch latency over the SLO, throughput under the minimum, power over the
cap) has cost ``inf``: an infeasible result the search learns from, never a
crash and never a recommendation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from tuner.errors import ConfigError
from tuner.measurement import Measurement

KINDS = ("energy", "time", "weighted", "edp", "ed2p", "power")
#: Objectives whose cost needs measured energy (every one but time).
ENERGY_KINDS = ("energy", "weighted", "edp", "ed2p", "power")


@dataclass(frozen=True)
class Constraints:
    """Limits a config must keep to be recommended (``None`` = no limit)."""

    latency_p95_s: float | None = None
    min_throughput_ips: float | None = None
    power_cap_w: float | None = None

    def violation(self, m: Measurement) -> str | None:
        """Why ``m`` breaks a limit, or None."""
        if self.latency_p95_s is not None and m.batch_latency_p95_s > self.latency_p95_s:
            return (f"latency SLO missed: p95 batch latency {m.batch_latency_p95_s * 1e3:.1f} ms "
                    f"> {self.latency_p95_s * 1e3:.1f} ms")
        if self.min_throughput_ips is not None and m.throughput_ips < self.min_throughput_ips:
            return f"throughput {m.throughput_ips:.1f}/s below the minimum {self.min_throughput_ips:.1f}/s"
        if self.power_cap_w is not None and m.avg_power_w > self.power_cap_w:
            return f"average power {m.avg_power_w:.2f} W over the cap {self.power_cap_w:.2f} W"
        return None

    def to_dict(self) -> dict[str, float | None]:
        return {"latency_p95_s": self.latency_p95_s, "min_throughput_ips": self.min_throughput_ips,
                "power_cap_w": self.power_cap_w}


@dataclass(frozen=True)
class Objective:
    """``kind`` is one of :data:`KINDS`; ``weight`` is w of the weighted cost.

    The weighted cost ``w·E/E_ref + (1−w)·T/T_ref`` needs a reference
    measurement (the board's DVFS default unless given); :meth:`with_reference`
    sets it once the runner has measured it.
    """

    kind: str = "energy"
    weight: float = 0.5
    constraints: Constraints = Constraints()
    reference: Measurement | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown objective {self.kind!r}; use one of {', '.join(KINDS)} (weighted:W)")
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"objective weight must be in [0, 1], got {self.weight}")

    @classmethod
    def parse(cls, text: str, constraints: Constraints | None = None) -> Objective:
        """``energy``, ``time``, ``edp``, ``ed2p``, ``power`` or ``weighted:W`` (W = energy weight)."""
        kind, _, arg = text.strip().lower().partition(":")
        weight = 0.5
        if arg:
            if kind != "weighted":
                raise ConfigError(f"objective {kind!r} takes no argument (only weighted:W does)")
            try:
                weight = float(arg)
            except ValueError:
                raise ConfigError(f"weighted:W needs a number W in [0, 1], got {arg!r}") from None
        return cls(kind, weight, constraints or Constraints())

    @property
    def name(self) -> str:
        return f"weighted:{self.weight:g}" if self.kind == "weighted" else self.kind

    @property
    def needs_reference(self) -> bool:
        return self.kind == "weighted"

    @property
    def needs_energy(self) -> bool:
        """Whether the cost or a constraint (``--power-cap``) needs measured energy."""
        return self.kind in ENERGY_KINDS or self.constraints.power_cap_w is not None

    def with_reference(self, reference: Measurement) -> Objective:
        if not reference.feasible:
            raise ConfigError(f"the reference config failed ({reference.failure}); it cannot anchor the cost")
        return replace(self, reference=reference)

    def check(self, m: Measurement) -> Measurement:
        """``m``, marked infeasible when it breaks a constraint."""
        if not m.feasible:
            return m
        why = self.constraints.violation(m)
        if why is None:
            return m
        return replace(m, feasible=False, failure=why)

    def cost(self, m: Measurement) -> float:
        """The number to minimise; ``inf`` for failed or constraint-breaking configs."""
        m = self.check(m)
        if not m.feasible:
            return math.inf
        e = m.energy_per_inference_j
        t = m.time_s / m.inferences if m.inferences > 0 else math.nan
        if self.kind == "energy":
            value = e
        elif self.kind == "time":
            value = t
        elif self.kind == "edp":
            value = e * t
        elif self.kind == "ed2p":
            value = e * t * t
        elif self.kind == "power":
            value = m.avg_power_w
        else:
            ref = self.reference
            if ref is None:
                raise ConfigError("the weighted objective needs a reference measurement (the DVFS default)")
            e_ref = ref.energy_per_inference_j
            t_ref = ref.time_s / ref.inferences
            value = self.weight * e / e_ref + (1.0 - self.weight) * t / t_ref
        return value if math.isfinite(value) and value > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "weight": self.weight,
                "constraints": self.constraints.to_dict()}


def check_power_sensors(board: Any, objective: Objective, command: str | None = None) -> None:
    """Refuse, in one line, an objective that needs energy on a board that cannot measure it.

    A measured board without a power source (a Jetson Nano 2GB has no INA3221;
    a Linux host without RAPL) would otherwise run every trial and find each one's
    energy unknown. A simulated board of such a board (``sim:jetson-nano-2gb``)
    is refused alike. Recordings answer for themselves (``check_recorded``).
    """
    if not objective.needs_energy or hasattr(board, "recorded_quantities"):
        return
    if hasattr(board, "measure"):  # analytic: computed, but only where the real board could measure
        profile = getattr(board, "profile", None)
        if getattr(profile, "has_power_monitor", True):
            return
    elif board.power_source() is not None:
        return
    name = board.info.profile or board.info.kind
    if command:  # a command that measures nothing but energy (compare)
        what, advice = command, "sweep and tune can still minimise time with --objective time"
    else:
        what = f"the {objective.name} objective" if objective.kind in ENERGY_KINDS else "--power-cap"
        advice = "tune with --objective time"
    raise ConfigError(f"{what} needs energy, but {name} has no power monitor (no INA3221 or INA238 rails): "
                      f"{advice} (an external power meter is not supported yet)")

"""What the daemon's control threads may read: one immutable snapshot, replaced whole by the loop.

The service loop owns the board, the workload, the runner, the space and the
store. The control socket's threads (and the metrics endpoint's) never touch
them: they read :class:`Snapshot`, which the loop builds after every change
and publishes with one assignment (atomic in Python), so a reader sees one
consistent moment, never half of an update. A request that would change
something is queued to the loop, which re-checks it against the live board
when it runs it.

Also here: the per-workload part of the status document (``status --json``),
in the units the status shows (mJ per inference, W, inferences/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional

from tuner.config import Config, Knob
from tuner.daemon.protocol import ProtocolError
from tuner.daemon.states import SAFE, WorkloadState
from tuner.errors import EdgetuneError
from tuner.measurement import Measurement

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Snapshot:
    """The daemon as of its last change, for the control threads.

    ``status`` is the status document (read-only; its values are never changed
    once published). ``knobs`` are the knobs an ``apply`` may set here, the
    board's and the workload's, with the domains they had when the loop last
    planned the space. ``ready`` is False until the workload is open: commands
    are refused until then.
    """

    status: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    knobs: Mapping[str, Knob] = field(default_factory=lambda: _EMPTY)
    ready: bool = False

    def check(self, given: Mapping[str, Any]) -> None:
        """Refuse (:class:`ProtocolError`) a requested config that names an unknown knob or a value outside its
        domain, as the snapshot knows them; the loop checks it again against the live board before applying."""
        check_values(given, self.knobs)


def check_values(given: Mapping[str, Any], knobs: Mapping[str, Knob]) -> None:
    """Every knob in ``given`` exists in ``knobs`` and its value is a number or string in the knob's domain."""
    for name, value in given.items():
        if name not in knobs:
            raise ProtocolError(f"unknown knob {name!r}; knobs here: {', '.join(sorted(knobs))}")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ProtocolError(f"{name}: a value is a number or a string, not {type(value).__name__}")
        try:
            knobs[name].validate(value)
        except EdgetuneError as exc:
            raise ProtocolError(str(exc)) from None


def complete(given: Mapping[str, Any], base: Config) -> Config:
    """A requested config completed from ``base`` (the held config, else the DVFS reference)."""
    merged = dict(base.to_dict())
    merged.update(given)
    return Config(merged)


def workload_doc(ws: WorkloadState, measured: Dict[str, Any], on_external_change: str) -> Dict[str, Any]:
    """One workload's entry in the status document."""
    saving = None
    if ws.best_epi_j and ws.dvfs_epi_j:
        saving = 1.0 - ws.best_epi_j / ws.dvfs_epi_j
    return {
        "name": ws.name, "state": ws.state, "reason": ws.reason, "epoch": ws.epoch,
        # while safe the coolest clocks are on the board: what is held comes back once cooled (pending)
        "applied": ws.applied.to_dict() if ws.applied and ws.state != SAFE else None, "manual": ws.manual,
        "pending": ws.applied.to_dict() if ws.applied and ws.state == SAFE else None, "waiting": ws.waiting,
        "best": ws.best.to_dict() if ws.best else None,
        "best_energy_per_inference_mj": mj(ws.best_epi_j), "best_repeats": ws.best_repeats,
        "dvfs_energy_per_inference_mj": mj(ws.dvfs_epi_j),
        "saving_vs_dvfs": None if saving is None else round(saving, 4),
        "trials_used": ws.trials_used, "searches": ws.searches, "windows": ws.windows,
        "exploration": ws.exploration,
        "payback_s": None if ws.payback_s is None else round(ws.payback_s, 1),
        "power_w": ws.last_window.get("power_w"), "throughput_ips": ws.last_window.get("throughput_ips"),
        "last_window": ws.last_window,
        "on_external_change": on_external_change,
        "external_changes": ws.external_changes, "last_external_change": ws.last_external,
        "measured": {**measured, "rails_w": dict(measured["rails_w"])},
        "fleet": ws.fleet,
    }


def mj(joules: Optional[float]) -> Optional[float]:
    """Joules as millijoules, rounded; None for nothing measured."""
    return None if joules is None or not math.isfinite(joules) else round(joules * 1e3, 4)


def window_doc(m: Measurement) -> Dict[str, Any]:
    """A hold window as the status shows it: power (W), throughput (inferences/s), mJ per inference, p95 (ms)."""
    if not m.feasible:
        return {"feasible": False, "failure": m.failure}
    return {"feasible": True, "power_w": rounded(m.avg_power_w), "throughput_ips": rounded(m.throughput_ips),
            "energy_per_inference_mj": mj(m.energy_per_inference_j),
            "batch_latency_p95_ms": rounded(m.batch_latency_p95_s * 1e3), "simulated": m.simulated,
            "rails_w": rails_w(m)}


def rails_w(m: Measurement) -> Dict[str, float]:
    """Average power per rail over a measurement (the rails' joules over its seconds)."""
    if not m.time_s > 0:
        return {}
    return {name: round(j / m.time_s, 4) for name, j in m.rail_energy_j.items() if math.isfinite(j)}


def rounded(v: float) -> Optional[float]:
    """``v`` to 4 decimals; None when it is not a finite number."""
    return round(v, 4) if math.isfinite(v) else None

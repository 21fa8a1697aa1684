"""``edgetune compare``: one workload under each governor and under the tuned config.

Every row is measured by the same trial runner (repeats until they agree),
in the same session, against the same DVFS row. Fixed work (the reference
study's setting): rows compare energy per inference, and the latency cost is
time per inference. Rate-driven (``rate_ips``): every row serves the same
frames per second, so rows compare average power at equal service, a row
that cannot keep up is infeasible (never recommended), and the latency cost
is the p95 batch latency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuner.config import Config
from tuner.measurement import Measurement
from tuner.measurement import Trial
from tuner.runner import TrialRunner
from tuner.search import measure_or_take
from tuner.store import Run

from governors.base import Governor

GOVERNOR_ROLE = "governor"


def measure_governor(runner: TrialRunner, gov: Governor, workload_part: Config, run: Run | None) -> Trial:
    """One governor's trial: the workload part with the governor's hardware part on top, taken
    from the run's store when it already holds it (resume), else measured and stored."""
    config = Config({**workload_part.to_dict(), **gov.config.to_dict()})
    return measure_or_take(runner, config, run, GOVERNOR_ROLE)


def row(name: str, kind: str, m: Measurement, dvfs: Measurement | None, rate: float | None) -> dict[str, Any]:
    """One ``--json`` row (energy in mJ, latency in ms) with its saving and latency cost against DVFS:
    average power and p95 batch latency at equal service when rate-driven (``rate``, inferences/s),
    energy and time per inference under fixed work; None where either row is infeasible."""
    out: dict[str, Any] = {
        "governor": name, "kind": kind, "config": m.config.to_dict(), "feasible": m.feasible, "failure": m.failure,
        "energy_j": m.energy_j, "time_s": m.time_s, "inferences": m.inferences, "avg_power_w": m.avg_power_w,
        "energy_per_inference_mj": m.energy_per_inference_j * 1e3, "throughput_ips": m.throughput_ips,
        "batch_latency_p95_ms": m.batch_latency_p95_s * 1e3, "repeats": m.repeats,
        "energy_spread": m.energy_spread, "residency": m.residency,
        "saving_vs_dvfs": None, "latency_cost_vs_dvfs": None,
    }
    if m.feasible and dvfs is not None and dvfs.feasible:
        if rate:
            out["saving_vs_dvfs"] = 1.0 - m.avg_power_w / dvfs.avg_power_w
            out["latency_cost_vs_dvfs"] = m.batch_latency_p95_s / dvfs.batch_latency_p95_s - 1.0
        else:
            out["saving_vs_dvfs"] = 1.0 - m.energy_per_inference_j / dvfs.energy_per_inference_j
            out["latency_cost_vs_dvfs"] = (m.time_s / m.inferences) / (dvfs.time_s / dvfs.inferences) - 1.0
    return out


def compare(runner: TrialRunner, governors: list[Governor], tuned: Trial, workload_part: Config, *,
            run: Run | None = None, online: tuple[Config | None, Measurement] | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every governor; the first one is DVFS. Returns rows (``--json`` shape)."""
    rate = runner.policy.rate_ips
    measured = []
    for gov in governors:
        if progress:
            progress(gov.name)
        measured.append((gov, measure_governor(runner, gov, workload_part, run).measurement))
    dvfs = measured[0][1]
    rows = [row(g.name, g.kind, m, dvfs, rate) for g, m in measured]
    rows.append(row("tuned", "pinned", tuned.measurement, dvfs, rate))
    if online is not None:
        settled, m = online
        r = row("online", "online", m, dvfs, rate)
        r["config"] = settled.to_dict() if settled is not None else None
        rows.append(r)
    return {"rows": rows, "dvfs": governors[0].name, "rate_ips": rate,
            "compared_on": "average power at equal service" if rate else "energy per inference"}

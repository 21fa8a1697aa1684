"""What a run directory holds besides the store: ``summary.json`` and the topology plots.

The plots follow the reference study's energy topology figures: per batch
size, energy over the CPU x GPU frequency grid, as a heatmap and as a 3-D
surface, with the minimum marked and the DVFS energy drawn as a contour line
(heatmap) and a plane (surface), so the region that beats DVFS is visible at
a glance. matplotlib is an optional extra; without it the plots are skipped
and the summary says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tuner.config import BATCH_SIZE, CPU_FREQ, GPU_FREQ
from tuner.cost import search_cost
from tuner.objective import Objective
from tuner.measurement import Trial
from tuner.search import SearchResult


def _point(trial: Trial | None) -> dict[str, Any] | None:
    if trial is None:
        return None
    m = trial.measurement
    return {"config": trial.config.to_dict(), "energy_j": m.energy_j, "time_s": m.time_s,
            "inferences": m.inferences, "energy_per_inference_mj": m.energy_per_inference_j * 1e3,
            "avg_power_w": m.avg_power_w, "batch_latency_p95_ms": m.batch_latency_p95_s * 1e3,
            "repeats": m.repeats, "energy_spread": m.energy_spread}


def _ratio(a: float, b: float) -> float | None:
    return None if not (math.isfinite(a) and math.isfinite(b) and b > 0) else a / b


def summarize(*, kind: str, board: str, workload: str, simulated: bool, objective: Objective, space_size: int,
              result: SearchResult, strategy: str, measured_now: int,
              references: dict[int, Trial] | None = None) -> dict[str, Any]:
    """The run's ``summary.json``: best vs DVFS (at the default batch), and per batch size
    the best config and its saving vs DVFS at the same batch where that was measured."""
    best = _point(result.best_trial)
    # per inference, so a best at another batch size compares fairly with DVFS at batch 16
    saving, latency_cost = _versus(result.best_trial, result.reference)
    feasible = [s for s in result.steps if math.isfinite(s.cost)]
    doc: dict[str, Any] = {
        "kind": kind,
        "board": board,
        "workload": workload,
        "simulated": simulated,
        "objective": objective.to_dict()["name"],
        "constraints": objective.constraints.to_dict(),
        "strategy": strategy,
        "space_size": space_size,
        "n_trials": len(result.steps),
        "n_measured_now": measured_now,
        "n_infeasible": len(result.steps) - len(feasible),
        "best": best,
        "best_cost": result.best_cost if math.isfinite(result.best_cost) else None,
        "dvfs": _point(result.reference),
        "saving_vs_dvfs": saving,
        "latency_cost_vs_dvfs": latency_cost,
    }
    per_batch = _per_batch(result, references or {})
    if len(per_batch) > 1:
        doc["per_batch"] = per_batch
    explored, payback = search_cost(result, references)
    doc["exploration"] = explored.to_dict()
    doc["payback_s"] = payback
    return doc


def _versus(trial: Trial | None, reference: Trial | None) -> tuple[float | None, float | None]:
    """(energy saving, latency cost) of ``trial`` against ``reference``, per inference."""
    if trial is None or reference is None or not reference.measurement.feasible:
        return None, None
    b, ref = trial.measurement, reference.measurement
    r = _ratio(b.energy_per_inference_j, ref.energy_per_inference_j)
    t = _ratio(b.time_s / b.inferences, ref.time_s / ref.inferences) if b.inferences and ref.inferences else None
    return (None if r is None else 1.0 - r), (None if t is None else t - 1.0)


def _per_batch(result: SearchResult, references: dict[int, Trial]) -> dict[str, Any]:
    """Best config per batch size (lowest mean cost) and its saving vs DVFS at the same batch."""
    best: dict[int, Trial] = {}
    costs: dict[int, float] = {}
    for step in result.steps:
        if not math.isfinite(step.cost) or BATCH_SIZE not in step.trial.config:
            continue
        b = int(step.trial.config[BATCH_SIZE])
        if b not in costs or step.cost < costs[b]:
            best[b], costs[b] = step.trial, step.cost
    out: dict[str, Any] = {}
    for b in sorted(best):
        saving, latency = _versus(best[b], references.get(b))
        out[str(b)] = {"best": _point(best[b]), "dvfs": _point(references.get(b)),
                       "saving_vs_dvfs": saving, "latency_cost_vs_dvfs": latency}
    return out


def write_summary(out_dir: Path, summary: dict[str, Any]) -> Path:
    """Write a run directory's ``summary.json`` with inf/NaN as null (valid JSON for replay and
    other readers); returns its path."""
    path = out_dir / "summary.json"
    path.write_text(json.dumps(finite_json(summary), indent=2) + "\n")
    return path


def finite_json(value: Any) -> Any:
    """``value`` with every inf/NaN float as None, so that it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value


PLOTS_SKIPPED = "plots skipped: matplotlib is not installed (pip install 'edgetune[plots]')"
PLOT_DPI = 110


def _pyplot() -> Any | None:
    """The one plotting preamble: ``matplotlib.pyplot`` on the Agg backend, which
    writes files and needs no display (a headless board has none), or None when
    the optional ``plots`` extra is not installed (the caller returns
    :data:`PLOTS_SKIPPED`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Lay out, write ``fig`` as a PNG at :data:`PLOT_DPI` and free it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=PLOT_DPI)
    plt.close(fig)
    return path


def plot_topology(out_dir: Path, result: SearchResult, workload: str, board: str, simulated: bool,
                  references: dict[int, Trial] | None = None) -> list[Path] | str:
    """Heatmap and 3-D surface PNG per batch size; returns the files, or why none were drawn."""
    plt = _pyplot()
    if plt is None:
        return PLOTS_SKIPPED
    import numpy as np
    trials = [s.trial for s in result.steps if s.trial.measurement.feasible]
    if not trials or not all(CPU_FREQ in t.config and GPU_FREQ in t.config for t in trials):
        return "plots skipped: the run did not vary both CPU and GPU frequency"
    best = result.best_trial
    files: list[Path] = []
    batches = sorted({int(t.config.get(BATCH_SIZE, 0)) for t in trials})
    tag = " (simulated)" if simulated else ""
    for batch in batches:
        sel = [t for t in trials if int(t.config.get(BATCH_SIZE, 0)) == batch]
        cpus = sorted({int(t.config[CPU_FREQ]) for t in sel})
        gpus = sorted({int(t.config[GPU_FREQ]) for t in sel})
        grid = np.full((len(gpus), len(cpus)), np.nan)
        per_config: dict[Any, list[float]] = {}
        for t in sel:  # a re-measured config counts once, at its mean
            per_config.setdefault(t.config, []).append(t.measurement.energy_per_inference_j * 1e3)
        for config, values in per_config.items():
            i, j = gpus.index(int(config[GPU_FREQ])), cpus.index(int(config[CPU_FREQ]))
            grid[i, j] = np.nanmin([grid[i, j], float(np.mean(values))])  # other knobs: the best of them
        others = sorted(k for k in {k for t in sel for k in t.config} - {CPU_FREQ, GPU_FREQ, BATCH_SIZE}
                        if len({t.config.get(k) for t in sel}) > 1)
        x = np.array(cpus) / 1e3  # MHz
        y = np.array(gpus) / 1e6  # MHz
        ref = (references or {}).get(batch, result.reference)
        ref_ok = ref is not None and ref.measurement.feasible
        ref_mj = ref.measurement.energy_per_inference_j * 1e3 if ref_ok else None
        ref_batch = ref.config.get(BATCH_SIZE, batch) if ref_ok else None
        iy, ix = np.unravel_index(np.nanargmin(grid), grid.shape)
        is_global = best is not None and int(best.config.get(BATCH_SIZE, 0)) == batch
        title = f"{workload} on {board}{tag}, batch {batch}" + (f", best over {', '.join(others)}" if others else "")
        fig, ax = plt.subplots(figsize=(7, 5.2))
        mesh = ax.pcolormesh(x, y, grid, shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="energy per inference (mJ)")
        if ref_mj is not None and np.nanmin(grid) < ref_mj < np.nanmax(grid):
            cs = ax.contour(x, y, grid, levels=[ref_mj], colors="white", linewidths=1.5)
            ax.clabel(cs, fmt={ref_mj: "DVFS"}, fontsize=8)
        ax.plot(x[ix], y[iy], marker="*", color="red", markersize=16, markeredgecolor="white",
                label=f"minimum {grid[iy, ix]:.2f} mJ" + (" (best overall)" if is_global else ""))
        ax.set_xlabel("CPU frequency (MHz)")
        ax.set_ylabel("GPU frequency (MHz)")
        ax.set_title(title + (f"\nDVFS (batch {ref_batch}): {ref_mj:.2f} mJ" if ref_mj else ""), fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
        files.append(_save(plt, fig, out_dir / f"heatmap_batch{batch}.png"))

        fig = plt.figure(figsize=(7.5, 5.8))
        ax3 = fig.add_subplot(projection="3d")
        gx, gy = np.meshgrid(x, y)
        ax3.plot_surface(gx, gy, np.ma.masked_invalid(grid), cmap="viridis", edgecolor="none", alpha=0.9)
        if ref_mj is not None:
            ax3.plot_surface(gx, gy, np.full_like(grid, ref_mj), color="grey", alpha=0.25)
            ax3.text(x[0], y[-1], ref_mj, " DVFS", color="black", fontsize=8)
        ax3.scatter([x[ix]], [y[iy]], [grid[iy, ix]], color="red", s=60, marker="*", depthshade=False)
        ax3.set_xlabel("CPU (MHz)")
        ax3.set_ylabel("GPU (MHz)")
        ax3.set_zlabel("energy / inference (mJ)")
        ax3.view_init(elev=25, azim=-125)  # low clocks in front, the basin of the minimum in view
        ax3.set_title(title, fontsize=10)
        files.append(_save(plt, fig, out_dir / f"surface_batch{batch}.png"))
    return files


def plot_compare(out_dir: Path, doc: dict[str, Any]) -> list[Path] | str:
    """A bar chart of the compared quantity per governor (DVFS dashed) and the
    CPU/GPU frequency residency of each row."""
    plt = _pyplot()
    if plt is None:
        return PLOTS_SKIPPED
    rows = doc["rows"]
    rate = doc.get("rate_ips")
    key, label = ("avg_power_w", "average power (W)") if rate else ("energy_per_inference_mj",
                                                                    "energy per inference (mJ)")
    tag = " (simulated)" if doc.get("simulated") else ""
    names = [r["governor"] for r in rows]
    values = [r[key] if r["feasible"] else 0.0 for r in rows]
    colors = ["tab:green" if r["governor"] in ("tuned", "online") else
              ("tab:blue" if r["governor"] == doc["dvfs"] else "tab:gray") for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(rows) + 2), 4.8))
    ax.bar(range(len(rows)), values, color=colors)
    dvfs_value = next(r[key] for r in rows if r["governor"] == doc["dvfs"])
    if dvfs_value and math.isfinite(dvfs_value):
        ax.axhline(dvfs_value, color="tab:blue", linestyle="--", linewidth=1, label=f"DVFS ({doc['dvfs']})")
    for i, r in enumerate(rows):
        text = "infeasible" if not r["feasible"] else (
            f"{r['saving_vs_dvfs'] * 100:+.1f} %" if r["saving_vs_dvfs"] is not None else "")
        ax.text(i, values[i], text, ha="center", va="bottom", fontsize=7, rotation=90 if not r["feasible"] else 0)
    ax.set_xticks(range(len(rows)), names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(label)
    service = f" at {rate:g}/s" if rate else ""
    ax.set_title(f"{doc['workload']} on {doc['board']}{tag}{service}: saving vs DVFS", fontsize=10)
    ax.legend(fontsize=8)
    bars = _save(plt, fig, out_dir / "compare.png")

    with_res = [r for r in rows if r["feasible"] and r.get("residency")]
    if not with_res:
        return [bars]
    domains = sorted({d for r in with_res for d in r["residency"]})
    fig, axes = plt.subplots(len(with_res), len(domains), figsize=(4.2 * len(domains), 1.6 * len(with_res) + 0.6),
                             squeeze=False)
    for i, r in enumerate(with_res):
        for j, dom in enumerate(domains):
            ax = axes[i][j]
            table = r["residency"].get(dom, {})
            freqs = [int(f) for f in table]
            scale = 1e3 if dom == "cpu" else 1e6  # kHz -> MHz, Hz -> MHz
            ax.bar([f"{f / scale:g}" for f in freqs], list(table.values()), color="tab:purple")
            ax.set_ylim(0, 1)
            ax.tick_params(axis="x", labelsize=6, rotation=90)
            ax.tick_params(axis="y", labelsize=6)
            if j == 0:
                ax.set_ylabel(r["governor"], fontsize=7)
            if i == 0:
                ax.set_title(f"{dom.upper()} residency (MHz)", fontsize=8)
    return [bars, _save(plt, fig, out_dir / "residency.png")]

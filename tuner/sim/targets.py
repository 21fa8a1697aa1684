"""Calibration targets: published measurements the simulator must reproduce.

All numbers are from Dutt 2023 (``../shared/seeds/004_*``), chapter 5; the
tolerances are those of the simulator issue. ``evaluate`` computes each
quantity from a set of device models; ``edgetune sim validate`` prints the
result, and the calibration fit minimises the misses.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from tuner.sim.governors import governed, pinned
from tuner.sim.model import DeviceModel

WORKLOADS = ("alexnet", "resnet18", "mobilenet_v2", "yolov4_tiny", "bert_tiny", "distilbert")
N_INF = 3200  # the study's fixed amount of work per experiment

SAVINGS = {
    "jetson-nano": (13.5, 19.3, 15.6, 9.9, 17.3, 17.2),
    "jetson-xavier-nx": (13.42, 2.5, 14.84, 12.9, 15.1, 21.95),
    "jetson-orin-nx": (19.21, 18.76, 16.78, 3.00, 18.77, 16.38),
}
MIN_GPU_HZ = {"jetson-nano": 614400000, "jetson-xavier-nx": 803250000, "jetson-orin-nx": 714000000}
SWEEP_CPU_KHZ = {"jetson-nano": 1132800, "jetson-xavier-nx": 1036800, "jetson-orin-nx": 960000}
BATCH_CPU_KHZ = {"jetson-nano": 1479000, "jetson-xavier-nx": 1036800, "jetson-orin-nx": 960000}
BATCH_SAVING = {"jetson-nano": (40.0, 45.0), "jetson-xavier-nx": (35.0, 42.0), "jetson-orin-nx": (15.0, 19.0)}
POWERSAVE = {  # power change %, time change %, energy change % vs the default governors
    "jetson-nano": (-30.0, 43.0, 0.0),
    "jetson-xavier-nx": (-36.0, 54.0, -1.3),
    "jetson-orin-nx": (-28.0, 44.0, 1.5),
}
CALIBRATED = tuple(SAVINGS)


def topology_batch(board: str, workload: str) -> int:
    """Batch size of the study's topology figures: 16, MobileNet-V2 on the Nano 8 (memory)."""
    return 8 if (board == "jetson-nano" and workload == "mobilenet_v2") else 16


def cross_batch(workload: str) -> int:
    """Batch size of the cross-board comparison: the same on every board, so
    MobileNet-V2 runs at the Nano's batch 8 everywhere."""
    return 8 if workload == "mobilenet_v2" else 16


@dataclass
class Result:
    """One calibration check: a simulated quantity against its published target and tolerance,
    with the residuals the fit minimises."""

    board: str
    workload: str
    quantity: str
    target: Any
    model: Any
    tolerance: Any
    ok: bool
    residuals: tuple[float, ...]  # for the fit: (model - centre) / tolerance, continuous in the parameters
    gated: bool = True  # False: shown for information, not part of `all_ok` (nor of the fit)

    def to_dict(self) -> dict[str, Any]:
        return {"board": self.board, "workload": self.workload, "quantity": self.quantity, "target": self.target,
                "model": self.model, "tolerance": self.tolerance, "ok": self.ok, "gated": self.gated}


def _band(value: float, lo: float, hi: float, scale: float) -> tuple[float, ...]:
    """Residual towards the band's centre, in units of its half-width ``scale``."""
    return ((value - (lo + hi) / 2) / scale,)


def grid(m: DeviceModel, workload: str, batch: int) -> dict[tuple[int, int], tuple[float, float]]:
    """(cpu_khz, gpu_hz) -> (energy_j, time_s) over the full CPU x GPU sweep."""
    out = {}
    for fc in m.profile.cpu_khz:
        for fg in m.profile.gpu_hz:
            r = pinned(m, workload, batch, N_INF, fc, fg)
            out[(fc, fg)] = (r.energy_j, r.time_s)
    return out


def _sweep(m: DeviceModel, workload: str, batch: int, fcs, fgs) -> tuple[float, float]:
    runs = [pinned(m, workload, batch, N_INF, fc, fg) for fc in fcs for fg in fgs]
    powers = [r.avg_power_w for r in runs]
    times = [r.time_s for r in runs]
    return max(powers) - min(powers), max(times) - min(times)


def board_results(m: DeviceModel) -> list[Result]:
    """The single-board targets of one model: the sweep minimum's saving vs DVFS, where it lies (and on
    the Nano its latency cost), AlexNet's power and latency spans, the batch-size saving and the
    powersave governor's effect."""
    b = m.profile.name
    out: list[Result] = []
    steps = m.profile.gpu_hz
    target_idx = steps.index(MIN_GPU_HZ[b])
    near = 0
    mins: list[str] = []
    gaps: list[float] = []
    lat_costs = []
    for i, wl in enumerate(WORKLOADS):
        batch = topology_batch(b, wl)
        dvfs = governed(m, wl, batch, N_INF)
        surface = grid(m, wl, batch)
        (fc, fg), (e_min, t_min) = min(surface.items(), key=lambda kv: kv[1][0])
        window = steps[max(0, target_idx - 1): target_idx + 2]
        e_window = min(e for (c, g), (e, _t) in surface.items() if g in window)
        gaps.append((e_window / e_min - 1) / 0.0003)  # how far the study's frequency is from being the minimum
        saving = 100 * (1 - e_min / dvfs.energy_j)
        tgt = SAVINGS[b][i]
        out.append(Result(b, wl, f"energy saving of the sweep minimum vs DVFS, batch {batch} (%)", tgt,
                          round(saving, 2), 3.0, abs(saving - tgt) <= 3.0, _band(saving, tgt - 3, tgt + 3, 3.0)))
        near += abs(steps.index(fg) - target_idx) <= 1
        mins.append(f"{wl} {fg / 1e6:g}")
        lat_costs.append(100 * (t_min / dvfs.time_s - 1))
    # "usually at 614.4 MHz": judged as at least 4 of the 6 workloads within one step
    out.append(Result(b, "all", f"GPU MHz of each workload's energy minimum ({'; '.join(mins)}): "
                      f"workloads within one step of {MIN_GPU_HZ[b] / 1e6:g}", ">= 4 of 6", near, "1 step",
                      near >= 4, tuple(gaps)))
    if b == "jetson-nano":  # "typically 28-35 % higher": judged on the median over workloads
        med = statistics.median(lat_costs)
        each = "; ".join(f"{wl} {c:.0f}" for wl, c in zip(WORKLOADS, lat_costs))
        # each workload pulled weakly towards the band too: "typically" is not "on median only"
        weak = tuple((c - 31.5) / 15.0 for c in lat_costs)
        out.append(Result(b, "all", f"latency at the minimum vs DVFS ({each}), median over workloads (%)",
                          "28-35", round(med, 1), "range", 28 <= med <= 35, _band(med, 28, 35, 3.5) + weak))
    # sweeps of AlexNet, 3,200 inferences (Figures 5.1, 5.4, 5.7)
    fc = SWEEP_CPU_KHZ[b]
    bs = 8 if b == "jetson-nano" else 16
    p_span, t_span = _sweep(m, "alexnet", bs, [fc], m.profile.gpu_hz)
    spans = {"jetson-nano": (4.7, 532.0), "jetson-xavier-nx": (7.5, 20.0), "jetson-orin-nx": (5.1, 6.0)}[b]
    for name, val, tgt in (("power", p_span, spans[0]), ("latency", t_span, spans[1])):
        unit = "W" if name == "power" else "s"
        rel = val / tgt - 1
        out.append(Result(b, "alexnet", f"{name} span, GPU swept at CPU {fc / 1000:g} MHz, batch {bs} ({unit})",
                          tgt, round(val, 2), "15%", abs(rel) <= 0.15, _band(rel, -0.15, 0.15, 0.15)))
    if b == "jetson-nano":
        p_span, t_span = _sweep(m, "alexnet", 8, m.profile.cpu_khz, [691200000])
        for name, val, tgt in (("power", p_span, 1.0), ("latency", t_span, 60.0)):
            unit = "W" if name == "power" else "s"
            rel = val / tgt - 1
            out.append(Result(b, "alexnet", f"{name} span, CPU swept at GPU 691.2 MHz, batch 8 ({unit})", tgt,
                              round(val, 2), "15%", abs(rel) <= 0.15, _band(rel, -0.15, 0.15, 0.15)))
    # batch size: energy at 64 below 8, over the GPU frequencies at a fixed CPU frequency
    lo, hi = BATCH_SAVING[b]
    savings = [100 * (1 - pinned(m, "alexnet", 64, N_INF, BATCH_CPU_KHZ[b], fg).energy_j
                      / pinned(m, "alexnet", 8, N_INF, BATCH_CPU_KHZ[b], fg).energy_j) for fg in m.profile.gpu_hz]
    med = statistics.median(savings)
    out.append(Result(b, "alexnet", "energy at batch 64 below batch 8, median over GPU frequencies (%)",
                      f"{lo:g}-{hi:g}", round(med, 1), 5.0, lo - 5 <= med <= hi + 5, _band(med, lo - 5, hi + 5, 5.0)))
    # powersave (CPU) vs the default governors
    bs = 8 if b == "jetson-nano" else 16
    dflt = governed(m, "alexnet", bs, N_INF)
    ps = governed(m, "alexnet", bs, N_INF, cpu_governor="powersave")
    tp, tt, te = POWERSAVE[b]
    dp = 100 * (ps.avg_power_w / dflt.avg_power_w - 1)
    dt = 100 * (ps.time_s / dflt.time_s - 1)
    de = 100 * (ps.energy_j / dflt.energy_j - 1)
    for name, val, tgt, tol in (("power", dp, tp, 5.0), ("time", dt, tt, 5.0), ("energy", de, te, 3.0)):
        out.append(Result(b, "alexnet", f"powersave vs default governors: {name} change (%)", tgt, round(val, 1),
                          tol, abs(val - tgt) <= tol, _band(val, tgt - tol, tgt + tol, tol)))
    return out


def cross_results(models: dict[str, DeviceModel]) -> list[Result]:
    """The study's cross-board energy ratios under DVFS.

    The study's "Nano uses 2-4x the energy of Xavier NX" (and "similar" for Orin NX
    and Xavier NX) is a statement across its workloads, so the gate is the median
    over the six workloads of each board pair's ratio. Each workload's own ratio is
    reported beside it, not gated: AlexNet's cannot meet the range together with the
    study's own AlexNet sweep spans (the Nano's 532 s span needs far more GPU time
    than Xavier NX's 20 s span allows), as argued when the gate moved.
    """
    out: list[Result] = []
    pairs = (("jetson-nano", "jetson-xavier-nx", 2.0, 4.0, "Nano / Xavier NX energy"),
             ("jetson-nano", "jetson-orin-nx", 2.0, 5.0, "Nano / Orin NX energy"),
             ("jetson-orin-nx", "jetson-xavier-nx", 0.67, 1.5, "Orin NX / Xavier NX energy (similar)"))
    ratios: dict[str, list[float]] = {label: [] for *_, label in pairs}
    for wl in WORKLOADS:
        batch = cross_batch(wl)
        e = {b: governed(models[b], wl, batch, N_INF).energy_j for b in CALIBRATED if b in models}
        for a, c, lo, hi, label in pairs:
            if a in e and c in e:
                r = e[a] / e[c]
                ratios[label].append(r)
                out.append(Result("across", wl, f"{label} under DVFS, batch {batch} (ratio; reported, not gated)",
                                  f"{lo:g}-{hi:g}", round(r, 2), "range", lo <= r <= hi, (), gated=False))
    for _a, _c, lo, hi, label in pairs:
        if ratios[label]:
            r = statistics.median(ratios[label])
            out.append(Result("across", "median of 6", f"{label} under DVFS, median over the workloads (ratio)",
                              f"{lo:g}-{hi:g}", round(r, 2), "range", lo <= r <= hi, _band(r, lo, hi, (hi - lo) / 4)))
    return out


def evaluate(models: dict[str, DeviceModel]) -> list[Result]:
    """Every target the given models can be judged on: each calibrated board's own, then the
    cross-board ratios."""
    out: list[Result] = []
    for b in CALIBRATED:
        if b in models:
            out += board_results(models[b])
    out += cross_results(models)
    return out


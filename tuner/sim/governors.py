"""Emulated kernel governors: where each one keeps the clocks while inference runs.

The reference study profiled the default governors under DNN inference: the
top CPU step 89 % of the time and the top GPU step 83 % on the Nano (Xavier NX
87 % / 79 %, Orin NX 56 % / 59 %). Each governor here is a residency — a share
of time per frequency step — and the run's throughput and power are the
time-weighted mix of the steady-state points. Load-driven governors also pay a
voltage overhead: DVFS raises voltage ahead of frequency, so their power sits
slightly above the same clocks pinned.

"powersave" in the study's comparison is the CPU governor; the GPU stays
under its default governor (otherwise the GPU floor would make the run ~10×
slower, not the +43 % the study measured).
"""

from __future__ import annotations

from dataclasses import dataclass

from tuner.errors import EdgetuneError
from tuner.sim.model import DeviceModel

# Share of time at the top step, relative to the board's profiled default
# governor, and how the remainder spreads over the next lower steps.
_SPREAD = (0.5, 0.3, 0.2)
_CPU_GOVERNORS = {"schedutil": 0.0, "ondemand": +0.04, "interactive": +0.02, "conservative": -0.06}
_GPU_GOVERNORS = {"nvhost_podgov": 0.0, "simple_ondemand": +0.03, "wmark_active": -0.03, "wmark_simple": -0.05}
PINNED = ("performance", "powersave", "userspace")

DEFAULT_CPU_GOVERNOR = "schedutil"
DEFAULT_GPU_GOVERNOR = "nvhost_podgov"


@dataclass(frozen=True)
class Residency:
    """Share of time at each frequency (shares sum to 1); ``dynamic`` governors pay the voltage overhead."""

    shares: dict[int, float]
    dynamic: bool


def _load_driven(freqs: tuple[int, ...], top_share: float) -> dict[int, float]:
    top = min(0.99, max(0.05, top_share))
    shares = {freqs[-1]: top}
    rest = 1.0 - top
    lower = list(reversed(freqs[:-1]))[: len(_SPREAD)]
    weights = _SPREAD[: len(lower)]
    for f, wgt in zip(lower, weights):
        shares[f] = shares.get(f, 0.0) + rest * wgt / sum(weights)
    return shares


def _residency(freqs: tuple[int, ...], governor: str, load_driven: dict[str, float], top_share: float,
               setspeed: int | None, what: str) -> Residency:
    if governor == "performance":
        return Residency({freqs[-1]: 1.0}, False)
    if governor == "powersave":
        return Residency({freqs[0]: 1.0}, False)
    if governor == "userspace":
        return Residency({setspeed or freqs[-1]: 1.0}, False)
    if governor not in load_driven:
        raise EdgetuneError(f"no emulation of {what} governor {governor!r}")
    return Residency(_load_driven(freqs, top_share + load_driven[governor]), True)


def cpu_residency(model: DeviceModel, governor: str, setspeed: int | None = None) -> Residency:
    """Where CPU governor ``governor`` keeps the clock (kHz), relative to the board's profiled default
    residency; ``setspeed`` is the userspace governor's frequency."""
    return _residency(model.profile.cpu_khz, governor, _CPU_GOVERNORS, model.power.dvfs_cpu_max_share,
                      setspeed, "CPU")


def gpu_residency(model: DeviceModel, governor: str, setspeed: int | None = None) -> Residency:
    """Where GPU governor ``governor`` keeps the clock (Hz), relative to the board's profiled default
    residency; ``setspeed`` is the userspace governor's frequency."""
    return _residency(model.profile.gpu_hz, governor, _GPU_GOVERNORS, model.power.dvfs_gpu_max_share,
                      setspeed, "GPU")


@dataclass(frozen=True)
class RunEstimate:
    """Noiseless outcome of ``inferences`` inferences: the simulator's ground truth."""

    time_s: float
    energy_j: float
    avg_power_w: float
    batch_s: float  # mean batch latency
    inferences: int
    cpu_residency: dict[int, float]
    gpu_residency: dict[int, float]
    cpu_power_w: float
    gpu_power_w: float


def run_estimate(model: DeviceModel, workload: str, batch: int, inferences: int,
                 cpu: Residency, gpu: Residency, instances: int = 1, emc_hz: float | None = None) -> RunEstimate:
    """Time-weighted mix of steady states: the run progresses at each state's
    rate for its share of the time, so throughput mixes as rates, power as time."""
    rate = 0.0
    power = cpu_w = gpu_w = 0.0
    for fc, wc in cpu.shares.items():
        for fg, wg in gpu.shares.items():
            w = wc * wg
            pt = model.point(workload, fc, fg, batch, instances, emc_hz)
            pc = pt.cpu_power_w * (1 + model.power.dvfs_overhead if cpu.dynamic else 1.0)
            pg = pt.gpu_power_w * (1 + model.power.dvfs_overhead if gpu.dynamic else 1.0)
            rate += w * instances / pt.batch_s
            power += w * (pt.power_w - pt.cpu_power_w - pt.gpu_power_w + pc + pg)
            cpu_w += w * pc
            gpu_w += w * pg
    batches = inferences / batch
    time_s = batches / rate
    return RunEstimate(time_s, power * time_s, power, instances / rate, inferences, dict(cpu.shares),
                       dict(gpu.shares), cpu_w, gpu_w)


def pinned(model: DeviceModel, workload: str, batch: int, inferences: int, fc: int, fg: int) -> RunEstimate:
    """A run with the CPU (``fc``, kHz) and GPU (``fg``, Hz) clocks pinned: one step each, no DVFS
    voltage overhead."""
    return run_estimate(model, workload, batch, inferences, Residency({fc: 1.0}, False), Residency({fg: 1.0}, False))


def governed(model: DeviceModel, workload: str, batch: int, inferences: int,
             cpu_governor: str = DEFAULT_CPU_GOVERNOR, gpu_governor: str = DEFAULT_GPU_GOVERNOR) -> RunEstimate:
    """A run under kernel governors; the defaults are the board's DVFS, the reference every saving
    is quoted against."""
    return run_estimate(model, workload, batch, inferences, cpu_residency(model, cpu_governor),
                        gpu_residency(model, gpu_governor))

"""The simulator's device and workload models: power and batch latency from clocks.

Power (per board, shared by all workloads):

    V(f)    = v_min + (1 - v_min) * max(0, (f - f_knee) / (f_max - f_knee)) ** v_exp   (relative to V at f_max)
    P_cpu   = cpu_leak * V + cpu_dyn * V² * f/f_max              one busy core (the Python inference thread;
                                                                  it also spins while the GPU works)
    P_gpu   = gpu_leak * V + gpu_dyn * V² * f/f_max * (idle + (1 - idle) * u)    u: GPU busy fraction
    P       = base + P_cpu + P_gpu + mem * a                      mem: DRAM traffic, a: work rate relative
                                                                  to the GPU at f_max (traffic follows throughput)

Batch latency (per board × workload), CPU work then GPU work, as in a
synchronous PyTorch loop; ``io_batch`` is per-batch time that no clock
speeds up (moving the batch in and out, Python bookkeeping), the reason larger
batches cost less energy per inference at every clock setting:

    t_cpu   = (cpu_batch + b * cpu_item) * (fc_max / fc) ** cpu_exp + io_batch
    t_gpu   = gpu_batch * fg_max / fg + b * smoothmax(gpu_item * fg_max / fg, mem_item)

The smooth maximum makes latency plateau at high GPU frequency where the
memory floor ``mem_item`` is large (Nano, Xavier) and not where it is small
(Orin). Energy per batch is P × t with u = t_gpu / (t_cpu + t_gpu).

The memory clock (EMC, ``fe``; boards with a BPMP EMC table; ``s_e = fe_max / fe``)
stretches the memory-bound share ``m`` of the GPU's per-item time and the memory
floor: ``gpu_item * g * (1 + m * (s_e - 1))`` and ``mem_item * s_e``, with
``m = clip(mem_item / gpu_item, 0.2, 0.9)`` (a workload near its memory floor is
mostly memory-bound).
DRAM and controller background power falls with the rate:
``P += emc_static * (fe / fe_max - 1)`` with ``emc_static`` a fixed share of the
base power (:data:`EMC_STATIC_SHARE`). Neither is calibrated (the reference
study kept the EMC at its governor's choice, ~the top rate, which is where the
model reduces to the calibrated one); the shape follows published Orin Nano
results (DNN latency 11-48 % slower from 3199 down to 2133 MHz, by how
memory-bound the model is). ``membound`` is a reference workload whose memory
floor dominates: ResNet-18's parameters with four times its GPU time per item
as memory time.

Parameters come from ``calibration.json`` (fitted by ``tuner/sim/calibrate.py``
to the published measurements listed in :mod:`tuner.sim.targets`).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from tuner.config import BATCH_SIZE, CONCURRENCY, Knob
from tuner.errors import EdgetuneError, Infeasible
from tuner.sim.profiles import BoardProfile, get_profile

SMOOTHMAX_P = 4.0
GIB = 1024 ** 3


def volts(f: float, f_min: float, f_max: float, v_min: float, knee: float, v_exp: float) -> float:
    """Relative voltage (1.0 at f_max): flat up to the knee, then rising."""
    f_knee = f_min + knee * (f_max - f_min)
    if f <= f_knee or f_max <= f_knee:
        return v_min
    return v_min + (1.0 - v_min) * ((f - f_knee) / (f_max - f_knee)) ** v_exp


def memory_share(w: WorkloadParams) -> float:
    """The share of a workload's GPU time per item that waits on memory (the EMC clock stretches it)."""
    return min(0.9, max(0.2, w.mem_item_s / w.gpu_item_s)) if w.gpu_item_s > 0 else 0.9


def smoothmax(a: float, b: float, p: float = SMOOTHMAX_P) -> float:
    """A smooth max(a, b) (``p``-norm): latency bends onto the memory floor instead of meeting it at
    a kink."""
    return (a ** p + b ** p) ** (1.0 / p)


#: Share of the base power that is DRAM and memory-controller background at the top EMC rate
#: (it scales with the rate). An assumption, not a fit: see the module docstring.
EMC_STATIC_SHARE = 0.12
#: The memory-bound reference workload, and how it is derived from ResNet-18.
MEMBOUND = "membound"
MEMBOUND_MEM_OVER_GPU = 4.0


@dataclass(frozen=True)
class PowerParams:
    """One board's power-model parameters (W, relative voltages, exponents; see the module docstring),
    fitted per board and shared by all its workloads."""

    base_w: float
    cpu_dyn_w: float
    cpu_leak_w: float
    cpu_v_min: float
    cpu_knee: float
    cpu_v_exp: float
    gpu_dyn_w: float
    gpu_leak_w: float
    gpu_idle: float
    gpu_v_min: float
    gpu_knee: float
    gpu_v_exp: float
    mem_w: float
    cpu_exp: float  # how CPU-side time scales with CPU clock (memory-bound code < 1)
    dvfs_overhead: float  # extra power of governor-driven clocks: DVFS raises voltage ahead of frequency
    dvfs_cpu_max_share: float  # default governors' residency at the top CPU step (Dutt 2023 profiling)
    dvfs_gpu_max_share: float  # ... and at the top GPU step
    usable_mem_gib: float  # memory left for a model after OS and CUDA context
    contention: float = 0.45  # GPU serialisation between concurrent instances (0: perfect overlap, 1: none)


@dataclass(frozen=True)
class WorkloadParams:
    """One workload's latency parameters on one board (s per batch or per item) and its memory
    (weights and activations per item, GiB)."""

    io_batch_s: float
    cpu_batch_s: float
    cpu_item_s: float
    gpu_batch_s: float
    gpu_item_s: float
    mem_item_s: float
    weights_gib: float
    act_item_gib: float


@dataclass(frozen=True)
class Point:
    """One steady-state operating point: per-batch time and average power."""

    t_cpu_s: float
    t_gpu_s: float
    power_w: float
    cpu_power_w: float
    gpu_power_w: float
    mem_power_w: float
    gpu_util: float

    @property
    def batch_s(self) -> float:
        return self.t_cpu_s + self.t_gpu_s


class OutOfMemory(Infeasible):
    """The batch (or the number of concurrent instances) does not fit in memory."""

    def __init__(self, message: str) -> None:
        super().__init__(message, memory=True)


class DeviceModel:
    """Power/latency of one board profile running one of its calibrated workloads."""

    def __init__(self, profile: BoardProfile, power: PowerParams, workloads: dict[str, WorkloadParams],
                 source: str) -> None:
        self.profile = profile
        self.power = power
        self.workloads = workloads
        self.source = source  # "calibrated" or "extrapolated from <profile>"

    @property
    def extrapolated(self) -> bool:
        """Whether the model was extrapolated by spec ratios rather than fitted to measurements."""
        return "extrapolated" in self.source

    def workload(self, name: str) -> WorkloadParams:
        try:
            return self.workloads[name]
        except KeyError:
            raise EdgetuneError(f"no simulated model of workload {name!r}; "
                                f"simulated workloads: {', '.join(sorted(self.workloads))}") from None

    def workload_knobs(self, name: str) -> list[Knob]:
        """Batch sizes and concurrency levels a simulated workload accepts (whether they fit is checked per run)."""
        self.workload(name)
        return [Knob(BATCH_SIZE, (1, 2, 4, 8, 16, 32, 64, 128), "inferences"),
                Knob(CONCURRENCY, tuple(range(1, 9)), "instances")]

    # --- power ---------------------------------------------------------------------
    def cpu_power(self, fc: float) -> float:
        p, prof = self.power, self.profile
        v = volts(fc, prof.cpu_khz[0], prof.cpu_khz[-1], p.cpu_v_min, p.cpu_knee, p.cpu_v_exp)
        return p.cpu_leak_w * v + p.cpu_dyn_w * v * v * fc / prof.cpu_khz[-1]

    def gpu_power(self, fg: float, util: float) -> float:
        p, prof = self.power, self.profile
        v = volts(fg, prof.gpu_hz[0], prof.gpu_hz[-1], p.gpu_v_min, p.gpu_knee, p.gpu_v_exp)
        return p.gpu_leak_w * v + p.gpu_dyn_w * v * v * fg / prof.gpu_hz[-1] * (p.gpu_idle + (1 - p.gpu_idle) * util)

    def idle_power(self) -> float:
        """Board power with nothing running, clocks at their floor (the idle baseline)."""
        prof = self.profile
        return self.power.base_w + 0.15 * self.cpu_power(prof.cpu_khz[0]) + self.gpu_power(prof.gpu_hz[0], 0.0) * 0.3

    def emc_scale(self, fe: float | None) -> float:
        """How much slower memory-bound work runs at EMC rate ``fe`` than at the top rate (1: top or not set)."""
        table = self.profile.emc_hz
        if fe is None or not table:
            return 1.0
        return table[-1] / fe

    def emc_power(self, fe: float | None) -> float:
        """Change of DRAM/controller background power at EMC rate ``fe`` against the top rate (<= 0)."""
        return EMC_STATIC_SHARE * self.power.base_w * (1.0 / self.emc_scale(fe) - 1.0)

    # --- latency -------------------------------------------------------------------
    def times(self, w: WorkloadParams, fc: float, fg: float, batch: int,
              fe: float | None = None) -> tuple[float, float]:
        prof, p = self.profile, self.power
        t_cpu = (w.cpu_batch_s + batch * w.cpu_item_s) * (prof.cpu_khz[-1] / fc) ** p.cpu_exp + w.io_batch_s
        gscale, escale = prof.gpu_hz[-1] / fg, self.emc_scale(fe)
        item = w.gpu_item_s * gscale * (1.0 + memory_share(w) * (escale - 1.0))
        t_gpu = w.gpu_batch_s * gscale + batch * smoothmax(item, w.mem_item_s * escale)
        return t_cpu, t_gpu

    def memory_gib(self, w: WorkloadParams, batch: int, instances: int = 1) -> float:
        return instances * (w.weights_gib + batch * w.act_item_gib)

    def check_memory(self, workload: str, batch: int, instances: int = 1) -> None:
        need = self.memory_gib(self.workload(workload), batch, instances)
        if need > self.power.usable_mem_gib:
            raise OutOfMemory(f"{workload} batch {batch} x{instances} needs {need:.2f} GiB; "
                              f"{self.profile.name} has {self.power.usable_mem_gib:.2f} GiB for models")

    def concurrency_gain(self, instances: int) -> float:
        """Aggregate throughput of N concurrent instances over one (Subedi et al.:
        1.3-1.9x on a Nano, 1.7-2.7x on a TX2 with PyTorch)."""
        return instances / (1.0 + (instances - 1) * self.power.contention)

    def point(self, workload: str, fc: float, fg: float, batch: int, instances: int = 1,
              fe: float | None = None) -> Point:
        """Steady state of ``instances`` copies each running batches of ``batch`` (EMC at ``fe``; None: top).

        With several instances the batch time is that of each instance (they
        share the GPU), so aggregate throughput is instances / batch time.
        """
        w = self.workload(workload)
        t_cpu, t_gpu = self.times(w, fc, fg, batch, fe)
        _, t_gpu_top = self.times(w, self.profile.cpu_khz[-1], self.profile.gpu_hz[-1], batch)
        u = t_gpu / (t_cpu + t_gpu)
        activity = t_gpu_top / (t_cpu + t_gpu)
        pc = self.cpu_power(fc)
        if instances > 1:
            gain = self.concurrency_gain(instances)
            stretch = instances / gain
            t_cpu, t_gpu = t_cpu * stretch, t_gpu * stretch
            u = min(0.98, u * gain)
            activity = min(1.0, activity * gain)
            pc *= min(instances, self.profile.ncpus)
        pg = self.gpu_power(fg, u)
        pm = self.power.mem_w * activity + self.emc_power(fe)
        return Point(t_cpu, t_gpu, self.power.base_w + pc + pg + pm, pc, pg, pm, u)

    def max_concurrency(self, workload: str, batch: int) -> int:
        w = self.workload(workload)
        return max(0, int(self.power.usable_mem_gib // (w.weights_gib + batch * w.act_item_gib)))


# --- calibration table -------------------------------------------------------------

def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls) if f.default is MISSING}
    missing = required - set(data)
    if missing:
        raise EdgetuneError(f"calibration entry lacks {sorted(missing)}")
    return cls(**{k: float(v) for k, v in data.items() if k in names})


@lru_cache(maxsize=1)
def calibration_table() -> dict[str, Any]:
    """The committed ``calibration.json``, read once per process."""
    # Beside this module (package data); importlib.resources.files() is Python 3.9+.
    text = Path(__file__).with_name("calibration.json").read_text()
    return json.loads(text)


def model_from_table(table: dict[str, Any], profile_name: str) -> DeviceModel:
    """The device model of a profile: its own entry, or the entry of the profile it
    shares its SoC and clocks with (``model_of``: the Nano 2GB runs the Nano's), with
    the memory of its own module."""
    profile = get_profile(profile_name)
    entry = table["boards"].get(profile.name)
    source = entry.get("source", "calibrated") if entry else ""
    if entry is None and profile.model_of:
        entry = table["boards"].get(profile.model_of)
        if entry is not None:
            source = (f"{entry.get('source', 'calibrated')}: the {profile.model_of} model (same SoC and clock "
                      f"tables), with the memory of the {profile.title}")
    if entry is None:
        raise EdgetuneError(f"no simulator model for {profile.name}")
    power = _from_dict(PowerParams, entry["power"])
    if profile.usable_mem_gib is not None:
        power = replace(power, usable_mem_gib=profile.usable_mem_gib)
    workloads = {name: _from_dict(WorkloadParams, wp) for name, wp in entry["workloads"].items()}
    if MEMBOUND not in workloads and "resnet18" in workloads:
        r18 = workloads["resnet18"]
        workloads[MEMBOUND] = replace(r18, mem_item_s=MEMBOUND_MEM_OVER_GPU * r18.gpu_item_s)
    return DeviceModel(profile, power, workloads, source)


def model_label(board: object) -> dict[str, Any]:
    """What a result's JSON says about a simulated board's device model: its source
    and whether it was extrapolated (no published measurements of that board); {}
    for a board without one (a real board, a replayed recording)."""
    model = getattr(board, "model", None)
    if not isinstance(model, DeviceModel):
        return {}
    return {"model_source": model.source, "extrapolated": model.extrapolated}


def device_model(profile_name: str) -> DeviceModel:
    """The device model of a board profile, from the committed calibration table."""
    return model_from_table(calibration_table(), profile_name)

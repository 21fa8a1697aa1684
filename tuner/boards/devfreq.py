"""Jetson GPU frequency through devfreq, found by device-tree node name.

The devfreq node moved between boards and JetPack releases (DESIGN §4), so
the primary discovery walks ``/sys/class/devfreq/*`` and picks the node whose
``device/of_node/name`` is a Tegra GPU, or whose own name is a GPU clock domain
that has no ``of_node``: Jetson AGX Thor's GPU (gb10b, on nvidia.ko) shows its GPC
clock as ``/sys/class/devfreq/gpu-gpc-0`` beside ``gpu-nvd-0`` (the NVD domain, not
the one to tune) and ``bwmgr`` (EMC), none with an ``of_node`` (jetson-stats issue
#885). The known paths are a fallback for kernels that expose neither.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tuner.errors import ConfigError
from tuner.sysfs import Sysfs, Write, plan_min_max

GPU_OF_NAMES = ("gp10b", "gv11b", "ga10b", "gb10b", "gpu")
#: devfreq node names of GPU clock domains without an of_node (prefixes): Thor's GPC domain.
GPU_DEVFREQ_NAMES = ("gpu-gpc-",)

KNOWN_GPU_PATHS = (
    "/sys/devices/gpu.0/devfreq/57000000.gpu",  # Nano (gm20b)
    "/sys/devices/17000000.gp10b/devfreq/17000000.gp10b",  # TX2
    "/sys/devices/17000000.gv11b/devfreq/17000000.gv11b",  # Xavier, JetPack 4
    "/sys/devices/platform/17000000.gv11b/devfreq/17000000.gv11b",  # Xavier, JetPack 5
    "/sys/devices/17000000.ga10b/devfreq/17000000.ga10b",  # Orin, JetPack 5
    "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu",  # Orin, JetPack 6
    "/sys/devices/platform/17000000.gpu/devfreq_dev",  # Orin, JetPack 7 (the *_KNEXT nvpmodel path)
    "/sys/class/devfreq/17000000.gpu",  # Orin, JetPack 6 and 7, by its class name
    "/sys/class/devfreq/gpu-gpc-0",  # AGX Thor (gb10b), JetPack 7
)


@dataclass(frozen=True)
class GpuDevfreq:
    """The GPU's devfreq node: its device path, frequency table (Hz, ascending) and governors."""

    path: str
    frequencies_hz: tuple[int, ...]
    governors: tuple[str, ...]

    def file(self, leaf: str) -> str:
        return f"{self.path}/{leaf}"


def find_gpu(fs: Sysfs) -> GpuDevfreq | None:
    """The GPU's devfreq node, or None: nodes named as a GPU (device tree or clock domain) first, then
    the known paths; the first with a frequency table wins."""
    candidates: list[str] = []
    for link in fs.glob("/sys/class/devfreq/*"):
        name = fs.try_read(fs.rel(link) + "/device/of_node/name")
        if (name and name.split()[0] in GPU_OF_NAMES) or link.name.startswith(GPU_DEVFREQ_NAMES):
            real = os.path.realpath(link)
            try:
                candidates.append(fs.rel(real))  # canonical /sys/devices/... path
            except ValueError:  # a link that leaves the root: keep the class path
                candidates.append(fs.rel(link))
    for p in KNOWN_GPU_PATHS:
        if fs.exists(p + "/available_frequencies"):
            real = os.path.realpath(fs.path(p))
            try:
                candidates.append(fs.rel(real))
            except ValueError:
                candidates.append(p)
    for path in candidates:
        freqs = sorted({int(x) for x in (fs.try_read(path + "/available_frequencies") or "").split() if x.isdigit()})
        if freqs:
            govs = tuple((fs.try_read(path + "/available_governors") or "").split())
            return GpuDevfreq(path, tuple(freqs), govs)
    return None


class GpuControl:
    """Reads of the GPU's devfreq node and the writes that set it; a pin is min = max (Hz), ordered by
    :func:`~tuner.sysfs.plan_min_max` so the window never inverts."""

    def __init__(self, fs: Sysfs, gpu: GpuDevfreq) -> None:
        self.fs = fs
        self.gpu = gpu

    def governor(self) -> str:
        return self.fs.read(self.gpu.file("governor"))

    def cur_freq(self) -> int:
        return self.fs.read_int(self.gpu.file("cur_freq"))

    def load_permille(self) -> int | None:
        text = self.fs.try_read(self.gpu.file("device/load"))
        return int(text) if text and text.isdigit() else None

    def knob_files(self) -> list[str]:
        return [self.gpu.file(f) for f in ("governor", "min_freq", "max_freq")]

    def plan_governor(self, governor: str) -> list[Write]:
        return [(self.gpu.file("governor"), governor)]

    def plan_release(self) -> list[Write]:
        """Open the [min, max] window to the full table, so the governor has every step again."""
        f = self.gpu.frequencies_hz
        return plan_min_max(self.fs, self.gpu.file("min_freq"), self.gpu.file("max_freq"), f[0], f[-1])

    def plan_pin(self, freq_hz: int) -> list[Write]:
        if freq_hz not in self.gpu.frequencies_hz:
            raise ConfigError(f"gpu_freq_hz={freq_hz} is not one of the GPU's available frequencies")
        return plan_min_max(self.fs, self.gpu.file("min_freq"), self.gpu.file("max_freq"), freq_hz, freq_hz)

"""Intel/AMD RAPL energy counters (powercap) and hwmon power sensors.

RAPL ``energy_uj`` counters wrap at ``max_energy_range_uj``; the source
unwraps them into a monotonic counter so the sampler's difference is right
across a wrap (at 15 W a 32-bit-ish range wraps every few hours). Only
top-level zones (packages, psys) and DRAM are channels: core/uncore zones are
inside their package and would be counted twice.
"""

from __future__ import annotations

import re

from tuner.boards.base import ENERGY, POWER, Channel
from tuner.sysfs import AttrReader, Sysfs

POWERCAP_GLOB = "/sys/class/powercap/intel-rapl:*"
HWMON_GLOB = "/sys/class/hwmon/hwmon*"


class _Counter:
    def __init__(self, reader: AttrReader, path: str, max_range_uj: int | None) -> None:
        self.reader = reader
        self.path = path
        self.max_range = max_range_uj
        self.last: int | None = None
        self.offset = 0

    def read_mj(self) -> float:
        raw = self.reader.read_number(self.path)
        if self.last is not None and raw < self.last:
            # wrapped: the counter restarted from 0 after max_range
            self.offset += self.max_range if self.max_range else self.last
        self.last = raw
        return (raw + self.offset) / 1000.0  # uJ -> mJ


class LinuxPowerSource:
    """RAPL zones as energy channels and hwmon ``power*_input`` (µW) as power channels."""

    def __init__(self, fs: Sysfs) -> None:
        self.fs = fs
        self._reader = AttrReader()
        self._counters: dict[str, _Counter] = {}
        self._power: dict[str, str] = {}
        channels: list[Channel] = []
        for zone in fs.glob(POWERCAP_GLOB):
            parts = zone.name.split(":")
            base = fs.rel(zone)
            name = fs.try_read(base + "/name") or zone.name
            if len(parts) > 3 or not fs.exists(base + "/energy_uj"):
                continue
            if len(parts) == 3 and name != "dram":
                continue  # core / uncore are inside the package
            role = "total" if name == "psys" else "ddr" if name == "dram" else "cpu"
            label = f"rapl:{name}"
            if label in self._counters:
                label = f"{label}:{zone.name}"
            rng = fs.try_read(base + "/max_energy_range_uj")
            self._counters[label] = _Counter(self._reader, str(fs.path(base + "/energy_uj")),
                                             int(rng) if rng and rng.isdigit() else None)
            channels.append(Channel(label, role, ENERGY))
        for hw in fs.glob(HWMON_GLOB):
            base = fs.rel(hw)
            chip = fs.try_read(base + "/name") or hw.name
            for f in fs.glob(base + "/power*_input"):
                m = re.fullmatch(r"power(\d+)_input", f.name)
                if not m:
                    continue
                label = fs.try_read(f"{base}/power{m.group(1)}_label") or f"power{m.group(1)}"
                key = f"hwmon:{chip}:{label}"
                self._power[key] = str(f)
                channels.append(Channel(key, "other", POWER))
        self.channels = tuple(channels)
        names = {c.name: c for c in channels}
        psys = [n for n, c in names.items() if c.role == "total"]
        rapl = [n for n in self._counters if n not in psys]
        # Board total: psys where the platform has it, else packages + DRAM.
        # hwmon sensors are shown but not summed: they may overlap RAPL.
        self.total: tuple[str, ...] = tuple(psys[:1]) if psys else tuple(rapl)

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, counter in self._counters.items():
            try:
                out[name] = counter.read_mj()
            except (OSError, ValueError, IndexError):
                continue
        for name, path in self._power.items():
            try:
                out[name] = self._reader.read_number(path) / 1000.0  # uW -> mW
            except (OSError, ValueError, IndexError):
                continue
        return out

"""Thermal zones: ``/sys/devices/virtual/thermal/thermal_zone<N>/{type,temp}`` (m°C)."""

from __future__ import annotations

from tuner.sysfs import Sysfs

THERMAL_GLOB = "/sys/devices/virtual/thermal/thermal_zone*"

#: Zones that are not sensors: on Nano, TX1 and TX2 ``PMIC-Die`` reads a
#: constant 100 °C. Shown by ``probe``, never used for a temperature limit.
PLACEHOLDER_ZONES = frozenset({"PMIC-Die"})


def hottest(temps: dict[str, float]) -> float | None:
    """The highest real zone temperature (°C), or None when no zone reads."""
    values = [t for name, t in temps.items() if name not in PLACEHOLDER_ZONES and t == t]
    return max(values) if values else None


class Thermal:
    """The board's thermal zones (name, ``temp`` file in m°C), found once; read in °C."""

    def __init__(self, fs: Sysfs) -> None:
        self.fs = fs
        self.zones: list[tuple[str, str]] = []
        for zone in fs.glob(THERMAL_GLOB):
            base = fs.rel(zone)
            name = fs.try_read(base + "/type")
            if name and fs.exists(base + "/temp"):
                self.zones.append((name, base + "/temp"))

    def read(self) -> dict[str, float]:
        """°C per zone; zones that fail to read (some Jetson zones return
        EINVAL when their sensor is off) are left out."""
        out: dict[str, float] = {}
        for name, path in self.zones:
            text = self.fs.try_read(path)
            if text is None:
                continue
            try:
                out[name] = int(text) / 1000.0
            except ValueError:
                continue
        return out

"""INA3221 power rails in both Jetson layouts.

JetPack 4 (iio driver ``ina3221x``) exposes power directly
(``in_power<i>_input``, mW). JetPack 5+ (mainline hwmon driver ``ina3221``)
exposes bus voltage (mV) and current (mA) per channel; power is their
product. ``in7``/``curr4`` are the shunt sums and labels containing ``NC`` are
unconnected channels: neither is a rail.

A monitor is one i2c device directory that boards show through several views:
``/sys/bus/i2c/drivers/<driver>/<bus>-<addr>``, ``/sys/bus/i2c/devices/<bus>-<addr>``
(its ``name`` file says ``ina3221x`` or ``ina3221``), ``/sys/bus/iio/devices`` and
``/sys/class/hwmon``. Which of them a kernel offers, and which a container or
chroot bind-mounts, varies, so discovery takes every view and keeps each monitor
once (by its real path), named through the first view that reached it: the
driver path wherever there is one, so rail file paths stay stable.

:func:`discover_rails` returns every power rail a Jetson has: the INA3221 rails,
then the carrier-board input monitors on the INA238 driver (Jetson AGX Thor;
:mod:`tuner.boards.ina238`), whose VIN rail is the board total. A board
without any monitor (Jetson Nano 2GB) has none: energy cannot be measured there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tuner.boards.base import POWER, Channel
from tuner.sysfs import AttrReader, Sysfs

IIO_GLOB = "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"
HWMON_GLOB = "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
INA_NAMES = ("ina3221x", "ina3221")  # the i2c client's name; also the iio / hwmon name

# (layout, glob of a monitor's iio or hwmon directory, how many levels above it the
# `name` file to check is; None where the driver in the path already says it), in
# order of preference.
_VIEWS = (
    ("iio", IIO_GLOB, None),
    ("hwmon", HWMON_GLOB, None),
    ("iio", "/sys/bus/i2c/devices/*/iio:device*", 1),
    ("hwmon", "/sys/bus/i2c/devices/*/hwmon/hwmon*", 2),
    ("iio", "/sys/bus/iio/devices/iio:device*", 0),
    ("hwmon", "/sys/class/hwmon/hwmon*", 0),
)

_ROLES = {
    # VIN: the carrier-board input of a Jetson AGX Thor (INA238), module and carrier together
    "total": ("POM_5V_IN", "VDD_IN", "VIN"),
    "cpu_gpu_cv": ("VDD_CPU_GPU_CV",),
    "cpu": ("POM_5V_CPU", "VDD_CPU", "VDD_SYS_CPU", "CPU", "VDD_CPU_CV", "VDD_CPU_SOC_MSS"),
    "gpu": ("POM_5V_GPU", "VDD_GPU", "VDD_SYS_GPU", "GPU", "VDD_GPU_SOC"),
    "soc": ("VDD_SOC", "VDD_SYS_SOC", "SOC"),
    "ddr": ("VDD_SYS_DDR", "VDDRQ", "VDDQ_VDD2_1V8AO", "VDD_DDR"),
}


def rail_role(name: str) -> str:
    """Role of a rail by its label. VDD_GPU_SOC (AGX Orin) counts as gpu and
    VDD_CPU_CV (AGX Orin) and VDD_CPU_SOC_MSS (AGX Thor: CPU, SoC and memory
    subsystem) as cpu: the dominant consumer, as jtop shows them."""
    upper = name.upper()
    for role, names in _ROLES.items():
        if upper in names:
            return role
    return "other"


@dataclass(frozen=True)
class Rail:
    """One power rail: its label, role, and the files it is read from (iio: power in mW; hwmon: bus
    voltage in mV and current in mA)."""

    name: str
    role: str
    layout: str  # "iio" or "hwmon"
    power_file: str | None = None  # iio: mW
    voltage_file: str | None = None  # hwmon: mV
    current_file: str | None = None  # hwmon: mA
    chip: str = "ina3221"  # the monitor's driver name: ina3221(x), or ina238 for a carrier input


def discover_rails(fs: Sysfs) -> list[Rail]:
    """Every power rail of the board: the INA3221 rails, then the INA238 input monitors."""
    from tuner.boards.ina238 import discover_ina238

    rails: list[Rail] = []
    for layout, base in _monitors(fs):
        rails.extend(_iio_rails(fs, base) if layout == "iio" else _hwmon_rails(fs, base))
    return rails + discover_ina238(fs)


def _monitors(fs: Sysfs) -> list[tuple[str, str]]:
    """(layout, device path) of every INA3221 monitor, each once whatever views reach it."""
    return [(layout, path) for layout, path, _chip in walk_views(fs, _VIEWS, INA_NAMES)]


def walk_views(fs: Sysfs, views: Iterable[tuple[str, str, int | None]],
               names: Iterable[str]) -> list[tuple[str, str, str]]:
    """(tag, device path, chip) of every power monitor the views reach whose chip is in ``names``,
    each once (by its real path), named through the first view that reached it.

    ``views`` are (tag, glob of the monitor's iio or hwmon directory, how many levels above it
    the ``name`` file to check is; None where the ``drivers/<chip>`` in the path says it).
    """
    wanted = set(names)
    seen: set[Path] = set()
    found: list[tuple[str, str, str]] = []
    for tag, pattern, up in views:
        for mon in fs.glob(pattern):
            if up is None:
                parts = fs.rel(mon).split("/")
                chip = parts[parts.index("drivers") + 1] if "drivers" in parts else None
            else:
                owner = mon
                for _ in range(up):
                    owner = owner.parent  # lexical: the view's own path to the i2c device
                chip = fs.try_read(fs.rel(owner / "name"))
            if chip not in wanted:
                continue
            try:
                real = mon.resolve()
            except (OSError, RuntimeError):  # a link loop: not a monitor we can read
                continue
            if real not in seen:
                seen.add(real)
                found.append((tag, fs.rel(mon), str(chip)))
    return found


def _iio_rails(fs: Sysfs, base: str) -> list[Rail]:
    rails = []
    for name_file in fs.glob(base + "/rail_name_*"):
        idx = name_file.name.rsplit("_", 1)[1]
        name = fs.try_read(fs.rel(name_file))
        if not name or "NC" in name.split("_") or name == "NC":
            continue
        rails.append(Rail(name, rail_role(name), "iio", power_file=f"{base}/in_power{idx}_input"))
    return rails


def _hwmon_rails(fs: Sysfs, base: str) -> list[Rail]:
    rails = []
    for label_file in fs.glob(base + "/in*_label"):
        m = re.fullmatch(r"in(\d+)_label", label_file.name)
        if not m:
            continue
        idx = int(m.group(1))
        name = fs.try_read(fs.rel(label_file)) or ""
        if idx > 3 or not name or name == "NC" or "NC" in name.split("_") or "sum" in name.lower():
            continue
        if not fs.exists(f"{base}/curr{idx}_input"):
            continue
        rails.append(Rail(name, rail_role(name), "hwmon", voltage_file=f"{base}/in{idx}_input",
                          current_file=f"{base}/curr{idx}_input"))
    return rails


def _update_period(fs: Sysfs, rails: list[Rail]) -> float | None:
    """Seconds between new readings, from the hwmon driver's ``update_interval`` (ms: channels x
    samples averaged x conversion times; 6.6 ms with the driver's defaults, seconds with heavy
    averaging): the slowest monitor's. None where no monitor says (iio, emulated trees)."""
    periods = []
    for base in sorted({str(Path(r.voltage_file).parent) for r in rails if r.voltage_file}):
        text = fs.try_read(f"{base}/update_interval")
        try:
            ms = float(text) if text else 0.0
        except ValueError:
            ms = 0.0
        if ms > 0:
            periods.append(ms / 1000.0)
    return max(periods) if periods else None


class Ina3221Source:
    """PowerSource over the board's rails (INA3221, and a Thor's INA238 input). The
    board total is the input rail when there is one (it already includes every
    other rail: VDD_IN of the module, or a Thor's carrier-board VIN); boards without
    one (AGX Xavier, AGX Orin) sum their rails, which misses carrier power.

    Every hwmon rail, the INA238's included, is read as bus voltage times current
    (mV x mA); the INA238's ``power1_input`` is the chip's own product of the same
    two registers, so both agree to the current's 1 mA resolution."""

    def __init__(self, fs: Sysfs, rails: list[Rail]) -> None:
        self.fs = fs
        self.rails = rails
        self.channels = tuple(Channel(r.name, r.role, POWER) for r in rails)
        totals = [r.name for r in rails if r.role == "total"]
        self.total: tuple[str, ...] = tuple(totals[:1]) if totals else tuple(r.name for r in rails)
        self.update_period_s = _update_period(fs, rails)
        # Pre-resolve paths once and keep descriptors: this runs at 10 Hz for hours.
        self._reader = AttrReader()
        self._files = [
            (r.name, str(fs.path(r.power_file)) if r.power_file else None,
             str(fs.path(r.voltage_file)) if r.voltage_file else None,
             str(fs.path(r.current_file)) if r.current_file else None)
            for r in rails
        ]

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        read_number = self._reader.read_number
        for rail_name, power, volt, curr in self._files:
            try:
                if power:
                    out[rail_name] = float(read_number(power))
                else:  # hwmon: mV * mA -> mW
                    out[rail_name] = read_number(volt) * read_number(curr) / 1000.0  # type: ignore[arg-type]
            except (OSError, ValueError, IndexError):
                continue  # transient: the sampler counts missing channels
        return out

"""Carrier-board input power on an INA238 (Jetson AGX Thor), through hwmon.

The Jetson AGX Thor module reports its own rails on an INA3221 (VDD_GPU,
VDD_CPU_SOC_MSS, VIN_SYS_5V0), and the reference carrier adds a TI INA238 on the
board's input, ahead of module and carrier: NVIDIA's power management limits
VIN power on it, and jetson-stats reports it as the total system power
(rbonghi/jetson_stats PR #900, "add INA238 VIN support"). The mainline hwmon
driver (Documentation/hwmon/ina238.rst, which also serves the INA237 and
INA228) exposes one channel:

- ``in1_input`` bus voltage (mV), ``in0_input`` shunt voltage (mV),
- ``curr1_input`` current (mA),
- ``power1_input`` power (µW),
- ``temp1_input`` die temperature (m°C),

and no per-channel label; the hwmon device's ``label`` (from the device tree)
names the rail where the board sets one. An unlabelled monitor is the board
input, VIN, as on Thor (further unlabelled ones are named by their i2c address
and are not the total). The rail is read as ``in1_input`` x ``curr1_input``, the
same product the chip puts in ``power1_input``.

As for the INA3221 (:mod:`tuner.boards.ina3221`), a monitor is one i2c device
directory reached through several views: ``/sys/bus/i2c/drivers/ina238/<bus>-<addr>``,
``/sys/bus/i2c/devices/<bus>-<addr>`` (``name`` = ``ina238``) and
``/sys/class/hwmon/hwmon<N>`` (``name`` = ``ina238``); each is found once.
"""

from __future__ import annotations

from pathlib import Path

from tuner.boards.ina3221 import Rail, rail_role, walk_views
from tuner.sysfs import Sysfs

#: Chips of the mainline ina238 hwmon driver; the i2c client's and the hwmon device's ``name``.
INA238_NAMES = ("ina238", "ina237", "ina228")
#: The name of an unlabelled input monitor: the carrier-board input.
INPUT_LABEL = "VIN"

# (tag, glob of a monitor's hwmon directory, how many levels above it the `name` file to
# check is; None where the driver in the path already says it), in order of preference.
_VIEWS = tuple(("hwmon", f"/sys/bus/i2c/drivers/{chip}/*/hwmon/hwmon*", None) for chip in INA238_NAMES) + (
    ("hwmon", "/sys/bus/i2c/devices/*/hwmon/hwmon*", 2),
    ("hwmon", "/sys/class/hwmon/hwmon*", 0),
)


def discover_ina238(fs: Sysfs) -> list[Rail]:
    """The rail of every INA238-family monitor, each once whatever views reach it."""
    rails: list[Rail] = []
    for _tag, base, chip in walk_views(fs, _VIEWS, INA238_NAMES):
        rail = _rail(fs, base, chip, taken=[r.name for r in rails])
        if rail is not None:
            rails.append(rail)
    return rails


def _rail(fs: Sysfs, base: str, chip: str, taken: list[str]) -> Rail | None:
    if not (fs.exists(f"{base}/in1_input") and fs.exists(f"{base}/curr1_input")):
        return None
    label = fs.try_read(f"{base}/label") or fs.try_read(f"{base}/in1_label")
    if not label:
        label = INPUT_LABEL if INPUT_LABEL not in taken else f"{chip.upper()}_{_address(fs, base)}"
    return Rail(label, rail_role(label), "hwmon", voltage_file=f"{base}/in1_input",
                current_file=f"{base}/curr1_input", chip=chip)


def _address(fs: Sysfs, base: str) -> str:
    """``1-0044`` of a monitor's hwmon directory, through its ``device`` link or its path."""
    try:
        return fs.path(base + "/device").resolve().name
    except (OSError, RuntimeError):
        return Path(base).parent.parent.name

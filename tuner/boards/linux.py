"""Generic Linux board: cpufreq + online cores, RAPL/hwmon energy, thermal zones.

For developing and testing edgetune on a laptop or server: the same search
and measurement flows run, with CPU frequency as the only clock knob.
"""

from __future__ import annotations

import platform

from tuner.boards.base import BoardInfo
from tuner.boards.rapl import LinuxPowerSource
from tuner.boards.sysfs_board import SysfsBoard
from tuner.sysfs import Sysfs


class LinuxBoard(SysfsBoard):
    """Any Linux machine: cpufreq and online cores as knobs, RAPL/hwmon energy where present; for
    developing and testing edgetune away from a Jetson."""

    def __init__(self, fs: Sysfs) -> None:
        model = fs.try_read("/sys/devices/virtual/dmi/id/product_name") or platform.machine()
        source = LinuxPowerSource(fs)
        info = BoardInfo("linux", None, model, None, False, {"root": str(fs.root)})
        super().__init__(fs, info, power=source if source.channels else None)

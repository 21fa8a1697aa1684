"""NVIDIA Jetson boards through their real sysfs layouts (DESIGN §4).

Every generation from the Nano (JetPack 4) to the AGX Thor (JetPack 7) is found
by what its kernel shows, not by a list of models: the GPU devfreq node by
device-tree name or clock-domain name (:mod:`tuner.boards.devfreq`), the power
rails on INA3221 and INA238 monitors (:mod:`tuner.boards.ina3221`,
:mod:`tuner.boards.ina238`), the power modes from nvpmodel's files. A board
without any power monitor (Jetson Nano 2GB) is still a board: it tunes time, and
``probe`` says why it cannot tune energy.
"""

from __future__ import annotations

import json
from typing import Any

from tuner.boards.base import BoardInfo
from tuner.boards.devfreq import GpuControl, find_gpu
from tuner.boards.emc import EmcControl
from tuner.boards.identity import read_identity
from tuner.boards.ina3221 import Ina3221Source, discover_rails
from tuner.boards.nvpmodel import PowerModeReader
from tuner.boards.sysfs_board import SysfsBoard
from tuner.errors import BoardNotFound
from tuner.sysfs import EMULATION_MARKER, Sysfs  # noqa: F401 (EMULATION_MARKER: re-exported)


#: What ``probe --json`` says (``power_note``) on a board without a power monitor.
NO_MONITOR_NOTE = ("no power monitor (INA3221 or INA238) found: this board cannot measure energy "
                   "(the Jetson Nano 2GB has none); tune with --objective time")


class JetsonBoard(SysfsBoard):
    """A Jetson, recognised by its L4T release or ``nvidia,tegra`` device tree (BoardNotFound
    otherwise); a tree made by ``sim create`` (its marker file) is labelled simulated."""

    def __init__(self, fs: Sysfs) -> None:
        ident = read_identity(fs)
        if not ident.is_jetson:
            raise BoardNotFound(
                f"no Jetson found under {fs.root} (no /etc/nv_tegra_release, no nvidia,tegra device tree); "
                "use --board sim:<profile> for a simulated board"
            )
        marker = fs.root / EMULATION_MARKER
        extra = {"jetpack": ident.jetpack, "root": str(fs.root)}
        simulated = False
        if marker.exists():
            simulated = True
            try:
                extra["emulated"] = json.loads(marker.read_text())
            except (OSError, json.JSONDecodeError):
                extra["emulated"] = {}
        info = BoardInfo("jetson", ident.profile, ident.model, ident.l4t, simulated, extra)
        gpu = find_gpu(fs)
        rails = discover_rails(fs)
        super().__init__(
            fs, info,
            gpu=GpuControl(fs, gpu) if gpu else None,
            emc=EmcControl(fs) if EmcControl.present(fs) else None,
            power=Ina3221Source(fs, rails) if rails else None,
            power_modes=PowerModeReader(fs),
        )

    def describe(self) -> dict[str, Any]:
        doc = super().describe()
        if not doc["rails"]:
            doc["power_note"] = NO_MONITOR_NOTE
        return doc

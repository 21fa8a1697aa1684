"""power_mode as a knob of a Jetson board: set through nvpmodel, journalled and restored like a clock."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tuner.boards.jetson import EMULATION_MARKER, JetsonBoard
from tuner.config import Config
from tuner.errors import HardwareError
from tuner.sysfs import NVPMODEL_MODE, Sysfs

GPU = "sys/devices/17000000.ga10b/devfreq/17000000.ga10b"


def status(root: Path) -> str:
    return (root / "var/lib/nvpmodel/status").read_text().strip()


def test_a_mode_is_a_knob_applied_first_and_restored(make_tree):
    root = make_tree("jetson-orin-nx")  # boots in mode 2 (15W)
    board = JetsonBoard(Sysfs(root))
    assert {k.name: k.values for k in board.device_knobs()}["power_mode"] == (0, 1, 2, 3)
    plan = board.plan(Config({"power_mode": 0, "gpu_freq_hz": 918000000}))
    assert plan[0] == (NVPMODEL_MODE, "0")  # the mode first: it rewrites the clock caps
    board.apply(Config({"power_mode": 0, "gpu_freq_hz": 918000000}))  # 918 MHz: above 15W's cap, allowed by MAXN
    assert status(root) == "pmode:0000" and (root / GPU / "max_freq").read_text().split()[0] == "918000000"
    journal = json.loads((root / "var/lib/edgetune/journal.json").read_text())
    assert [NVPMODEL_MODE, "2"] in journal["entries"]
    assert board.plan(Config({"power_mode": 0}))[:1] != [(NVPMODEL_MODE, "0")]  # already there: not switched again
    assert board.restore() == []
    assert status(root) == "pmode:0002"


def test_a_clock_above_the_new_modes_cap_is_clamped_as_the_firmware_does(make_tree):
    root = make_tree("jetson-orin-nx")
    board = JetsonBoard(Sysfs(root))
    board.apply(Config({"power_mode": 3, "gpu_freq_hz": 918000000}))  # 25W caps the GPU at 408 MHz
    assert status(root) == "pmode:0003"
    assert (root / GPU / "max_freq").read_text().split()[0] == "408000000"
    assert board.restore() == []


def _fake_nvpmodel(tmp_path: Path, root: Path, reboot_for: str = "") -> Path:
    """JetPack's tool as far as edgetune sees it: records the mode in the status file, except
    for mode ``reboot_for``, where it asks for a reboot (as some core-count changes do) and
    switches nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "nvpmodel"
    tool.write_text("#!/bin/sh\n[ \"$1\" = -m ] || exit 2\n"
                    f"if [ \"$2\" = '{reboot_for}' ]; then echo 'NVPM WARN: Reboot required for changing to "
                    "this power mode'; exit 0; fi\n"
                    f"printf 'pmode:%04d\\n' \"$2\" > {root}/var/lib/nvpmodel/status\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_on_a_board_the_nvpmodel_tool_sets_the_mode(make_tree, tmp_path, monkeypatch):
    root = make_tree("jetson-orin-nx")
    (root / EMULATION_MARKER).unlink()  # as on a board: the tool, not the emulation, switches modes
    monkeypatch.setenv("PATH", f"{_fake_nvpmodel(tmp_path, root)}{os.pathsep}{os.environ['PATH']}")
    board = JetsonBoard(Sysfs(root))
    board.apply(Config({"power_mode": 1}))
    assert status(root) == "pmode:0001"
    assert board.restore() == [] and status(root) == "pmode:0002"


def test_a_mode_that_wants_a_reboot_is_refused_and_nothing_stays_changed(make_tree, tmp_path, monkeypatch):
    root = make_tree("jetson-orin-nx")
    (root / EMULATION_MARKER).unlink()
    tool_dir = _fake_nvpmodel(tmp_path, root, reboot_for="0")
    monkeypatch.setenv("PATH", f"{tool_dir}{os.pathsep}{os.environ['PATH']}")
    board = JetsonBoard(Sysfs(root))
    before = (root / GPU / "max_freq").read_text()
    with pytest.raises(HardwareError, match="nvpmodel -m 0 refused: .*Reboot required"):
        board.apply(Config({"power_mode": 0, "gpu_freq_hz": 612000000}))
    assert (root / GPU / "max_freq").read_text() == before
    assert board.restore() == [] and status(root) == "pmode:0002"


def test_without_the_tool_the_mode_cannot_be_set_in_one_line(make_tree, monkeypatch):
    root = make_tree("jetson-orin-nx")
    (root / EMULATION_MARKER).unlink()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HardwareError, match="nvpmodel tool is not installed"):
        JetsonBoard(Sysfs(root)).apply(Config({"power_mode": 1}))
    assert status(root) == "pmode:0002"

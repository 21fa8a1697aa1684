"""Orin on newer releases: JetPack 6.2 with the Super power modes, and JetPack 7.

`sim create --jetpack 6.2` (Orin Nano, Orin NX): the *_super.conf mode table with
MAXN_SUPER and the higher GPU, CPU and EMC clocks in the device lists. `--jetpack 7`
(every Orin): L4T R39, the GPU devfreq node 17000000.gpu under /sys/devices/platform
without enable_3d_scaling (3D scaling is the governor), the Super tables on Orin
Nano / NX. Discovery, probe, doctor, the sampler and a search work on each.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuner.boards.devfreq import find_gpu
from tuner.boards.ina3221 import Ina3221Source, discover_rails
from tuner.boards.jetson import JetsonBoard
from tuner.boards.nvpmodel import parse_conf
from tuner.cli.main import app
from tuner.config import Config
from tuner.errors import EdgetuneError
from tuner.sim.profiles import PROFILES, nvpmodel_conf
from tuner.sim.tree import create_tree
from tuner.sysfs import Sysfs

NEW = [(name, rel.name) for name, p in PROFILES.items() for rel in p.releases]
IDS = [f"{name}-jp{jp}" for name, jp in NEW]


def probe(root: Path) -> dict:
    res = CliRunner().invoke(app, ["probe", "--root", str(root), "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout)


def set_mode(root: Path, mode_id: int) -> None:
    (root / "var/lib/nvpmodel/status").write_text(f"pmode:{mode_id:04d}\n")


def generic_rails(root: Path) -> list[str]:
    """Rail names as jetson-stats finds them: /sys/bus/i2c/devices/*/name, then hwmon labels."""
    found = []
    for dev in sorted((root / "sys/bus/i2c/devices").glob("*")):
        if (dev / "name").read_text().strip() not in ("ina3221x", "ina3221"):
            continue
        for hw in sorted(dev.glob("hwmon/hwmon*")):
            for label in sorted(hw.glob("in*_label")):
                i = re.fullmatch(r"in(\d+)_label", label.name).group(1)  # type: ignore[union-attr]
                text = label.read_text().strip()
                if text != "NC" and (hw / f"curr{i}_input").exists():
                    found.append(text)
    return found


def test_the_new_releases_are_the_ones_the_issue_names():
    assert set(NEW) == {("jetson-orin-nano", "6.2"), ("jetson-orin-nano", "7"), ("jetson-orin-nx", "6.2"),
                        ("jetson-orin-nx", "7"), ("jetson-agx-orin", "7")}


@pytest.mark.parametrize("profile, jetpack", NEW, ids=IDS)
def test_every_new_release_probes_with_its_gpu_rails_and_power_modes(make_tree, profile, jetpack):
    root = make_tree(profile, jetpack)
    doc = probe(root)
    p = PROFILES[profile].for_release(jetpack)
    assert doc["board"]["profile"] == profile and doc["board"]["emulated"]["jetpack"] == jetpack
    assert doc["gpu"] is not None and doc["gpu"]["frequencies_hz"] == list(p.gpu_hz)
    assert [r["name"] for r in doc["rails"]] == [lb for labels in p.rails for lb in labels if lb != "NC"]
    assert all(r["power_mw"] > 0 for r in doc["rails"])
    assert generic_rails(root) == [r["name"] for r in doc["rails"]]
    assert doc["power_mode"]["conf"] == f"/etc/nvpmodel/{p.nvpmodel.file}"
    conf = parse_conf((root / "etc/nvpmodel.conf").read_text())
    assert conf.problems == () and conf.default_id == p.nvpmodel.default
    # every link relative and inside the tree, as sysfs makes them
    real = root.resolve()
    for dirpath, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = Path(dirpath, entry)
            if path.is_symlink():
                assert not os.path.isabs(os.readlink(path)), path
                assert real in path.resolve().parents, path


@pytest.mark.parametrize("profile", ["jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin"])
def test_jetpack_7_on_orin_names_the_node_17000000_gpu_without_3d_scaling(make_tree, profile):
    root = make_tree(profile, "7")
    doc = probe(root)
    assert doc["board"]["l4t"] == "39.2.1" and doc["board"]["jetpack"] == "7"
    gpu = doc["gpu"]
    assert gpu["path"] == "/sys/devices/platform/17000000.gpu/devfreq/17000000.gpu"
    assert "nvhost_podgov" in gpu["governors"] and "performance" in gpu["governors"]
    dev = root / "sys/devices/platform/17000000.gpu"
    assert not (dev / "enable_3d_scaling").exists()
    assert (dev / "devfreq_dev").resolve() == (root / gpu["path"].lstrip("/")).resolve()
    assert (root / "sys/class/devfreq/17000000.gpu").resolve() == (dev / "devfreq/17000000.gpu").resolve()
    conf = (root / "etc/nvpmodel.conf").read_text()
    assert "/sys/kernel/nvpmodel_clk_cap/emc" in conf and "/sys/devices/platform/gpu.0/" in conf
    # JetPack 6 still has the switch jtop toggles
    jp6 = make_tree(profile, "6")
    assert (jp6 / "sys/devices/platform/bus@0/17000000.gpu/enable_3d_scaling").exists()


def test_jetpack_7_gpu_is_found_without_of_node_through_its_known_paths(make_tree):
    root = make_tree("jetson-orin-nx", "7")
    os.unlink(root / "sys/devices/platform/17000000.gpu/of_node")
    gpu = find_gpu(Sysfs(root))
    assert gpu is not None and gpu.path == "/sys/devices/platform/17000000.gpu/devfreq/17000000.gpu"
    os.unlink(root / "sys/class/devfreq/17000000.gpu")  # only the driver's devfreq_dev link is left
    assert find_gpu(Sysfs(root)).frequencies_hz[-1] == 1173000000


def test_orin_nano_on_jetpack_6_2_offers_the_super_mode_and_its_higher_clocks(tmp_path):
    root = tmp_path / "nano62"
    res = CliRunner().invoke(app, ["sim", "create", "--board", "jetson-orin-nano", "--jetpack", "6.2",
                                   "--root", str(root)])
    assert res.exit_code == 0, res.output
    doc = probe(root)
    pm = doc["power_mode"]
    assert [(m["id"], m["name"]) for m in pm["modes"]] == [(0, "15W"), (1, "25W"), (2, "MAXN_SUPER")]
    assert (pm["id"], pm["name"], pm["conf"]) == (1, "25W", "/etc/nvpmodel/nvpmodel_p3767_0003_super.conf")
    assert doc["gpu"]["frequencies_hz"][-1] == 1020000000  # the Super GPU cap, in the device's list
    assert doc["cpu"]["policies"][0]["frequencies_khz"][-1] == 1728000
    assert doc["emc"]["frequencies_hz"][-1] == 3199000000
    assert doc["board"]["l4t"] == "36.4.3" and "Super" in doc["board"]["model"]
    board = JetsonBoard(Sysfs(root))
    knobs = {k.name: k.values for k in board.knobs()}
    assert knobs["gpu_freq_hz"][-1] == 918000000 and knobs["cpu_freq_khz"][-1] == 1344000  # 25W's caps
    set_mode(root, 2)  # nvpmodel -m 2: MAXN_SUPER releases every cap
    knobs = {k.name: k.values for k in board.knobs()}
    assert knobs["gpu_freq_hz"][-1] == 1020000000 and knobs["cpu_freq_khz"][-1] == 1728000
    board.apply(Config({"gpu_freq_hz": 1020000000}))
    assert board.restore() == []


def test_orin_nx_on_jetpack_6_2_boots_in_40w_with_the_1173_mhz_gpu():
    profile = PROFILES["jetson-orin-nx"]
    conf = parse_conf(nvpmodel_conf(profile, "6.2"))
    assert [m.name for m in conf.modes] == ["MAXN_SUPER", "10W", "15W", "25W", "40W"] and conf.default_id == 4
    caps = {m.name: m.caps for m in conf.modes}
    assert caps["40W"].gpu_max_hz == 1173000000 and caps["MAXN_SUPER"].gpu_max_hz is None
    assert caps["15W"].cpu_max_khz == 1420800 and len(caps["15W"].cpu_online) == 4
    assert caps["10W"].emc_max_hz == 2133000000
    assert profile.for_release("6.2").gpu_hz[-1] == 1173000000 and profile.gpu_hz[-1] == 918000000
    # the base releases keep their own table
    assert [m.name for m in parse_conf(nvpmodel_conf(profile, "6")).modes] == ["MAXN", "10W", "15W", "25W"]


def test_an_unknown_release_is_one_error_naming_the_known_ones(tmp_path):
    with pytest.raises(EdgetuneError, match=r"jetson-orin-nano is emulated for JetPack 5, 6, 6.2, 7, not 6.1"):
        create_tree("jetson-orin-nano", tmp_path / "x", "6.1")
    with pytest.raises(EdgetuneError, match="not 6.2"):
        create_tree("jetson-xavier-nx", tmp_path / "y", "6.2")


@pytest.mark.parametrize("profile, jetpack", [("jetson-orin-nx", "7"), ("jetson-orin-nano", "6.2")])
def test_doctor_and_the_sampler_work_on_the_new_layouts(make_tree, profile, jetpack):
    root = make_tree(profile, jetpack)
    res = CliRunner().invoke(app, ["doctor", "--root", str(root), "--socket", str(root / "no.sock"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["ok"], doc
    source = JetsonBoard(Sysfs(root)).power_source()
    assert isinstance(source, Ina3221Source) and source.total == ("VDD_IN",)
    assert set(source.read()) == {r.name for r in discover_rails(Sysfs(root))}


def test_a_search_runs_live_on_jetpack_7(make_tree, tmp_path):
    root = make_tree("jetson-orin-nx", "7")
    res = CliRunner().invoke(app, ["tune", "--root", str(root), "--workload", "resnet18", "--budget", "2",
                                   "--inferences", "32", "--batch-sizes", "8", "--sim-time-scale", "100",
                                   "--json", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, (res.output, res.exception)
    doc = json.loads(res.stdout)
    assert doc["simulated"] is True and doc["best"]["energy_j"] > 0
    assert doc["best"]["config"]["gpu_freq_hz"] <= 1173000000

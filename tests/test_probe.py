"""Emulated trees for every profile, read back through `edgetune probe --json`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tuner.sim.profiles import PROFILES

CLI = [sys.executable, "-m", "tuner.cli.main"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def probe(root) -> dict:
    res = run_cli("probe", "--root", str(root), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize(
    "profile, ncpu, ngpu, rails, layout",
    [
        ("jetson-nano", 15, 12, {"POM_5V_IN": "total", "POM_5V_GPU": "gpu", "POM_5V_CPU": "cpu"},
         "ina3221x/6-0040/iio:device0/in_power0_input"),
        ("jetson-xavier-nx", 25, 15, {"VDD_IN": "total", "VDD_CPU_GPU_CV": "cpu_gpu_cv", "VDD_SOC": "soc"},
         "ina3221x/7-0040/iio:device0/in_power0_input"),
        ("jetson-orin-nx", 26, 7, {"VDD_IN": "total", "VDD_CPU_GPU_CV": "cpu_gpu_cv", "VDD_SOC": "soc"},
         "ina3221/1-0040/hwmon/hwmon*/curr1_input"),
    ],
)
def test_sim_create_then_probe(tmp_path, profile, ncpu, ngpu, rails, layout):
    root = tmp_path / "tree"
    res = run_cli("sim", "create", "--board", profile, "--root", str(root))
    assert res.returncode == 0, res.stderr
    doc = probe(root)
    assert doc["board"]["profile"] == profile
    assert doc["board"]["simulated"] is True
    assert set(doc["board"]) >= {"profile", "model", "l4t", "simulated"}
    for pol in doc["cpu"]["policies"]:
        assert len(pol["frequencies_khz"]) == ncpu
        assert pol["governor"] == "schedutil" and "userspace" in pol["governors"]
        assert set(pol) >= {"name", "cpus", "frequencies_khz", "governors", "governor"}
    assert len(doc["gpu"]["frequencies_hz"]) == ngpu
    assert set(doc["gpu"]) >= {"path", "frequencies_hz", "governors", "governor"}
    assert {r["name"]: r["role"] for r in doc["rails"]} == rails
    assert all(r["power_mw"] > 0 for r in doc["rails"])
    assert doc["thermal"] and all(set(z) == {"name", "temp_c"} for z in doc["thermal"])
    # the rails really come from the layout of that JetPack release (the driver's entries
    # are links to the device directory, which rglob would not follow)
    assert list((root / "sys/bus/i2c/drivers").glob(layout))


def test_probe_values_match_dutt_table():
    """Spot values from Dutt 2023 Table 2.1: range ends of each table."""
    nano, nx, orin = PROFILES["jetson-nano"], PROFILES["jetson-xavier-nx"], PROFILES["jetson-orin-nx"]
    assert (nano.cpu_khz[0], nano.cpu_khz[-1], nano.gpu_hz[0], nano.gpu_hz[-1]) == (102000, 1479000, 76800000,
                                                                                      921600000)
    assert (nx.cpu_khz[0], nx.cpu_khz[-1], nx.gpu_hz[0], nx.gpu_hz[-1]) == (115200, 1907200, 114750000, 1109250000)
    assert (orin.cpu_khz[0], orin.cpu_khz[-1], orin.gpu_hz[0], orin.gpu_hz[-1]) == (115200, 1984000, 306000000,
                                                                                      918000000)
    assert 614400000 in nano.gpu_hz and 803250000 in nx.gpu_hz and 714000000 in orin.gpu_hz
    assert len(PROFILES["jetson-agx-orin"].gpu_hz) == 11


@pytest.mark.parametrize(
    "profile, jetpack, gpu_path",
    [
        ("jetson-nano", "4", "/sys/devices/gpu.0/devfreq/57000000.gpu"),
        ("jetson-tx2", "4", "/sys/devices/17000000.gp10b/devfreq/17000000.gp10b"),
        ("jetson-xavier-nx", "4", "/sys/devices/17000000.gv11b/devfreq/17000000.gv11b"),
        ("jetson-agx-xavier", "5", "/sys/devices/platform/17000000.gv11b/devfreq/17000000.gv11b"),
        ("jetson-orin-nx", "5", "/sys/devices/17000000.ga10b/devfreq/17000000.ga10b"),
        ("jetson-orin-nano", "6", "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"),
        ("jetson-agx-orin", "6", "/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"),
    ],
)
def test_gpu_discovered_in_every_layout(make_tree, profile, jetpack, gpu_path):
    from tuner.boards.jetson import JetsonBoard
    from tuner.sysfs import Sysfs

    board = JetsonBoard(Sysfs(make_tree(profile, jetpack)))
    doc = board.describe()
    assert doc["gpu"]["path"] == gpu_path
    assert doc["board"]["profile"] == profile
    assert doc["board"]["jetpack"] == jetpack
    names = [k.name for k in board.knobs()]
    assert names[:2] == ["cpu_freq_khz", "cpu_governor"] and "gpu_freq_hz" in names


def test_boards_without_input_rail_sum_their_rails(make_tree):
    from tuner.boards.jetson import JetsonBoard
    from tuner.sysfs import Sysfs

    board = JetsonBoard(Sysfs(make_tree("jetson-agx-orin")))
    rails = board.describe()["rails"]
    names = [r["name"] for r in rails]
    assert "NC" not in names and "VDDQ_VDD2_1V8AO" in names
    assert all(r["in_total"] for r in rails)
    src = board.power_source()
    assert set(src.total) == set(names)


def test_tx2_input_rail_is_total_and_only_total(make_tree):
    from tuner.boards.jetson import JetsonBoard
    from tuner.sysfs import Sysfs

    src = JetsonBoard(Sysfs(make_tree("jetson-tx2"))).power_source()
    assert src.total == ("VDD_IN",)


def test_probe_on_this_machine_names_sim_boards():
    res = run_cli("probe")
    assert res.returncode != 0
    assert "sim:" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_probe_human_output_says_simulated(nano):
    res = run_cli("probe", "--root", str(nano))
    assert res.returncode == 0, res.stderr
    assert "simulated" in res.stdout and "POM_5V_IN" in res.stdout


def test_sim_create_refuses_unknown_profile_and_non_empty_dir(tmp_path):
    res = run_cli("sim", "create", "--board", "jetson-nope", "--root", str(tmp_path / "x"))
    assert res.returncode == 1 and "unknown board profile" in res.stderr
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "precious.txt").write_text("keep")
    res = run_cli("sim", "create", "--board", "jetson-nano", "--root", str(tmp_path / "y"))
    assert res.returncode == 1 and "not empty" in res.stderr
    assert (tmp_path / "y" / "precious.txt").read_text() == "keep"
    res = run_cli("sim", "create", "--board", "jetson-nano", "--jetpack", "6", "--root", str(tmp_path / "z"))
    assert res.returncode == 1 and "JetPack" in res.stderr

"""Jetson AGX Thor (JetPack 7) and boards without a power monitor (Jetson Nano 2GB).

Thor: the GPU is the devfreq node gpu-gpc-0 (no of_node, no `load`), the module
rails are on an INA3221 and the carrier-board input on an INA238 (hwmon:
power1_input in µW, in1_input mV, curr1_input mA), whose VIN rail is the board
total. Its simulator model is extrapolated from the Orin NX and every result says so.
A board without a monitor probes, tunes time, and refuses energy in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuner.boards.devfreq import find_gpu
from tuner.boards.identity import read_identity
from tuner.boards.ina3221 import Ina3221Source, discover_rails
from tuner.boards.jetson import JetsonBoard
from tuner.boards.nvpmodel import parse_conf
from tuner.cli.main import app
from tuner.config import Config
from tuner.errors import ConfigError
from tuner.objective import Objective, check_power_sensors
from tuner.sampler import Sampler
from tuner.sim.board import SimBoard
from tuner.sim.live import Activity, LiveSimulator, write_activity
from tuner.sim.model import device_model, model_label
from tuner.sim.profiles import PROFILES, nvpmodel_conf
from tuner.sysfs import Sysfs

THOR = "jetson-agx-thor"
MODULE_RAILS = {"VDD_GPU": "gpu", "VDD_CPU_SOC_MSS": "cpu", "VIN_SYS_5V0": "other"}


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed entry point's behaviour: an EdgetuneError is one `error:` line on stderr, exit 1."""
    return subprocess.run([sys.executable, "-m", "tuner.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def refused(res) -> str:
    """The message of a command refused with an EdgetuneError (CliRunner keeps the exception)."""
    assert res.exit_code == 1 and isinstance(res.exception, ConfigError), (res.output, res.exception)
    return str(res.exception)


def probe(root: Path) -> dict:
    res = cli("probe", "--root", str(root), "--json")
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout)


def _read(path: Path) -> str:
    return path.read_text().strip()


def outside_reader(root: Path) -> dict[str, float]:
    """(rail -> mW) as a tool that knows nothing of edgetune reads them: i2c devices by
    `name`; INA3221 channels by label (V x I), an INA238 by its power1_input (µW)."""
    found: dict[str, float] = {}
    for dev in sorted((root / "sys/bus/i2c/devices").glob("*")):
        name = _read(dev / "name") if (dev / "name").is_file() else ""
        for hw in sorted(dev.glob("hwmon/hwmon*")):
            if name == "ina3221":
                for label in sorted(hw.glob("in*_label")):
                    i = label.name[2:-6]
                    if _read(label) != "NC" and (hw / f"curr{i}_input").exists():
                        found[_read(label)] = float(_read(hw / f"in{i}_input")) * float(
                            _read(hw / f"curr{i}_input")) / 1000
            elif name == "ina238":
                label = _read(hw / "label") if (hw / "label").exists() else "VIN"
                found[label] = float(_read(hw / "power1_input")) / 1000
    return found


@pytest.fixture
def thor(make_tree) -> Path:
    return make_tree(THOR)


# --- the tree, read back --------------------------------------------------------------

def test_sim_create_then_probe_finds_the_gpc_gpu_the_ina238_total_and_the_module_rails(tmp_path):
    root = tmp_path / "T"
    res = cli("sim", "create", "--board", THOR, "--root", str(root))
    assert res.exit_code == 0, res.output
    doc = probe(root)
    b = doc["board"]
    assert (b["profile"], b["model"], b["l4t"], b["jetpack"], b["simulated"]) == (
        THOR, "NVIDIA Jetson AGX Thor Developer Kit", "38.4.0", "7", True)
    gpu = doc["gpu"]
    assert gpu["path"].endswith("/gpu-gpc-0") and "gpu-gpc-0" in gpu["path"]
    assert gpu["frequencies_hz"][-1] == 1575000000 and {1386000000, 1530000000} <= set(gpu["frequencies_hz"])
    assert "nvhost_podgov" in gpu["governors"] and "performance" in gpu["governors"]
    assert gpu["load_permille"] is None  # Thor's devfreq node has no nvgpu `load` file
    rails = {r["name"]: r for r in doc["rails"]}
    assert rails["VIN"]["role"] == "total" and rails["VIN"]["in_total"] is True
    assert 10_000 < rails["VIN"]["power_mw"] < 200_000  # plausible watts for an idle Thor dev kit
    assert {n: r["role"] for n, r in rails.items() if n != "VIN"} == MODULE_RAILS
    assert not any(r["in_total"] for n, r in rails.items() if n != "VIN")
    # the carrier input contains the module: more than the module rails together
    assert rails["VIN"]["power_mw"] > sum(r["power_mw"] for n, r in rails.items() if n != "VIN")
    assert len(doc["cpu"]["policies"]) == 14
    assert all(p["frequencies_khz"][-1] == 2601000 for p in doc["cpu"]["policies"])
    assert doc["emc"]["frequencies_hz"][-1] == 4266000000
    assert {z["name"] for z in doc["thermal"]} >= {"cpu-thermal", "gpu-thermal", "tj-thermal"}
    pm = doc["power_mode"]
    assert [m["name"] for m in pm["modes"]] == ["MAXN", "120W", "90W", "70W"]
    assert (pm["id"], pm["name"], pm["conf"]) == (1, "120W", "/etc/nvpmodel/nvpmodel_p3834_0008.conf")
    assert pm["capped"]["gpu_freq_hz"]["max"] == 1386000000
    assert "power_note" not in doc


def test_the_ina238_is_an_i2c_device_named_ina238_with_hwmon_units(thor):
    dev = thor / "sys/bus/i2c/devices/1-0044"
    assert dev.is_symlink() and _read(dev / "name") == "ina238"
    (hw,) = dev.glob("hwmon/hwmon*")
    assert _read(hw / "name") == "ina238" and _read(hw / "label") == "VIN"
    mv, ma, uw = (int(_read(hw / f)) for f in ("in1_input", "curr1_input", "power1_input"))
    assert 7000 <= mv <= 24000 and uw == mv * ma  # mV x mA = µW
    assert (thor / "sys/bus/i2c/drivers/ina238/1-0044").resolve() == dev.resolve()
    assert (thor / "sys/class/hwmon" / hw.name).resolve() == hw.resolve()
    assert (hw / "device").resolve() == dev.resolve()
    for path in [dev, thor / "sys/bus/i2c/drivers/ina238/1-0044", thor / "sys/class/hwmon" / hw.name]:
        assert not os.path.isabs(os.readlink(path))


def test_an_outside_reader_walking_the_i2c_devices_sees_what_probe_sees(thor):
    outside = outside_reader(thor)
    probed = {r["name"]: r["power_mw"] for r in probe(thor)["rails"]}
    assert sorted(outside) == sorted(probed) == sorted(list(MODULE_RAILS) + ["VIN"])
    for name, mw in outside.items():
        assert probed[name] == pytest.approx(mw, abs=1.0)


@pytest.mark.parametrize("keep", ["driver", "devices", "class"])
def test_the_ina238_is_found_once_from_any_single_view(thor, keep):
    before = [r.name for r in discover_rails(Sysfs(thor))]
    assert before == list(MODULE_RAILS) + ["VIN"]
    views = {
        "driver": [p for d in ("ina3221", "ina238") for p in (thor / "sys/bus/i2c/drivers" / d).glob("*-00*")],
        "devices": list((thor / "sys/bus/i2c/devices").glob("*")),
        "class": list((thor / "sys/class/hwmon").glob("*")),
    }
    for view, paths in views.items():
        if view != keep:
            for path in paths:
                path.unlink()
    rails = discover_rails(Sysfs(thor))
    assert [r.name for r in rails] == before
    vin = next(r for r in rails if r.name == "VIN")
    assert (vin.role, vin.chip, vin.layout) == ("total", "ina238", "hwmon")


def test_the_gpu_is_the_gpc_domain_not_the_nvd_domain_nor_the_memory_manager(thor):
    names = sorted(p.name for p in (thor / "sys/class/devfreq").iterdir())
    assert names == ["bwmgr", "gpu-gpc-0", "gpu-nvd-0"]
    assert not (thor / "sys/class/devfreq/gpu-gpc-0/device/of_node").exists()
    gpu = find_gpu(Sysfs(thor))
    assert gpu is not None and gpu.path == "/sys/devices/platform/gpu-gpc-0/devfreq/gpu-gpc-0"
    # a kernel that lists only the class entry: still found, through the known class path
    os.unlink(thor / "sys/class/devfreq/gpu-nvd-0")
    assert find_gpu(Sysfs(thor)).frequencies_hz[-1] == 1575000000


def test_the_power_modes_parse_with_the_published_caps():
    conf = parse_conf(nvpmodel_conf(PROFILES[THOR], "7"))
    assert conf.problems == () and conf.default_id == 1
    caps = {m.name: m.caps for m in conf.modes}
    assert caps["MAXN"].gpu_max_hz is None and len(caps["MAXN"].cpu_online) == 14
    assert caps["120W"].gpu_max_hz == 1386000000 and caps["120W"].cpu_max_khz == 2601000
    assert caps["90W"].gpu_max_hz == 1530000000 and len(caps["90W"].cpu_online) == 12
    assert caps["70W"].cpu_max_khz == 1998000 and 1998000 in PROFILES[THOR].cpu_khz


def test_apply_pins_the_gpc_clock_and_restores(thor):
    board = JetsonBoard(Sysfs(thor))
    board.apply(Config({"gpu_freq_hz": 1020000000, "cpu_freq_khz": 1998000}))
    gpc = thor / "sys/devices/platform/gpu-gpc-0/devfreq/gpu-gpc-0"
    assert _read(gpc / "max_freq") == _read(gpc / "min_freq") == "1020000000"
    with pytest.raises(ConfigError, match="above the 1386000000 Hz cap of power mode 1 \\(120W\\)"):
        board.apply(Config({"gpu_freq_hz": 1575000000}))
    assert board.restore() == []
    assert _read(gpc / "max_freq") == "1575000000"


def test_doctor_passes_and_names_the_input_rail(thor):
    res = cli("doctor", "--root", str(thor), "--socket", str(thor / "no.sock"), "--json")
    doc = json.loads(res.stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert res.exit_code == 0 and doc["ok"]
    assert "VIN (total)" in checks["rails"]["detail"] and "gpu-gpc-0" in checks["gpu"]["detail"]
    assert "JetPack 7" in checks["board"]["detail"]


@pytest.mark.parametrize("model, compatible, release, jetpack", [
    # as a Thor dev kit reports itself (jetson-stats issue #711)
    ("NVIDIA Jetson AGX Thor Developer Kit", "nvidia,p4071-0000+p3834-0008\x00nvidia,p3834-0008\x00nvidia,tegra264",
     "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, "
     "DATE: Fri Aug 22 00:55:42 UTC 2025", "7"),
    ("NVIDIA Jetson AGX Thor Developer Kit", "", "# R39 (release), REVISION: 2.0, BOARD: generic", "7"),
    ("NVIDIA Jetson Nano 2GB Developer Kit", "nvidia,p3542-0000+p3448-0003\x00nvidia,jetson-nano-2gb", "", None),
])
def test_identity(tmp_path, model, compatible, release, jetpack):
    base = tmp_path / "sys/firmware/devicetree/base"
    base.mkdir(parents=True)
    (base / "model").write_text(model + "\x00")
    (base / "compatible").write_text(compatible + "\x00")
    if release:
        (tmp_path / "etc").mkdir()
        (tmp_path / "etc/nv_tegra_release").write_text(release + "\n")
    ident = read_identity(Sysfs(tmp_path))
    expected = "jetson-nano-2gb" if "2GB" in model else THOR
    assert ident.profile == expected and ident.jetpack == jetpack


# --- live: the simulator drives the INA238, the sampler integrates it -------------------------

def test_the_live_simulator_animates_the_input_rail_and_the_sampler_takes_it_as_total(thor):
    board = JetsonBoard(Sysfs(thor))
    source = board.power_source()
    assert isinstance(source, Ina3221Source) and source.total == ("VIN",)
    idle = source.read()["VIN"]
    write_activity(thor, Activity("resnet18", 16, 1, True))
    sim = LiveSimulator(thor, rate_hz=50)
    sim.step(0.1)
    busy = source.read()
    assert busy["VIN"] > idle * 1.3
    assert busy["VIN"] == pytest.approx(sim.power_w * 1000, rel=0.01)  # the input carries the board's power
    assert busy["VIN"] > sum(v for k, v in busy.items() if k != "VIN")
    sampler = Sampler(source, rate_hz=100).start()
    time.sleep(0.15)
    report = sampler.stop().energy()
    assert report.total_j == pytest.approx(report.rails_j["VIN"], rel=1e-9)
    assert report.avg_power_w == pytest.approx(busy["VIN"] / 1000, rel=0.02)


def test_without_its_ina238_a_thor_sums_its_module_rails(thor):
    for dev in [thor / "sys/bus/i2c/devices/1-0044"]:
        shutil.rmtree(dev.resolve())
    for link in [thor / "sys/bus/i2c/devices/1-0044", thor / "sys/bus/i2c/drivers/ina238/1-0044",
                 thor / "sys/class/hwmon/hwmon2"]:
        os.unlink(link)
    doc = probe(thor)
    assert {r["name"] for r in doc["rails"]} == set(MODULE_RAILS)
    assert all(r["in_total"] for r in doc["rails"])  # no input rail: the rails sum


# --- the simulated Thor: extrapolated, and said so -------------------------------------------

def test_the_thor_model_is_extrapolated_and_labelled():
    model = device_model(THOR)
    assert model.extrapolated and "extrapolated from jetson-orin-nx" in model.source
    board = SimBoard(THOR)
    assert model_label(board) == {"model_source": model.source, "extrapolated": True}
    assert model_label(SimBoard("jetson-orin-nx"))["extrapolated"] is False
    p = model.profile
    top = model.point("resnet18", p.cpu_khz[-1], p.gpu_hz[-1], 16)
    orin = device_model("jetson-orin-nx")
    o = orin.point("resnet18", orin.profile.cpu_khz[-1], orin.profile.gpu_hz[-1], 16)
    assert top.batch_s < o.batch_s and top.power_w > o.power_w  # faster, hungrier than an Orin NX
    assert 15 < model.idle_power() < 40


def test_tune_on_the_simulated_thor_is_labelled_simulated_and_extrapolated(tmp_path):
    res = cli("tune", "--board", f"sim:{THOR}", "--workload", "resnet18", "--budget", "6", "--json",
              "--out", str(tmp_path / "run"))
    assert res.exit_code == 0, (res.output, res.exception)
    doc = json.loads(res.stdout)
    assert doc["simulated"] is True and doc["extrapolated"] is True
    assert "extrapolated" in doc["model_source"] and doc["board"] == f"sim:{THOR}"
    assert doc["best"]["config"]["gpu_freq_hz"] in PROFILES[THOR].gpu_hz
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["extrapolated"] is True


# --- no power monitor: Jetson Nano 2GB --------------------------------------------------------

def test_a_nano_2gb_tree_has_no_monitor_and_probe_says_so(make_tree):
    root = make_tree("jetson-nano-2gb")
    assert not (root / "sys/bus/i2c").exists() and not (root / "sys/class/hwmon").exists()
    doc = probe(root)
    assert doc["board"]["profile"] == "jetson-nano-2gb" and doc["rails"] == []
    assert "--objective time" in doc["power_note"] and doc["gpu"] and doc["cpu"]["policies"]
    text = cli("probe", "--root", str(root))
    assert text.exit_code == 0 and "no power sensors" in text.stdout
    res = cli("doctor", "--root", str(root), "--socket", str(root / "no.sock"), "--json")
    rails = {c["name"]: c for c in json.loads(res.stdout)["checks"]}["rails"]
    assert res.exit_code == 1 and not rails["ok"] and "--objective time" in rails["fix"]
    assert "Nano 2GB" in rails["fix"]


@pytest.mark.parametrize("objective", ["edp", "weighted:0.5", "power"])
def test_energy_objectives_are_refused_on_a_board_without_a_monitor(make_tree, tmp_path, objective):
    root = make_tree("jetson-nano-2gb")
    message = refused(cli("tune", "--root", str(root), "--workload", "alexnet", "--objective", objective,
                          "--out", str(tmp_path / "run")))
    assert "no power monitor" in message and "--objective time" in message and "\n" not in message


def test_tune_energy_fails_with_one_clear_line_on_a_board_without_a_monitor(make_tree, tmp_path):
    root = make_tree("jetson-nano-2gb")
    res = run_cli("tune", "--root", str(root), "--workload", "alexnet", "--objective", "energy",
                  "--out", str(tmp_path / "run"))
    assert res.returncode == 1 and res.stdout == ""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == ["error: the energy objective needs energy, but jetson-nano-2gb has no power monitor "
                     "(no INA3221 or INA238 rails): tune with --objective time (an external power meter is not "
                     "supported yet)"]


def test_time_is_tuned_on_a_board_without_a_monitor(make_tree, tmp_path):
    root = make_tree("jetson-nano-2gb")
    res = cli("tune", "--root", str(root), "--workload", "alexnet", "--objective", "time", "--budget", "2",
              "--inferences", "32", "--batch-sizes", "8", "--sim-time-scale", "100", "--json",
              "--out", str(tmp_path / "run"))
    assert res.exit_code == 0, (res.output, res.exception)
    doc = json.loads(res.stdout)
    assert doc["best"] is not None and doc["best"]["time_s"] > 0 and doc["best"]["energy_j"] is None


def test_compare_and_power_caps_are_refused_too(make_tree, tmp_path):
    root = make_tree("jetson-nano-2gb")
    message = refused(cli("compare", "--root", str(root), "--workload", "alexnet", "--config",
                          "cpu_freq_khz=1479000,gpu_freq_hz=921600000", "--out", str(tmp_path / "cmp")))
    assert message.startswith("compare needs energy") and "--objective time" in message
    board = JetsonBoard(Sysfs(root))
    with pytest.raises(ConfigError, match="--power-cap needs energy"):
        check_power_sensors(board, Objective.parse("time").__class__("time", constraints=_cap(5.0)))
    check_power_sensors(board, Objective.parse("time"))  # time: fine


def _cap(watts: float):
    from tuner.objective import Constraints

    return Constraints(power_cap_w=watts)


def test_a_simulated_nano_2gb_refuses_energy_and_tunes_time(tmp_path):
    board = SimBoard("jetson-nano-2gb")
    assert "jetson-nano model" in board.model.source and board.model.power.usable_mem_gib < 1.0
    with pytest.raises(ConfigError, match="jetson-nano-2gb has no power monitor"):
        check_power_sensors(board, Objective.parse("energy"))
    check_power_sensors(SimBoard("jetson-nano"), Objective.parse("energy"))  # the 4GB Nano measures
    res = cli("tune", "--board", "sim:jetson-nano-2gb", "--workload", "alexnet", "--objective", "time",
              "--budget", "4", "--json", "--out", str(tmp_path / "run"))
    assert res.exit_code == 0, res.output


def test_a_tree_whose_monitors_were_removed_refuses_energy(thor, tmp_path):
    for name in ("ina3221", "ina238"):
        for link in (thor / "sys/bus/i2c/drivers" / name).glob("*-00*"):
            shutil.rmtree(link.resolve())
    shutil.rmtree(thor / "sys/bus/i2c")
    shutil.rmtree(thor / "sys/class/hwmon")
    assert probe(thor)["rails"] == []
    message = refused(cli("tune", "--root", str(thor), "--workload", "resnet18", "--out", str(tmp_path / "run")))
    assert message.startswith("the energy objective needs energy, but jetson-agx-thor has no power monitor")


def test_the_live_simulator_keeps_the_ina238_power_file_in_step_with_volts_and_amps(thor):
    """Outside readers (jtop reads power1_input) see the same power as edgetune (mV x mA)."""
    hw = next(p for p in (thor / "sys/class/hwmon").iterdir() if (p / "name").read_text().strip() == "ina238")
    sim = LiveSimulator(thor, rate_hz=50)
    sim.step(0.1)
    mv, ma, uw = (int((hw / f).read_text()) for f in ("in1_input", "curr1_input", "power1_input"))
    assert ma > 0 and uw == mv * ma

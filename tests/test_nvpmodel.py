"""nvpmodel power modes: the emulated confs, reading the current mode, and the
search space and apply() held to what the mode allows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tree_state
from tuner.boards.jetson import JetsonBoard
from tuner.boards.nvpmodel import (
    SOURCE_DEFAULT,
    SOURCE_STATUS,
    allowed_values,
    parse_conf,
    parse_status,
    read_power_mode,
)
from tuner.config import Config
from tuner.errors import ConfigError
from tuner.sim.profiles import PROFILES, nvpmodel_conf
from tuner.sysfs import Sysfs

CLI = [sys.executable, "-m", "tuner.cli.main"]

# Facts from the public sources cited in tuner/sim/profiles.py, written out here
# independently of the tables: file name, PM_CONFIG DEFAULT, the mode names by id.
EXPECTED = {
    "jetson-nano": ("nvpmodel_t210_jetson-nano.conf", 0, ["MAXN", "5W"]),
    "jetson-nano-2gb": ("nvpmodel_t210_jetson-nano.conf", 0, ["MAXN", "5W"]),
    "jetson-tx2": ("nvpmodel_t186.conf", 2, ["MAXN", "MAXQ", "MAXP_CORE_ALL", "MAXP_CORE_ARM"]),
    "jetson-xavier-nx": ("nvpmodel_t194_p3668.conf", 5,
                         ["MODE_15W_2CORE", "MODE_15W_4CORE", "MODE_15W_6CORE", "MODE_10W_2CORE", "MODE_10W_4CORE",
                          "MODE_10W_DESKTOP", "MODE_20W_2CORE", "MODE_20W_4CORE", "MODE_20W_6CORE"]),
    "jetson-agx-xavier": ("nvpmodel_t194.conf", 7,
                          ["MAXN", "MODE_10W", "MODE_15W", "MODE_30W_ALL", "MODE_30W_6CORE", "MODE_30W_4CORE",
                           "MODE_30W_2CORE", "MODE_15W_DESKTOP"]),
    "jetson-orin-nano": ("nvpmodel_p3767_0003.conf", 0, ["15W", "7W"]),
    "jetson-orin-nx": ("nvpmodel_p3767_0000.conf", 2, ["MAXN", "10W", "15W", "25W"]),
    "jetson-agx-orin": ("nvpmodel_p3701_0000.conf", 2, ["MAXN", "MODE_15W", "MODE_30W", "MODE_50W"]),
    "jetson-agx-thor": ("nvpmodel_p3834_0008.conf", 1, ["MAXN", "120W", "90W", "70W"]),
}


def set_mode(root: Path, mode_id: int) -> None:
    """What `nvpmodel -m N` leaves behind."""
    (root / "var/lib/nvpmodel/status").write_text(f"pmode:{mode_id:04d}\n")


def probe_json(root: Path) -> dict:
    res = subprocess.run([*CLI, "probe", "--root", str(root), "--json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


# --- the emulated confs ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profiles_conf_parses_to_its_published_table(name):
    profile = PROFILES[name]
    file, default, names = EXPECTED[name]
    assert profile.nvpmodel is not None and profile.nvpmodel.file == file
    for jp in profile.jetpacks:
        conf = parse_conf(nvpmodel_conf(profile, jp))
        assert conf.problems == ()
        assert [m.name for m in conf.modes] == names
        assert [m.id for m in conf.modes] == list(range(len(names)))
        assert conf.default_id == default
        node = profile.gpu_node(jp)
        assert conf.params["GPU"]["MAX_FREQ"] == f"{node.device}/devfreq/{node.devfreq_name}/max_freq"
        for mode in conf.modes:
            caps = mode.caps
            assert caps.cpu_online and caps.cpu_online[0] == 0 and max(caps.cpu_online) < profile.ncpus
            # every cap lands inside the emulated tables' range, in edgetune's units
            if caps.cpu_max_khz is not None:
                assert profile.cpu_khz[0] < caps.cpu_max_khz <= profile.cpu_khz[-1]
            if caps.gpu_max_hz is not None:
                assert profile.gpu_hz[0] < caps.gpu_max_hz <= profile.gpu_hz[-1]
            if caps.emc_max_hz is not None:
                assert profile.emc_hz == () or profile.emc_hz[0] < caps.emc_max_hz <= profile.emc_hz[-1]


def test_published_caps_spot_values():
    def mode(profile, mode_id):
        return parse_conf(nvpmodel_conf(PROFILES[profile], PROFILES[profile].jetpacks[0])).mode(mode_id).caps

    nano_5w = mode("jetson-nano", 1)
    assert (nano_5w.cpu_max_khz, nano_5w.gpu_max_hz, nano_5w.emc_max_hz, nano_5w.cpu_online) == (
        918000, 640000000, 1600000000, (0, 1))
    nano_maxn = mode("jetson-nano", 0)
    assert (nano_maxn.cpu_max_khz, nano_maxn.gpu_max_hz, nano_maxn.emc_max_hz) == (None, None, None)
    nx = mode("jetson-xavier-nx", 5)
    assert (nx.cpu_min_khz, nx.cpu_max_khz, nx.gpu_max_hz, nx.emc_max_hz, nx.cpu_online) == (
        1190400, 1907200, 510000000, 1600000000, (0, 1, 2, 3))
    tx2_maxq = mode("jetson-tx2", 1)  # lists CORE_1..5 only: cpu0 stays online
    assert (tx2_maxq.cpu_max_khz, tx2_maxq.gpu_max_hz, tx2_maxq.cpu_online) == (1200000, 850000000, (0, 3, 4, 5))
    orin_15w = mode("jetson-orin-nx", 2)
    assert (orin_15w.cpu_min_khz, orin_15w.cpu_max_khz, orin_15w.gpu_max_hz, orin_15w.emc_max_hz) == (
        729600, 1651200, 612000000, None)
    agx_30w = mode("jetson-agx-orin", 2)
    assert (agx_30w.cpu_max_khz, agx_30w.gpu_max_hz, len(agx_30w.cpu_online)) == (1728000, 612000000, 8)
    orin_nano_7w = mode("jetson-orin-nano", 1)
    assert (orin_nano_7w.cpu_max_khz, orin_nano_7w.gpu_max_hz, orin_nano_7w.emc_max_hz) == (
        960000, 408000000, 2133000000)


# --- parsing -----------------------------------------------------------------------

MESSY = """
# a hand-edited conf: comments, odd spacing, unknown sections, an old-style mode
<PARAM TYPE=CLOCK NAME=CPU_X >
MAX_FREQ /sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq

< PARAM TYPE=CLOCK NAME=DLA0_CORE >
MAX_FREQ /sys/devices/platform/13e40000.host1x/15880000.nvdla0/acm/clk_cap/dla0_core

<   POWER_MODEL   ID=3   NAME=FAST   >
CPU_ONLINE CORE_0 1
CPU_ONLINE   CORE_1   1      # trailing comment
CPU_X MIN_FREQ  0
CPU_X MAX_FREQ 1420800000
GPU MAX_FREQ 612000
DLA0_CORE MAX_FREQ 614400000
EMC MAX_FREQ -1
this line means nothing

< FAN_CONFIG DEFAULT=quiet >
< POWER_MODEL ID=1 NAME=R28_STYLE >
/sys/devices/system/cpu/cpu1/online 0
/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq 1200000
/sys/devices/17000000.gp10b/devfreq/17000000.gp10b/max_freq 850000000
/sys/kernel/nvpmodel_emc_cap/emc_iso_cap 1331200000
< PM_CONFIG DEFAULT=3 >
"""


def test_parser_tolerates_comments_spacing_unknown_lines_and_old_format():
    conf = parse_conf(MESSY)
    assert [(m.id, m.name) for m in conf.modes] == [(3, "FAST"), (1, "R28_STYLE")]
    assert conf.default_id == 3
    fast = conf.mode(3).caps
    # a CPU cap written in Hz and a GPU cap written in kHz are put right by magnitude;
    # the DLA cap (another device) is not taken for the GPU; -1 is no cap
    assert (fast.cpu_max_khz, fast.cpu_min_khz, fast.gpu_max_hz, fast.emc_max_hz) == (1420800, None, 612000000, None)
    assert fast.cpu_online == (0, 1)
    old = conf.mode(1).caps
    assert (old.cpu_max_khz, old.gpu_max_hz, old.emc_max_hz, old.cpu_online) == (1200000, 850000000, 1331200000,
                                                                                  (0,))
    assert any("this line means nothing" in p for p in conf.problems)


def test_parser_reports_what_it_cannot_use():
    conf = parse_conf("< POWER_MODEL ID=x NAME=BAD >\nGPU MAX_FREQ 1\n< POWER_MODEL ID=0 NAME=A >\n"
                      "GPU MAX_FREQ lots\n< POWER_MODEL ID=0 NAME=B >\n< PM_CONFIG DEFAULT=9 >\n")
    assert [m.name for m in conf.modes] == ["A"]
    text = " | ".join(conf.problems)
    assert "numeric ID" in text and "not a number" in text and "twice" in text and "DEFAULT=9" in text


def test_status_file_formats():
    assert parse_status("pmode:0002 fmode:quiet\n") == (2, "quiet")
    assert parse_status("pmode:0000") == (0, None)
    assert parse_status("garbage") == (None, None)


@pytest.mark.parametrize("floor, cap, expected", [
    (None, None, (1, 2, 3, 4)),
    (None, 3, (1, 2, 3)),
    (None, 2.5, (1, 2)),  # a cap between steps never grants the step above
    (2, None, (2, 3, 4)),
    (3, 2, (2,)),  # floor above the capped top: pinned at the highest capped step
    (None, 0.5, (1,)),  # a cap below every step: the kernel still runs at the lowest
])
def test_allowed_values(floor, cap, expected):
    assert allowed_values([4, 2, 3, 1], floor, cap) == expected


# --- emulated trees ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_emulated_tree_is_in_its_default_mode(make_tree, name):
    file, default, names = EXPECTED[name]
    root = make_tree(name)
    link = root / "etc/nvpmodel.conf"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == (root / "etc/nvpmodel" / file).resolve()
    assert (root / "var/lib/nvpmodel/status").read_text().strip() == f"pmode:{default:04d}"
    pm = JetsonBoard(Sysfs(root)).describe()["power_mode"]
    assert (pm["id"], pm["name"], pm["source"]) == (default, names[default], SOURCE_STATUS)
    assert pm["conf"] == f"/etc/nvpmodel/{file}" and pm["default_id"] == default
    assert [m["name"] for m in pm["modes"]] == names
    assert set(pm["caps"]) >= {"cpu_max_khz", "gpu_max_hz", "emc_max_hz", "cpu_online"}


def test_probe_json_and_text_show_the_mode(make_tree):
    root = make_tree("jetson-xavier-nx")
    doc = probe_json(root)
    pm = doc["power_mode"]
    assert (pm["id"], pm["name"], pm["source"]) == (5, "MODE_10W_DESKTOP", "status")
    assert pm["caps"]["cpu_max_khz"] == 1907200 and pm["caps"]["gpu_max_hz"] == 510000000
    assert pm["caps"]["cpu_online"] == 4
    # the device still lists every step; the mode's share of them is reported beside it
    assert len(doc["gpu"]["frequencies_hz"]) == 15
    assert pm["capped"]["gpu_freq_hz"] == {"allowed": 5, "of": 15, "min": 114750000, "max": 510000000, "unit": "Hz"}
    # the mode's CPU MIN_FREQ (1190400) is where nvpmodel starts the policy, not a limit: no floor
    assert pm["capped"]["cpu_freq_khz"]["min"] == 115200 and pm["capped"]["cpu_freq_khz"]["max"] == 1907200
    assert "MODE_10W_DESKTOP" in pm["space_note"] and "5 of 15" in pm["space_note"]
    text = subprocess.run([*CLI, "probe", "--root", str(root)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert text.returncode == 0, text.stderr
    assert "Power mode: 5 (MODE_10W_DESKTOP)" in text.stdout and "/var/lib/nvpmodel/status" in text.stdout
    assert "GPU ≤ 510 MHz" in text.stdout and "gpu_freq_hz 5 of 15" in text.stdout


def test_a_lower_mode_narrows_the_knobs_and_apply_above_its_cap_is_refused(make_tree):
    root = make_tree("jetson-orin-nx")
    board = JetsonBoard(Sysfs(root))
    knobs = {k.name: k.values for k in board.knobs()}
    assert knobs["cpu_freq_khz"][-1] == 1651200 and knobs["gpu_freq_hz"][-1] == 612000000  # 15W, the default
    set_mode(root, 1)  # 10W
    knobs = {k.name: k.values for k in board.knobs()}  # read fresh: no new board needed
    full_cpu = board.device_knobs()[0].values
    assert knobs["cpu_freq_khz"] == tuple(f for f in full_cpu if f <= 1190400)  # the cap; MIN_FREQ is no floor
    assert knobs["cpu_freq_khz"][0] == full_cpu[0] == 115200
    assert knobs["gpu_freq_hz"] == (306000000, 408000000, 510000000, 612000000)
    assert knobs["emc_freq_hz"] == (204000000, 665600000, 2133000000)
    assert len(board.device_knobs()[0].values) == 26
    before = tree_state(root)
    with pytest.raises(ConfigError, match=r"cpu_freq_khz=1651200 is above the 1190400 kHz cap of power mode 1 \(10W\)"):
        board.apply(Config({"cpu_freq_khz": 1651200, "gpu_freq_hz": 408000000}))
    with pytest.raises(ConfigError, match=r"emc_freq_hz=3199000000 is above .* power mode 1 \(10W\)"):
        board.apply(Config({"emc_freq_hz": 3199000000}))
    board.apply(Config({"cpu_freq_khz": 115200}))  # below the mode's MIN_FREQ: allowed, as the kernel does
    assert board.restore() == []
    assert tree_state(root) == before
    board.apply(Config({"cpu_freq_khz": 1190400, "gpu_freq_hz": 612000000}))
    assert (root / "sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq").read_text().split()[0] == "1190400"
    assert board.restore() == []
    set_mode(root, 0)  # MAXN: the whole table above the floor
    knobs = {k.name: k.values for k in board.knobs()}
    assert knobs["cpu_freq_khz"][-1] == 1984000 and knobs["gpu_freq_hz"][-1] == 918000000
    board.apply(Config({"cpu_freq_khz": 1984000}))
    assert board.restore() == []


def test_cli_apply_above_the_cap_is_one_line_naming_the_mode_and_changes_nothing(nano):
    set_mode(nano, 1)  # 5W: CPU 918000 kHz -> 825600, GPU 640 MHz -> 614.4 MHz
    before = tree_state(nano)
    res = subprocess.run([*CLI, "apply", "--root", str(nano), "--gpu-freq", "921.6MHz", "--cpu-freq", "825.6MHz"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert "gpu_freq_hz=921600000 is above the 640000000 Hz cap of power mode 1 (5W)" in res.stderr
    assert tree_state(nano) == before
    res = subprocess.run([*CLI, "apply", "--root", str(nano), "--gpu-freq", "614.4MHz", "--cpu-freq", "825.6MHz"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_releasing_a_governor_opens_the_window_only_up_to_the_cap(nano):
    set_mode(nano, 1)
    board = JetsonBoard(Sysfs(nano))
    board.apply(Config({"cpu_freq_khz": 403200, "gpu_freq_hz": 76800000}))
    board.apply(Config({"cpu_governor": "schedutil", "gpu_governor": "nvhost_podgov"}))
    pol = nano / "sys/devices/system/cpu/cpufreq/policy0"
    gpu = nano / "sys/devices/gpu.0/devfreq/57000000.gpu"
    assert (pol / "scaling_min_freq").read_text().split()[0] == "102000"
    assert (pol / "scaling_max_freq").read_text().split()[0] == "825600"
    assert (gpu / "max_freq").read_text().split()[0] == "614400000"
    assert board.restore() == []


def test_the_mode_falls_back_to_the_confs_default_without_a_usable_status(make_tree):
    root = make_tree("jetson-agx-xavier")
    fs = Sysfs(root)
    (root / "var/lib/nvpmodel/status").unlink()
    state = read_power_mode(fs)
    assert (state.mode.id, state.source, state.note) == (7, SOURCE_DEFAULT, None)
    set_mode(root, 12)  # a status the conf does not define: like nvpmodel at boot, use the default
    state = read_power_mode(fs)
    assert (state.mode.id, state.source, state.status_id) == (7, SOURCE_DEFAULT, 12)
    assert "mode 12" in state.note
    # MODE_15W_DESKTOP: CPU floor 1200000 and cap 2188800, GPU 318.75-670 MHz, EMC 1331.2 MHz
    knobs = {k.name: k.values for k in JetsonBoard(fs).knobs()}
    assert knobs["cpu_freq_khz"][0] == JetsonBoard(fs).device_knobs()[0].values[0]  # MIN_FREQ is no floor
    assert knobs["cpu_freq_khz"][-1] == 2188800
    full_gpu = {k.name: k.values for k in JetsonBoard(fs).device_knobs()}["gpu_freq_hz"]
    assert knobs["gpu_freq_hz"] == tuple(f for f in full_gpu if f <= 670000000)
    assert knobs["emc_freq_hz"][-1] == 1331200000
    set_mode(root, 1)  # MODE_10W: MAX_FREQ 1200000 falls between two steps: 1190400 is the top one allowed
    assert {k.name: k.values for k in JetsonBoard(fs).knobs()}["cpu_freq_khz"][-1] == 1190400


def test_a_tree_without_nvpmodel_conf_has_no_power_mode_and_works(nano):
    (nano / "etc/nvpmodel.conf").unlink()
    board = JetsonBoard(Sysfs(nano))
    assert board.power_mode() is None and board.space_note() is None
    assert board.describe()["power_mode"] is None
    assert [k.values for k in board.knobs()] == [k.values for k in board.device_knobs()]
    board.apply(Config({"cpu_freq_khz": 1479000, "gpu_freq_hz": 921600000}))
    assert board.restore() == []
    assert probe_json(nano)["power_mode"] is None
    text = subprocess.run([*CLI, "probe", "--root", str(nano)], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "Power mode: none" in text.stdout


def test_an_unparseable_conf_is_no_power_mode(nano):
    target = nano / "etc/nvpmodel" / EXPECTED["jetson-nano"][0]
    os.chmod(target, 0o644)
    target.write_text("not an nvpmodel file\n")
    board = JetsonBoard(Sysfs(nano))
    assert board.power_mode() is None
    assert len(board.knobs()[0].values) == 15


def test_tune_says_which_power_mode_narrowed_its_space(make_tree):
    root = make_tree("jetson-orin-nx")  # boots in 15W: CPU <= 1651.2 MHz, GPU <= 612 MHz
    res = subprocess.run([*CLI, "tune", "--root", str(root), "--board", "jetson", "--workload", "resnet18",
                          "--budget", "1", "--inferences", "16", "--repeats", "1", "--batch-sizes", "8",
                          "--sim-time-scale", "50", "--out", str(root / "run"), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    space = json.loads(res.stdout)["space"]
    assert "power mode 2 (15W)" in space["power_mode"] and "power mode 2 (15W)" in space["note"]
    assert space["knobs"]["gpu_freq_hz"] == 4 and space["knobs"]["cpu_freq_khz"] == 21

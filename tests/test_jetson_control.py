"""Applying configs to emulated Jetson trees: validation, ordering, read-back, journal, restore."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import tree_state
from tuner.boards.jetson import JetsonBoard
from tuner.config import Config
from tuner.errors import ConfigError, HardwareError
from tuner.sim.tree import settle
from tuner.sysfs import Sysfs

CLI = [sys.executable, "-m", "tuner.cli.main"]
POL = "sys/devices/system/cpu/cpufreq/policy0"
GPU = "sys/devices/gpu.0/devfreq/57000000.gpu"


def read(root, rel):
    return (root / rel).read_text().strip()


def test_apply_pins_cpu_and_gpu_and_restore_undoes_it(nano):
    before = tree_state(nano)
    board = JetsonBoard(Sysfs(nano))
    board.apply(Config({"cpu_freq_khz": 1132800, "gpu_freq_hz": 614400000, "batch_size": 8}))
    assert read(nano, f"{POL}/scaling_min_freq") == read(nano, f"{POL}/scaling_max_freq") == "1132800"
    assert read(nano, f"{GPU}/min_freq") == read(nano, f"{GPU}/max_freq") == "614400000"
    settle(nano)  # the kernel's part: cur_freq follows the window
    assert board.current()["gpu_freq_hz"] == 614400000
    assert board.current()["cpu_freq_khz"] == 1132800
    assert (nano / "var/lib/edgetune/journal.json").exists()
    assert board.restore() == []
    assert not (nano / "var/lib/edgetune/journal.json").exists()
    after = tree_state(nano)
    changed = {k for k in before if before[k] != after.get(k) and not k.endswith(("cur_freq", "target_freq"))}
    # Every knob file is back. The current frequency is the governor's business
    # (schedutil keeps 1132.8 MHz until load moves it), as on the real kernel.
    assert changed == set()


def test_raising_writes_max_before_min_and_lowering_min_before_max(nano):
    fs = Sysfs(nano)
    board = JetsonBoard(fs)
    # window [76.8, 307.2] MHz, then pin at 614.4 (raise) and back to 153.6 (lower)
    (nano / GPU / "max_freq").write_text("307200000\n")
    up = board.plan(Config({"gpu_freq_hz": 614400000}))
    assert [p.rsplit("/", 1)[1] for p, _ in up] == ["max_freq", "min_freq"]
    board.apply(Config({"gpu_freq_hz": 614400000}))
    down = board.plan(Config({"gpu_freq_hz": 153600000}))
    assert [p.rsplit("/", 1)[1] for p, _ in down] == ["min_freq", "max_freq"]


def test_unknown_frequency_is_refused_and_changes_nothing(nano):
    before = tree_state(nano)
    board = JetsonBoard(Sysfs(nano))
    with pytest.raises(ConfigError, match="gpu_freq_hz=600000000 is not one of"):
        board.apply(Config({"cpu_freq_khz": 1132800, "gpu_freq_hz": 600000000}))
    assert tree_state(nano) == before
    assert not (nano / "var/lib/edgetune/journal.json").exists()


def test_read_only_knob_file_is_refused_and_changes_nothing(nano):
    os.chmod(nano / GPU / "min_freq", 0o444)
    before = tree_state(nano)
    board = JetsonBoard(Sysfs(nano))
    with pytest.raises(HardwareError, match="read-only"):
        board.apply(Config({"cpu_freq_khz": 1132800, "gpu_freq_hz": 614400000}))
    assert tree_state(nano) == before


def test_write_that_does_not_verify_rolls_back(nano, monkeypatch):
    fs = Sysfs(nano)
    board = JetsonBoard(fs)
    before = tree_state(nano)
    real_write = Sysfs.write

    def flaky(self, dev_path, value, **kw):
        if str(dev_path).endswith("/max_freq") and kw.get("journal", True) and str(value) == "614400000":
            raise HardwareError("kernel refused 614400000")
        return real_write(self, dev_path, value, **kw)

    monkeypatch.setattr(Sysfs, "write", flaky)
    with pytest.raises(HardwareError):
        board.apply(Config({"cpu_freq_khz": 1132800, "gpu_freq_hz": 614400000}))
    assert tree_state(nano) == before


def test_a_write_cut_short_in_an_emulated_tree_leaves_the_old_value_as_sysfs_would(nano, monkeypatch):
    """A sysfs attribute takes a write whole; an emulated tree's file must too, or a kill -9
    mid-write leaves it empty and the next start cannot tell edgetune's value from another's."""
    fs = Sysfs(nano)
    before = read(nano, f"{POL}/scaling_max_freq")
    real_write = os.write

    def killed(fd, data):  # the process dies after opening the file, before its bytes land
        raise KeyboardInterrupt("kill -9")

    monkeypatch.setattr(os, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        fs.write(f"/{POL}/scaling_max_freq", 1132800, journal=False)
    monkeypatch.setattr(os, "write", real_write)
    assert read(nano, f"{POL}/scaling_max_freq") == before
    assert not list((nano / POL).glob(".*edgetune-write"))
    fs.write(f"/{POL}/scaling_max_freq", 1132800, journal=False)
    assert read(nano, f"{POL}/scaling_max_freq") == "1132800"
    assert not list((nano / POL).glob(".*edgetune-write"))


def test_an_emulated_write_keeps_the_attribute_s_mode_whatever_the_umask(nano):
    """A tree made group-writable for a non-root daemon stays so after edgetune writes to it."""
    target = nano / POL / "scaling_max_freq"
    target.chmod(0o666)
    old = os.umask(0o022)
    try:
        Sysfs(nano).write(f"/{POL}/scaling_max_freq", 1132800, journal=False)
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o666 and read(nano, f"{POL}/scaling_max_freq") == "1132800"


def test_knob_not_on_board_is_refused(nano):
    board = JetsonBoard(Sysfs(nano))
    with pytest.raises(ConfigError, match="emc_freq_hz cannot be set"):
        board.apply(Config({"emc_freq_hz": 1600000000}))


def test_governors_cores_and_emc(make_tree):
    root = make_tree("jetson-orin-nx")
    board = JetsonBoard(Sysfs(root))
    assert board.current()["cpu_cores"] == 8
    board.apply(Config({"cpu_governor": "userspace", "cpu_freq_khz": 1420800, "gpu_governor": "performance",
                        "cpu_cores": 4, "emc_freq_hz": 665600000}))
    for pol in ("policy0", "policy4"):
        base = f"sys/devices/system/cpu/cpufreq/{pol}"
        assert read(root, f"{base}/scaling_governor") == "userspace"
        assert read(root, f"{base}/scaling_setspeed") == "1420800"
    assert [read(root, f"sys/devices/system/cpu/cpu{c}/online") for c in range(1, 8)] == ["1"] * 3 + ["0"] * 4
    assert read(root, "sys/devices/17000000.ga10b/devfreq/17000000.ga10b/governor") == "performance"
    assert read(root, "sys/kernel/debug/bpmp/debug/clk/emc/mrq_rate_locked") == "1"
    assert read(root, "sys/kernel/debug/bpmp/debug/clk/emc/rate") == "665600000"
    assert board.current()["cpu_cores"] == 4
    assert board.restore() == []
    assert read(root, "sys/devices/system/cpu/cpu7/online") == "1"
    assert read(root, "sys/kernel/debug/bpmp/debug/clk/emc/mrq_rate_locked") == "0"
    with pytest.raises(ConfigError, match="cpu_cores=0"):
        board.apply(Config({"cpu_cores": 0}))


def test_unknown_governor_is_refused(nano):
    board = JetsonBoard(Sysfs(nano))
    with pytest.raises(ConfigError, match="cpu_governor=turbo"):
        board.apply(Config({"cpu_governor": "turbo"}))


def test_kill_before_restore_then_edgetune_restore(nano):
    """A process applies a config and dies by SIGKILL; `edgetune restore` undoes it."""
    before = tree_state(nano)
    script = textwrap.dedent(f"""
        import os, signal
        from tuner.boards.jetson import JetsonBoard
        from tuner.config import Config
        from tuner.sysfs import Sysfs
        b = JetsonBoard(Sysfs({str(nano)!r}))
        b.apply(Config({{"cpu_freq_khz": 403200, "gpu_freq_hz": 921600000, "cpu_governor": "userspace",
                         "gpu_governor": "userspace", "cpu_cores": 2}}))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == -signal.SIGKILL
    assert tree_state(nano) != before
    res = subprocess.run([*CLI, "restore", "--root", str(nano)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "restored" in res.stdout
    assert tree_state(nano) == before
    res = subprocess.run([*CLI, "restore", "--root", str(nano)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "nothing to restore" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["--gpu-freq", "600MHz"], "gpu_freq_hz=600000000 is not one of"),
    (["--cpu-freq", "fast"], "cannot read frequency"),
    (["--gpu-freq", "614.4MHz", "--cpu-governor", "warp"], "cpu_governor=warp"),
    ([], "nothing to apply"),
])
def test_cli_apply_bad_input_one_line_and_unchanged(nano, args, message):
    before = tree_state(nano)
    res = subprocess.run([*CLI, "apply", "--root", str(nano), *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert tree_state(nano) == before


def test_cli_apply_read_only_file_and_missing_root(nano, tmp_path):
    os.chmod(nano / GPU / "max_freq", 0o444)
    before = tree_state(nano)
    res = subprocess.run([*CLI, "apply", "--root", str(nano), "--gpu-freq", "614.4MHz", "--cpu-freq", "1428MHz"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "read-only" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert tree_state(nano) == before
    res = subprocess.run([*CLI, "apply", "--root", str(tmp_path / "missing"), "--gpu-freq", "614.4MHz"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_cli_apply_then_restore(nano):
    before = tree_state(nano)
    res = subprocess.run([*CLI, "apply", "--root", str(nano), "--gpu-freq", "614.4MHz", "--cpu-freq", "1428MHz"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert read(nano, f"{GPU}/max_freq") == "614400000"
    assert read(nano, f"{POL}/scaling_max_freq") == "1428000"
    subprocess.run([*CLI, "restore", "--root", str(nano)], check=True, capture_output=True, timeout=60)
    assert tree_state(nano) == before


def test_a_governor_write_takes_the_kernels_setspeed_rewrite_as_edgetunes(make_tree):
    """Leaving userspace makes the kernel show ``<unsupported>`` in scaling_setspeed: that is the
    effect of edgetune's own write, not another program's, so the watch must not report it."""
    root = make_tree("jetson-orin-nx")
    fs = Sysfs(root)
    pol = "/sys/devices/system/cpu/cpufreq/policy0"
    fs.write(f"{pol}/scaling_governor", "userspace")
    fs.write(f"{pol}/scaling_setspeed", "1420800")
    (root / pol.lstrip("/") / "scaling_setspeed").write_text("<unsupported>\n")  # the kernel, on the next write
    fs.write(f"{pol}/scaling_governor", "schedutil")
    assert fs.external_changes() == []
    (root / pol.lstrip("/") / "scaling_max_freq").write_text("1190400\n")  # another program: still seen
    fs.write(f"{pol}/scaling_max_freq", "1984000")
    (root / pol.lstrip("/") / "scaling_max_freq").write_text("1190400\n")
    assert [c.path for c in fs.external_changes()] == [f"{pol}/scaling_max_freq"]

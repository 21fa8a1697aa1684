"""``edgetune doctor``: every check passes on a fresh emulated tree, and each breakage is named with its fix."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.sim.profiles import PROFILES

NEEDED = {"board", "privileges", "cpufreq", "gpu", "rails"}


def doctor(root: Path, *extra: str) -> tuple[int, dict]:
    out = CliRunner().invoke(app, ["doctor", "--root", str(root), "--socket", str(root / "no.sock"), "--json",
                                   *extra])
    return out.exit_code, json.loads(out.stdout)


def by_name(doc: dict) -> dict:
    return {c["name"]: c for c in doc["checks"]}


@pytest.mark.parametrize("profile", sorted(n for n, p in PROFILES.items() if p.has_power_monitor))
def test_a_fresh_emulated_tree_passes_every_check_tuning_needs(make_tree, profile):
    code, doc = doctor(make_tree(profile))
    checks = by_name(doc)
    assert code == 0 and doc["ok"] is True
    assert {n for n, c in checks.items() if c["needed"]} == NEEDED
    for name in NEEDED:
        assert checks[name]["ok"], checks[name]
        assert checks[name]["fix"] == ""
    assert set(doc["checks"][0]) == {"name", "ok", "detail", "fix", "needed"}
    assert "simulated" in checks["board"]["detail"]
    assert "(total)" in checks["rails"]["detail"] or "no input rail" in checks["rails"]["detail"]
    # advice, not needed: no daemon runs here, so the socket check warns with its fix
    assert checks["daemon_socket"]["ok"] is False and "systemctl start edgetune" in checks["daemon_socket"]["fix"]


def test_without_the_gpu_devfreq_folder_it_fails_and_names_the_gpu(make_tree):
    root = make_tree("jetson-orin-nx")
    link = root / "sys/class/devfreq"
    for entry in list(link.iterdir()):
        real = Path(os.path.realpath(entry))
        if (real / "device/of_node/name").read_text().strip("\x00\n") in ("gp10b", "gv11b", "ga10b", "gpu"):
            shutil.rmtree(real)
            entry.unlink()
    code, doc = doctor(root)
    checks = by_name(doc)
    assert code == 1 and doc["ok"] is False
    assert checks["gpu"]["ok"] is False and "devfreq" in checks["gpu"]["detail"] and checks["gpu"]["fix"]
    assert checks["cpufreq"]["ok"] and checks["rails"]["ok"]  # the rest is still checked
    text = CliRunner().invoke(app, ["doctor", "--root", str(root)])
    assert text.exit_code == 1 and "FAIL gpu:" in text.stdout and "not ready: gpu failed" in text.stdout


def test_read_only_knob_files_fail_privileges(make_tree):
    root = make_tree("jetson-nano")
    os.chmod(root / "sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq", 0o444)
    code, doc = doctor(root)
    check = by_name(doc)["privileges"]
    assert code == 1 and not check["ok"] and "scaling_max_freq" in check["detail"] and "root" in check["fix"]


def test_a_board_without_power_monitors_is_told_to_tune_time(make_tree):
    root = make_tree("jetson-nano")  # made like a Nano 2GB, which has no INA3221
    monitors = [f.parent for f in list((root / "sys").rglob("name"))
                if f.read_text().strip() in ("ina3221x", "ina3221")]
    for d in monitors:
        shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(root / "sys/bus/i2c", ignore_errors=True)
    shutil.rmtree(root / "sys/class/hwmon", ignore_errors=True)
    code, doc = doctor(root)
    check = by_name(doc)["rails"]
    assert code == 1 and not check["ok"] and "--objective time" in check["fix"]


def test_clock_changing_services_are_advice_with_a_fix(make_tree):
    root = make_tree("jetson-xavier-nx")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (root / "lib/systemd/system").mkdir(parents=True)
    for unit in ("jtop.service", "nvpmodel.service"):
        (root / "lib/systemd/system" / unit).write_text("[Service]\n")
        os.symlink(f"../../../../lib/systemd/system/{unit}", wants / unit)
    code, doc = doctor(root)
    check = by_name(doc)["clock_services"]
    assert code == 0  # advice: tuning still works, the daemon yields to outside changes
    assert not check["ok"] and "jtop.service" in check["detail"] and "disable --now jtop" in check["fix"]
    os.unlink(wants / "jtop.service")  # nvpmodel.service alone only sets the mode at boot
    assert by_name(doctor(root)[1])["clock_services"]["ok"]


def test_the_unit_and_a_live_socket_are_reported(make_tree, tmp_path):
    root = make_tree("jetson-nano")
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (root / "etc/systemd/system/edgetune.service").write_text("[Service]\n")
    os.symlink("../edgetune.service", root / "etc/systemd/system/multi-user.target.wants/edgetune.service")
    path = tmp_path / "ctl.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:  # the daemon's side of one status request
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b'{"ok": true, "status": {"workloads": [{"name": "w", "state": "holding"}]}}\n')

    t = threading.Thread(target=answer)
    t.start()
    out = CliRunner().invoke(app, ["doctor", "--root", str(root), "--socket", str(path), "--json"])
    t.join(5)
    server.close()
    checks = by_name(json.loads(out.stdout))
    assert checks["systemd_unit"]["ok"] and "enabled" in checks["systemd_unit"]["detail"]
    assert checks["daemon_socket"]["ok"] and "holding" in checks["daemon_socket"]["detail"]
    # the socket file left behind by a dead daemon: named, not a traceback
    stale = by_name(json.loads(CliRunner().invoke(app, ["doctor", "--root", str(root), "--socket", str(path),
                                                        "--json"]).stdout))["daemon_socket"]
    assert not stale["ok"] and "does not answer" in stale["detail"]


def test_a_missing_root_is_one_line(tmp_path):
    out = CliRunner().invoke(app, ["doctor", "--root", str(tmp_path / "nope")])
    assert out.exit_code != 0 and "does not exist" in str(out.exception or out.stdout)


def test_the_power_mode_and_its_caps_are_shown(make_tree):
    root = make_tree("jetson-xavier-nx")  # boots in MODE_10W_DESKTOP: GPU capped at 510 MHz
    check = by_name(doctor(root)[1])["power_mode"]
    assert check["ok"] and "MODE_10W_DESKTOP" in check["detail"] and "GPU ≤ 510 MHz" in check["detail"]
    assert "another mode allows higher clocks" in check["detail"]
    (root / "var/lib/nvpmodel/status").write_text("pmode:0042\n")  # a mode the conf does not define
    code, doc = doctor(root)
    check = by_name(doc)["power_mode"]
    assert code == 0 and not check["ok"] and "42" in check["detail"] and "nvpmodel -m" in check["fix"]
    (root / "etc/nvpmodel.conf").unlink()
    check = by_name(doctor(root)[1])["power_mode"]
    assert check["ok"] and "no /etc/nvpmodel.conf" in check["detail"]


def test_as_a_normal_user_unreadable_debugfs_and_socket_are_named_not_a_traceback(make_tree, tmp_path):
    """On a board /sys/kernel/debug is root's (0700) and /run/edgetune root:edgetune (0750)."""
    import subprocess
    import sys

    root = make_tree("jetson-orin-nx")
    os.chmod(root / "sys/kernel/debug", 0o700)
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    # the tree and the repository must be reachable by the unprivileged user
    for p in (tmp_path, *tmp_path.parents):
        if p != Path("/"):
            os.chmod(p, os.stat(p).st_mode | 0o005)
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user")
    # everything imported first: the interpreter itself lives under /root, which uid 65534 cannot read
    script = ("import json, os, sys; from pathlib import Path; from tuner.doctor import report, run_checks; "
              "import tuner.daemon.protocol; os.setgid(65534); os.setuid(65534); "
              "print(json.dumps(report(run_checks(Path(sys.argv[1]), Path(sys.argv[2])))))")
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", script, str(root), str(run / "edgetune.sock")], capture_output=True,
                         text=True, timeout=60, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    assert "Traceback" not in out.stderr, out.stderr
    checks = by_name(json.loads(out.stdout))
    assert not checks["emc"]["ok"] and "sudo" in checks["emc"]["fix"]
    assert not checks["daemon_socket"]["ok"] and "not readable" in checks["daemon_socket"]["detail"]

"""Other programs changing the clocks edgetune holds (DESIGN §4, issue 16 item 6).

``jetson_clocks``, ``nvpmodel``, jtop or a user's ``echo`` may write a knob
file while the daemon holds a config. The daemon reads the files it wrote
back at every window and yields (state ``overridden``, writes nothing) or
reasserts the held config; a restore never writes an original back over
another program's later write. The outside writes here are plain writes to
the emulated tree's knob files, as ``echo 1984000 > scaling_max_freq`` is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from test_daemon import REPO, NotifyListener, _cli_status, _group, _start, _until, json_to_toml
from tuner.boards.jetson import JetsonBoard
from tuner.config import Config
from tuner.daemon.protocol import request
from tuner.daemon.service import Daemon
from tuner.daemon.settings import load_settings, parse_settings
from tuner.errors import ConfigError
from tuner.journal import Journal
from tuner.sysfs import ExternalChangeError, Sysfs, apply_plan

POLICY0 = "/sys/devices/system/cpu/cpufreq/policy0"
CPU_MAX = f"{POLICY0}/scaling_max_freq"
GPU = "/sys/devices/17000000.ga10b/devfreq/17000000.ga10b"
HELD_CPU_KHZ = 1420800  # the only CPU step searched, so the held config pins it
OUTSIDE_KHZ = "1651200"  # what jetson_clocks would write: the top of the power mode's range
CLI = [sys.executable, "-m", "tuner.cli.entry"]


def _settings(run_dir: Path, root: Path, action: str = "yield", group: str | None = None) -> dict:
    return {
        "daemon": {"state_dir": str(run_dir / "state"), "socket": str(run_dir / "edgetune.sock"),
                   "socket_group": group},
        "board": {"root": str(root), "time_scale": 40},
        "search": {"strategy": "ogd", "budget": "2", "inferences": 160, "repeats": 1, "max_repeats": 1,
                   "batch_sizes": [8], "cpu_freqs": ["1420.8MHz"], "gpu_freqs": ["408MHz", "612MHz"]},
        # no drift re-search: a search's own writes (the DVFS reference opens the window) would blur the check
        "watch": {"window_inferences": 400, "interval_s": 0.3, "drift_windows": 1000, "slo_windows": 1000,
                  "on_external_change": action},
        "workloads": [{"name": "alexnet"}],
    }


def _knobs(root: Path) -> dict[str, str]:
    return JetsonBoard(Sysfs(root)).snapshot()


def _read(root: Path, dev_path: str) -> str:
    return (root / dev_path.lstrip("/")).read_text().strip()


def _outside_write(root: Path, dev_path: str, value: str) -> None:
    """Another program's write: straight to the file, as `echo value > file` does."""
    (root / dev_path.lstrip("/")).write_text(value + "\n")


def _ctl(sock: Path, action: str) -> None:
    out = subprocess.run([*CLI, "control", action, "--socket", str(sock)], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr


# --- the check: a daemon process on an emulated Orin NX tree, live simulator ------------------
def test_an_outside_write_is_yielded_to_within_two_windows_and_resume_takes_the_clocks_back(make_tree, run_dir):
    root = make_tree("jetson-orin-nx")
    before = _knobs(root)
    cfg = run_dir / "edgetune.toml"
    cfg.write_text(json_to_toml(_settings(run_dir, root, group=_group())))
    notify = NotifyListener(run_dir / "notify.sock")
    log = run_dir / "daemon.log"
    proc = _start(cfg, notify, log)
    sock = run_dir / "edgetune.sock"
    try:
        notify.wait_for("READY=1")
        held = _until(lambda: (w := _cli_status(sock)["workloads"][0])["state"] == "holding" and w["windows"] >= 1
                      and w, timeout=120, what="holding")
        assert held["applied"]["cpu_freq_khz"] == HELD_CPU_KHZ and held["external_changes"] == 0
        assert held["on_external_change"] == "yield"
        assert _read(root, CPU_MAX) == str(HELD_CPU_KHZ)

        windows = request(sock, {"cmd": "status"})["status"]["workloads"][0]["windows"]
        _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
        w = _until(lambda: (w := _cli_status(sock)["workloads"][0])["state"] == "overridden" and w, timeout=60,
                   what="overridden")
        assert w["windows"] <= windows + 2
        assert CPU_MAX in w["reason"] and OUTSIDE_KHZ in w["reason"] and str(HELD_CPU_KHZ) in w["reason"]
        assert w["external_changes"] == 1
        last = w["last_external_change"]
        assert last["action"] == "yielded"
        assert last["files"] == [{"path": CPU_MAX, "found": OUTSIDE_KHZ, "written": str(HELD_CPU_KHZ)}]
        text = subprocess.run([*CLI, "status", "--socket", str(sock)], capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
        assert f"alexnet: overridden (another program wrote {OUTSIDE_KHZ} to" in text
        assert "outside:  1 change by other programs" in text

        # edgetune writes nothing while overridden: no knob file and no journal entry moves
        journal = root / "var/lib/edgetune/journal.json"
        frozen, journalled = _knobs(root), journal.read_text()
        time.sleep(1.5)
        assert _knobs(root) == frozen and journal.read_text() == journalled
        assert _read(root, CPU_MAX) == OUTSIDE_KHZ
        assert _cli_status(sock)["workloads"][0]["windows"] == w["windows"]
        assert f"another program wrote {OUTSIDE_KHZ} to {CPU_MAX}" in log.read_text()

        _ctl(sock, "resume")
        back = _until(lambda: (w := _cli_status(sock)["workloads"][0])["state"] == "holding" and w, timeout=30,
                      what="holding again")
        assert back["reason"] == "resumed by request" and back["applied"] == held["applied"]
        assert _read(root, CPU_MAX) == str(HELD_CPU_KHZ)
        _until(lambda: _cli_status(sock)["workloads"][0]["windows"] > w["windows"], what="windows again")
        assert _cli_status(sock)["workloads"][0]["state"] == "holding"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        notify.close()
    assert code == 0, log.read_text()
    assert _knobs(root) == before  # after resume the file was edgetune's again, so it was restored too
    assert not (root / "var/lib/edgetune/journal.json").exists()


def test_sigterm_while_overridden_keeps_the_outside_value_and_restores_the_rest(make_tree, run_dir):
    root = make_tree("jetson-orin-nx")
    before = _knobs(root)
    d = Daemon(parse_settings(_settings(run_dir, root)))
    t = threading.Thread(target=d.run)
    t.start()
    sock = run_dir / "edgetune.sock"
    try:
        _until(lambda: _workload(sock).get("state") == "holding", timeout=120, what="holding")
        _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
        _until(lambda: _workload(sock)["state"] == "overridden", timeout=60, what="overridden")
    finally:
        d.request_stop()
        t.join(timeout=60)
    assert not t.is_alive()
    after = _knobs(root)
    assert after[CPU_MAX] == OUTSIDE_KHZ
    assert {k for k in before if before[k] != after[k]} == {CPU_MAX}
    assert not (root / "var/lib/edgetune/journal.json").exists()


def _workload(sock: Path) -> dict:
    doc = request(sock, {"cmd": "status"})["status"]
    return doc["workloads"][0] if doc.get("workloads") else {}


def test_reassert_logs_counts_and_applies_the_held_config_again(make_tree, run_dir, caplog):
    root = make_tree("jetson-orin-nx")
    d = Daemon(parse_settings(_settings(run_dir, root, action="reassert")))
    t = threading.Thread(target=d.run)
    t.start()
    sock = run_dir / "edgetune.sock"
    caplog.set_level(logging.WARNING, logger="edgetune.daemon")
    try:
        held = _until(lambda: _workload(sock).get("state") == "holding" and _workload(sock), timeout=120,
                      what="holding")
        gpu_max = f"{GPU}/max_freq"
        ours = _read(root, gpu_max)
        assert ours == str(held["applied"]["gpu_freq_hz"])
        outside = "306000000"  # a clock edgetune did not search
        _outside_write(root, gpu_max, outside)
        w = _until(lambda: _workload(sock).get("external_changes") == 1 and _workload(sock), timeout=60,
                   what="a counted external change")
        assert w["state"] == "holding" and w["last_external_change"]["action"] == "reasserted"
        assert w["last_external_change"]["files"][0] == {"path": gpu_max, "found": outside, "written": ours}
        _until(lambda: _read(root, gpu_max) == ours, timeout=10, what="the held value back")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(gpu_max in m and outside in m and "re-applying the held config" in m for m in warnings), warnings
        assert d.errors["knob"] == 0

        _outside_write(root, gpu_max, outside)  # again: counted again, reasserted again
        _until(lambda: _workload(sock).get("external_changes") == 2, timeout=60, what="a second change")
        _until(lambda: _read(root, gpu_max) == ours, timeout=10, what="the held value back again")
        assert _workload(sock)["state"] == "holding"
    finally:
        d.request_stop()
        t.join(timeout=60)
    assert not t.is_alive()


def test_overridden_survives_a_restart_and_retune_takes_the_clocks_back(make_tree, run_dir):
    root = make_tree("jetson-orin-nx")
    settings = parse_settings(_settings(run_dir, root))
    sock = run_dir / "edgetune.sock"
    d = Daemon(settings)
    t = threading.Thread(target=d.run)
    t.start()
    try:
        _until(lambda: _workload(sock).get("state") == "holding", timeout=120, what="holding")
        _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
        _until(lambda: _workload(sock)["state"] == "overridden", timeout=60, what="overridden")
    finally:
        d.request_stop()
        t.join(timeout=60)
    d = Daemon(settings)
    t = threading.Thread(target=d.run)
    t.start()
    try:
        w = _until(lambda: _workload(sock).get("state") and _workload(sock), timeout=60, what="started")
        assert w["state"] == "overridden" and CPU_MAX in w["reason"]
        time.sleep(1.0)
        assert _read(root, CPU_MAX) == OUTSIDE_KHZ and _workload(sock)["state"] == "overridden"
        request(sock, {"cmd": "retune"})
        _until(lambda: _workload(sock)["state"] == "holding" and _workload(sock)["epoch"] == 1, timeout=120,
               what="holding after the retune")
        assert _read(root, CPU_MAX) == str(HELD_CPU_KHZ)
    finally:
        d.request_stop()
        t.join(timeout=60)
    assert not t.is_alive()


def test_a_change_during_a_search_is_noticed_at_the_next_trial_and_resume_searches_on(make_tree, run_dir):
    root = make_tree("jetson-orin-nx")
    settings = _settings(run_dir, root)
    settings["search"].update(budget="4", inferences=800, gpu_freqs=["306MHz", "408MHz", "510MHz", "612MHz"])
    d = Daemon(parse_settings(settings))
    t = threading.Thread(target=d.run)
    t.start()
    sock = run_dir / "edgetune.sock"
    try:
        _until(lambda: _workload(sock).get("state") == "exploring" and _workload(sock)["trials_used"] >= 1,
               timeout=120, what="a search under way")
        _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
        w = _until(lambda: _workload(sock)["state"] == "overridden" and _workload(sock), timeout=60,
                   what="overridden")
        assert d.ws is not None and d.ws.resume_state == "exploring" and w["trials_used"] < 4
        assert CPU_MAX in w["reason"] and _read(root, CPU_MAX) == OUTSIDE_KHZ
        request(sock, {"cmd": "resume"})
        w = _until(lambda: _workload(sock)["state"] == "holding" and _workload(sock), timeout=120,
                   what="holding after the search")
        assert w["epoch"] == 0 and w["searches"] == 1  # the same search, resumed from the store
        assert _read(root, CPU_MAX) == str(HELD_CPU_KHZ)
    finally:
        d.request_stop()
        t.join(timeout=60)
    assert not t.is_alive()


# --- the guard under every write, and the read-back ------------------------------------------------
def test_the_guard_refuses_before_writing_and_a_held_config_is_reapplied_without_writes(make_tree):
    root = make_tree("jetson-orin-nx")
    fs = Sysfs(root)
    board = JetsonBoard(fs)
    config = Config({"cpu_freq_khz": HELD_CPU_KHZ, "gpu_freq_hz": 612000000})
    board.apply(config)
    assert fs.external_changes() == []
    assert fs.written[CPU_MAX] == str(HELD_CPU_KHZ) and f"{GPU}/cur_freq" not in fs.written

    fs.check_before_write = True
    writes = []
    real = Sysfs.write

    def counting(self, path, value, **kw):
        writes.append(path)
        return real(self, path, value, **kw)

    Sysfs.write = counting
    try:
        board.apply(config)  # the same config again: every file already holds it
        assert writes == []
        (root / GPU.lstrip("/") / "cur_freq").write_text("918000000\n")  # a derived file moving is no change
        _outside_write(root, CPU_MAX, f"{OUTSIDE_KHZ} ")  # the same number with a blank is no change either
        _outside_write(root, CPU_MAX, f"{HELD_CPU_KHZ} ")
        assert fs.external_changes() == []
        _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
        with pytest.raises(ExternalChangeError) as err:
            board.apply(Config({"cpu_freq_khz": HELD_CPU_KHZ, "gpu_freq_hz": 408000000}))
        assert writes == [] and CPU_MAX in str(err.value) and OUTSIDE_KHZ in str(err.value)
        assert _read(root, f"{GPU}/max_freq") == "612000000"  # all or nothing: not even the GPU was written
        fs.forget([CPU_MAX])  # what a command does to take the clocks back
        board.apply(config)
        assert writes == [CPU_MAX] and _read(root, CPU_MAX) == str(HELD_CPU_KHZ)
    finally:
        Sysfs.write = real
    # without check_before_write (one-shot commands) nothing changes: writes go through
    fs.check_before_write = False
    _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
    apply_plan(fs, [(CPU_MAX, str(HELD_CPU_KHZ))])
    assert _read(root, CPU_MAX) == str(HELD_CPU_KHZ)
    assert board.restore() == []


# --- restore never writes over another program's later write ------------------------------------------
def test_restore_leaves_the_outside_value_and_restores_every_other_file(make_tree, caplog):
    root = make_tree("jetson-orin-nx")
    before = _knobs(root)
    fs = Sysfs(root)
    board = JetsonBoard(fs)
    board.apply(Config({"cpu_freq_khz": HELD_CPU_KHZ, "gpu_freq_hz": 612000000, "gpu_governor": "performance"}))
    changed = {k for k, v in _knobs(root).items() if v != before[k]}
    assert CPU_MAX in changed and len(changed) >= 5
    _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
    caplog.set_level(logging.WARNING, logger="edgetune.sysfs")
    assert board.restore() == []
    after = _knobs(root)
    assert after[CPU_MAX] == OUTSIDE_KHZ
    assert {k for k in before if before[k] != after[k]} == {CPU_MAX}
    report = fs.last_restore
    assert [(s.path, s.found, s.written) for s in report.skipped] == [(CPU_MAX, OUTSIDE_KHZ, str(HELD_CPU_KHZ))]
    assert CPU_MAX not in report.restored and set(report.restored) >= changed - {CPU_MAX}
    assert any(CPU_MAX in r.getMessage() and "another program" in r.getMessage() for r in caplog.records)
    assert not (root / "var/lib/edgetune/journal.json").exists()  # the skipped file left the journal too


def test_edgetune_restore_after_a_kill_leaves_the_outside_value(make_tree):
    root = make_tree("jetson-orin-nx")
    before = _knobs(root)
    script = textwrap.dedent(f"""
        import os, signal
        from tuner.boards.jetson import JetsonBoard
        from tuner.config import Config
        from tuner.sysfs import Sysfs
        JetsonBoard(Sysfs({str(root)!r})).apply(Config({{"cpu_freq_khz": {HELD_CPU_KHZ}, "gpu_freq_hz": 612000000}}))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == -signal.SIGKILL
    doc = json.loads((root / "var/lib/edgetune/journal.json").read_text())
    assert doc["version"] == 2 and all(len(e) == 2 for e in doc["entries"])  # entries as version 1 read them
    assert doc["written"][CPU_MAX] == [str(HELD_CPU_KHZ)]
    _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
    res = subprocess.run([*CLI, "restore", "--root", str(root)], capture_output=True, text=True, timeout=60,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert f"not restoring {CPU_MAX}: left at {OUTSIDE_KHZ}" in res.stderr
    assert "1 left as another program set them" in res.stdout
    after = _knobs(root)
    assert after[CPU_MAX] == OUTSIDE_KHZ and {k for k in before if before[k] != after[k]} == {CPU_MAX}


def test_an_old_format_journal_still_restores(make_tree):
    """A version-1 journal (originals only, as edgetune wrote before) restores every file, as it did."""
    root = make_tree("jetson-orin-nx")
    before = _knobs(root)
    gpu_min, gpu_max = f"{GPU}/min_freq", f"{GPU}/max_freq"
    for path, value in ((CPU_MAX, "1420800"), (f"{POLICY0}/scaling_min_freq", "1420800"), (gpu_max, "612000000"),
                        (gpu_min, "612000000")):
        _outside_write(root, path, value)
    journal = root / "var/lib/edgetune/journal.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(json.dumps({"version": 1, "pid": 1, "entries": [
        [CPU_MAX, before[CPU_MAX]], [f"{POLICY0}/scaling_min_freq", before[f"{POLICY0}/scaling_min_freq"]],
        [gpu_min, before[gpu_min]], [gpu_max, before[gpu_max]]]}))
    res = subprocess.run([*CLI, "restore", "--root", str(root)], capture_output=True, text=True, timeout=60,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert "restored 4 values" in res.stdout and "not restoring" not in res.stderr
    assert _knobs(root) == before and not journal.exists()


def test_the_journal_knows_both_values_while_a_write_is_under_way(tmp_path):
    """A crash between fsyncing the journal and writing the file leaves either value: both are edgetune's."""
    j = Journal(tmp_path / "journal.json")
    files = {"a": "100"}
    j.record("a", "100", writing="200")
    j.wrote("a", "200")
    assert j.written() == {"a": ["200"]}
    j.record("a", "100", writing="300")  # killed here: the file still holds 200
    assert j.written() == {"a": ["200", "300"]}
    files["a"] = "200"

    def write(path, value):
        files[path] = value

    report = j.restore_report(write, read=files.get)
    assert report.restored == ["a"] and report.skipped == [] and files["a"] == "100"
    j.record("a", "100", writing="200")
    j.wrote("a", "200")
    files["a"] = "250"  # someone else's
    report = j.restore_report(write, read=files.get)
    assert report.skipped and report.skipped[0].found == "250" and files["a"] == "250" and not j
    j.record("a", "100", writing="200")
    j.wrote("a", "200")
    files["a"] = "100"  # someone else wrote the original back: restoring it changes nothing
    assert j.restore_report(write, read=files.get).restored == ["a"]


# --- settings and status text ---------------------------------------------------------------------
def test_on_external_change_is_validated_and_defaults_to_yield(tmp_path):
    path = tmp_path / "edgetune.toml"
    path.write_text("[[workloads]]\nname = 'alexnet'\n[watch]\non_external_change = 'reasert'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: watch.on_external_change: unknown action 'reasert'") and "\n" not in msg
    assert "yield, reassert" in msg
    path.write_text("[[workloads]]\nname = 'alexnet'\n")
    assert load_settings(path).watch.on_external_change == "yield"
    assert load_settings(REPO / "systemd/edgetune.toml").watch.on_external_change == "yield"


def test_the_status_text_shows_an_override():
    from tuner.cli.status import format_status

    w = {"name": "w", "state": "overridden", "applied": {"cpu_freq_khz": 1420800}, "manual": False,
         "reason": f"another program wrote 1984000 to {CPU_MAX} (edgetune had written 1420800); edgetune writes "
                   "nothing until `edgetune control resume` or `retune`",
         "trials_used": 2, "searches": 1, "windows": 3, "external_changes": 2,
         "last_external_change": {"at": 1.0, "action": "yielded", "files": [
             {"path": CPU_MAX, "found": "1984000", "written": "1420800"},
             {"path": f"{POLICY0}/scaling_min_freq", "found": "1984000", "written": "1420800"}]}}
    text = format_status({"version": "x", "pid": 1, "uptime_s": 5, "board": {"name": "jetson-orin-nx"},
                          "simulated": True, "workloads": [w]})
    assert f"w: overridden (another program wrote 1984000 to {CPU_MAX}" in text
    assert f"outside:  2 changes by other programs; last: {CPU_MAX} = 1984000 (edgetune wrote 1420800) " \
           "and 1 more, yielded" in text
    assert "outside" not in format_status({"version": "x", "pid": 1, "uptime_s": 5, "board": {"name": "b"},
                                           "workloads": [{**w, "state": "holding", "external_changes": 0}]})


@pytest.fixture
def run_dir(tmp_path_factory):
    # short and reachable: a Unix socket path is limited to 108 bytes
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="edgetune-override-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def _holding_daemon(make_tree, run_dir: Path, action: str = "yield"):
    """A daemon process on an emulated Orin NX tree, holding its config: (root, socket); stopped with
    SIGTERM afterwards, which must exit 0."""
    root = make_tree("jetson-orin-nx")
    cfg = run_dir / "edgetune.toml"
    cfg.write_text(json_to_toml(_settings(run_dir, root, action=action, group=_group())))
    notify = NotifyListener(run_dir / "notify.sock")
    log = run_dir / "daemon.log"
    proc = _start(cfg, notify, log)
    sock = run_dir / "edgetune.sock"
    try:
        notify.wait_for("READY=1")
        _until(lambda: _cli_status(sock)["workloads"][0]["state"] == "holding", timeout=120, what="holding")
        yield root, sock
        assert proc.poll() is None, log.read_text()  # alive, answering
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        notify.close()
    assert code == 0, log.read_text()


def test_a_power_mode_that_lowers_the_caps_pauses_the_daemon_with_why(make_tree, run_dir):
    """`nvpmodel -m 1` under a daemon holding 1420.8 MHz (10W caps the CPU at 1190.4 MHz): reasserting
    is refused by the board; the daemon pauses and says why instead of dying."""
    with _holding_daemon(make_tree, run_dir, action="reassert") as (root, sock):
        _outside_write(root, "/var/lib/nvpmodel/status", "pmode:0001")  # what nvpmodel -m 1 leaves behind
        _outside_write(root, CPU_MAX, "1190400")
        w = _until(lambda: (w := _cli_status(sock)["workloads"][0])["state"] == "paused" and w, timeout=60,
                   what="paused")
        assert "1190400 kHz cap of power mode 1" in w["reason"] and "retune" in w["reason"]
        assert _cli_status(sock)["errors"]["knob"] >= 1


def test_overridden_ends_by_itself_when_the_outside_value_is_undone(make_tree, run_dir):
    """`jetson_clocks --restore` (or a thermal cap lifting) puts edgetune's value back: the daemon
    takes its clocks back without anyone running `control resume`."""
    with _holding_daemon(make_tree, run_dir) as (root, sock):
        _outside_write(root, CPU_MAX, OUTSIDE_KHZ)
        _until(lambda: _cli_status(sock)["workloads"][0]["state"] == "overridden", timeout=60, what="overridden")
        _outside_write(root, CPU_MAX, str(HELD_CPU_KHZ))
        w = _until(lambda: (w := _cli_status(sock)["workloads"][0])["state"] == "holding" and w, timeout=60,
                   what="holding again")
        assert w["reason"] == "the outside change was undone" and w["external_changes"] == 1

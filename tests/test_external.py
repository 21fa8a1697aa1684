"""External workloads: a process edgetune starts or attaches to, reporting through workloads.client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuner.boards.jetson import JetsonBoard
from tuner.config import BATCH_SIZE
from tuner.errors import ConfigError
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import build_space, search
from tuner.strategies import make_strategy
from tuner.sysfs import Sysfs
from workloads.client import CHANNEL_ENV, Client
from workloads.external import ExternalWorkload

REPO = Path(__file__).resolve().parent.parent

# An application edgetune did not write: it asks the client for its batch size, "infers"
# (sleeps 2 ms per item), reports each batch, and on SIGTERM writes how much it reported.
APP = """
import signal, sys, time
from workloads.client import Client

client, total, running = Client(), 0, True

def stop(*_):
    global running
    running = False

signal.signal(signal.SIGTERM, stop)
while running:
    batch = client.batch_size(default=1)
    t0 = time.perf_counter()
    time.sleep(0.002 * batch)
    client.report(batch, time.perf_counter() - t0)
    total += batch
open(sys.argv[1], "w").write(str(total))
"""


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def test_a_child_process_is_tuned_over_two_batch_sizes_and_its_counts_match(app, tmp_path, nano):
    count_file = tmp_path / "count.txt"
    wl = ExternalWorkload(command=[sys.executable, str(app), str(count_file)], batch_sizes=[2, 4])
    runner = TrialRunner(JetsonBoard(Sysfs(nano)), wl, RunPolicy(inferences=40, min_repeats=2, max_repeats=2,
                                                                 settle_s=0.0))
    space = build_space(runner, {BATCH_SIZE: None})
    try:
        result = search(make_strategy("sweep", space), runner, Objective.parse("time"), len(space) + 5)
    finally:
        runner.teardown()
    trials = {s.trial.config[BATCH_SIZE]: s.trial for s in result.steps}
    assert set(trials) == {2, 4}
    for batch, trial in trials.items():
        assert trial.measurement.feasible, trial.measurement.failure
        for r in trial.repeats:
            assert r.inferences == 40  # 40 is a multiple of both batch sizes
        # the application ran the batch size edgetune asked for: 2 ms per item
        assert trial.measurement.batch_latency_p50_s == pytest.approx(0.002 * batch, rel=0.5, abs=0.003)
    assert result.best is not None
    assert int(count_file.read_text()) == wl.reported > 0  # every report the app sent was received
    assert not wl.channel.exists()  # its own channel directory is cleaned up


def test_attach_to_a_running_process_and_leave_it_running(app, tmp_path):
    channel = tmp_path / "channel"
    channel.mkdir()
    count_file = tmp_path / "count.txt"
    proc = subprocess.Popen([sys.executable, str(app), str(count_file)],
                            env={**os.environ, CHANNEL_ENV: str(channel)})
    try:
        wl = ExternalWorkload(pid=proc.pid, channel=str(channel))
        from tuner.config import Config

        wl.setup(Config({BATCH_SIZE: 8}))
        out = wl.run(64)
        assert out.inferences == 64 and len(out.batch_latencies_s) == 8
        wl.teardown()
        time.sleep(0.2)
        assert proc.poll() is None  # attached, not owned
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert channel.exists()


# edgetune, reduced to what matters here: start the application, report its pid, wait to be killed.
OWNER = """
import sys, time
from tuner.config import Config
from workloads.external import ExternalWorkload

wl = ExternalWorkload(command=[sys.executable, sys.argv[1], sys.argv[2]], batch_sizes=[2])
wl.setup(Config({"batch_size": 2}))
print(wl.proc.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_started_application_ends_when_edgetune_is_killed_with_sigkill(app, tmp_path):
    owner = tmp_path / "owner.py"
    owner.write_text(OWNER)
    count_file = tmp_path / "count.txt"
    proc = subprocess.Popen([sys.executable, str(owner), str(app), str(count_file)], stdout=subprocess.PIPE,
                            text=True)
    try:
        child = int(proc.stdout.readline())
        assert _alive(child)
        proc.kill()  # no teardown runs
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
        assert count_file.exists()  # it got SIGTERM, so it ended its own way (the app's handler wrote this)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_process_that_never_reports_is_infeasible_and_a_dead_one_is_a_crash(tmp_path, nano):
    silent = ExternalWorkload(command=[sys.executable, "-c", "import time; time.sleep(30)"], batch_sizes=[1],
                              switch_timeout_s=0.5)
    runner = TrialRunner(JetsonBoard(Sysfs(nano)), silent, RunPolicy(inferences=4, min_repeats=1, max_repeats=1,
                                                                      settle_s=0.0))
    from tuner.config import Config

    try:
        m = runner.measure(Config({BATCH_SIZE: 1})).measurement
    finally:
        runner.teardown()
    assert not m.feasible and "did not switch" in m.failure
    with pytest.raises(ConfigError, match="either command"):
        ExternalWorkload()
    with pytest.raises(ConfigError, match="needs channel"):
        ExternalWorkload(pid=os.getpid())
    with pytest.raises(ConfigError, match="not found"):
        ExternalWorkload(command="no-such-program-xyz --serve")


def test_the_client_is_a_no_op_without_edgetune(tmp_path, monkeypatch):
    monkeypatch.delenv(CHANNEL_ENV, raising=False)
    c = Client()
    assert not c.enabled and c.batch_size(default=8) == 8
    c.report(8, 0.01)  # nothing listening, nothing raised
    c2 = Client(tmp_path)  # a channel nobody serves yet
    assert c2.batch_size(default=3) == 3
    c2.report(3, 0.01)
    (tmp_path / "knobs.json").write_text(json.dumps({"generation": 4, "knobs": {"batch_size": 16}}))
    assert c2.batch_size(default=3) == 16


def test_edgetune_run_drives_an_external_command(app, tmp_path):
    count_file = tmp_path / "count.txt"
    out = subprocess.run([sys.executable, "-m", "tuner.cli.entry", "run", "--workload", "external", "--board",
                          "linux", "-o", f"command={sys.executable} {app} {count_file}", "--batch-size", "4",
                          "--inferences", "20", "--json"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["inferences"] == 20 and doc["feasible"] and doc["simulated"] is False
    assert int(count_file.read_text()) >= 24  # the warm-up batch, the 20 measured, and what ran meanwhile


def test_the_daemon_tunes_an_application_it_did_not_write(app, tmp_path, nano):
    import threading

    from tuner.daemon.protocol import request
    from tuner.daemon.service import Daemon
    from tuner.daemon.settings import parse_settings

    settings = parse_settings({
        "daemon": {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "ctl.sock"), "socket_group": None},
        "board": {"root": str(nano), "live_sim": False},
        "search": {"strategy": "sweep", "budget": "4", "inferences": 40, "repeats": 1, "max_repeats": 1,
                   "batch_sizes": [2, 4], "cpu_freqs": ["1479MHz"], "gpu_freqs": ["921.6MHz"]},
        "watch": {"window_inferences": 20},
        "workloads": [{"name": "external",
                       "options": {"command": [sys.executable, str(app), str(tmp_path / "count.txt")]}}],
    })
    d = Daemon(settings)
    t = threading.Thread(target=d.run)
    t.start()
    try:
        deadline = time.monotonic() + 60
        w: dict = {}
        while time.monotonic() < deadline:
            try:
                w = request(tmp_path / "ctl.sock", {"cmd": "status"})["status"]["workloads"][0]
            except Exception:
                w = {}
            if w.get("state") == "holding" and w.get("windows", 0) >= 2:
                break
            time.sleep(0.1)
        assert w.get("state") == "holding", w
        assert w["applied"]["batch_size"] in (2, 4) and w["trials_used"] == 4  # both, then both re-measured
        assert w["last_window"]["feasible"] and w["throughput_ips"] > 0
    finally:
        d.request_stop()
        t.join(timeout=30)
    assert int((tmp_path / "count.txt").read_text()) > 0  # the application was stopped cleanly (SIGTERM)


def test_edgetune_tune_an_external_command_on_an_emulated_tree(app, tmp_path, nano):
    count_file = tmp_path / "count.txt"
    out = subprocess.run([sys.executable, "-m", "tuner.cli.entry", "tune", "--workload", "external",
                          "--root", str(nano), "-o", f"command={sys.executable} {app} {count_file}",
                          "--strategy", "sweep",
                          "--batch-sizes", "2,4", "--cpu-freqs", "1479MHz", "--gpu-freqs", "921.6MHz",
                          "--inferences", "40", "--repeats", "1", "--out", str(tmp_path / "run"), "--json"],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["best"]["config"]["batch_size"] in (2, 4) and doc["n_infeasible"] == 0
    assert int(count_file.read_text()) > 0

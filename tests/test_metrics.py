"""Prometheus metrics of the daemon (tuner/metrics.py, `[metrics]`; DESIGN §9).

A real daemon process on an emulated Nano tree (the live simulator animates
it) serves ``/metrics`` on a loopback port and writes a node_exporter
textfile; the scrape parses with the Prometheus client's own parser and holds
every metric with plausible values. A real Prometheus server (Debian's
``prometheus`` package), started here on loopback with its own config and
storage in a temporary directory, scrapes that daemon, and a PromQL query
through its HTTP API returns the daemon's power. With ``[metrics]`` off no
port is opened and ``prometheus_client`` is not even imported.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tuner.daemon.protocol import request
from tuner.daemon.service import STATES, Daemon
from tuner.daemon.settings import parse_listen, parse_settings
from tuner.errors import ConfigError, EdgetuneError
from tuner.sim.tree import create_tree

REPO = Path(__file__).resolve().parent.parent
BASE_LABELS = {"board", "model", "workload", "simulated"}
# every family the daemon exports (the text format's family names: counters without _total)
FAMILIES = {
    "edgetune_power_watts": "gauge", "edgetune_energy_joules": "counter", "edgetune_inferences": "counter",
    "edgetune_energy_per_inference_joules": "gauge", "edgetune_saving_ratio": "gauge", "edgetune_state": "gauge",
    "edgetune_trials": "counter", "edgetune_exploration_joules": "counter", "edgetune_knob_value": "gauge",
    "edgetune_temperature_celsius": "gauge", "edgetune_errors": "counter",
}


def _until(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except (EdgetuneError, OSError, ValueError, KeyError, IndexError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URLs built here
        return r.read().decode()


def _samples(text: str) -> dict[str, list]:
    """Family name -> samples; also checks each family's type."""
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name in FAMILIES:
            assert fam.type == FAMILIES[fam.name], fam.name
        out[fam.name] = list(fam.samples)
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- settings ---------------------------------------------------------------------------------
def test_metrics_settings_are_off_by_default_and_loopback_when_given_a_port():
    s = parse_settings({"workloads": [{"name": "alexnet"}]})
    assert not s.metrics.enabled and s.metrics.address() is None
    assert parse_listen("9642") == ("127.0.0.1", 9642) == parse_listen(":9642")
    assert parse_listen("[::1]:9642") == ("::1", 9642) and parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    for bad, msg in [({"listen": "::1:9642"}, "IPv6 address in brackets"), ({"listen": "localhost"}, "host:port"),
                     ({"listen": "1:99999"}, "host:port"), ({"textfile": "edgetune.prom"}, "absolute path"),
                     ({"textfile": "/tmp/edgetune.txt"}, "ending in .prom"), ({"port": 9642}, "metrics.port")]:
        with pytest.raises(ConfigError, match=msg):
            parse_settings({"metrics": bad, "workloads": [{"name": "alexnet"}]}, "x.toml")


def test_the_example_config_documents_metrics_and_keeps_them_off():
    text = (REPO / "systemd/edgetune.toml").read_text()
    assert "[metrics]" in text and "listen" in text and "textfile" in text
    from tuner.daemon.settings import load_settings

    assert not load_settings(REPO / "systemd/edgetune.toml").metrics.enabled


# --- the collector on a snapshot ---------------------------------------------------------------
def test_the_collector_reads_the_snapshot_and_says_nothing_it_does_not_know():
    from tuner.metrics import Exporter

    doc = {"board": {"name": "jetson-orin-nx", "model": "NVIDIA Orin NX"}, "simulated": False,
           "temperatures_c": {"CPU-therm": 51.5, "PMIC-Die": 100.0, "dead": float("nan")},
           "errors": {"sensor": 2, "knob": 0},
           "workloads": [{"name": "resnet18", "state": "paused", "saving_vs_dvfs": None,
                          "applied": {"gpu_freq_hz": 612000000, "cpu_governor": "schedutil"},
                          "last_window": {}, "measured": {"energy_j": 12.5, "inferences": 300, "trials": 3,
                                                          "exploration_j": 10.0, "power_w": 7.5,
                                                          "rails_w": {"VDD_IN": 7.5}}}]}
    fams = _samples(generate_latest(Exporter(lambda: doc).registry).decode())
    for samples in fams.values():
        for s in samples:
            assert "simulated" not in s.labels  # a real board has no simulated label
    assert fams["edgetune_power_watts"] == [] and fams["edgetune_knob_value"] == []  # paused: not measuring
    assert fams["edgetune_saving_ratio"] == [] and fams["edgetune_energy_per_inference_joules"] == []
    assert {s.labels["zone"]: s.value for s in fams["edgetune_temperature_celsius"]} == {"CPU-therm": 51.5}
    assert {s.labels["state"]: s.value for s in fams["edgetune_state"]} == {st: float(st == "paused") for st in STATES}
    assert {s.labels["kind"]: s.value for s in fams["edgetune_errors"]} == {"sensor": 2.0, "knob": 0.0}
    assert fams["edgetune_energy_joules"][0].value == 12.5 and fams["edgetune_trials"][0].value == 3

    doc["workloads"][0]["state"] = "holding"
    fams = _samples(generate_latest(Exporter(lambda: doc).registry).decode())
    assert {s.labels["rail"]: s.value for s in fams["edgetune_power_watts"]} == {"total": 7.5, "VDD_IN": 7.5}
    assert [(s.labels["knob"], s.value) for s in fams["edgetune_knob_value"]] == [("gpu_freq_hz", 612000000.0)]
    assert [(s.labels["knob"], s.labels["value"]) for s in fams["edgetune_knob_info"]] == [
        ("cpu_governor", "schedutil")]


# --- in-process: faults of the exporter are counted, never fatal ----------------------------------
def _analytic(tmp_path: Path, metrics: dict) -> dict:
    return {"daemon": {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "ctl.sock"),
                       "socket_group": None},
            "board": {"spec": "sim:jetson-nano", "time_scale": 1e6},
            "search": {"strategy": "ogd", "budget": "4", "inferences": 400, "batch_sizes": [8, 16]},
            "metrics": metrics, "workloads": [{"name": "alexnet"}]}


def test_a_taken_port_or_an_unwritable_textfile_is_counted_and_the_daemon_carries_on(tmp_path):
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    textfile = tmp_path / "missing-dir" / "edgetune.prom"
    d = Daemon(parse_settings(_analytic(tmp_path, {"listen": f"127.0.0.1:{port}", "textfile": str(textfile)})))
    t = threading.Thread(target=d.run)
    t.start()
    try:
        st = _until(lambda: (lambda s: s["workloads"][0]["state"] == "holding" and s)(d.status_snapshot()),
                    timeout=60, what="holding")
        assert st["metrics"] == {"url": None, "textfile": str(textfile)}
        _until(lambda: d.status_snapshot()["errors"]["metrics"] >= 2, timeout=10, what="counted write failures")
        assert t.is_alive()
        textfile.parent.mkdir()  # the directory appears: the next write succeeds
        _until(textfile.exists, timeout=10, what="the textfile")
        assert "edgetune_state" in {f.name for f in text_string_to_metric_families(textfile.read_text())}
    finally:
        d.request_stop()
        t.join(timeout=30)
        taken.close()
    assert not t.is_alive() and not textfile.exists()  # removed at stop: the board is restored, its numbers gone


# --- metrics off: no port, no prometheus_client --------------------------------------------------
OFF_SCRIPT = textwrap.dedent("""
    import json, os, sys, threading, time
    from tuner.daemon.service import Daemon
    from tuner.daemon.settings import parse_settings
    d = Daemon(parse_settings(json.loads(sys.argv[1])))
    t = threading.Thread(target=d.run)
    t.start()
    end = time.monotonic() + 60
    while time.monotonic() < end and not (d.status_snapshot().get("workloads") or [{}])[0].get("windows"):
        time.sleep(0.05)
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    listening = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN, one of ours
                listening.append(cols[1])
    out = {"windows": d.status_snapshot()["workloads"][0]["windows"], "listening": listening,
           "metrics": d.status_snapshot()["metrics"], "imported": "prometheus_client" in sys.modules}
    d.request_stop()
    t.join(30)
    print(json.dumps(out))
""")


def test_with_metrics_off_no_port_is_opened_and_prometheus_client_is_not_imported(tmp_path):
    settings = _analytic(tmp_path, {})
    out = subprocess.run([sys.executable, "-c", OFF_SCRIPT, json.dumps(settings)], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["windows"] >= 1  # it ran: searched, held and measured a window
    assert doc == {"windows": doc["windows"], "listening": [], "metrics": None, "imported": False}


# --- end to end: a daemon process on an emulated tree ------------------------------------------
class LiveDaemon:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.root = create_tree("jetson-nano", run_dir / "tree")
        self.textfile = run_dir / "textfile_collector" / "edgetune.prom"
        self.textfile.parent.mkdir()
        self.sock = run_dir / "edgetune.sock"
        self.cfg = run_dir / "edgetune.toml"
        self.cfg.write_text(textwrap.dedent(f"""
            [daemon]
            state_dir = "{run_dir / 'state'}"
            socket = "{self.sock}"
            socket_group = ""

            [board]
            root = "{self.root}"
            time_scale = 20

            [search]
            strategy = "ogd"
            budget = "4"
            inferences = 240
            repeats = 1
            max_repeats = 2
            batch_sizes = [8, 16]
            cpu_freqs = ["1224MHz", "1479MHz"]
            gpu_freqs = ["614.4MHz", "921.6MHz"]

            [watch]
            window_inferences = 240

            [metrics]
            listen = "127.0.0.1:0"
            textfile = "{self.textfile}"

            [[workloads]]
            name = "alexnet"
        """))
        self.log = run_dir / "daemon.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("NOTIFY_SOCKET", None)
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "tuner.cli.entry", "daemon", "--config",
                                          str(self.cfg)], env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)

    def status(self) -> dict:
        return request(self.sock, {"cmd": "status"})["status"]

    def workload(self) -> dict:
        return self.status()["workloads"][0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return -9


@pytest.fixture(scope="module")
def live():
    run_dir = Path(tempfile.mkdtemp(prefix="edgetune-metrics-"))
    d = LiveDaemon(run_dir)
    try:
        _until(lambda: d.workload()["state"] == "holding" and d.workload()["windows"] >= 2, timeout=180,
               what=f"the daemon holding a config ({d.log})")
        yield d
        url = d.status()["metrics"]["url"]
        code = d.stop()
        assert code == 0, d.log.read_text()
        assert not d.textfile.exists()  # removed at a clean stop
        with pytest.raises(OSError):
            _get(url, timeout=2)  # the port is closed
    finally:
        d.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def test_get_metrics_has_every_metric_with_plausible_values(live):
    st = live.status()
    url = st["metrics"]["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    fams = _samples(_get(url))
    assert set(FAMILIES) <= set(fams), set(FAMILIES) - set(fams)
    for name in FAMILIES:
        assert fams[name], f"{name} has no sample"
        for s in fams[name]:
            assert BASE_LABELS <= set(s.labels), (name, s.labels)
            assert s.labels["simulated"] == "true" and s.labels["board"] == "jetson-nano"
            assert s.labels["workload"] == "alexnet" and s.labels["model"] == "NVIDIA Jetson Nano Developer Kit"

    def one(name: str, **labels: str) -> float:
        found = [s.value for s in fams[name] if all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(found) == 1, (name, labels, fams[name])
        return found[0]

    power = {s.labels["rail"]: s.value for s in fams["edgetune_power_watts"]}
    assert 1.0 < power["total"] < 20.0  # a Nano draws a few watts running AlexNet
    assert {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"} <= set(power)  # the INA3221 rails the sampler reads
    assert 0 < power["POM_5V_GPU"] < power["total"] and 0 < power["POM_5V_CPU"] < power["total"]
    assert abs(power["total"] - power["POM_5V_IN"]) < 1e-3  # the Nano's input rail is its total
    states = {s.labels["state"]: s.value for s in fams["edgetune_state"]}
    assert set(states) == set(STATES) and sum(states.values()) == 1.0
    assert states[live.workload()["state"]] == 1.0 or states["holding"] == 1.0
    energy, inferences = one("edgetune_energy_joules"), one("edgetune_inferences")
    assert energy > 0 and inferences >= 5 * 240  # the reference, 4 trials and the windows
    epi = one("edgetune_energy_per_inference_joules")
    assert 0.001 < epi < 1.0 and 0.5 * energy / inferences < epi < 2 * energy / inferences
    trials, explored = one("edgetune_trials"), one("edgetune_exploration_joules")
    assert trials == 5  # the DVFS reference and the budget of 4
    assert 0 < explored < energy
    assert -1.0 < one("edgetune_saving_ratio") < 1.0
    applied = live.workload()["applied"]
    assert {s.labels["knob"]: s.value for s in fams["edgetune_knob_value"]} == {k: float(v) for k, v in
                                                                                applied.items()}
    temps = {s.labels["zone"]: s.value for s in fams["edgetune_temperature_celsius"]}
    assert "CPU-therm" in temps and "PMIC-Die" not in temps and all(20 < t < 100 for t in temps.values())
    assert {s.labels["kind"] for s in fams["edgetune_errors"]} == {"sensor", "workload", "knob", "reload", "metrics"}
    assert one("edgetune_errors", kind="metrics") == 0

    # counters only grow between scrapes
    later = _samples(_get(url))
    assert [s.value for s in later["edgetune_energy_joules"]][0] >= energy


def test_the_textfile_is_written_atomically_and_parses(live):
    path = live.textfile
    _until(path.exists, timeout=10, what="the textfile")
    assert (path.stat().st_mode & 0o777) == 0o644  # node_exporter's user reads it whatever the umask
    first = path.stat().st_mtime_ns
    fams = _samples(path.read_text())
    assert set(FAMILIES) <= set(fams)
    assert [s.value for s in fams["edgetune_state"] if s.labels["state"] == "holding"] in ([1.0], [0.0])
    _until(lambda: path.stat().st_mtime_ns != first, timeout=10, what="a rewrite after the next window")
    assert not [p for p in path.parent.iterdir() if p != path and p.suffix == ".prom"]  # no stray .prom


# --- a real Prometheus scrapes the daemon -----------------------------------------------------------
def _prometheus() -> str:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("the prometheus binary is not installed (Debian: apt-get install -y prometheus; CI installs it)")
    return exe


def _query(base: str, promql: str) -> list:
    doc = json.loads(_get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_a_real_prometheus_scrapes_the_daemon_and_promql_returns_its_power(live, tmp_path):
    exe = _prometheus()
    target = urllib.parse.urlsplit(live.status()["metrics"]["url"]).netloc
    port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(textwrap.dedent(f"""
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: edgetune
            static_configs:
              - targets: ["{target}"]
    """))
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: proc.poll() is None and "Ready" in _get(f"{base}/-/ready", 2), timeout=60,
               what=f"Prometheus ready ({log})")
        assert proc.poll() is None, log.read_text()
        result = _until(lambda: _query(base, 'edgetune_power_watts{rail="total"}'), timeout=60,
                        what="a scraped power sample")
        assert len(result) == 1
        labels, (_, value) = result[0]["metric"], result[0]["value"]
        assert labels["job"] == "edgetune" and labels["instance"] == target
        assert labels["board"] == "jetson-nano" and labels["simulated"] == "true" and labels["workload"] == "alexnet"
        now = live.workload()["measured"]["power_w"]
        assert 1.0 < float(value) < 20.0 and abs(float(value) - now) < 0.3 * now  # the daemon's power
        rails = {r["metric"]["rail"] for r in _query(base, "edgetune_power_watts")}
        assert {"total", "POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"} <= rails
        assert float(_query(base, 'up{job="edgetune"}')[0]["value"][1]) == 1.0
        assert float(_query(base, "sum(edgetune_state)")[0]["value"][1]) == 1.0  # one-hot
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

"""Cost of the daemon while it holds a config (DESIGN §7 / issue 7: < 1 % of one core, < 80 MB RSS).

Starts ``edgetune daemon`` as its own process on an emulated Jetson Nano tree,
with the live simulator in a *separate* process (``edgetune sim run``) so the
daemon's numbers are the daemon's: a short search, then holding a config
while it measures the simulated workload in windows and samples the rails at
10 Hz. Once it holds, reads the daemon's CPU time (``/proc/PID/stat``) over
``--seconds`` and its resident memory (``VmRSS``, ``VmHWM``), then times the
whole ``edgetune status`` command (< 0.3 s). Prints JSON.

The tree and the workload are simulated (the workload's batches are sleeps of
the model's batch time); the sysfs reads and writes, the sampler, the
watching and the socket are the real daemon's. One row per search strategy.
The daemon runs the strategy's model in a child process for the length of a
search (:mod:`tuner.daemon.strategy_process`), so its libraries (``bo``:
scikit-optimize, scikit-learn, SciPy) never load into the daemon; the row
also counts the daemon's child processes while it holds (``children``: 0, so
the RSS is all the daemon costs) and the peak RSS of the search's child.

    python benchmarks/daemon_overhead.py [--seconds 60] [--strategies ogd bo]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tuner.daemon.protocol import request
from tuner.errors import EdgetuneError
from tuner.sim.tree import create_tree

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (every thread's)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def status_seconds(sock: Path, runs: int = 10) -> dict[str, float]:
    """Wall time of the whole `edgetune status` command (interpreter start included)."""
    exe = shutil.which("edgetune")
    cmd = [exe] if exe else [sys.executable, "-m", "tuner.cli.entry"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd + ["status", "--socket", str(sock)], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"median": round(times[len(times) // 2], 3), "max": round(times[-1], 3), "runs": runs}


def config(tmp: Path, root: Path, strategy: str, rate_hz: float) -> Path:
    cfg = tmp / "edgetune.toml"
    cfg.write_text(f"""
[daemon]
state_dir = "{tmp / 'state'}"
socket = "{tmp / 'edgetune.sock'}"
socket_group = ""
sample_rate_hz = {rate_hz}
[board]
root = "{root}"
live_sim = false
[search]
strategy = "{strategy}"
budget = "6"
inferences = 64
repeats = 1
max_repeats = 1
batch_sizes = [16]
gpu_freqs = ["460.8MHz", "614.4MHz", "768MHz", "921.6MHz"]
cpu_freqs = ["1224MHz", "1479MHz"]
[watch]
window_inferences = 400
[[workloads]]
name = "alexnet"
""")
    return cfg


def measure(strategy: str, seconds: float, rate_hz: float) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = tmp / "tree"
        create_tree("jetson-nano", root)
        exe = [sys.executable, "-m", "tuner.cli.entry"]
        sim = subprocess.Popen(exe + ["sim", "run", "--root", str(root)], stdout=subprocess.DEVNULL)
        daemon = subprocess.Popen(exe + ["daemon", "--config", str(config(tmp, root, strategy, rate_hz))],
                                  stdout=subprocess.DEVNULL, stderr=open(tmp / "daemon.log", "w"))
        sock = tmp / "edgetune.sock"
        try:
            deadline = time.monotonic() + 300
            status = None
            child_peak = 0.0  # the strategy's process, while it runs (sampled every 0.5 s)
            while time.monotonic() < deadline:
                for pid in children(daemon.pid):
                    try:
                        child_peak = max(child_peak, memory_mb(pid).get("VmHWM", 0.0))
                    except OSError:
                        pass
                try:
                    status = request(sock, {"cmd": "status"})["status"]
                    if status.get("workloads") and status["workloads"][0]["state"] == "holding":
                        break
                except EdgetuneError:
                    pass
                if daemon.poll() is not None:
                    raise SystemExit(f"the daemon exited: {(tmp / 'daemon.log').read_text()}")
                time.sleep(0.5)
            else:
                raise SystemExit("the daemon did not reach holding in 300 s")
            time.sleep(2.0)  # past the first window's setup
            c0, w0 = cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(seconds)
            c1, w1 = cpu_seconds(daemon.pid), time.monotonic()
            mem = memory_mb(daemon.pid)
            kids = children(daemon.pid)
            held = request(sock, {"cmd": "status"})["status"]["workloads"][0]
            status_s = status_seconds(sock)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=30)
        return {
            "strategy": strategy,
            "state": held["state"],
            "windows_in_measurement": held["windows"],
            "sample_rate_hz": rate_hz,
            "seconds": round(w1 - w0, 1),
            "cpu_percent_of_one_core": round(100 * (c1 - c0) / (w1 - w0), 3),
            "rss_mb": round(mem["VmRSS"], 1),
            "peak_rss_mb": round(mem["VmHWM"], 1),
            "children_while_holding": len(kids),
            "strategy_process_peak_rss_mb": round(child_peak, 1) if child_peak else None,
            "status_command_s": status_s,
            "exit_code": code,
            "targets": {"cpu_percent_of_one_core": 1.0, "rss_mb": 80, "status_command_s": 0.3},
            "ok": 100 * (c1 - c0) / (w1 - w0) < 1.0 and mem["VmRSS"] < 80 and status_s["median"] < 0.3
            and not kids,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=10.0, help="sampling rate while holding (Hz)")
    ap.add_argument("--strategies", nargs="+", default=["ogd", "bo"])
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    doc = {"benchmark": "daemon_overhead", "simulated": True, "board": "emulated jetson-nano tree",
           "workload": "alexnet (simulated, live)", "python": sys.version.split()[0],
           "rows": [measure(s, args.seconds, args.rate) for s in args.strategies]}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

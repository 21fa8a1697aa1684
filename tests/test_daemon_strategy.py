"""The daemon's search strategy in its own process (tuner.daemon.strategy_process).

The daemon asks and tells a stand-in whose model runs in a child process for
one search, so a strategy's libraries (scikit-optimize for ``bo``) never stay
in the daemon. These tests check that the stand-in asks exactly what the
strategy asks in-process, that the daemon never imports the model's
libraries, and that a child killed mid-search leaves the daemon serving with
the board restored (or a known-good config held) and the reason in its status.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import until, workload_status
from tuner.config import Config, Knob, Space
from tuner.daemon.strategy_process import RemoteStrategy, StrategyProcessError, portable_space
from tuner.errors import ConfigError
from tuner.objective import Objective

REPO = Path(__file__).resolve().parent.parent


def _search(strategy_name: str, seed: int, remote: bool, stop_improvement: float | None = None) -> list[str]:
    from tuner.boards.factory import open_board
    from tuner.runner import RunPolicy, TrialRunner
    from tuner.search import measure_reference, plan_space, search
    from tuner.app import open_workload
    from tuner.strategies import make_strategy

    board = open_board("sim:jetson-nano", "/", seed=seed)
    runner = TrialRunner(board, open_workload("alexnet", board, time_scale=1e6),
                         RunPolicy(inferences=800, min_repeats=2, max_repeats=4))
    space, _ = plan_space(runner, {"batch_size": (8, 16)}, ("cpu_freq_khz", "gpu_freq_hz"))
    reference = measure_reference(runner, space, None)
    if remote:
        with RemoteStrategy(strategy_name, space, seed=seed) as strategy:
            result = search(strategy, runner, Objective("energy"), 12, reference=reference,
                            stop_improvement=stop_improvement)
    else:
        result = search(make_strategy(strategy_name, space, seed=seed), runner, Objective("energy"), 12,
                        reference=reference, stop_improvement=stop_improvement)
    assert result.best is not None
    return [f"{s.trial.config.to_json()} x{len(s.trial.repeats)}" for s in result.steps] + [
        result.best.to_json(), repr(result.best_cost), result.stopped]


@pytest.mark.parametrize("name, stop_improvement", [("ogd", None), ("bo", None), ("thompson", None),
                                                    ("bo", 0.01), ("ogd", 0.01)])
def test_the_child_asks_what_the_strategy_asks_in_process(name, stop_improvement):
    """Same seed, same told costs: the same trials, repeats (racing reads the strategy between repeats),
    early stop and recommendation."""
    assert _search(name, 3, True, stop_improvement) == _search(name, 3, False, stop_improvement)


def test_a_constrained_space_reaches_the_child_as_the_same_configs_in_the_same_order():
    knobs = (Knob("gpu_freq_hz", (1, 2, 3)), Knob("batch_size", (8, 16)))
    space = Space(knobs, (lambda c: not (c["gpu_freq_hz"] == 3 and c["batch_size"] == 16),))
    portable = portable_space(space)
    assert list(portable) == list(space) and len(portable) == 5

    def drive(strategy) -> list[Config]:
        asked = []
        while not strategy.done() and (config := strategy.ask()) is not None:
            asked.append(config)
            strategy.tell(config, float(len(asked) % 4))
        return asked + [strategy.best()]

    from tuner.strategies import make_strategy

    with RemoteStrategy("sweep", space) as strategy:
        assert drive(strategy) == drive(make_strategy("sweep", space))
        assert strategy.lattice.configs == list(space)  # any other attribute is read from the child
        with pytest.raises(AttributeError):
            strategy.no_such_attribute  # noqa: B018


def test_an_error_the_strategy_raises_is_raised_again_and_a_killed_child_is_named():
    with pytest.raises(ConfigError, match="unknown strategy 'magic'"):
        RemoteStrategy("magic", Space((Knob("batch_size", (8, 16)),)))
    strategy = RemoteStrategy("random", Space((Knob("batch_size", (8, 16)),)))
    assert strategy.ask() in (Config({"batch_size": 8}), Config({"batch_size": 16}))
    os.kill(strategy.pid, signal.SIGKILL)
    with pytest.raises(StrategyProcessError, match="random search strategy's process was killed by SIGKILL"):
        strategy.ask()
    strategy.close()


def test_the_daemon_never_imports_the_models_libraries(tmp_path):
    """A daemon that searched with ``bo`` holds without scikit-optimize, scikit-learn or SciPy loaded."""
    settings = {"daemon": {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "ctl.sock"),
                           "socket_group": None},
                "board": {"spec": "sim:jetson-nano", "time_scale": 1e6},
                "search": {"strategy": "bo", "budget": "8", "inferences": 800, "batch_sizes": [8, 16]},
                "workloads": [{"name": "alexnet"}]}
    code = """
import json, sys, threading, time
from tuner.daemon.service import Daemon
from tuner.daemon.settings import parse_settings
d = Daemon(parse_settings(json.loads(sys.argv[1])))
t = threading.Thread(target=d.run)
t.start()
end = time.monotonic() + 120
while time.monotonic() < end:
    doc = d.status_snapshot()
    if doc.get("workloads") and doc["workloads"][0]["state"] == "holding":
        break
    time.sleep(0.05)
state = d.status_snapshot()["workloads"][0]["state"]
d.request_stop()
t.join(30)
heavy = sorted(m for m in ("skopt", "sklearn", "scipy") if m in sys.modules)
print(json.dumps({"state": state, "heavy": heavy}))
"""
    out = subprocess.run([sys.executable, "-c", code, json.dumps(settings)], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=180)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc == {"state": "holding", "heavy": []}


# --- a child killed mid-search, in a running daemon ------------------------------------------------
def _strategy_children() -> list[int]:
    """This process's children running the strategy (the daemon runs in a thread of this test)."""
    me = str(os.getpid())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == me and b"strategy_process" in cmdline:
            found.append(int(proc.name))
    return found


def test_a_killed_strategy_process_leaves_the_daemon_serving_with_the_board_restored_or_held(tmp_path,
                                                                                             monkeypatch):
    from tuner.boards import factory
    from tuner.daemon.protocol import request
    from tuner.daemon.service import Daemon
    from tuner.daemon.settings import parse_settings

    slow = threading.Event()  # while set, every apply takes a while: the search is slow enough to catch
    opened = {}
    real_open = factory.open_board

    def open_slow_board(*args, **kwargs):
        board = opened["board"] = real_open(*args, **kwargs)
        opened["defaults"] = board.current()
        real_apply = board.apply

        def apply(config):
            if slow.is_set():
                time.sleep(0.2)
            return real_apply(config)

        board.apply = apply
        return board

    monkeypatch.setattr(factory, "open_board", open_slow_board)
    settings = parse_settings({
        "daemon": {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "ctl.sock"), "socket_group": None},
        "board": {"spec": "sim:jetson-nano", "time_scale": 1e6},
        "search": {"strategy": "ogd", "budget": "15", "inferences": 800, "batch_sizes": [8, 16]},
        "workloads": [{"name": "alexnet"}]})
    sock = tmp_path / "ctl.sock"

    def workload() -> dict:
        return workload_status(sock)

    def kill_the_search():
        pids = until(lambda: workload().get("state") == "exploring" and _strategy_children(), "a running search")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    slow.set()
    d = Daemon(settings)
    t = threading.Thread(target=d.run)
    t.start()
    try:
        # the first search dies: nothing known to hold, so the board's own settings come back
        kill_the_search()
        w = until(lambda: workload().get("state") == "paused" and workload(), "paused")
        assert "process was killed by SIGKILL" in w["reason"] and "retune" in w["reason"]
        assert w["applied"] is None and opened["board"].current() == opened["defaults"]
        assert request(sock, {"cmd": "status"})["status"]["errors"]["strategy"] == 1
        assert t.is_alive()

        slow.clear()
        request(sock, {"cmd": "retune"})
        held = until(lambda: workload().get("state") == "holding" and workload(), "holding after a retune")
        assert held["searches"] == 1

        # a later search dies: the config the last one found is held again
        slow.set()
        request(sock, {"cmd": "retune"})
        kill_the_search()
        w = until(lambda: workload().get("state") == "holding" and "SIGKILL" in workload()["reason"] and workload(),
                  "holding the earlier best")
        assert w["applied"] == held["applied"] and "holding the best config found before" in w["reason"]
        assert request(sock, {"cmd": "status"})["status"]["errors"]["strategy"] == 2
        assert not _strategy_children()
    finally:
        slow.clear()
        d.request_stop()
        t.join(timeout=30)
    assert not t.is_alive()

"""The daemon as a state machine (tuner.daemon.states) and the snapshot its control threads read.

The table of transitions is checked as a table (where each event leads, what
safe and overridden remember); the running daemon is checked for the other
half of the contract: a control thread answers from the published snapshot
and queues, and never reads the board, the runner or the space itself.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from conftest import until, workload_status
from tuner.config import Knob
from tuner.daemon import states
from tuner.daemon.protocol import ProtocolError, request
from tuner.daemon.snapshot import Snapshot
from tuner.daemon.states import (BACK, CONTINUE, EXPLORING, HOLD, HOLDING, HOT, OUTSIDE, OVERRIDDEN, PAUSE,
                                 PAUSED, RELEASE, SAFE, SEARCH, STATES, TransitionError, allows, step)
from tuner.errors import EdgetuneError


@pytest.mark.parametrize("state, resume, event, expected", [
    # heat interrupts exploring, holding and paused, and remembers which
    (EXPLORING, HOLDING, HOT, (SAFE, EXPLORING)),
    (HOLDING, HOLDING, HOT, (SAFE, HOLDING)),
    (PAUSED, HOLDING, HOT, (SAFE, PAUSED)),
    (SAFE, HOLDING, BACK, (HOLDING, HOLDING)),
    (SAFE, EXPLORING, BACK, (EXPLORING, EXPLORING)),
    # a pause while safe waits for the board to cool
    (SAFE, HOLDING, PAUSE, (SAFE, PAUSED)),
    (SAFE, PAUSED, BACK, (PAUSED, PAUSED)),
    (HOLDING, HOLDING, PAUSE, (PAUSED, HOLDING)),
    (OVERRIDDEN, EXPLORING, PAUSE, (PAUSED, EXPLORING)),
    # another program's change where edgetune writes; safe keeps what it interrupted
    (HOLDING, HOLDING, OUTSIDE, (OVERRIDDEN, HOLDING)),
    (EXPLORING, HOLDING, OUTSIDE, (OVERRIDDEN, EXPLORING)),
    (SAFE, PAUSED, OUTSIDE, (OVERRIDDEN, PAUSED)),
    (OVERRIDDEN, EXPLORING, BACK, (EXPLORING, EXPLORING)),
    # commands and search outcomes lead to the same place from anywhere but safe ...
    *[(s, HOLDING, SEARCH, (EXPLORING, HOLDING)) for s in STATES if s != SAFE],
    *[(s, HOLDING, CONTINUE, (EXPLORING, HOLDING)) for s in STATES if s != SAFE],
    *[(s, HOLDING, HOLD, (HOLDING, HOLDING)) for s in STATES if s != SAFE],
    # ... where they wait for the board to cool, as a pause does: safe goes back to them
    (SAFE, HOLDING, SEARCH, (SAFE, EXPLORING)),
    (SAFE, PAUSED, CONTINUE, (SAFE, EXPLORING)),
    (SAFE, EXPLORING, HOLD, (SAFE, HOLDING)),
    *[(s, HOLDING, RELEASE, (PAUSED, HOLDING)) for s in STATES],
])
def test_each_event_leads_where_the_table_says(state, resume, event, expected):
    assert step(state, resume, event) == expected


def test_events_the_table_does_not_allow_are_refused_and_holding_needs_a_config():
    for state, event in [(OVERRIDDEN, HOT), (SAFE, HOT), (PAUSED, OUTSIDE), (OVERRIDDEN, OUTSIDE),
                         (HOLDING, BACK), (EXPLORING, BACK), (PAUSED, BACK)]:
        assert not allows(state, event)
        with pytest.raises(TransitionError, match=f"no transition from {state} on {event}"):
            step(state, HOLDING, event)
    # back to holding with nothing to hold: search instead
    assert step(SAFE, HOLDING, BACK, holdable=False) == (EXPLORING, HOLDING)
    # the states that write knobs are exactly those where another program's change is news
    assert states.WATCHED == (EXPLORING, HOLDING, SAFE)
    assert set(states.EVENTS) == set(states.TRANSITIONS)
    for moves in states.TRANSITIONS.values():
        assert set(moves) <= set(STATES)
        assert all(to in STATES or to == states.RESUME for to, _ in moves.values())


def test_the_snapshot_is_immutable_and_checks_a_requested_config():
    snap = Snapshot(status={"workloads": []}, knobs={"gpu_freq_hz": Knob("gpu_freq_hz", (1, 2))}, ready=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.ready = False  # type: ignore[misc]
    snap.check({"gpu_freq_hz": 2})
    for bad, match in [({"turbo": 1}, "unknown knob 'turbo'"), ({"gpu_freq_hz": 3}, "gpu_freq_hz"),
                       ({"gpu_freq_hz": [1]}, "a value is a number or a string"),
                       ({"gpu_freq_hz": True}, "not bool")]:
        with pytest.raises(ProtocolError, match=match):
            snap.check(bad)


def _settings(tmp_path: Path) -> dict:
    return {
        "daemon": {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "ctl.sock"), "socket_group": None},
        "board": {"spec": "sim:jetson-nano", "time_scale": 1e6},
        "search": {"strategy": "ogd", "budget": "8", "inferences": 800, "batch_sizes": [8, 16]},
        "workloads": [{"name": "alexnet"}],
    }


def test_control_threads_answer_from_the_snapshot_and_only_the_loop_touches_the_board(tmp_path):
    from tuner.daemon.service import Daemon
    from tuner.daemon.settings import parse_settings

    d = Daemon(parse_settings(_settings(tmp_path)))
    loop = threading.Thread(target=d.run, name="loop")
    loop.start()
    sock = tmp_path / "ctl.sock"

    def workload() -> dict:
        return workload_status(sock)

    try:
        until(lambda: workload().get("state") == "holding", "holding")
        elsewhere: list[str] = []

        def loop_only(real):
            def wrapped(*args, **kwargs):
                if threading.current_thread() is not loop:
                    elsewhere.append(threading.current_thread().name)
                return real(*args, **kwargs)
            return wrapped

        for obj, name in [(d.board, "knobs"), (d.board, "apply"), (d.board, "current"),
                          (d.runner, "workload_knobs")]:
            setattr(obj, name, loop_only(getattr(obj, name)))
        before = d.snapshot
        with pytest.raises(EdgetuneError, match="gpu_freq_hz"):
            request(sock, {"cmd": "apply", "config": {"gpu_freq_hz": 123}})
        with pytest.raises(EdgetuneError, match="unknown knob 'turbo'"):
            request(sock, {"cmd": "apply", "config": {"turbo": 1}})
        request(sock, {"cmd": "apply", "config": {"gpu_freq_hz": 614400000}})
        held = until(lambda: workload().get("manual") and workload(), "the applied config held")
        assert held["applied"]["gpu_freq_hz"] == 614400000 and held["state"] == "holding"
        request(sock, {"cmd": "pause"})
        until(lambda: workload().get("state") == "paused", "paused")
        assert elsewhere == []  # every read and write of the board happened on the loop's thread
        after = d.snapshot
        assert after is not before and before.status["workloads"][0]["state"] == "holding"  # never changed
        with pytest.raises(TypeError):
            after.status["workloads"] = []  # type: ignore[index]
    finally:
        d.request_stop()
        loop.join(timeout=30)
    assert not loop.is_alive()

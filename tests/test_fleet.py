"""A fleet of identical boards sharing one store: warm starts, detection of a board that differs,
concurrent writers, `edgetune fleet`, a daemon holding on while the store is unreachable, and
daemons killed in the middle of a store write.

Every test runs against a SQLite file shared by the boards and against a real PostgreSQL server
(Debian's ``postgresql``, started here in a temporary directory on loopback: tests/pgserver.py).
The PostgreSQL half skips where psycopg or the server binaries are missing (the core suite under
the JetPack Pythons); CI's main run installs both.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pgserver
from tuner.cli.main import app
from tuner.config import Config
from tuner.daemon.protocol import request
from tuner.daemon.service import Daemon
from tuner.daemon.settings import parse_settings
from tuner.errors import EdgetuneError
from tuner.fleet import fleet_rows, identify, load_prior
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import build_space, measure_reference, search
from tuner.sim.board import SimBoard
from tuner.sim.model import DeviceModel, device_model
from tuner.store import Store, store_url
from tuner.strategies import make_strategy

REPO = Path(__file__).resolve().parent.parent
cli = CliRunner()
_databases = itertools.count()


def invoke(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


# --- stores: a SQLite file the boards share, and a real PostgreSQL server ---------------------------------
@pytest.fixture(scope="module")
def pg():
    pytest.importorskip("psycopg")
    why = pgserver.available()
    if why:
        pytest.skip(why)
    server = pgserver.PgServer().start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleet' / 'fleet.sqlite'}"
    return request.getfixturevalue("pg").create_database(f"fleet{next(_databases)}")


# --- the surface: the noiseless sweep the held configs are judged on -------------------------------------
def truth(profile: str, workload: str, batches=(8, 16, 32, 64), board: SimBoard | None = None) -> dict:
    board = board or SimBoard(profile)
    runner = TrialRunner(board, workload, RunPolicy())
    space = build_space(runner, {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": tuple(batches)})
    return {c: Objective().cost(board.expected(workload, c, 3200)) for c in space}


def within(table: dict, config: dict) -> float:
    """How far ``config`` is above the optimum of ``table`` (0.01 = 1 %)."""
    return table[Config(config)] / min(table.values()) - 1.0


# --- one-shot tunes -----------------------------------------------------------------------------------------
def test_two_tunes_sharing_a_store_the_second_holds_within_2pct_after_3_trials(tmp_path, fleet_url):
    args = ["tune", "--board", "sim:jetson-orin-nx", "--workload", "resnet18", "--store", fleet_url]
    first = invoke(*args, "--out", str(tmp_path / "a"))
    second = invoke(*args, "--out", str(tmp_path / "b"))
    table = truth("jetson-orin-nx", "resnet18")
    # nothing to start from: a search of its own (economical: it stops once the model rules out a gain)
    assert first["fleet"] is None and first["n_measured_now"] == first["n_trials"] >= 12
    assert second["fleet"]["status"] == "warm" and second["fleet"]["prior_trials"] == first["n_measured_now"]
    assert second["n_measured_now"] <= 3 and second["n_trials"] <= 3
    assert second["exploration"]["trials"] <= 4  # the three and this board's own DVFS reference
    assert within(table, second["best"]["config"]) <= 0.02
    verified = second["fleet"]["verified"]  # the fleet's best, measured here first
    assert abs(verified["ratio"] - 1) < 0.1 and second["board_id"] != first["board_id"]
    assert second["store"] == first["store"] and not (tmp_path / "a" / "edgetune.sqlite").exists()

    doc = invoke("fleet", "--store", fleet_url)
    boards = {b["board_id"]: b for b in doc["boards"]}
    assert set(boards) == {first["board_id"], second["board_id"]}
    a, b = boards[first["board_id"]], boards[second["board_id"]]
    for row, run in ((a, first), (b, second)):
        assert row["model"] == "NVIDIA Orin NX Developer Kit" and row["workload"] == "resnet18"
        assert row["state"] == "done" and row["held"] == run["best"]["config"] and row["simulated"] is True
        assert row["saving_vs_dvfs"] == pytest.approx(run["saving_vs_dvfs"]) and row["last_seen"] > 0
        assert row["host"]
    # the DVFS reference beside the search
    assert a["trials"] == first["n_trials"] + 1 and b["trials"] == second["n_trials"] + 1
    assert a["warm_start"] is None and b["warm_start"] == "warm"
    table_text = cli.invoke(app, ["fleet", "--store", fleet_url])
    assert table_text.exit_code == 0 and "warm start" in table_text.stdout

    again = invoke(*args, "--out", str(tmp_path / "b"))  # the same board, the same command: it resumes
    assert again["n_measured_now"] == 0 and again["best"]["config"] == second["best"]["config"]


def _varied(profile: str, power: float, seed: int) -> SimBoard:
    """A board of ``profile`` whose power is ``power`` times the model's (another carrier board, PSU, fan)."""
    base = device_model(profile)
    p = base.power
    scaled = dataclasses.replace(p, base_w=p.base_w * power, cpu_dyn_w=p.cpu_dyn_w * power,
                                 cpu_leak_w=p.cpu_leak_w * power, gpu_dyn_w=p.gpu_dyn_w * power,
                                 gpu_leak_w=p.gpu_leak_w * power, mem_w=p.mem_w * power)
    return SimBoard(profile, seed=seed, model=DeviceModel(base.profile, scaled, base.workloads, base.source))


def _tune(board: SimBoard, url: str, where: Path, budget: int = 40):
    """What `tune --store URL` does, on a board made here."""
    runner = TrialRunner(board, "resnet18", RunPolicy())
    space = build_space(runner, {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": (16, 32, 64)})
    identity = identify(board, "resnet18", None, Objective(), space, where=where)
    with Store(url) as store:
        run = store.open_run("tune", "sim:jetson-orin-nx", "resnet18", True,
                             {"space": space.names, "board_id": identity.board_id}, identity=identity.columns())
        reference = measure_reference(runner, space, run)
        prior = load_prior(store, identity)
        result = search(make_strategy("bo", space, seed=board.rng.integers(1000)), runner, Objective(), budget,
                        run=run, reference=reference, prior=prior)
    return result, runner


def test_a_board_that_measures_differently_from_the_fleet_drops_the_prior(tmp_path, fleet_url):
    first, _ = _tune(_varied("jetson-orin-nx", 1.0, seed=1), fleet_url, tmp_path / "one")
    assert first.fleet is None and len(first.steps) == 40
    # the same kind of board, 4 % hungrier: the fleet's best holds, three trials
    near_board = _varied("jetson-orin-nx", 1.04, seed=2)
    near, runner = _tune(near_board, fleet_url, tmp_path / "two")
    assert near.fleet["status"] == "warm" and 0.98 < near.fleet["verified"]["ratio"] < 1.1
    assert len(near.steps) == 3 and not any(s.reused for s in near.steps)
    table = truth("jetson-orin-nx", "resnet18", (16, 32, 64), board=near_board)
    assert within(table, near.best.to_dict()) <= 0.02
    assert near.best in {s.trial.config for s in near.steps}  # what is held was measured on this board
    # another carrier board and cooling: 35 % more power everywhere. Detected, searched on its own data
    odd_board = _varied("jetson-orin-nx", 1.35, seed=3)
    odd, runner = _tune(odd_board, fleet_url, tmp_path / "three")
    assert odd.fleet["status"] == "dropped" and odd.fleet["verified"]["ratio"] > 1.25
    assert "prior dropped" in odd.fleet["note"] and "searching on its own data" in odd.fleet["note"]
    assert len(odd.steps) == 40  # the full budget
    table = truth("jetson-orin-nx", "resnet18", (16, 32, 64), board=odd_board)
    assert within(table, odd.best.to_dict()) <= 0.05
    # the prior trials were told, never stored as this board's: each run holds its own trials only
    with Store(fleet_url) as store:
        counts = sorted(r["trials"] for r in store.runs())
    assert counts == [3 + 1, 40 + 1, 40 + 1]


_WRITER = textwrap.dedent("""
    import sys
    from tuner.config import Config
    from tuner.measurement import Measurement
    from tuner.measurement import Trial
    from tuner.store import Store

    url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store(url)
    run = store.open_run("tune", "sim:jetson-orin-nx", "resnet18", True, {"shared": True})
    for i in range(n):
        m = Measurement(Config({"batch_size": i, "writer": tag}), True, energy_j=1.0, time_s=1.0, inferences=10)
        run.add(Trial(m.config, m, [m]), 1.0)
    store.close()
""")


def test_concurrent_writers_of_one_run_get_unique_sequence_numbers_and_lose_nothing(fleet_url):
    Store(fleet_url).close()  # the schema first, so that the writers race on trials, not on migrations
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, fleet_url, f"w{i}", "25"], cwd=REPO)
               for i in range(4)]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    with Store(fleet_url) as store:
        runs = store.runs()
        assert len(runs) == 1 and runs[0]["trials"] == 100
        trials = [t for _, t in store.run(runs[0]["key"]).trials()]
        rows = store.trial_rows(limit=1000)
    assert sorted(r["seq"] for r in rows) == list(range(100))
    assert {(t.config["writer"], t.config["batch_size"]) for t in trials} == {(f"w{i}", j) for i in range(4)
                                                                                for j in range(25)}


# --- daemons ------------------------------------------------------------------------------------------------
def _daemon_settings(base: Path, name: str, store: str | None, **daemon) -> dict:
    return {
        "daemon": {"state_dir": str(base / name), "socket": str(base / f"{name}.sock"), "socket_group": None,
                   **({"store": store, "store_sync_s": 0.1} if store else {}), **daemon},
        "board": {"spec": "sim:jetson-orin-nx", "time_scale": 1e6},
        "search": {"strategy": "ogd", "budget": "12", "inferences": 800, "batch_sizes": [16, 32, 64]},
        "workloads": [{"name": "resnet18"}],
    }


def _until(predicate, timeout: float = 60.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except EdgetuneError:
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _status(sock: Path) -> dict:
    return request(sock, {"cmd": "status"})["status"]


class _Running:
    def __init__(self, settings: dict) -> None:
        self.daemon = Daemon(parse_settings(settings))
        self.sock = Path(settings["daemon"]["socket"])
        self.thread = threading.Thread(target=self.daemon.run)
        self.thread.start()

    def status(self) -> dict:
        return _status(self.sock)

    def workload(self) -> dict:
        doc = self.status()
        return doc["workloads"][0] if doc.get("workloads") else {}

    def stop(self) -> None:
        self.daemon.request_stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_daemon_holds_on_while_the_store_is_unreachable_then_copies_everything(tmp_path, kind):
    """Down first, up later: a file path that cannot be made yet, or a PostgreSQL port nobody listens on."""
    server = None
    if kind == "sqlite":
        blocker = tmp_path / "nfs"
        blocker.write_text("the share is not mounted")
        url = f"sqlite:///{blocker}/fleet.sqlite"
    else:
        pytest.importorskip("psycopg")
        if pgserver.available():
            pytest.skip(pgserver.available())
        server = pgserver.PgServer()
        url = server.url("fleet")
    one = _Running(_daemon_settings(tmp_path, "one", url))
    try:
        held = _until(lambda: one.workload().get("state") == "holding" and one.status(), what="holding")
        fleet = held["store"]["fleet"]
        assert fleet["reachable"] is False and fleet["error"] and fleet["pending_trials"] == 12 + 1
        assert held["errors"]["store"] >= 1 and held["workloads"][0]["fleet"]["status"] == "none"
        assert "unreachable" in held["workloads"][0]["fleet"]["note"]
        time.sleep(0.5)
        assert one.workload()["state"] == "holding"  # and it keeps holding, windows and all
        if kind == "sqlite":
            blocker.unlink()
        else:
            server.start()
            server.create_database("fleet")
        _until(lambda: one.status()["store"]["fleet"]["pending_trials"] == 0
               and one.status()["store"]["fleet"]["reachable"], what="the copy")
        local = Store(tmp_path / "one" / "edgetune.sqlite")
        with Store(url) as remote:
            assert {r["uid"] for r in remote.trial_rows(limit=1000)} == {r["uid"] for r in local.trial_rows(limit=1000)}
            assert remote.trial_count() == local.trial_count() == 13
            rows = fleet_rows(remote)
        local.close()
        assert [(r["state"], r["trials"], r["kind"]) for r in rows] == [("holding", 13, "daemon")]

        # a second board of the fleet starts from the first one's trials, and the fleet lists both
        two = _Running(_daemon_settings(tmp_path, "two", url))
        try:
            w = _until(lambda: two.workload().get("state") == "holding" and two.workload(), what="second holding")
            assert w["fleet"]["status"] == "warm" and w["trials_used"] <= 3
            table = truth("jetson-orin-nx", "resnet18", (16, 32, 64))  # as good as the first board's 12 trials
            assert within(table, w["applied"]) <= within(table, held["workloads"][0]["applied"]) + 0.02
            _until(lambda: two.status()["store"]["fleet"]["pending_trials"] == 0, what="second copy")
            doc = invoke("fleet", "--store", url)
            assert sorted((b["state"], b["kind"]) for b in doc["boards"]) == [("holding", "daemon")] * 2
            assert {b["warm_start"] for b in doc["boards"]} == {"none", "warm"}
            assert all(b["held"] and b["saving_vs_dvfs"] > 0 for b in doc["boards"])
        finally:
            two.stop()
    finally:
        one.stop()
        if server is not None:
            server.remove()


# A daemon whose N-th trial write to one store (``target``) stops inside its transaction (after
# the INSERT, before COMMIT) and says so in ``marker``: the test then kills it with SIGKILL.
_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from contextlib import contextmanager
    from pathlib import Path
    import tuner.store as st

    target, nth, marker, config = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    write, insert, count = st.Store._write, st.Store._insert_trial, [0]

    def inserting(self, run_id, row, now):
        self._inserting = True
        try:
            return insert(self, run_id, row, now)
        finally:
            self._inserting = False

    @contextmanager
    def slow(self):
        with write(self) as conn:
            yield conn
            if getattr(self, "_inserting", False) and self.url == target:
                count[0] += 1
                if count[0] == nth:
                    marker.write_text("inside the transaction")
                    time.sleep(600)

    st.Store._write, st.Store._insert_trial = slow, inserting
    sys.argv = ["edgetune", "daemon", "--config", config]
    from tuner.cli.entry import main
    main()
""")


def _toml(settings: dict) -> str:
    out = []
    for section, values in settings.items():
        if section == "workloads":
            for w in values:
                out.append("[[workloads]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in w.items()))
            continue
        out.append(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items() if v is not None))
    return "\n".join(out)


def _spawn(args: list, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def _kill_in_write(tmp_path: Path, settings: dict, target: str, nth: int) -> None:
    cfg = tmp_path / "edgetune.toml"
    cfg.write_text(_toml(settings))
    marker = tmp_path / "in-write"
    proc = _spawn([sys.executable, "-c", _SLOW_WRITER, target, str(nth), str(marker), str(cfg)],
                  tmp_path / "killed.log")
    try:
        _until(marker.exists, timeout=90, what="a store write in flight")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _restart_until_holding(tmp_path: Path, settings: dict, synced: bool = False) -> dict:
    cfg = tmp_path / "edgetune.toml"
    proc = _spawn([sys.executable, "-m", "tuner.cli.entry", "daemon", "--config", str(cfg)], tmp_path / "again.log")
    sock = Path(settings["daemon"]["socket"])
    try:
        def ready():
            doc = _status(sock)
            w = doc["workloads"][0] if doc.get("workloads") else {}
            if w.get("state") != "holding":
                return None
            if synced and (doc["store"]["fleet"]["pending_trials"] or not doc["store"]["fleet"]["reachable"]):
                return None
            return doc
        doc = _until(ready, timeout=90, what="holding after the restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    return doc


def test_killing_the_daemon_during_a_local_store_write_loses_no_trial(tmp_path):
    settings = _daemon_settings(tmp_path, "state", None)
    local = tmp_path / "state" / "edgetune.sqlite"
    _kill_in_write(tmp_path, settings, store_url(local), nth=5)  # the DVFS reference, 3 trials, then killed
    db = sqlite3.connect(str(local))
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT COUNT(*) FROM trials").fetchone() == (4,)  # the fifth was never committed
    db.close()
    doc = _restart_until_holding(tmp_path, settings)
    with Store(local) as store:
        rows = store.trial_rows(limit=1000)
    assert len(rows) == 12 + 1 and sorted(r["seq"] for r in rows) == list(range(13))
    assert len({r["uid"] for r in rows}) == 13
    # the four committed trials were replayed, not measured again; the one cut off was measured anew
    assert doc["workloads"][0]["measured"]["trials"] == 13 - 4


def test_killing_the_daemon_while_it_copies_to_the_fleet_loses_no_trial(tmp_path, fleet_url):
    settings = _daemon_settings(tmp_path, "state", fleet_url)
    _kill_in_write(tmp_path, settings, store_url(fleet_url), nth=3)
    with Store(fleet_url) as remote:
        assert remote.trial_count() == 2  # the third copy was cut off inside its transaction
    doc = _restart_until_holding(tmp_path, settings, synced=True)
    assert doc["store"]["fleet"]["pending_trials"] == 0
    with Store(tmp_path / "state" / "edgetune.sqlite") as local, Store(fleet_url) as remote:
        here, there = local.trial_rows(limit=1000), remote.trial_rows(limit=1000)
    assert len(here) == len(there) == 13 and {r["uid"] for r in here} == {r["uid"] for r in there}
    assert sorted(r["seq"] for r in there) == list(range(13))  # copied once each, none twice


def test_the_fleet_key_separates_what_is_not_comparable():
    board = SimBoard("jetson-orin-nx")
    runner = TrialRunner(board, "resnet18", RunPolicy())
    space = build_space(runner, {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": (16, 32)})
    key = identify(board, "resnet18", None, Objective(), space).fleet_key
    assert identify(SimBoard("jetson-orin-nx", seed=5), "resnet18", None, Objective(), space).fleet_key == key
    narrower = build_space(runner, {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": (16,)})
    others = [identify(board, "resnet18", None, Objective(), narrower),
              identify(board, "resnet18", None, Objective("time"), space),
              identify(board, "resnet18", {"model_file": "/nonexistent"}, Objective(), space),
              identify(SimBoard("jetson-xavier-nx"), "resnet18", None, Objective(),
                       build_space(TrialRunner(SimBoard("jetson-xavier-nx"), "resnet18", RunPolicy()),
                                   {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": (16, 32)}))]
    assert len({o.fleet_key for o in others} | {key}) == 5

"""Fleet: identical boards tune each other through one shared store (DESIGN §9).

Many boards of one model run one workload. Each searches on its own, but the
twentieth should not repeat the search the first nineteen paid for. So every
run records who measured (:class:`Identity`: a board id, its host) and a
*fleet key*: a digest of what makes two boards' trials comparable — the board
model, the L4T release, simulated or not, the workload and a fingerprint of
its options, the objective and the knob domains. A search on a board whose
store is shared (``--store URL``, ``[daemon] store``) loads the trials of
other boards with its fleet key as a :class:`tuner.search.Prior`; the search
verifies the fleet's best here before it holds anything, and drops the prior
when this board measures differently (:func:`tuner.search.search`).

The daemon keeps its own record locally first (the SQLite store in its state
directory, as without a fleet) and copies it to the fleet's store whenever
that store can be reached (:class:`FleetSync`): a server that is down or a
network that is gone never stops a board from tuning or holding, and nothing
measured meanwhile is lost — it is copied when the server is back. Copies are
idempotent (trials by uid, runs by key), so a daemon killed half way through
one copies the rest next time.

``edgetune fleet`` lists the boards a store knows (:func:`fleet_rows`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from tuner.errors import EdgetuneError
from tuner.store import SEARCH, Store, redact, run_key, sqlite_path, store_url

log = logging.getLogger("edgetune.fleet")

#: Overrides the board id (e.g. a fleet's own asset names); otherwise host name and machine id.
ENV_BOARD_ID = "EDGETUNE_BOARD_ID"
#: Files above this size are fingerprinted by size and their first and last MiB, not read whole.
_HASH_WHOLE_BYTES = 256 << 20


@dataclass(frozen=True)
class Identity:
    """Who measured a run, and which fleet its trials belong to."""

    board_id: str
    host: str
    model: Optional[str]
    l4t: Optional[str]
    simulated: bool
    fleet_key: str
    fleet: Dict[str, Any]  # what the fleet key digests

    def columns(self) -> Dict[str, Any]:
        """The store's run columns (tuner.store.Store.open_run's ``identity``)."""
        return {"board_id": self.board_id, "host": self.host, "model": self.model, "l4t": self.l4t,
                "fleet_key": self.fleet_key}


def host_name() -> str:
    """This machine's host name, as the fleet lists boards by it."""
    return socket.gethostname() or "localhost"


def board_id(info: Any, where: Optional[Path] = None, root: Path = Path("/")) -> str:
    """This board's id in a fleet: ``$EDGETUNE_BOARD_ID`` if set; a real board's host name and the
    start of its machine id (boards cloned from one image often share a host name); a simulated
    board is one per run or state directory (``host:DIR``), so several can share a host."""
    env = os.environ.get(ENV_BOARD_ID, "").strip()
    if env:
        return env
    host = host_name()
    if getattr(info, "simulated", False):
        return f"{host}:{Path(where).resolve()}" if where is not None else host
    try:
        mid = (Path(root) / "etc/machine-id").read_text().strip()
    except OSError:
        mid = ""
    return f"{host}-{mid[:8]}" if mid else host


def options_fingerprint(options: Optional[Dict[str, Any]]) -> Optional[str]:
    """A digest of a workload's options; an option naming an existing file counts by its content, so
    boards that keep the same model file under different paths match, and a changed model does not."""
    if not options:
        return None
    doc = {}
    for key, value in sorted(options.items()):
        doc[key] = _file_digest(value) or value
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_digest(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    try:
        path = Path(value)
        if not path.is_file():
            return None
        size = path.stat().st_size
        h = hashlib.sha256()
        with path.open("rb") as fh:
            if size <= _HASH_WHOLE_BYTES:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read(1 << 20))
                h.update(str(size).encode())
        return "file:" + h.hexdigest()[:16]
    except (OSError, ValueError):
        return None


def identify(board: Any, workload: str, options: Optional[Dict[str, Any]], objective: Any, space: Any, *,
             where: Optional[Path] = None, root: Path = Path("/")) -> Identity:
    """The identity and fleet key of a run of ``workload`` on ``board`` over ``space``.

    ``objective`` is an :class:`tuner.objective.Objective` or its ``to_dict()``."""
    info = board.info
    objective_doc = objective.to_dict() if hasattr(objective, "to_dict") else objective
    fleet = {"model": info.model or info.profile or info.kind, "l4t": info.l4t, "simulated": bool(info.simulated),
             "workload": workload, "options": options_fingerprint(options), "objective": objective_doc,
             "space": [k.to_dict() for k in space.knobs]}
    return Identity(board_id(info, where, root), host_name(), info.model, info.l4t, bool(info.simulated),
                    run_key(fleet), fleet)


def load_prior(store: Store, identity: Identity, *, budget: int = 3, tolerance: float = 0.10) -> Any:
    """The trials other boards of this fleet stored, as a search prior; None when there are none."""
    from tuner.search import Prior

    rows = store.fleet_trials(identity.fleet_key, exclude_board=identity.board_id, role=SEARCH)
    if not rows:
        return None
    origins = [r["board_id"] or r["host"] or r["run"] for r, _ in rows]
    return Prior([t for _, t in rows], tuple(sorted(set(origins))), identity.fleet_key, origins=origins,
                 tolerance=tolerance, budget=budget)


# --- edgetune fleet ---------------------------------------------------------------------------------
def fleet_rows(store: Store) -> List[Dict[str, Any]]:
    """One row per board and workload the store knows: from its runs, and from the daemons' state
    documents where a daemon reported (its state, held config and saving); one-shot runs are done."""
    groups: Dict[tuple, Dict[str, Any]] = {}
    for r in store.runs():
        if r["kind"] == "import":
            continue  # measurements taken elsewhere: no board of the fleet
        gid = (r["board_id"] or f"{r['board']} (unknown id)", r["workload"])
        g = groups.setdefault(gid, {"board_id": r["board_id"], "host": r["host"], "board": r["board"],
                                    "model": r["model"], "l4t": r["l4t"], "workload": r["workload"],
                                    "simulated": r["simulated"], "kind": r["kind"], "state": None, "held": None,
                                    "saving_vs_dvfs": None, "trials": 0, "runs": 0, "last_seen": 0.0,
                                    "warm_start": None, "_latest": -1.0})
        g["trials"] += int(r["trials"] or 0)
        g["runs"] += 1
        g["last_seen"] = max(g["last_seen"], float(r["updated"] or 0.0))
        for key in ("host", "model", "l4t"):
            g[key] = g[key] or r[key]
        if float(r["updated"] or 0.0) >= g["_latest"]:
            g["_latest"] = float(r["updated"] or 0.0)
            g["kind"] = r["kind"]
            summary = r["summary"] or {}
            best = summary.get("best") or {}
            g["held"] = best.get("config")
            g["saving_vs_dvfs"] = summary.get("saving_vs_dvfs")
            # a sweep or tune writes its summary when it finishes (compare writes compare.json only)
            g["state"] = "done" if r["summary"] or r["kind"] == "compare" else (
                "incomplete" if r["kind"] != "daemon" else None)
            fleet = summary.get("fleet") or r["fleet"]
            g["warm_start"] = fleet.get("status") if isinstance(fleet, dict) else None
    for key, doc, updated in store.states("daemon"):
        bid = doc.get("board_id")
        workload = doc.get("workload") or key.rsplit(":", 1)[-1]
        board = doc.get("board") or key.split(":", 1)[-1].rsplit(":", 1)[0]
        gid = (bid or f"{board} (unknown id)", workload)
        g = groups.setdefault(gid, {"board_id": bid, "host": doc.get("host"), "board": board,
                                    "model": doc.get("model"), "l4t": doc.get("l4t"), "workload": workload,
                                    "simulated": doc.get("simulated"), "kind": "daemon", "state": None, "held": None,
                                    "saving_vs_dvfs": None, "trials": 0, "runs": 0, "last_seen": 0.0,
                                    "warm_start": None, "_latest": -1.0})
        g["kind"] = "daemon"
        g["state"] = doc.get("state")
        g["held"] = doc.get("applied") or doc.get("best")
        epi, dvfs = doc.get("best_epi_j"), doc.get("dvfs_epi_j")
        g["saving_vs_dvfs"] = round(1.0 - epi / dvfs, 4) if epi and dvfs else None
        g["last_seen"] = max(g["last_seen"], float(doc.get("seen") or updated or 0.0))
        if isinstance(doc.get("fleet"), dict):
            g["warm_start"] = doc["fleet"].get("status")
    rows = []
    for g in groups.values():
        g.pop("_latest", None)
        saving = g["saving_vs_dvfs"]
        g["saving_vs_dvfs"] = None if saving is None or not math.isfinite(saving) else saving
        g["last_seen"] = round(g["last_seen"], 3) if g["last_seen"] else None
        rows.append(g)
    rows.sort(key=lambda g: (g["workload"], g["model"] or "", str(g["board_id"] or g["board"])))
    return rows


def fleet_doc(store: Store) -> Dict[str, Any]:
    """``edgetune fleet --json``."""
    return {"store": store.display, "schema_version": store.version, "boards": fleet_rows(store)}


def render_fleet(doc: Dict[str, Any]) -> None:
    """A table on a wide terminal; two lines per board on a narrow one."""
    from rich.console import Console
    from rich.table import Table

    from tuner.config import Config
    from tuner.units import config_text

    console = Console(highlight=False)
    title = f"{len(doc['boards'])} board(s) in {doc['store']}"
    rows = []
    for r in doc["boards"]:
        state = r["state"] or "-"
        if r.get("warm_start") == "warm":
            state += ", warm start"
        elif r.get("warm_start") == "dropped":
            state += ", differs from the fleet"
        rows.append({
            "board": f"{r['board_id'] or r['board']}" + (" (simulated)" if r.get("simulated") else ""),
            "model": (r["model"] or r["board"] or "-").replace("NVIDIA ", ""), "workload": r["workload"],
            "state": state, "held": config_text(Config(r["held"])) if r["held"] else "-",
            "saving": "-" if r["saving_vs_dvfs"] is None else f"{r['saving_vs_dvfs'] * 100:.1f} %",
            "trials": str(r["trials"]),
            "seen": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["last_seen"])) if r["last_seen"] else "-"})
    if console.width < 120:
        console.print(title)
        for r in rows:
            console.print(f"{r['board']}: {r['model']}, {r['workload']}: {r['state']}")
            console.print(f"  held {r['held']}; saving vs DVFS {r['saving']}; {r['trials']} trials; "
                          f"last seen {r['seen']}")
        return
    t = Table(title=title, title_justify="left")
    for col, key in (("board", "board"), ("model", "model"), ("workload", "workload"), ("state", "state"),
                     ("held config", "held"), ("saving vs DVFS", "saving"), ("trials", "trials"),
                     ("last seen", "seen")):
        t.add_column(col, justify="right" if key in ("saving", "trials") else "left",
                     no_wrap=key in ("state", "saving", "trials", "seen"))
    for r in rows:
        t.add_row(r["board"], r["model"], r["workload"], r["state"], r["held"], r["saving"], r["trials"], r["seen"])
    console.print(t)


# --- the daemon's copy to the fleet ------------------------------------------------------------------
def same_store(url: str, local: Store) -> bool:
    """Whether ``url`` names the daemon's local store file itself (then there is nothing to copy)."""
    path = sqlite_path(store_url(url))
    return path is not None and local.path is not None and path.resolve() == local.path.resolve()


class FleetSync:
    """Copies a daemon's local record (runs, trials, its state) to the fleet's store, whenever it can.

    Everything is written locally first, so the daemon never waits on the
    network to hold a config or to keep a trial. :meth:`sync` copies what is
    new since the last copy (trials after a watermark kept in the local store,
    runs by key, the daemon's state documents under a board-qualified key) and
    is retried every ``interval_s`` while the fleet's store is unreachable.
    """

    def __init__(self, local: Store, url: str, board_id: str, *, interval_s: float = 30.0,
                 extra_state: Optional[Dict[str, Any]] = None) -> None:
        self.local = local
        self.url = store_url(url)
        self.display = redact(self.url)
        self.board_id = board_id
        self.interval_s = interval_s
        self.extra_state = dict(extra_state or {})  # host, model, ...: added to the state documents copied
        self.remote: Optional[Store] = None
        self.error: Optional[str] = None
        self.failures = 0
        self.last_sync: Optional[float] = None
        self._next_try = 0.0
        self._mark_key = "sync:" + hashlib.sha256(self.url.encode()).hexdigest()[:12]
        self._remote_runs: Dict[str, int] = {}

    # --- the watermark: the last local trial id copied, kept in the local store -----------------------
    def _mark(self) -> Dict[str, Any]:
        return self.local.get_state(self._mark_key) or {"trial_id": 0, "runs_at": 0.0}

    def pending(self) -> int:
        """Local trials not yet copied to the fleet's store."""
        return self.local.trial_count(after_id=int(self._mark()["trial_id"]))

    def status(self) -> Dict[str, Any]:
        return {"url": self.display, "reachable": self.remote is not None and self.error is None,
                "pending_trials": self.pending(), "last_sync": self.last_sync, "error": self.error,
                "failures": self.failures}

    def _connect(self) -> Store:
        if self.remote is None:
            self.remote = Store(self.url)
            self._remote_runs.clear()
        return self.remote

    def _drop(self) -> None:
        if self.remote is not None:
            try:
                self.remote.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
                pass
        self.remote = None

    def sync(self, force: bool = False) -> bool:
        """Copy what is new if the fleet's store is due (or ``force``); True when all is copied."""
        now = time.monotonic()
        if not force and now < self._next_try:
            return self.error is None
        self._next_try = now + self.interval_s
        try:
            remote = self._connect()
            self._push(remote)
        except Exception as exc:  # noqa: BLE001 - the network, the server, a full disk there: retried later
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self.error != message:
                log.warning("fleet store %s: %s; holding on with the local record, retrying every %.0f s",
                            self.display, message, self.interval_s)
            self.error = message
            self.failures += 1
            self._drop()
            return False
        if self.error is not None:
            log.info("fleet store %s reachable again: local record copied", self.display)
        self.error = None
        self.last_sync = time.time()
        return True

    def _push(self, remote: Store) -> None:
        mark = self._mark()
        after = int(mark["trial_id"])
        runs_at = float(mark.get("runs_at") or 0.0)
        started = time.time()
        while True:
            rows = self.local.trial_rows(after_id=after, limit=200)
            if not rows:
                break
            for row in rows:
                remote.copy_trial(self._remote_run(remote, row["run_key"]), row)
                after = int(row["id"])
            self.local.set_state(self._mark_key, {"trial_id": after, "runs_at": runs_at})
        for run in self.local.runs():  # summaries and warm-start outcomes written after the trials
            if float(run["updated"] or 0.0) >= runs_at:
                self._remote_run(remote, run["key"], refresh=True)
        for key, doc, updated in self.local.states("daemon:"):
            remote.set_state(self.remote_state_key(key), {**doc, **self.extra_state, "board_id": self.board_id,
                                                          "seen": time.time()}, updated)
        self.local.set_state(self._mark_key, {"trial_id": after, "runs_at": started})

    def _remote_run(self, remote: Store, key: str, refresh: bool = False) -> int:
        if refresh or key not in self._remote_runs:
            row = self.local.run_row(key)
            if row is None:
                raise EdgetuneError(f"run {key} vanished from the local store")
            self._remote_runs[key] = remote.copy_run(row)
        return self._remote_runs[key]

    def remote_state_key(self, local_key: str) -> str:
        """``daemon:BOARD:WORKLOAD`` here is ``daemon@BOARD_ID:BOARD:WORKLOAD`` in the fleet's store."""
        return f"daemon@{self.board_id}:{local_key.partition(':')[2]}"

    def prior(self, identity: Identity, **kwargs: Any) -> Any:
        """The fleet's prior for a search, read from the fleet's store now; None when it cannot be read
        (the search then runs on this board's own data, and says why)."""
        if not self.sync(force=self.remote is None):
            return None
        try:
            return load_prior(self._connect(), identity, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._drop()
            return None

    def close(self) -> None:
        self._drop()

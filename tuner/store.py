"""SQLite store of runs and trials: what makes a sweep or a tune resumable.

A *run* is one search of one workload on one board over one space with one
measurement policy; its ``key`` is a digest of exactly those, so running the
same command again finds the same run. Each trial stores the combined
measurement and its repeats (as JSON, with the cost columns the reports need
as plain columns). Resuming is replay: the strategy asks again, and a config
the run already measured is answered from the store instead of the board —
so an interrupted run skips what it has, and a finished one measures nothing.

stdlib ``sqlite3`` in WAL mode: readers (``edgetune status``) never block the
writer, and a crash loses at most the trial being measured.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from tuner.config import Config
from tuner.errors import EdgetuneError
from tuner.measurement import Measurement
from tuner.runner import Trial

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    board TEXT NOT NULL,
    workload TEXT NOT NULL,
    simulated INTEGER NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    config TEXT NOT NULL,
    feasible INTEGER NOT NULL,
    energy_j REAL,
    time_s REAL,
    cost REAL,
    measurement TEXT NOT NULL,
    repeats TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE INDEX IF NOT EXISTS trials_by_config ON trials (run_id, config);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated REAL NOT NULL
);
"""

SEARCH = "search"
REFERENCE = "reference"


def run_key(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=10.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EdgetuneError(f"cannot open the store {self.path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_run(self, kind: str, board: str, workload: str, simulated: bool, spec: dict[str, Any]) -> Run:
        """The run with this exact spec (resumed), or a new one."""
        full = {"kind": kind, "board": board, "workload": workload, **spec}
        key = run_key(full)
        row = self.db.execute("SELECT id FROM runs WHERE key = ?", (key,)).fetchone()
        if row is None:
            now = time.time()
            with self.db:
                cur = self.db.execute(
                    "INSERT INTO runs (key, kind, board, workload, simulated, spec, created, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, kind, board, workload, int(simulated), json.dumps(full, default=str), now, now))
            run_id = cur.lastrowid
        else:
            run_id = row[0]
        return Run(self, int(run_id), key)

    def get_state(self, key: str) -> dict[str, Any] | None:
        """A small JSON document kept across restarts (the daemon's per-workload state)."""
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT INTO state (key, value, updated) VALUES (?, ?, ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                            (key, json.dumps(value, default=str), time.time()))

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, key, kind, board, workload, simulated, created, updated, "
                               "(SELECT COUNT(*) FROM trials t WHERE t.run_id = runs.id) FROM runs ORDER BY id")
        return [{"id": r[0], "key": r[1], "kind": r[2], "board": r[3], "workload": r[4], "simulated": bool(r[5]),
                 "created": r[6], "updated": r[7], "trials": r[8]} for r in rows]


class Run:
    """One run's trials; :meth:`take` hands stored trials back for replay."""

    def __init__(self, store: Store, run_id: int, key: str) -> None:
        self.store = store
        self.id = run_id
        self.key = key
        self._pending: dict[tuple[str, str], deque[Trial]] = defaultdict(deque)
        for role, trial in self.trials():
            self._pending[(role, trial.config.to_json())].append(trial)
        self.resumed = sum(len(q) for q in self._pending.values())

    def trials(self, role: str | None = None) -> list[tuple[str, Trial]]:
        sql = "SELECT role, measurement, repeats FROM trials WHERE run_id = ?"
        args: tuple[Any, ...] = (self.id,)
        if role is not None:
            sql += " AND role = ?"
            args += (role,)
        out = []
        for r_role, m_json, rep_json in self.store.db.execute(sql + " ORDER BY seq", args):
            m = Measurement.from_dict(json.loads(m_json))
            repeats = [Measurement.from_dict(d) for d in json.loads(rep_json)]
            out.append((r_role, Trial(m.config, m, repeats)))
        return out

    def take(self, config: Config, role: str = SEARCH) -> Trial | None:
        """A stored, not yet replayed trial of ``config`` (resume), or None."""
        queue = self._pending.get((role, config.to_json()))
        return queue.popleft() if queue else None

    def add(self, trial: Trial, cost: float, role: str = SEARCH) -> None:
        m = trial.measurement
        now = time.time()
        with self.store.db:
            seq = self.store.db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM trials WHERE run_id = ?",
                                        (self.id,)).fetchone()[0]
            self.store.db.execute(
                "INSERT INTO trials (run_id, seq, role, config, feasible, energy_j, time_s, cost, measurement, "
                "repeats, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.id, seq, role, trial.config.to_json(), int(m.feasible), _num(m.energy_j), _num(m.time_s),
                 _num(cost), json.dumps(m.to_dict()), json.dumps([r.to_dict() for r in trial.repeats]), now))
            self.store.db.execute("UPDATE runs SET updated = ? WHERE id = ?", (now, self.id))

    def set_summary(self, summary: dict[str, Any]) -> None:
        with self.store.db:
            self.store.db.execute("UPDATE runs SET summary = ? WHERE id = ?", (json.dumps(summary), self.id))

    def export_csv(self, path: str | Path) -> int:
        """``trials.csv``: one row per measured repeat, config columns first; returns the row count."""
        rows = []
        knob_names: set[str] = set()
        for index, (role, trial) in enumerate(self.trials()):
            knob_names.update(trial.config)
            for rep_index, rep in enumerate(trial.repeats or [trial.measurement]):
                rows.append((index, role, rep_index, trial.config, rep))
        rail_names = sorted({name for *_, rep in rows for name in rep.rail_energy_j})
        knobs = sorted(knob_names)
        header = knobs + ["trial", "role", "repeat", "feasible", "failure", "energy_j", "time_s", "inferences",
                          "energy_per_inference_mj", "avg_power_w", "batch_latency_p50_ms", "batch_latency_p95_ms",
                          "simulated"] + [f"rail_{n}_j" for n in rail_names]
        path = Path(path)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for index, role, rep_index, config, rep in rows:
                writer.writerow([config.get(k, "") for k in knobs] + [
                    index, role, rep_index, int(rep.feasible), rep.failure or "", _cell(rep.energy_j),
                    _cell(rep.time_s), rep.inferences, _cell(rep.energy_per_inference_j * 1e3),
                    _cell(rep.avg_power_w), _cell(rep.batch_latency_p50_s * 1e3),
                    _cell(rep.batch_latency_p95_s * 1e3), int(rep.simulated),
                ] + [_cell(rep.rail_energy_j.get(n, float("nan"))) for n in rail_names])
        return len(rows)


def _num(value: float) -> float | None:
    return None if value != value or value in (float("inf"), float("-inf")) else value


def _cell(value: float) -> str:
    return "" if value != value else f"{value:.6g}"

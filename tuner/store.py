"""The store of runs and trials, addressed by URL: what makes a search resumable and a fleet share.

A *run* is one search of one workload on one board over one space with one
measurement policy; its ``key`` is a digest of exactly those, so running the
same command again finds the same run. Each trial stores the combined
measurement and its repeats (as JSON, with the cost columns the reports need
as plain columns). Resuming is replay: the strategy asks again, and a config
the run already measured is answered from the store instead of the board —
so an interrupted run skips what it has, and a finished one measures nothing.

Where it lives is a URL (DESIGN §3):

- ``sqlite:///PATH`` (or a plain path): a file, no server. The default is
  ``edgetune.sqlite`` in the run directory (the daemon's: in its state
  directory). WAL mode, so readers never block the writer; every write is one
  ``BEGIN IMMEDIATE`` transaction, so several processes may share a file.
- ``postgresql://USER@HOST/DB``: a server that a fleet of boards shares
  (psycopg 3, ``pip install 'edgetune[fleet]'``; the URL is used as
  ``postgresql+psycopg://``).

Both go through SQLAlchemy Core with one schema and versioned migrations
(:data:`MIGRATIONS`, recorded in ``schema_version``). A store written before
versions existed (schema 1: runs, trials, state) is recognised by its tables
and migrated in place when it is opened. Trial sequence numbers are unique per
run (a constraint); a writer that loses the race for a number retries with the
next, so concurrent writers never overwrite or lose a trial. Each trial has a
``uid``, so copying trials between stores (a daemon's local record to the
fleet's server) is idempotent.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import time
import uuid
from collections import defaultdict, deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from tuner.config import Config
from tuner.errors import EdgetuneError
from tuner.measurement import Measurement
from tuner.measurement import Trial

SEARCH = "search"
REFERENCE = "reference"
#: A PostgreSQL advisory lock taken while the schema is migrated (any number; this one spells "edgetune").
_MIGRATION_LOCK = 0x65646765


class StoreUnreachable(EdgetuneError):
    """The store's server (or file) cannot be reached now; it may be later."""


def run_key(spec: dict[str, Any]) -> str:
    """A short stable hash of a run's spec: the same command (and settings) finds and resumes its run."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- URLs ------------------------------------------------------------------------------------------
def store_url(target: str | Path) -> str:
    """The SQLAlchemy URL of a store given as a URL or a path.

    A path (or ``sqlite:///PATH``) is a SQLite file; ``postgresql://``,
    ``postgres://`` and ``postgresql+psycopg://`` are a PostgreSQL server,
    reached through psycopg 3. Anything else is a one-line error."""
    text = str(target).strip()
    if isinstance(target, Path) or "://" not in text:
        if not text:
            raise EdgetuneError("an empty store URL; give sqlite:///PATH or postgresql://USER@HOST/DB")
        return "sqlite:///" + text
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or not rest.strip("/"):
            raise EdgetuneError(f"a SQLite store is sqlite:///PATH (a file), not {text!r}")
        return text
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql+psycopg://" + rest
    if scheme.startswith("postgresql+"):
        return text  # another driver the user chose (postgresql+psycopg2://...)
    raise EdgetuneError(f"a store URL is sqlite:///PATH or postgresql://USER@HOST/DB, not {redact(text)!r}")


def redact(url: str) -> str:
    """``url`` without its password, for messages, logs and status."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(url))


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite store URL, None for a server."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


# --- schema ----------------------------------------------------------------------------------------
def _v1_tables(meta: sa.MetaData) -> None:
    """Schema 1: what every store held before versions (runs, trials, state)."""
    sa.Table(
        "runs", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.Text, unique=True, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("board", sa.Text, nullable=False),
        sa.Column("workload", sa.Text, nullable=False),
        sa.Column("simulated", sa.Integer, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.Column("summary", sa.Text),
    )
    trials = sa.Table(
        "trials", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("feasible", sa.Integer, nullable=False),
        sa.Column("energy_j", sa.Float),
        sa.Column("time_s", sa.Float),
        sa.Column("cost", sa.Float),
        sa.Column("measurement", sa.Text, nullable=False),
        sa.Column("repeats", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("run_id", "seq"),
    )
    sa.Index("trials_by_config", trials.c.run_id, trials.c.config)
    sa.Table(
        "state", meta,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )


def _migrate_1(conn: sa.engine.Connection) -> None:
    meta = sa.MetaData()
    _v1_tables(meta)
    meta.create_all(conn)


#: Columns schema 2 adds to runs: who measured (board id, host, model, L4T) and the fleet key.
_V2_RUN_COLUMNS = ("board_id", "host", "model", "l4t", "fleet_key", "fleet")


def _migrate_2(conn: sa.engine.Connection) -> None:
    for name in _V2_RUN_COLUMNS:
        conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {name} TEXT"))
    conn.execute(sa.text("ALTER TABLE trials ADD COLUMN uid TEXT"))
    ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM trials WHERE uid IS NULL"))]
    for trial_id in ids:  # trials written before uids: give each one, so they can be copied exactly once
        conn.execute(sa.text("UPDATE trials SET uid = :uid WHERE id = :id"), {"uid": uuid.uuid4().hex, "id": trial_id})
    conn.execute(sa.text("CREATE UNIQUE INDEX trials_by_uid ON trials (uid)"))
    conn.execute(sa.text("CREATE INDEX runs_by_fleet_key ON runs (fleet_key)"))


#: (version, what it does, the step). Append only: a released step never changes.
MIGRATIONS: tuple[tuple[int, str, Callable[[sa.engine.Connection], None]], ...] = (
    (1, "runs, trials, state", _migrate_1),
    (2, "board identity and fleet key on runs, trial uids", _migrate_2),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# The tables as the queries see them (the latest schema).
_META = sa.MetaData()
_v1_tables(_META)
RUNS = _META.tables["runs"]
TRIALS = _META.tables["trials"]
STATE = _META.tables["state"]
for _name in _V2_RUN_COLUMNS:
    RUNS.append_column(sa.Column(_name, sa.Text))
TRIALS.append_column(sa.Column("uid", sa.Text))
VERSIONS = sa.Table(
    "schema_version", _META,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied", sa.Float, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)


# --- the store ---------------------------------------------------------------------------------------
class Store:
    """Runs, trials and small state documents in a SQLite file or a PostgreSQL database.

    ``target`` is a URL or a path (a path is a SQLite file, as before URLs).
    Opening migrates the schema to :data:`SCHEMA_VERSION`; an unreachable
    server raises :class:`StoreUnreachable`."""

    def __init__(self, target: str | Path, *, connect_timeout_s: float = 5.0) -> None:
        self.url = store_url(target)
        self.display = redact(self.url)
        self.path = sqlite_path(self.url)
        self.engine = self._engine(connect_timeout_s)
        self.dialect = self.engine.dialect.name
        try:
            self.version = self._migrate()
        except EdgetuneError:
            self.engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            self.engine.dispose()
            raise StoreUnreachable(f"cannot open the store {self.display}: {_reason(exc)}") from None

    def _engine(self, connect_timeout_s: float) -> sa.engine.Engine:
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnreachable(f"cannot open the store {self.path}: {exc.strerror or exc}") from None
            engine = sa.create_engine(self.url, connect_args={"timeout": 30.0})

            @event.listens_for(engine, "connect")
            def _connect(dbapi_conn: Any, record: Any) -> None:
                dbapi_conn.isolation_level = None  # transactions are begun below, not by the driver
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                # a writer takes the lock up front: a deferred transaction that reads and then
                # writes can fail at once with "database is locked" when another writer is in
                read = conn.get_execution_options().get("edgetune_read", False)
                conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

            return engine
        try:
            return sa.create_engine(self.url, pool_pre_ping=True, pool_size=2, max_overflow=2,
                                    connect_args={"connect_timeout": max(1, int(connect_timeout_s))})
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise EdgetuneError(f"a PostgreSQL store needs psycopg 3 and SQLAlchemy 2: pip install "
                                f"'edgetune[fleet]' ({exc})") from None

    # --- transactions --------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sa.engine.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except sa.exc.OperationalError as exc:
            raise StoreUnreachable(f"cannot reach the store {self.display}: {_reason(exc)}") from None

    @contextmanager
    def _read(self) -> Iterator[sa.engine.Connection]:
        try:
            with self.engine.connect() as base:
                conn = base.execution_options(edgetune_read=True)
                with conn.begin():
                    yield conn
        except sa.exc.OperationalError as exc:
            raise StoreUnreachable(f"cannot reach the store {self.display}: {_reason(exc)}") from None

    def _migrate(self) -> int:
        """Bring the schema to the latest version; returns it. Concurrent openers wait for one another."""
        with self._read() as conn:
            current = self._version(conn)
        if current == SCHEMA_VERSION:
            return current
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            names = set(sa.inspect(conn).get_table_names())
            if VERSIONS.name not in names:
                VERSIONS.create(conn)
                if "runs" in names:  # written before versions: today's tables are schema 1
                    conn.execute(VERSIONS.insert().values(version=1, applied=time.time(),
                                                          note="an unversioned store, adopted as schema 1"))
            current = self._version(conn)
            if current > SCHEMA_VERSION:
                raise EdgetuneError(f"the store {self.display} has schema {current}, newer than this edgetune "
                                    f"knows ({SCHEMA_VERSION}); upgrade edgetune")
            for version, note, step in MIGRATIONS:
                if version > current:
                    step(conn)
                    conn.execute(VERSIONS.insert().values(version=version, applied=time.time(), note=note))
            return SCHEMA_VERSION

    def _version(self, conn: sa.engine.Connection) -> int:
        if not sa.inspect(conn).has_table(VERSIONS.name):
            return -1
        return int(conn.execute(sa.select(sa.func.max(VERSIONS.c.version))).scalar() or 0)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs ------------------------------------------------------------------------------------
    def open_run(self, kind: str, board: str, workload: str, simulated: bool, spec: dict[str, Any], *,
                 identity: dict[str, Any] | None = None) -> Run:
        """The run with this exact spec (resumed), or a new one.

        ``identity`` fills the board identity and fleet columns (``board_id``,
        ``host``, ``model``, ``l4t``, ``fleet_key``, ``fleet``); it is not part
        of the key (the caller puts the board id into ``spec`` where runs of
        several boards share a store)."""
        full = {"kind": kind, "board": board, "workload": workload, **spec}
        key = run_key(full)
        ident = _identity_columns(identity)
        now = time.time()
        for _ in range(5):
            with self._write() as conn:
                row = conn.execute(sa.select(RUNS.c.id).where(RUNS.c.key == key)).first()
                if row is not None and ident:  # a run written before identities (or by an older edgetune)
                    conn.execute(RUNS.update().where(RUNS.c.id == row[0]).values(**ident))
            if row is not None:
                return Run(self, int(row[0]), key)
            try:
                with self._write() as conn:
                    res = conn.execute(RUNS.insert().values(
                        key=key, kind=kind, board=board, workload=workload, simulated=int(simulated),
                        spec=json.dumps(full, default=str), created=now, updated=now, **ident))
                    run_id = int(res.inserted_primary_key[0])
                return Run(self, run_id, key)
            except IntegrityError:  # another process created it between the two transactions
                continue
        raise EdgetuneError(f"cannot open run {key} in the store {self.display}")

    def run(self, key: str) -> Run | None:
        """An existing run by its key."""
        with self._read() as conn:
            row = conn.execute(sa.select(RUNS.c.id).where(RUNS.c.key == key)).first()
        return None if row is None else Run(self, int(row[0]), key)

    def runs(self) -> list[dict[str, Any]]:
        n = (sa.select(sa.func.count()).select_from(TRIALS).where(TRIALS.c.run_id == RUNS.c.id)
             .scalar_subquery())
        cols = [RUNS.c.id, RUNS.c.key, RUNS.c.kind, RUNS.c.board, RUNS.c.workload, RUNS.c.simulated,
                RUNS.c.created, RUNS.c.updated, n.label("trials"), *[RUNS.c[c] for c in _V2_RUN_COLUMNS],
                RUNS.c.summary]
        with self._read() as conn:
            rows = conn.execute(sa.select(*cols).order_by(RUNS.c.id)).mappings().all()
        out = []
        for r in rows:
            doc = dict(r)
            doc["simulated"] = bool(doc["simulated"])
            for name in ("fleet", "summary"):
                doc[name] = json.loads(doc[name]) if doc[name] else None
            out.append(doc)
        return out

    # --- state documents ------------------------------------------------------------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        """A small JSON document kept across restarts (the daemon's per-workload state)."""
        with self._read() as conn:
            row = conn.execute(sa.select(STATE.c.value).where(STATE.c.key == key)).first()
        return None if row is None else json.loads(row[0])

    def set_state(self, key: str, value: dict[str, Any], updated: float | None = None) -> None:
        now = time.time() if updated is None else updated
        with self._write() as conn:
            self._upsert_state(conn, key, json.dumps(value, default=str), now)

    def _upsert_state(self, conn: sa.engine.Connection, key: str, value: str, updated: float) -> None:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(STATE).values(key=key, value=value, updated=updated)
        conn.execute(stmt.on_conflict_do_update(index_elements=[STATE.c.key],
                                                set_={"value": stmt.excluded.value, "updated": stmt.excluded.updated}))

    def states(self, prefix: str = "") -> list[tuple[str, dict[str, Any], float]]:
        """Every state document whose key starts with ``prefix``: (key, document, updated)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(STATE.c.key, STATE.c.value, STATE.c.updated)
                                .where(STATE.c.key.startswith(prefix, autoescape=True)).order_by(STATE.c.key)).all()
        return [(k, json.loads(v), float(u)) for k, v, u in rows]

    # --- trials ------------------------------------------------------------------------------------
    def _insert_trial(self, run_id: int, row: dict[str, Any], now: float) -> int:
        """Insert one trial row with the run's next sequence number; returns the number.

        The number is unique per run (a constraint). Two writers of one run may
        both read the same next number; the second insert then fails on the
        constraint (PostgreSQL makes it wait for the first to commit) and is
        retried with a fresh number. A row whose ``uid`` is already stored is
        not inserted again (a copy that was interrupted after it committed)."""
        for attempt in range(100):
            try:
                with self._write() as conn:
                    seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(TRIALS.c.seq), -1) + 1)
                                       .where(TRIALS.c.run_id == run_id)).scalar()
                    conn.execute(TRIALS.insert().values(run_id=run_id, seq=int(seq), **row))
                    conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(updated=now))
                return int(seq)
            except IntegrityError:
                with self._read() as conn:
                    found = conn.execute(sa.select(TRIALS.c.seq).where(TRIALS.c.uid == row["uid"])).first()
                if found is not None:
                    return int(found[0])
                time.sleep(random.uniform(0.0, 0.002 * (attempt + 1)))  # lost the race for a number: again
        raise EdgetuneError(f"could not store a trial in {self.display}: too many concurrent writers")

    def trial_rows(self, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """Stored trial rows with an id above ``after_id``, oldest first, with their run's key (for copying)."""
        cols = [TRIALS.c[c] for c in TRIALS.c.keys()] + [RUNS.c.key.label("run_key")]
        with self._read() as conn:
            rows = conn.execute(sa.select(*cols).select_from(TRIALS.join(RUNS, TRIALS.c.run_id == RUNS.c.id))
                                .where(TRIALS.c.id > after_id).order_by(TRIALS.c.id).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def trial_count(self, after_id: int = 0) -> int:
        """How many trials are stored with an id above ``after_id``."""
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(TRIALS)
                                    .where(TRIALS.c.id > after_id)).scalar())

    def run_row(self, key: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.key == key)).mappings().first()
        return None if row is None else dict(row)

    def copy_run(self, row: dict[str, Any]) -> int:
        """Make (or update) a run from another store's row, by key; returns its id here."""
        values = {c: row.get(c) for c in RUNS.c.keys() if c not in ("id",)}
        for _ in range(5):
            with self._write() as conn:
                found = conn.execute(sa.select(RUNS.c.id).where(RUNS.c.key == row["key"])).first()
                if found is not None:
                    conn.execute(RUNS.update().where(RUNS.c.id == found[0]).values(
                        **{k: v for k, v in values.items() if k not in ("key", "created")}))
                    return int(found[0])
            try:
                with self._write() as conn:
                    return int(conn.execute(RUNS.insert().values(**values)).inserted_primary_key[0])
            except IntegrityError:
                continue
        raise EdgetuneError(f"cannot copy run {row['key']} into the store {self.display}")

    def copy_trial(self, run_id: int, row: dict[str, Any]) -> int:
        """Store another store's trial row in run ``run_id`` here, once (by its uid)."""
        values = {c: row[c] for c in TRIALS.c.keys() if c not in ("id", "run_id", "seq")}
        return self._insert_trial(run_id, values, float(row["created"]))

    def fleet_trials(self, fleet_key: str, exclude_board: str | None = None,
                     role: str = SEARCH) -> list[tuple[dict[str, Any], Trial]]:
        """Every ``role`` trial of the runs with this fleet key, except those of board ``exclude_board``:
        (its run's board_id/host/key, the trial), in the order they were stored."""
        query = (sa.select(RUNS.c.board_id, RUNS.c.host, RUNS.c.key, TRIALS.c.measurement, TRIALS.c.repeats)
                 .select_from(TRIALS.join(RUNS, TRIALS.c.run_id == RUNS.c.id))
                 .where(RUNS.c.fleet_key == fleet_key, TRIALS.c.role == role).order_by(TRIALS.c.id))
        if exclude_board is not None:
            query = query.where(sa.or_(RUNS.c.board_id.is_(None), RUNS.c.board_id != exclude_board))
        with self._read() as conn:
            rows = conn.execute(query).all()
        out = []
        for board_id, host, key, m_json, rep_json in rows:
            out.append(({"board_id": board_id, "host": host, "run": key}, _trial(m_json, rep_json)))
        return out


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
        query = sa.select(TRIALS.c.role, TRIALS.c.measurement, TRIALS.c.repeats).where(TRIALS.c.run_id == self.id)
        if role is not None:
            query = query.where(TRIALS.c.role == role)
        with self.store._read() as conn:
            rows = conn.execute(query.order_by(TRIALS.c.seq)).all()
        return [(r_role, _trial(m_json, rep_json)) for r_role, m_json, rep_json in rows]

    def take(self, config: Config, role: str = SEARCH) -> Trial | None:
        """A stored, not yet replayed trial of ``config`` (resume), or None."""
        queue = self._pending.get((role, config.to_json()))
        return queue.popleft() if queue else None

    def add(self, trial: Trial, cost: float, role: str = SEARCH) -> int:
        """Store a trial measured now (one transaction); returns its sequence number in the run."""
        m = trial.measurement
        now = time.time()
        row = {"role": role, "config": trial.config.to_json(), "feasible": int(m.feasible),
               "energy_j": _num(m.energy_j), "time_s": _num(m.time_s), "cost": _num(cost),
               "measurement": json.dumps(m.to_dict()), "repeats": json.dumps([r.to_dict() for r in trial.repeats]),
               "created": now, "uid": uuid.uuid4().hex}
        return self.store._insert_trial(self.id, row, now)

    def set_summary(self, summary: dict[str, Any]) -> None:
        with self.store._write() as conn:
            conn.execute(RUNS.update().where(RUNS.c.id == self.id).values(summary=json.dumps(summary),
                                                                          updated=time.time()))

    def set_fleet(self, doc: dict[str, Any] | None) -> None:
        """What the fleet warm start did in this run (tuner.search.Prior's outcome)."""
        with self.store._write() as conn:
            conn.execute(RUNS.update().where(RUNS.c.id == self.id).values(
                fleet=json.dumps(doc, default=str) if doc is not None else None))

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


def _trial(m_json: str, rep_json: str) -> Trial:
    m = Measurement.from_dict(json.loads(m_json))
    repeats = [Measurement.from_dict(d) for d in json.loads(rep_json)]
    return Trial(m.config, m, repeats)


def _identity_columns(identity: dict[str, Any] | None) -> dict[str, Any]:
    if not identity:
        return {}
    out = {k: identity.get(k) for k in _V2_RUN_COLUMNS if identity.get(k) is not None}
    if isinstance(out.get("fleet"), dict):
        out["fleet"] = json.dumps(out["fleet"], sort_keys=True, default=str)
    return out


def _reason(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _num(value: float) -> float | None:
    return None if value != value or value in (float("inf"), float("-inf")) else value


def _cell(value: float) -> str:
    return "" if value != value else f"{value:.6g}"

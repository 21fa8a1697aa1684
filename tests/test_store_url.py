"""The store by URL: URLs, the default SQLite file in the run directory, versioned schema migrations
(an unversioned store made by the earlier code is migrated in place), and one-line errors.

tests/data/legacy_store/ was written by edgetune before schema versions (a 2x2x2 sweep of ResNet-18 on
a simulated Nano, plus one daemon state row): its trials.csv is what that code exported.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.errors import EdgetuneError
from tuner.store import SCHEMA_VERSION, Store, StoreUnreachable, redact, store_url

cli = CliRunner()
LEGACY = Path(__file__).resolve().parent / "data" / "legacy_store"
SMALL = ["--cpu-freqs", "403.2MHz,1479MHz", "--gpu-freqs", "307.2MHz,921.6MHz", "--batch-sizes", "8,16",
         "--inferences", "320"]


def invoke(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_store_urls_paths_and_postgresql_map_to_sqlalchemy_urls():
    assert store_url(Path("/tmp/x/edgetune.sqlite")) == "sqlite:////tmp/x/edgetune.sqlite"
    assert store_url("runs/e.sqlite") == "sqlite:///runs/e.sqlite"
    assert store_url("sqlite:////var/lib/edgetune/edgetune.sqlite") == "sqlite:////var/lib/edgetune/edgetune.sqlite"
    assert store_url("postgresql://tuner@db.local/fleet") == "postgresql+psycopg://tuner@db.local/fleet"
    assert store_url("postgres://tuner@db/fleet") == "postgresql+psycopg://tuner@db/fleet"
    assert store_url("postgresql+psycopg://tuner@db/fleet") == "postgresql+psycopg://tuner@db/fleet"
    assert redact("postgresql+psycopg://tuner:s3cret@db:5432/fleet") == "postgresql+psycopg://tuner:***@db:5432/fleet"
    for bad in ("mysql://x@y/z", "sqlite://", "sqlite:///", ""):
        with pytest.raises(EdgetuneError):
            store_url(bad)
    with pytest.raises(EdgetuneError) as err:
        store_url("mysql://u:pw@h/db")
    assert "pw" not in str(err.value)


def test_without_store_the_run_directory_holds_a_versioned_sqlite_store_and_resumes(tmp_path):
    out = tmp_path / "run"
    first = invoke("sweep", "--board", "sim:jetson-nano", "--workload", "resnet18", "--out", str(out), *SMALL,
                   "--no-plots")
    assert first["n_measured_now"] == 8 + 5 and "store" not in first and "fleet" not in first
    db = sqlite3.connect(str(out / "edgetune.sqlite"))
    assert [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]
    board_id, host, fleet_key = db.execute("SELECT board_id, host, fleet_key FROM runs").fetchone()
    assert board_id and host and len(fleet_key) == 16  # who measured is recorded, in the default store too
    uids = [u for (u,) in db.execute("SELECT uid FROM trials")]
    assert len(uids) == len(set(uids)) == 8 + 5 + 2 and all(uids)
    db.close()
    again = invoke("sweep", "--board", "sim:jetson-nano", "--workload", "resnet18", "--out", str(out), *SMALL,
                   "--no-plots")
    assert again["n_measured_now"] == 0 and again["best"] == first["best"]


def test_an_unversioned_store_from_the_earlier_code_is_migrated_in_place(tmp_path):
    path = tmp_path / "edgetune.sqlite"
    shutil.copy(LEGACY / "edgetune.sqlite", path)
    db = sqlite3.connect(str(path))
    assert {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} == {"runs", "trials",
                                                                                                  "state"}
    db.close()
    store = Store(path)
    assert store.version == SCHEMA_VERSION == 2
    runs = store.runs()
    assert len(runs) == 1 and runs[0]["kind"] == "sweep" and runs[0]["trials"] == 15 and runs[0]["board_id"] is None
    run = store.run(runs[0]["key"])
    assert run.resumed == 15  # replay-based resume sees every trial the earlier code stored
    roles = [role for role, _ in run.trials()]
    assert roles.count("reference") == 2 and roles.count("search") == 13
    # trials.csv is exported exactly as the earlier code exported it
    run.export_csv(tmp_path / "trials.csv")
    assert (tmp_path / "trials.csv").read_text() == (LEGACY / "trials.csv").read_text()
    assert store.get_state("daemon:sim:jetson-nano:resnet18")["state"] == "holding"
    store.close()
    db = sqlite3.connect(str(path))
    versions = db.execute("SELECT version, note FROM schema_version ORDER BY version").fetchall()
    assert [v for v, _ in versions] == [1, 2] and "unversioned" in versions[0][1]
    uids = [u for (u,) in db.execute("SELECT uid FROM trials")]
    assert len(set(uids)) == 15 and all(uids)  # the old trials got uids, so they can be copied once
    db.close()
    # opening again changes nothing; a run added now goes on with the next sequence number
    store = Store(path)
    run = store.run(runs[0]["key"])
    _, trial = run.trials()[0]
    assert run.add(trial, 1.0) == 15
    store.close()
    doc = invoke("fleet", "--store", f"sqlite:///{path}")
    # one board (its id unknown: the earlier code did not record it), its daemon state row beside its sweep
    assert [(b["board"], b["board_id"], b["workload"], b["state"], b["trials"]) for b in doc["boards"]] == [
        ("sim:jetson-nano", None, "resnet18", "holding", 16)]
    assert doc["schema_version"] == 2


def test_a_store_newer_than_this_edgetune_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    db = sqlite3.connect(str(path))
    db.execute("INSERT INTO schema_version (version, applied, note) VALUES (99, 0, 'from the future')")
    db.commit()
    db.close()
    with pytest.raises(EdgetuneError, match="schema 99, newer than this edgetune"):
        Store(path)


def test_bad_and_unreachable_stores_are_one_line_errors(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnreachable, match="cannot open the store"):
        Store(f"sqlite:///{blocker}/sub/edgetune.sqlite")
    for url, expected in ((f"sqlite:///{blocker}/sub/e.sqlite", "cannot open the store"),
                          ("mysql://u@h/db", "a store URL is sqlite:///PATH or postgresql://")):
        result = cli.invoke(app, ["tune", "--board", "sim:jetson-nano", "--workload", "resnet18", "--out",
                                  str(tmp_path / "run"), "--store", url, "--budget", "2", *SMALL])
        assert result.exit_code == 1 and isinstance(result.exception, EdgetuneError)
        assert expected in str(result.exception) and "\n" not in str(result.exception)
        result = cli.invoke(app, ["fleet", "--store", url])
        assert result.exit_code == 1 and isinstance(result.exception, EdgetuneError)
    # a listing makes no store where there was none
    result = cli.invoke(app, ["fleet", "--store", f"sqlite:///{tmp_path / 'none.sqlite'}"])
    assert result.exit_code == 1 and "no store at" in str(result.exception)
    assert not (tmp_path / "none.sqlite").exists()


def test_the_entry_point_prints_a_store_error_in_one_line(tmp_path):
    import subprocess
    import sys

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = subprocess.run([sys.executable, "-m", "tuner.cli.entry", "tune", "--board", "sim:jetson-nano", "--workload",
                          "resnet18", "--out", str(tmp_path / "run"), "--store", f"sqlite:///{blocker}/e.sqlite"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("error: cannot open the store")
    assert len(out.stderr.strip().splitlines()) == 1

"""benchmarks/strategies.py: an --update of a saved table re-benches only the strategies named."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "strategies.py"
REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "real-surfaces" / "loudva-nano-inception_v3.csv"


def table(monkeypatch, capsys, *args: str) -> dict:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    capsys.readouterr()
    return json.loads(Path(args[args.index("--out") + 1]).read_text())


def test_an_update_of_a_real_table_keeps_the_other_strategies_rows(monkeypatch, capsys, tmp_path):
    """It used to write only the re-benched rows of a table on a recording (``--real``),
    silently dropping every other strategy's; now it keeps them, as for simulated tables."""
    if not REAL.exists():
        pytest.skip(f"the shared real surface is absent here ({REAL})")
    out = str(tmp_path / "real.json")
    common = ("--real", str(REAL), "--workloads", "inception_v3", "--seeds", "2", "--out", out)
    first = table(monkeypatch, capsys, *common, "--strategies", "random,ogd")
    updated = table(monkeypatch, capsys, *common, "--strategies", "random", "--update")
    rows = {r["name"]: r for r in updated["results"][0]["strategies"]}
    assert list(rows) == ["random", "ogd"]
    assert rows["ogd"] == first["results"][0]["strategies"][1]
    assert rows["random"]["regret_per_seed"] == first["results"][0]["strategies"][0]["regret_per_seed"]
    assert updated["results"][0]["updated"] == ["random"]
    assert updated["updates"] == [first["command"]]

"""Shared fixtures: emulated board trees in temporary directories (never the real /sys)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tuner.sim.tree import create_tree
from tuner.sysfs import Sysfs


def tree_state(root: Path) -> dict[str, str]:
    """Contents of every regular file under /sys, /proc and /etc of a tree."""
    state = {}
    for top in ("sys", "proc", "etc"):
        for dirpath, _dirs, files in os.walk(root / top):
            for name in files:
                p = Path(dirpath) / name
                if not p.is_symlink():
                    state[str(p.relative_to(root))] = p.read_text()
    return state


@pytest.fixture
def make_tree(tmp_path: Path):
    def make(profile: str = "jetson-nano", jetpack: str | None = None) -> Path:
        root = tmp_path / f"{profile}-{jetpack or 'default'}"
        create_tree(profile, root, jetpack)
        return root

    return make


@pytest.fixture
def nano(make_tree) -> Path:
    return make_tree("jetson-nano")


@pytest.fixture
def nano_fs(nano: Path) -> Sysfs:
    return Sysfs(nano)


# --- a daemon under test, through its socket ------------------------------------------------
def until(predicate, what: str = "condition", timeout: float = 60.0, every: float = 0.02):
    """Poll ``predicate`` until it returns something true (returned), or fail naming ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def workload_status(sock: Path) -> dict:
    """The first workload's status from a daemon's socket; {} while the socket is not up yet."""
    from tuner.daemon.protocol import request
    from tuner.errors import EdgetuneError

    try:
        doc = request(sock, {"cmd": "status"})["status"]
    except EdgetuneError:
        return {}
    return doc["workloads"][0] if doc.get("workloads") else {}

"""Shared fixtures: emulated board trees in temporary directories (never the real /sys)."""

from __future__ import annotations

import os
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

"""Turn a ``--board`` spec and ``--root`` into a Board.

Specs: ``auto`` (default: a Jetson at ROOT), ``jetson``, ``linux``,
``nvml[:INDEX]``, ``sim:PROFILE``, ``replay:RUN_DIR`` (a recorded sweep). On a machine that is not a Jetson, auto
fails with a message that names ``--board sim:<profile>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.boards.base import Board
from tuner.errors import BoardNotFound, EdgetuneError
from tuner.sysfs import Sysfs


def check_root(root: str | Path) -> Path:
    """``--root`` as a Path, refused with a one-line error unless it is an existing directory
    (the hint names ``edgetune sim create`` for an emulated tree)."""
    path = Path(root)
    if not path.exists():
        raise EdgetuneError(f"root {path} does not exist (create an emulated tree with `edgetune sim create`)")
    if not path.is_dir():
        raise EdgetuneError(f"root {path} is not a directory")
    return path


def open_board(spec: str | None = None, root: str | Path = "/", *, allow_clock_control: bool = False,
               seed: int | None = 0, noise: Any = None) -> Board:
    """The board a spec names. ``noise`` (a :class:`tuner.sim.board.Noise`) is for
    ``sim:`` boards only: every other board measures its own noise."""
    spec = (spec or "auto").strip()
    root = check_root(root)
    if noise is not None and not spec.startswith("sim:"):
        raise EdgetuneError(f"--noise applies to simulated boards (sim:PROFILE) only, not {spec!r}: "
                            "a real or replayed board brings its own noise")
    if spec.startswith("sim:"):
        from tuner.sim.board import SimBoard

        return SimBoard(spec, seed=seed, noise=noise)
    if spec.startswith("replay:"):
        from tuner.replay import ReplayBoard

        return ReplayBoard(spec.partition(":")[2], seed=seed)
    if spec in ("auto", "jetson"):
        from tuner.boards.jetson import JetsonBoard

        try:
            return JetsonBoard(Sysfs(root))
        except BoardNotFound:
            if spec == "jetson" or str(root) != "/":
                raise
            raise BoardNotFound(
                "this machine is not a Jetson; use --board sim:<profile> (e.g. sim:jetson-nano), "
                "--root DIR for an emulated tree, or --board linux / --board nvml"
            ) from None
    if spec == "linux":
        from tuner.boards.linux import LinuxBoard

        return LinuxBoard(Sysfs(root))
    if spec == "nvml" or spec.startswith("nvml:"):
        from tuner.boards.nvml import NvmlBoard

        index_text = spec.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise EdgetuneError(f"bad board spec {spec!r}: nvml:INDEX takes a GPU index")
        return NvmlBoard(int(index_text), allow_clock_control=allow_clock_control,
                         state_dir=Path(root) / "var/lib/edgetune")
    raise EdgetuneError(f"unknown board {spec!r}; use auto, jetson, linux, nvml[:INDEX], sim:<profile> "
                         "or replay:<run dir>")

"""Open everything a one-shot search needs, and put the board back afterwards.

``sweep``, ``tune`` and ``compare`` share this: the board from
``--board``/``--root``, the workload for it, the runner, the space, the store
(``--store URL``; by default ``edgetune.sqlite`` in the run directory) and run
directory — and the guarantee that whatever happens (an error, Ctrl-C,
SIGTERM) the board's clocks and governors are restored before the command
exits. On an emulated tree the live simulator runs in-process unless another
process (``edgetune sim run``) already animates it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Iterable

from tuner.boards.base import AnalyticBoard, Board
from tuner.boards.factory import open_board
from tuner.config import Space
from tuner.errors import EdgetuneError
from tuner.journal import DEFAULT_STATE_SUBDIR
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import plan_space
from tuner.store import Run, Store

STORE_NAME = "edgetune.sqlite"


def state_dir(root: str | Path = "/") -> Path:
    """Where runs and the store live: ``$EDGETUNE_STATE_DIR``; under an emulated
    tree, its own ``var/lib/edgetune``; on a real board ``/var/lib/edgetune``
    when writable, else ``~/.local/state/edgetune``."""
    env = os.environ.get("EDGETUNE_STATE_DIR")
    if env:
        return Path(env)
    if Path(root) != Path("/"):
        return Path(root) / DEFAULT_STATE_SUBDIR
    system = Path("/") / DEFAULT_STATE_SUBDIR
    if os.access(system if system.exists() else system.parent, os.W_OK):
        return system
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local/state")
    return Path(xdg) / "edgetune"


def open_workload(name: str, board: Board | AnalyticBoard, *, time_scale: float = 1.0,
                  options: dict[str, Any] | None = None) -> Any:
    """The workload for ``name`` on ``board``.

    Simulated and replayed boards run the calibrated reference workloads by
    name; an emulated tree runs them live (their batches take the model's time
    at the tree's clocks). Any other name, and any name on a real board, is the
    registered workload of that name run for real (``edgetune workloads list``),
    with ``options`` (weights, images, device, command, ...).
    """
    if isinstance(board, AnalyticBoard):
        board.workload_knobs(name)  # unknown names fail here with the list
        return name
    from workloads.registry import SIMULATED, make_workload

    root = board.info.extra.get("root")
    if board.info.simulated and root and name in SIMULATED:
        from tuner.sim.workload import LiveSimWorkload

        return LiveSimWorkload(name, root, time_scale=time_scale)

    return make_workload(name, **(options or {}))


@dataclass
class Session:
    """An open one-shot command: board, workload, runner, space, store and run, restored on exit."""

    board: Any
    workload: Any
    runner: TrialRunner
    space: Space
    out_dir: Path
    store: Store
    run: Run
    board_name: str
    _live: Any = None
    not_searched: dict[str, str] = field(default_factory=dict)  # knob -> why the space leaves it out
    _old_handlers: dict[int, Any] = field(default_factory=dict)
    identity: Any = None  # tuner.fleet.Identity: board id, host, fleet key
    shared: bool = False  # the store was given by URL (--store): other boards' runs may be in it

    def prior(self, **kwargs: Any) -> Any:
        """What other boards of this fleet stored (a :class:`tuner.search.Prior`), or None: only from a
        store given by URL, since the run directory's own store holds this board's runs alone."""
        if not self.shared or self.identity is None:
            return None
        from tuner.fleet import load_prior

        return load_prior(self.store, self.identity, **kwargs)

    @classmethod
    def open(cls, *, kind: str, board: str, root: Path, workload: str, knobs: dict[str, tuple | None],
             policy: RunPolicy, out: Path | None, seed: int, spec: dict[str, Any], live_sim: bool = True,
             time_scale: float = 1.0, options: dict[str, Any] | None = None,
             optional: Iterable[str] = (), noise: Any = None, store: str | None = None,
             objective: Any = None) -> Session:
        """``optional`` names the knobs of ``knobs`` that are defaults, not asked for:
        left out (and said so in ``not_searched``) where the board does not offer them.
        ``noise`` (:class:`tuner.sim.board.Noise`, ``--noise``) is for ``sim:`` boards.

        ``store`` is a store URL (``--store``); None is the run directory's own
        SQLite file, as always. In a store given by URL runs of several boards
        meet, so the run's key includes this board's id (the same command on
        another board is another run, on this board it resumes). ``objective``
        (default: the spec's) goes into the fleet key."""
        b = open_board(board, root, seed=seed, noise=noise)
        live = None
        if live_sim and not isinstance(b, AnalyticBoard) and b.info.simulated and b.info.extra.get("root"):
            from tuner.sim.live import LiveSimulator

            live = LiveSimulator(b.info.extra["root"], seed=seed).start()
        try:
            wl = open_workload(workload, b, time_scale=time_scale, options=options)
            runner = TrialRunner(b, wl, policy)
            space, not_searched = plan_space(runner, knobs, optional)
            name = b.info.profile or b.info.kind
            if board.startswith("replay:"):
                name = f"replay:{name}"
            elif isinstance(b, AnalyticBoard):
                name = f"sim:{name}"
            out_dir = out or state_dir(root) / "runs" / f"{kind}-{name.replace(':', '-')}-{workload}"
            out_dir.mkdir(parents=True, exist_ok=True)
            from tuner.fleet import identify

            identity = identify(b, workload, options, objective if objective is not None else spec.get("objective"),
                                space, where=out_dir, root=root)
            full = {"space": [k.to_dict() for k in space.knobs], "policy": policy.__dict__, **spec}
            if store is not None:
                full["board_id"] = identity.board_id
            opened = Store(out_dir / STORE_NAME if store is None else store)
            try:
                run = opened.open_run(kind, name, workload, bool(b.info.simulated), full,
                                      identity=identity.columns())
            except BaseException:
                opened.close()
                raise
        except BaseException:
            if live is not None:
                live.stop()
            raise
        session = cls(b, wl, runner, space, out_dir, opened, run, name, live, not_searched,
                      identity=identity, shared=store is not None)
        session._trap_signals()
        return session

    def _trap_signals(self) -> None:
        """SIGTERM/SIGHUP become KeyboardInterrupt, so the finally-restore runs."""
        def interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(signal.Signals(signum).name)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, interrupt)
            except ValueError:  # not the main thread (tests): nothing to trap
                pass

    def close(self) -> list[str]:
        """Tear the workload down and restore the board; returns restore failures."""
        try:
            self.runner.teardown()
        finally:
            failures = self.board.restore()
            if self._live is not None:
                self._live.stop()
            self.store.close()
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
        return failures

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        failures = self.close()
        if failures:
            raise EdgetuneError(f"could not restore {len(failures)} setting(s): {'; '.join(failures)}; "
                                "run `edgetune restore`")

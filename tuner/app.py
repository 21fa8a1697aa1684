"""The application layer: what ``sweep``, ``tune``, ``compare`` and the daemon arrange over the core.

The core (``tuner/config.py`` up to ``tuner/search.py``) measures and searches;
this module arranges it, once, for every command:

- **opening**: the board from a description (``--board``/``--root`` or the
  daemon's ``[board]``), its name (:func:`board_name`), the live simulator of
  an emulated tree (:func:`start_live_sim`), the workload (:func:`open_workload`),
  the runner, the space and the store (``STORE_NAME`` in :func:`state_dir`, or
  a URL); :class:`Session` is all of it for a one-shot command, with the
  run and a :meth:`Session.close` that restores the board;
- **the search sequence** (:func:`explore`): the DVFS reference(s), the
  fleet's prior, the strategy, the budget and the Search flow;
- **restoring the board** on exit, on an error and on signals
  (:func:`trap_signals`: SIGTERM and SIGHUP become KeyboardInterrupt, so the
  restore in ``finally`` runs).

:func:`run_search` (``sweep``/``tune``) and :func:`run_compare` (``compare``)
are the one-shot commands' bodies; the CLI (``tuner/cli/``) parses options,
draws the progress bar and renders the documents these return. The daemon
(:mod:`tuner.daemon.service`) opens its board, workload and store with the
same functions and runs every search epoch through :func:`explore`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, ContextManager, Dict, Iterable, Optional, Sequence

from tuner.boards.base import AnalyticBoard, Board
from tuner.boards.factory import open_board
from tuner.config import BATCH_SIZE, CPU_FREQ, GPU_FREQ, Config, Space
from tuner.errors import ConfigError, EdgetuneError
from tuner.journal import DEFAULT_STATE_SUBDIR
from tuner.measurement import Trial
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import SearchResult, Step, plan_space
from tuner.store import Run, Store

STORE_NAME = "edgetune.sqlite"  # the store's file in a run directory (one-shot) or the state directory (daemon)


# --- opening ----------------------------------------------------------------------------------------------
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


def board_name(board: Any, spec: str, *, by_flag: bool = False) -> str:
    """The board's name in runs, run directories and the daemon's state: its profile (else its kind),
    ``replay:``- or ``sim:``-prefixed when it is a replayed or analytic simulated board.

    One-shot commands tell a replay by its description (``spec`` starts ``replay:``). The daemon
    (``by_flag``) has always told them by the board's simulated flag, so a replay of a simulated
    sweep is ``sim:`` there; its state key (``daemon:NAME:WORKLOAD``) depends on it, so it stays."""
    info = board.info
    name = info.profile or info.kind
    if by_flag:
        if isinstance(board, AnalyticBoard):
            return f"sim:{name}" if info.simulated else f"replay:{name}"
        return name
    if spec.startswith("replay:"):
        return f"replay:{name}"
    if isinstance(board, AnalyticBoard):
        return f"sim:{name}"
    return name


def start_live_sim(board: Any, seed: int) -> Any:
    """On an emulated tree, the live simulator that animates it (a :class:`tuner.sim.live.LiveSimulator`,
    started), else None: a real, analytic or replayed board needs none."""
    if isinstance(board, AnalyticBoard) or not board.info.simulated or not board.info.extra.get("root"):
        return None
    from tuner.sim.live import LiveSimulator

    return LiveSimulator(board.info.extra["root"], seed=seed).start()


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


def trap_signals(handlers: dict[int, Callable[[int, FrameType | None], Any]]) -> dict[int, Any]:
    """Install ``handlers`` (signal -> handler); returns the handlers they replaced, for :func:`restore_signals`.
    Outside the main thread (tests) nothing is trapped."""
    old: dict[int, Any] = {}
    for sig, handler in handlers.items():
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: nothing to trap
            pass
    return old


def interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler that raises KeyboardInterrupt, so the restore in ``finally`` runs."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def restore_signals(old: dict[int, Any]) -> None:
    """Put back the handlers :func:`trap_signals` replaced."""
    for sig, handler in old.items():
        signal.signal(sig, handler)
    old.clear()


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
        live = start_live_sim(b, seed) if live_sim else None
        try:
            wl = open_workload(workload, b, time_scale=time_scale, options=options)
            runner = TrialRunner(b, wl, policy)
            space, not_searched = plan_space(runner, knobs, optional)
            name = board_name(b, board)
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
        # SIGTERM/SIGHUP become KeyboardInterrupt, so the finally-restore runs
        session._old_handlers = trap_signals({signal.SIGTERM: interrupt, signal.SIGHUP: interrupt})
        return session

    def close(self) -> list[str]:
        """Tear the workload down and restore the board; returns restore failures."""
        try:
            self.runner.teardown()
        finally:
            failures = self.board.restore()
            if self._live is not None:
                self._live.stop()
            self.store.close()
            restore_signals(self._old_handlers)
        return failures

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        failures = self.close()
        if failures:
            raise EdgetuneError(f"could not restore {len(failures)} setting(s): {'; '.join(failures)}; "
                                "run `edgetune restore`")


# --- the search sequence ----------------------------------------------------------------------------------
@dataclass
class Explored:
    """What :func:`explore` measured: the DVFS reference per batch asked for, the reference the
    search was judged against (None: the recording holds none, or none was asked for) and the search."""

    references: Dict[Optional[int], Trial]
    reference: Optional[Trial]
    result: SearchResult


def explore(runner: TrialRunner, space: Space, objective: Objective, strategy: Callable[[], Any], budget: int, *,
            run: Run | None, prior: Callable[[], Any] | None = None,
            on_step: Callable[[Step], None] | None = None,
            on_reference: Callable[[Optional[Trial], bool], None] | None = None,
            stop_improvement: float | None = None,
            reference_batches: Sequence[Optional[int]] = (None,)) -> Explored:
    """The one search sequence: reference(s) -> prior -> strategy -> the Search flow over ``budget`` trials.

    ``reference_batches``: the batch sizes whose DVFS reference is measured first (None: the
    workload's default batch; a sweep passes every batch size; ``()`` measures none). The default
    batch's reference is the search's; a recording that holds no DVFS reference has none, which an
    objective that needs one refuses (:class:`ConfigError`). ``on_reference(trial, measured_now)``
    follows each batch's reference (``trial`` None where the recording lacks it; ``measured_now``
    False when it came from the store).

    ``prior`` and ``strategy`` are factories, called in this order once the references are in:
    the fleet's prior (or None), then the strategy; a strategy that is a context manager (the
    daemon's :class:`~tuner.daemon.strategy_process.RemoteStrategy`, a child process) is entered
    for the search and left after it. ``on_step`` and ``stop_improvement`` go to
    :func:`tuner.search.search`.
    """
    from tuner.search import can_measure, measure_reference, reference_config, search

    references: Dict[Optional[int], Trial] = {}
    reference = None
    if reference_batches:
        # a recording made elsewhere (edgetune import) may hold no DVFS reference: then there is none
        has_reference = can_measure(runner, reference_config(runner, space))
        if not has_reference and objective.needs_reference:
            raise ConfigError(f"the {objective.name} objective needs the DVFS reference, which this recording "
                              "does not hold; use --objective energy, time, edp or ed2p")

        def measure(batch: Optional[int]) -> Trial:
            before = runner.measured
            trial = measure_reference(runner, space, run, batch)
            if on_reference is not None:
                on_reference(trial, runner.measured != before)
            return trial

        for b in reference_batches:
            if can_measure(runner, reference_config(runner, space, b)):
                references[b] = measure(b)
            elif on_reference is not None:
                on_reference(None, False)
        # the default batch's reference was measured above (the same config): measuring it
        # again would cost a whole trial on a board
        default_ref = reference_config(runner, space)
        reference = next((tr for tr in references.values() if tr.config == default_ref), None)
        if reference is None and has_reference:
            reference = measure(None)
    warm = prior() if prior is not None else None
    made = strategy()
    with made if isinstance(made, contextlib.AbstractContextManager) else contextlib.nullcontext(made) as strat:
        known = list(references.values()) + ([reference] if reference is not None else [])
        result = search(strat, runner, objective, budget, run=run, reference=reference, prior=warm,
                        on_step=on_step, stop_improvement=stop_improvement, known=known)
    return Explored(references, reference, result)


# --- the one-shot commands ----------------------------------------------------------------------------------
class Quiet:
    """A progress sink that shows nothing (the default of :func:`run_search` and :func:`run_compare`)."""

    def __init__(self, label: str = "", total: int = 0) -> None:
        pass

    def __enter__(self) -> Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def advance(self, n: int = 1, description: str | None = None) -> None:
        """Nothing to show."""


Progress = Callable[[str, int], ContextManager[Any]]  # (label, total) -> a context with .advance(n, description)


def run_search(*, kind: str, strategy: str, budget: str | None, board: str, root: Path, workload: str,
               knobs: dict[str, tuple | None], objective: Objective, policy: RunPolicy, out: Path | None,
               seed: int, apply_best: bool = False, plots: bool = True,
               time_scale: float = 1.0, options: dict[str, Any] | None = None,
               optional: tuple[str, ...] = (), noise: Any = None, store: str | None = None,
               stop_improvement: float | None = None, progress: Progress = Quiet) -> dict[str, Any]:
    """``sweep`` (strategy ``sweep``, whole space) and ``tune``: open, explore, write the run directory;
    returns the summary document.

    ``store`` is ``--store URL`` (default: the run directory's SQLite file); a tune with a shared
    store starts warm from the trials of identical boards in it (:mod:`tuner.fleet`).

    ``optional`` names the knobs of ``knobs`` that are defaults (see :func:`tuner.cli.searching.make_knobs`).
    ``stop_improvement`` makes the search economical (early stop, racing repeats: see
    :func:`tuner.search.search`); None spends the budget. ``progress(label, total)`` shows the trials."""
    from tuner.objective import check_power_sensors
    from tuner.report import finite_json, plot_topology, summarize, write_summary
    from tuner.search import check_recorded, parse_budget, space_doc
    from tuner.sim.model import model_label
    from tuner.strategies import make_strategy, strategy_class

    strategy_class(strategy)  # an unknown name fails before anything is opened
    spec = {"strategy": strategy, "seed": seed, "objective": objective.to_dict(), **({"options": options}
                                                                                     if options else {}),
            **({"noise": noise.describe()} if noise is not None else {})}
    with Session.open(kind=kind, board=board, root=root, workload=workload, knobs=knobs, policy=policy, out=out,
                      seed=seed, spec=spec, time_scale=time_scale, options=options, optional=optional,
                      noise=noise, store=store, objective=objective) as session:
        space = session.space
        check_recorded(session.board, objective)
        check_power_sensors(session.board, objective)  # no power monitor (Nano 2GB): energy is refused
        n = parse_budget(budget, len(space)) if kind != "sweep" else len(space) + strategy_class("sweep").confirm
        strat = make_strategy(strategy, space, seed=seed)
        # a sweep maps every batch size, so it measures DVFS at each of them (the
        # reference study's per-batch comparison); a tune needs only the default
        batches = space.knob(BATCH_SIZE).values if kind == "sweep" and BATCH_SIZE in space.names else (None,)
        with progress(f"{kind} {workload}", n + len(batches)) as bar:
            explored = explore(session.runner, space, objective, lambda: strat, n, run=session.run,
                               prior=session.prior if kind == "tune" else None,
                               on_reference=lambda trial, now: bar.advance(), on_step=lambda step: bar.advance(),
                               stop_improvement=stop_improvement, reference_batches=batches)
        result = explored.result
        per_batch_ref = {b: t for b, t in explored.references.items() if b is not None}
        summary = summarize(kind=kind, board=session.board_name, workload=workload,
                            simulated=bool(session.board.info.simulated), objective=objective,
                            space_size=len(space), result=result, strategy=strategy, measured_now=result.measured,
                            references=per_batch_ref)
        summary["space"] = space_doc(space, session.not_searched, session.board)
        summary["stopped"] = result.stopped
        if stop_improvement is not None:
            summary["stop_improvement"] = stop_improvement
        if hasattr(session.board, "noise"):  # an analytic simulated board: say what noise its numbers carry
            summary["noise"] = session.board.noise.describe()
        summary.update(model_label(session.board))  # a simulated board: its model's source, extrapolated or not
        if explored.reference is None:
            summary["space"]["no_reference"] = "the recording holds no DVFS reference: no saving is quoted"
        summary["run_dir"] = str(session.out_dir)
        if session.shared:  # a store given by URL: where the trials are, this board's id, the warm start
            summary.update(store=session.store.display, board_id=session.identity.board_id, fleet=result.fleet)
            session.run.set_fleet(result.fleet)
        session.run.set_summary(summary)
        rows = session.run.export_csv(session.out_dir / "trials.csv")
        summary["trials_csv_rows"] = rows
        if plots:
            drawn = plot_topology(session.out_dir, result, workload, session.board_name,
                                  bool(session.board.info.simulated), per_batch_ref)
            summary["plots"] = [p.name for p in drawn] if isinstance(drawn, list) else drawn
        write_summary(session.out_dir, summary)
        summary = finite_json(summary)  # --json prints null, never NaN, where a recording lacks a quantity
        board_obj = session.board
    # the session has restored the board; now hold the best config if asked
    if apply_best:
        if result.best is None:
            raise ConfigError("no feasible config was found; nothing to apply")
        board_obj.apply(result.best.hardware())
        summary["applied"] = result.best.hardware().to_dict()
    return summary


def run_compare(*, board: str, root: Path, workload: str, governors: str | None, given: Config | None,
                rate: float | None, online: bool, batch_size: int, strategy: str, budget: str | None,
                policy: RunPolicy, out: Path | None, seed: int, plots: bool, time_scale: float,
                options: dict[str, Any] | None = None, noise: Any = None, store: str | None = None,
                progress: Progress = Quiet) -> dict[str, Any]:
    """``compare``: open the board, tune (or take ``given``, the tuned config), then run every governor and
    the tuned config; returns the ``compare`` document (also written as compare.json beside the plots)."""
    from dataclasses import replace

    from governors.base import Governor
    from governors.compare import GOVERNOR_ROLE, compare, measure_governor
    from governors.kernel import kernel_governors
    from governors.online import run_online
    from tuner.objective import check_power_sensors
    from tuner.report import finite_json, plot_compare
    from tuner.search import parse_budget
    from tuner.strategies import make_strategy

    policy = replace(policy, rate_ips=rate)
    # fixed work: energy per inference; rate-driven: average power while keeping up
    objective = Objective("power") if rate else Objective("energy")
    knobs: dict[str, tuple | None] = {CPU_FREQ: None, GPU_FREQ: None, BATCH_SIZE: (batch_size,)}
    spec = {"rate_ips": rate, "strategy": strategy, "seed": seed, "tuned": given.to_json() if given else None,
            **({"options": options} if options else {}), **({"noise": noise.describe()} if noise else {})}
    # the tune searches the clocks the board offers (a board without cpufreq: the GPU alone)
    with Session.open(kind="compare", board=board, root=root, workload=workload, knobs=knobs, policy=policy,
                      out=out, seed=seed, spec=spec, time_scale=time_scale, options=options,
                      optional=(CPU_FREQ, GPU_FREQ), noise=noise, store=store, objective=objective) as session:
        check_power_sensors(session.board, objective, "compare")  # every row is energy: the board must measure it
        govs = kernel_governors(session.board, governors)
        workload_part = Config({BATCH_SIZE: batch_size})
        runner = session.runner
        tune_trials = 0
        if given is None:
            n = parse_budget(budget, len(session.space))
            strat = make_strategy(strategy, session.space, seed=seed)
            with progress(f"tune {workload} ({strategy})", n) as bar:
                # no DVFS reference here: the governors' rows measure DVFS themselves
                result = explore(runner, session.space, objective, lambda: strat, n, run=session.run,
                                 on_step=lambda s: bar.advance(), reference_batches=()).result
            if result.best is None:
                raise ConfigError("the tune found no feasible config to compare (at this rate nothing keeps up)"
                                  if rate else "the tune found no feasible config to compare")
            given, tune_trials = result.best, len(result.steps)
        tuned_config = given if BATCH_SIZE in given else given.replace(**{BATCH_SIZE: batch_size})
        with progress("compare", len(govs) + 1 + int(online)) as bar:
            tuned = measure_governor(runner, Governor.pinned(tuned_config), tuned_config.workload(), session.run)
            bar.advance()
            online_result = None
            if online:
                online_result = run_online(runner, session.space, objective, seed=seed,
                                           start=Config({BATCH_SIZE: batch_size}))
                bar.advance()
            doc = compare(runner, govs, tuned, workload_part, run=session.run, online=online_result,
                          progress=lambda name: bar.advance(description=f"compare {name}"))
        doc = {"board": session.board_name, "workload": workload, "simulated": bool(session.board.info.simulated),
               "batch_size": batch_size, **doc, "tune_trials": tune_trials, "run_dir": str(session.out_dir),
               "governor_role": GOVERNOR_ROLE, "not_searched": session.not_searched,
               **({"noise": session.board.noise.describe()} if hasattr(session.board, "noise") else {})}
        doc = finite_json(doc)
        if plots:
            drawn = plot_compare(session.out_dir, doc)
            doc["plots"] = [p.name for p in drawn] if isinstance(drawn, list) else drawn
        (session.out_dir / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc

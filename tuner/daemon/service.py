"""``edgetune daemon``: the Serve flow (DESIGN §3).

One service loop on the main thread owns the board, the workload and the
store; the control socket's threads only read a published status snapshot and
queue commands, so nothing touches the hardware concurrently. The loop:

1. restores whatever a crashed run left in the journal, opens the socket and
   tells systemd READY;
2. **explores**: the Search flow with the configured strategy and budget, on a
   store run keyed by the settings and an *epoch*, so a restart resumes the
   search where it stopped (measured configs are replayed from the store);
3. **holds** the best config, measuring the workload in short windows and
   watching them (:mod:`tuner.daemon.drift`); drift or repeated constraint
   misses start a new epoch, warm-started at the held config;
4. above the temperature limit, applies the **safe** config (lowest clocks)
   at once and goes back when the board has cooled by the hysteresis;
5. when another program (``jetson_clocks``, ``nvpmodel``, jtop, a user's
   ``echo``) changes a knob file edgetune wrote, either **yields**
   (``overridden``: writes nothing until ``control resume`` or ``retune``) or
   reasserts the held config, as ``watch.on_external_change`` says. Without
   this the daemon would measure under clocks it did not set, and its next
   write would undo the other program's change without a word (DESIGN §4).

With ``[daemon] store`` (a fleet's PostgreSQL, or a shared SQLite file) the
daemon still keeps its own record in the state directory, and copies it to
the fleet's store whenever that can be reached (:class:`tuner.fleet.FleetSync`):
a search starts from what identical boards measured there, and a store that
is down never stops the daemon from searching or holding — what it measured
meanwhile is copied when the store is back.

The daemon is a small state machine (:mod:`tuner.daemon.states`): the states
exploring, holding, paused, safe and overridden, the events that move
between them, and the one table of transitions. :meth:`Daemon._go` is the one
place the state changes: it looks the event up in the table and runs the
event's action (apply the held or the safe config, start a search epoch).
The loop's methods decide *when* an event fires: :meth:`Daemon._explore`
(hold the best, or release), :meth:`Daemon._hold_window` (search on drift),
:meth:`Daemon._heat_check` (hot, back), :meth:`Daemon._watch_knobs` (outside,
back) and :meth:`Daemon._run_commands`; a reload that changes the search
starts a new workload state (a new epoch).

The control socket's threads read only the published :class:`Snapshot`
(:mod:`tuner.daemon.snapshot`), an immutable object the loop replaces whole
after every change, and queue what they are asked to do: commands and their
configs (checked there against the snapshot for a prompt answer, and again
by the loop against the live board), and reloads. Between trials and windows
(the check points) the loop acts on the queued commands, a reload and a stop
request. SIGTERM/SIGINT interrupt even a running
trial: every changed setting is restored and the daemon exits 0. Errors that
belong to one trial or window (a refused knob write, a crashed workload, a
failing sensor) are logged and counted in the status; the loop backs off and
carries on.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import Any

from tuner import __version__
from tuner.app import STORE_NAME, board_name, restore_signals, start_live_sim, trap_signals
from tuner.boards.thermal import hottest
from tuner.config import CPU_FREQ, GPU_FREQ, Config, Knob
from tuner.daemon.control import ControlServer
from tuner.daemon.drift import DriftWatch
from tuner.daemon.notify import Notifier
from tuner.daemon.protocol import ProtocolError
from tuner.daemon.settings import Settings, load_settings
from tuner.daemon.snapshot import Snapshot, check_values, complete, rails_w, rounded, window_doc, workload_doc
from tuner.daemon.states import (BACK, CONTINUE, EXPLORING, HOLD, HOLDING, HOT, OUTSIDE, OVERRIDDEN, PAUSE,
                                 PAUSED, RELEASE, SAFE, SEARCH, STATES, WATCHED, WorkloadState, allows, step)
from tuner.daemon.strategy_process import RemoteStrategy, StrategyProcessError
from tuner.errors import ConfigError, EdgetuneError, HardwareError
from tuner.measurement import Measurement
from tuner.runner import RunPolicy, TrialRunner
from tuner.store import Store, run_key
from tuner.sysfs import ExternalChange, ExternalChangeError, Sysfs
from tuner.units import parse_duration

log = logging.getLogger("edgetune.daemon")

__all__ = ["Daemon", "WorkloadState", "STATES", "EXPLORING", "HOLDING", "PAUSED", "SAFE", "OVERRIDDEN", "WATCHED",
           "YIELD", "REASSERT", "STORE_NAME"]

YIELD, REASSERT = "yield", "reassert"  # watch.on_external_change
MAX_BACKOFF_S = 30.0
ANALYTIC_WINDOW_CAP_S = 5.0  # an analytic board's window "takes" its simulated time, at most this long


class _Preempted(Exception):
    """A check point found a command, a reload, a stop or heat waiting."""


class Daemon:
    """The Serve flow: explore, hold, watch and re-search one workload, answering the control socket.

    Its states (exploring, holding, paused, safe, overridden) change only in the loop thread, through
    :meth:`_go` and the table in :mod:`tuner.daemon.states`; the socket threads read the immutable
    :class:`~tuner.daemon.snapshot.Snapshot` :meth:`_publish` replaces, and queue commands and reloads
    to the loop (:meth:`_handle`, :meth:`request_reload`).
    """

    def __init__(self, settings: Settings, *, config_path: str | Path | None = None,
                 notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.config_path = Path(config_path) if config_path else None
        self.notifier = notifier or Notifier.from_env()
        self.started = time.time()
        self.errors = {"sensor": 0, "workload": 0, "knob": 0, "reload": 0, "metrics": 0}
        self.restored_at_start = 0
        self._commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._snapshot = Snapshot()  # replaced whole by the loop (_publish); the only thing other threads read
        self._knobs: dict[str, Knob] = {}  # what an apply may set, as of the last (re)plan: the snapshot's copy
        self._beat_at = time.monotonic()
        self._backoff = 1.0
        self._old_handlers: dict[int, Any] = {}
        self.board: Any = None
        self.fs: Sysfs | None = None  # the board's knob files, where it has them (not analytic or NVML boards)
        self.runner: TrialRunner | None = None
        self.space: Any = None
        self.store: Store | None = None
        self.control: ControlServer | None = None
        self._live: Any = None
        self.ws: WorkloadState | None = None
        self.board_name = ""
        self.temperature_c: float | None = None
        self.temperatures: dict[str, float] = {}  # every zone, as last read
        # what this process measured (windows and trials), for the metrics' counters, and its latest power
        self.measured: dict[str, Any] = {"energy_j": 0.0, "inferences": 0, "trials": 0, "exploration_j": 0.0,
                                         "power_w": None, "rails_w": {}}
        self.metrics: Any = None  # tuner.metrics.Exporter when [metrics] is on
        self._metrics_failing = False
        self.fleet: Any = None  # tuner.fleet.FleetSync when [daemon] store names a fleet's store
        self.identity: Any = None  # tuner.fleet.Identity of the workload's runs
        self.board_id = ""

    # --- lifecycle ------------------------------------------------------------------
    def run(self) -> int:
        """Serve until stopped; returns the exit status (0 unless restoring failed)."""
        self._trap_signals()
        failures: list[str] = []
        try:
            self._open()
            self.notifier.ready(self._status_line())
            log.info("ready: %s", self._status_line())
            self._start_watchdog()
            self._loop()
        except KeyboardInterrupt:
            log.info("stopping")
        finally:
            self._ignore_signals()
            self.notifier.stopping()
            failures = self._close()
        if failures:
            log.error("could not restore %d setting(s): %s; run `edgetune restore`", len(failures),
                      "; ".join(failures))
            return 1
        return 0

    def request_stop(self) -> None:
        """Stop at the next check point (signals do this and also interrupt a running trial)."""
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Reload the config file at the next check point (what SIGHUP does); safe from any thread or a
        signal handler."""
        self._reload.set()
        self._wake.set()

    def _open(self) -> None:
        from tuner.boards.factory import open_board

        s = self.settings
        # the socket first: a second daemon must fail before it touches the board the first one holds
        self.control = ControlServer(s.daemon.socket, self._handle, mode=int(s.daemon.socket_mode, 8),
                                     group=s.daemon.socket_group).start()
        self.board = open_board(s.board.spec, s.board.root, seed=s.search.seed)
        fs = self.fs = getattr(self.board, "fs", None)
        journalled = len(fs.journal.entries()) if fs is not None else 0
        failures = self.board.restore()  # what a crashed or killed run left changed
        if failures:
            raise HardwareError(f"cannot restore what an earlier run left changed: {'; '.join(failures)}")
        skipped = len(fs.last_restore.skipped) if fs is not None else 0
        self.restored_at_start = journalled - skipped
        if self.restored_at_start:
            log.warning("restored %d setting(s) an earlier run left changed", self.restored_at_start)
        if skipped:
            log.warning("left %d setting(s) as another program set them after the earlier run", skipped)
        if fs is not None:
            fs.check_before_write = True  # never write over another program's value unnoticed
        self.board_name = board_name(self.board, s.board.spec, by_flag=True)  # its state key: by the flag
        if s.board.live_sim:
            self._live = start_live_sim(self.board, s.search.seed)
        state_dir = s.state_path()
        self.store = Store(state_dir / STORE_NAME)
        self._open_fleet(state_dir)
        self._open_workload()
        self._publish()
        self._start_metrics()

    def _open_workload(self) -> None:
        """The workload, its runner and space, and its state (resumed from the store if the settings match)."""
        from tuner.search import plan_space, space_doc
        from tuner.app import open_workload

        s = self.settings
        wl = s.workloads[0]
        workload = open_workload(wl.name, self.board, time_scale=s.board.time_scale, options=wl.options)
        self.runner = TrialRunner(self.board, workload, self._explore_policy())
        # the clocks and batch are searched where the board and workload offer them (unless the
        # settings name their values): a board without cpufreq is tuned without the CPU, and says so
        self.space, not_searched = plan_space(self.runner, s.search.knobs(), s.search.optional())
        self._refresh_knobs()
        note = space_doc(self.space, not_searched, self.board).get("note")
        if note:
            log.info("search space: %s", note)
        self.objective = s.objective.objective()
        from tuner.objective import check_power_sensors

        check_power_sensors(self.board, self.objective)  # a board without a power monitor: one line, no start
        if wl.rate and self.objective.kind == "energy":
            # a rate-driven workload does fixed work per second: energy per inference is average power
            from tuner.objective import Objective

            self.objective = Objective("power", constraints=self.objective.constraints)
        self.drift = DriftWatch(s.watch.drift_tolerance, s.watch.drift_windows, s.watch.slo_windows)
        self.spec = {"daemon": True, "strategy": s.search.strategy, "budget": s.search.budget,
                     "seed": s.search.seed, "objective": self.objective.to_dict(), "rate": wl.rate,
                     "options": wl.options,
                     "space": [k.to_dict() for k in self.space.knobs], "policy": self.runner.policy.__dict__}
        self.identity = self._identify()
        if self.fleet is not None:  # runs of many boards meet in the fleet's store: keyed by board too
            self.spec["board_id"] = self.board_id
        self.spec_key = run_key(self.spec)
        assert self.store is not None
        doc = self.store.get_state(self._state_key(wl.name))
        previous = WorkloadState.from_store(wl.name, doc) if doc else None
        if previous is not None and doc is not None and doc.get("spec_key") == self.spec_key:
            self.ws = previous
            log.info("resuming %s: %s (epoch %d)", wl.name, previous.state, previous.epoch)
        else:
            epoch = previous.epoch + 1 if previous else 0
            reason = "the settings changed" if previous else "first start"
            self.ws = WorkloadState(wl.name, epoch=epoch, reason=reason,
                                    best=previous.best if previous and previous.best in self.space else None)
        self._save_state()

    def _refresh_knobs(self) -> None:
        """Keep what an apply may set (the board's and the workload's knobs) for the snapshot."""
        assert self.runner is not None
        knobs: dict[str, Knob] = {k.name: k for k in self.board.knobs()}
        knobs.update({k.name: k for k in self.runner.workload_knobs()})
        self._knobs = knobs

    def _close(self) -> list[str]:
        failures: list[str] = []
        if self.control is not None:
            self.control.stop()
        if self.metrics is not None:
            self.metrics.stop()
        try:
            if self.runner is not None:
                self.runner.teardown()
        except Exception:
            log.exception("workload teardown failed")
        if self.board is not None:
            failures = self.board.restore()
        if self._live is not None:
            self._live.stop()
        if self.store is not None:
            if self.ws is not None:
                self._save_state()
            if self.fleet is not None:
                if self.fleet.error is None:  # reachable a moment ago: copy the last of it now
                    self._sync(force=True)
                self.fleet.close()
            self.store.close()
        self.notifier.close()
        self._restore_signal_handlers()
        return failures

    # --- the service loop ---------------------------------------------------------------
    def _loop(self) -> None:
        assert self.ws is not None
        while not self._stop.is_set():
            self._beat()
            self._write_metrics()
            try:
                self._run_commands()
                if self._reload.is_set():
                    self._reload_settings()
                self._watch_knobs()
                if self._heat_check():
                    continue
                if self.ws.state == EXPLORING:
                    self._explore()
                elif self.ws.state == HOLDING:
                    self._hold_window()
                else:
                    self._wait(1.0)
                self._backoff = 1.0
            except _Preempted:
                continue
            except ExternalChangeError:  # an apply found another program's value and wrote nothing:
                continue  # the read-back at the top of the next turn acts on it
            except ConfigError as exc:  # the board now refuses the config (a power mode lowered its caps)
                self.errors["knob"] += 1
                self._go(RELEASE, f"{exc}; the board's own settings are kept: `edgetune control retune` "
                         "searches what the board allows now")
                log.error("%s", self.ws.reason)
                self._publish()
            except (HardwareError, OSError) as exc:  # a refused knob write, a sensor that stopped answering
                self.errors["knob" if isinstance(exc, HardwareError) else "sensor"] += 1
                log.error("%s (retrying in %.0f s)", exc, self._backoff)
                self._publish()
                self._wait(self._backoff)
                self._backoff = min(MAX_BACKOFF_S, self._backoff * 2)

    def _explore(self) -> None:
        from tuner.app import explore
        from tuner.cost import search_cost
        from tuner.search import parse_budget

        ws, s = self.ws, self.settings
        assert ws is not None and self.runner is not None and self.store is not None
        self.identity = self._identify()  # the space may have changed since (a power mode: _replan_space)
        run = self.store.open_run("daemon", self.board_name, ws.name, bool(self.board.info.simulated),
                                  {**self.spec, "epoch": ws.epoch, "start": ws.best.to_dict() if ws.best else None},
                                  identity=self.identity.columns() if self.identity is not None else None)
        self.runner.policy = self._explore_policy()
        log.info("exploring %s (epoch %d: %s)", ws.name, ws.epoch, ws.reason)
        self.notifier.status(f"exploring {ws.name}: {ws.reason}")
        budget = parse_budget(s.search.budget, len(self.space))  # checked when the settings were loaded

        def on_reference(reference: Any, measured_now: bool) -> None:
            """The DVFS reference (None: a recording without one), before the search's first trial."""
            if reference is not None and measured_now:  # measured now, not taken from the store
                self._account(reference, exploring=True)
            self._checkpoint()
            ref = reference.measurement if reference is not None else None
            ws.dvfs_epi_j = ref.energy_per_inference_j if ref is not None and ref.feasible else None
            ws.trials_used = 0

        def on_step(step: Any) -> None:
            ws.trials_used = step.index + 1
            if not step.reused:
                self._account(step.trial, exploring=True)
            self._count_failure(step.trial.measurement)
            self._beat()
            self._sync()
            self._publish()
            self._checkpoint()

        def strategy() -> RemoteStrategy:
            # the strategy's model runs in a child process for this search only: its libraries (bo:
            # scikit-optimize, scikit-learn, SciPy) never load here, so holding costs no memory for them
            return RemoteStrategy(s.search.strategy, self.space, seed=s.search.seed + ws.epoch, start=ws.best)

        try:
            result = explore(self.runner, self.space, self.objective, strategy, budget, run=run,
                             prior=self._fleet_prior, on_reference=on_reference, on_step=on_step,
                             stop_improvement=s.search.stop_improvement or None).result
        except StrategyProcessError as exc:
            self._strategy_failed(exc)
            return
        ws.searches += 1
        if result.fleet is not None:
            ws.fleet = result.fleet
            run.set_fleet(result.fleet)
            log.info("%s: fleet: %s", ws.name, result.fleet.get("note"))
        explored, ws.payback_s = search_cost(result)
        ws.exploration = explored.to_dict()
        if result.best is None or result.best_trial is None:
            self._go(RELEASE, "no feasible config found; the board's own settings are back", let_go=True)
            self._restore()
            log.error("%s: %s", ws.name, ws.reason)
        else:
            m = result.best_trial.measurement
            ws.best, ws.best_epi_j, ws.best_repeats = result.best, m.energy_per_inference_j, len(
                result.best_trial.repeats)
            self._go(HOLD, f"best of {ws.trials_used} trials", config=result.best)
            log.info("holding %s: %s, %.3f mJ/inference (DVFS %s)", ws.name, result.best.to_json(),
                     m.energy_per_inference_j * 1e3,
                     f"{ws.dvfs_epi_j * 1e3:.3f}" if ws.dvfs_epi_j else "n/a")
        self._save_state()
        self._sync(force=True)
        self._publish()

    def _strategy_failed(self, exc: StrategyProcessError) -> None:
        """The strategy's process died mid-search (killed, out of memory): hold the best config an earlier
        search found, or give the board its own settings back and pause; either way say why."""
        ws = self.ws
        assert ws is not None
        if self._stop.is_set():  # the daemon is stopping: the child went with it, nothing failed
            return
        self.errors["strategy"] = self.errors.get("strategy", 0) + 1
        again = "`edgetune control retune` searches again"
        if ws.best is not None and ws.best in self.space:
            self._go(HOLD, f"{exc}; holding the best config found before ({again})", config=ws.best)
        else:
            self._restore()
            self._go(RELEASE, f"{exc}; the board's own settings are back ({again})", let_go=True)
        log.error("%s: %s", ws.name, ws.reason)
        self._save_state()
        self._publish()

    def _hold_window(self) -> None:
        """Measure one window of the held config and watch it.

        The runner applies the held config again at the start of the window.
        With ``check_before_write`` that apply writes nothing while every file
        still holds edgetune's value, and refuses to write over another
        program's, so the clocks measured are the ones :meth:`_watch_knobs`
        read back just before.
        """
        ws = self.ws
        assert ws is not None and ws.applied is not None and self.runner is not None
        self.runner.policy = self._hold_policy()
        trial = self.runner.measure(ws.applied)
        m = trial.measurement
        ws.windows += 1
        self._account(trial, exploring=False)
        self._count_failure(m)
        checked = self.objective.check(m)
        violation = checked.failure if m.feasible and not checked.feasible else None
        ws.last_window = window_doc(m)
        self._sync()  # when due: the record, and that this board is still there (last seen)
        stale = None if ws.manual else self.drift.observe(m, violation)
        if stale:
            log.warning("%s: %s; searching again", ws.name, stale)
            self._go(SEARCH, stale)
            self._save_state()
        self._publish()
        wait = self.settings.watch.interval_s
        if not m.feasible:
            wait = max(wait, 1.0)  # a crashing workload must not spin the loop
        elif self.runner.analytic:
            wait += min(ANALYTIC_WINDOW_CAP_S, m.time_s / self.settings.board.time_scale)
        if wait > 0:
            self._wait(wait)

    # --- state changes ----------------------------------------------------------------
    def _go(self, event: str, reason: str, *, config: Config | None = None, manual: bool = False,
            let_go: bool = False) -> None:
        """The one place the state changes: where ``event`` leads comes from the table
        (:func:`tuner.daemon.states.step`), then the event's action runs.

        ``hold`` holds ``config`` (``manual``: applied by request, so no drift
        watch); ``back`` re-holds the config safe or overridden interrupted
        (the applied one, else the best; searching on when there is none);
        while safe, a command's event only changes where ``back`` leads (``hold``
        records its config, applied once cooled); ``hot`` applies the safe config, and
        ``back`` to paused undoes it (the paused config again, or the board's own
        settings where nothing is held); ``search`` re-plans the space and starts a new
        epoch. ``let_go`` (``release``): nothing is held any more.
        The state and reason are set before a config is applied, so a refused
        write leaves the state it was going to and the loop retries it.
        """
        ws = self.ws
        assert ws is not None
        if event == BACK:
            config = ws.applied or ws.best
            manual = ws.manual and ws.applied is not None
        if event == SEARCH:
            self._replan_space()
            ws.epoch += 1
        before = ws.state
        ws.state, ws.resume_state = step(ws.state, ws.resume_state, event, holdable=config is not None)
        if before == SAFE and ws.state == SAFE:  # a command waits for the board to cool; the heat reason stands
            log.info("%s: %s once the board has cooled (%s)", ws.name, reason, ws.reason)
            ws.waiting = reason
        else:
            if before == SAFE and ws.waiting:  # cooled: say what the wait was for
                reason = f"{reason}; {ws.waiting}"
            ws.reason, ws.waiting = reason, None
        log.debug("%s: %s -> %s on %s (%s)", ws.name, before, ws.state, event, reason)
        if ws.state == HOLDING and event in (HOLD, BACK):
            assert config is not None
            ws.applied, ws.manual = config, manual
            self.drift.reset()
            self.board.apply(config.hardware())
        elif ws.state == SAFE and event == HOLD:  # held once cooled (back applies it), not written while hot
            ws.applied, ws.manual = config, manual
        elif event == SEARCH:
            ws.manual = False
        elif event == HOT:
            self.board.apply(self._safe_config())
        elif event == BACK and ws.state == PAUSED:
            # safe wrote the coolest clocks over what the pause kept: give that back — the
            # paused config, or, where nothing is held (released, restored), the board's own settings
            if ws.applied is not None:
                self.board.apply(ws.applied.hardware())
            else:
                self._restore()
        elif event == RELEASE and let_go:
            ws.applied, ws.manual = None, False

    def _replan_space(self) -> None:
        """Re-read what the board offers before a new search: a power mode switched since the
        last one (nvpmodel, jtop) moves the clock caps, and the old space would ask for refused clocks."""
        from tuner.search import plan_space

        assert self.runner is not None
        space, _ = plan_space(self.runner, self.settings.search.knobs(), self.settings.search.optional())
        if [k.to_dict() for k in space.knobs] != [k.to_dict() for k in self.space.knobs]:
            log.info("the board's search space changed (a power mode?); searching the new one")
            self.space = space
            self.spec["space"] = [k.to_dict() for k in space.knobs]
            self.spec_key = run_key(self.spec)
        self._refresh_knobs()

    def _watch_knobs(self) -> None:
        """Read back every knob file edgetune wrote; act on a value another program wrote there.

        Runs at every turn of the loop in the states that write knobs: before
        each hold window, every second while safe, and after an apply refused
        to write over another program's value (how a change during a search is
        noticed: at the next trial's apply). Only files edgetune wrote are
        read (``Sysfs.written``, the values it read back after writing), so
        the kernel's derived files (``cur_freq``) never count. ``yield`` makes
        the state overridden and writes nothing; ``reassert`` logs, counts and
        applies the held config again (the changed files are forgotten first,
        or the apply would refuse them).
        """
        ws = self.ws
        assert ws is not None
        if self.fs is not None and ws.state == OVERRIDDEN and self.fs.written and not self.fs.external_changes():
            # every file holds edgetune's value again (`jetson_clocks --restore`, a thermal cap lifted):
            # nothing is edgetune's to give back, so it carries on where it was interrupted
            log.info("%s: the outside change is undone; back to %s", ws.name, ws.resume_state)
            self._go(BACK, "the outside change was undone")
            self._save_state()
            self._publish()
            return
        if self.fs is None or ws.state not in WATCHED:
            return
        changes = self.fs.external_changes()
        if not changes:
            return
        action = self.settings.watch.on_external_change
        what = _describe(changes)
        ws.external_changes += 1
        ws.last_external = {"at": round(time.time(), 3), "files": [c.to_dict() for c in changes],
                            "action": "reasserted" if action == REASSERT else "yielded"}
        if action == REASSERT:
            log.warning("%s: %s; re-applying the %s config", ws.name, what, "safe" if ws.state == SAFE else "held")
            self.fs.forget(c.path for c in changes)
            if ws.state == HOLDING and ws.applied is not None:
                self._go(HOLD, ws.reason, config=ws.applied, manual=ws.manual)
            elif ws.state == SAFE:
                self.board.apply(self._safe_config())  # safe stays safe: its config again
            # exploring: the search's next trial applies its own config
        else:
            self._go(OUTSIDE, f"{what}; edgetune writes nothing until `edgetune control resume` or `retune`")
            log.warning("%s: %s", ws.name, ws.reason)
        self._save_state()
        self._publish()

    def _adopt(self) -> None:
        """A command takes the clocks back: the values other programs wrote may now be written over."""
        if self.fs is None:
            return
        changes = self.fs.external_changes()
        if changes:
            log.info("taking back by request: %s", "; ".join(str(c) for c in changes))
            self.fs.forget(c.path for c in changes)

    def _restore(self) -> tuple[list[str], list[str]]:
        """The board's own settings back: (failures, files left as another program set them). A
        failure is logged and counted (``errors.knob``) here, for every caller."""
        failures = self.board.restore()
        if failures:
            self.errors["knob"] += 1
            log.error("restore: %s", "; ".join(failures))
        skipped = [s.path for s in self.fs.last_restore.skipped] if self.fs is not None else []
        return failures, skipped

    def _run_commands(self) -> None:
        """Act on the commands the control threads queued, in order: each is one event (:meth:`_go`)."""
        ws = self.ws
        assert ws is not None
        while True:
            try:
                req = self._commands.get_nowait()
            except queue.Empty:
                return
            cmd = req["cmd"]
            log.info("control: %s", cmd)
            if cmd == "pause":
                self._go(PAUSE, "paused by request")  # while safe: once the board has cooled
            elif cmd == "resume":
                self._adopt()
                if ws.state == OVERRIDDEN and ws.resume_state in (HOLDING, EXPLORING):
                    self._go(BACK, "resumed by request")
                elif ws.best is not None:
                    self._go(HOLD, "resumed by request", config=ws.best)
                else:
                    self._go(CONTINUE, "resumed by request")
            elif cmd == "retune":
                self._adopt()
                self._go(SEARCH, "retune requested")
            elif cmd == "apply":
                try:  # checked again here: the board's knobs may have changed since the socket checked it
                    config = self._check_config(req["config"])
                except (EdgetuneError, ProtocolError) as exc:
                    log.error("control: apply refused: %s", exc)
                    continue
                self._adopt()
                self._go(HOLD, "applied by request", config=config, manual=True)
            elif cmd == "restore":
                _, skipped = self._restore()
                reason = "board settings restored by request"
                if skipped:
                    reason += f"; left {len(skipped)} file(s) as another program set them: {', '.join(skipped)}"
                self._go(RELEASE, reason, let_go=True)
            self._save_state()
            self._publish()

    def _heat_check(self) -> bool:
        """Enter or leave the safe config; True while it is held (the loop then waits)."""
        ws, w = self.ws, self.settings.watch
        assert ws is not None
        temp = self._temperature()
        if temp is not None and temp > w.temp_limit_c and allows(ws.state, HOT):
            reason = f"{temp:.1f} °C is above the {w.temp_limit_c:g} °C limit"
            log.warning("%s: applying the safe config", reason)
            self._go(HOT, reason)
            self._publish()
        elif ws.state == SAFE and (temp is None or temp <= w.temp_limit_c - w.temp_hysteresis_c):
            log.info("cooled to %s; back to %s", "n/a" if temp is None else f"{temp:.1f} °C", ws.resume_state)
            self._go(BACK, "cooled down")
            self._publish()
        if ws.state == SAFE:
            self._wait(1.0)
            return True
        return False

    def _safe_config(self) -> Config:
        """The coolest clocks: the lowest CPU and GPU frequency the board offers."""
        return Config({k.name: k.values[0] for k in self.board.knobs() if k.name in (CPU_FREQ, GPU_FREQ)})

    def _reload_settings(self) -> None:
        self._reload.clear()
        self.notifier.reloading()
        try:
            if self.config_path is None:
                raise ConfigError("started without a config file; nothing to reload")
            new = load_settings(self.config_path)
        except EdgetuneError as exc:
            self.errors["reload"] += 1
            log.error("reload refused, keeping the running settings: %s", exc)
            self.notifier.ready(self._status_line())
            return
        old = self.settings
        if new.board != old.board or new.daemon != old.daemon or new.metrics != old.metrics:
            log.warning("board, daemon and metrics settings take effect at the next restart")
            new = new.model_copy(update={"board": old.board, "daemon": old.daemon, "metrics": old.metrics})
        self.settings = new
        if (new.workloads, new.search, new.objective) != (old.workloads, old.search, old.objective):
            assert self.runner is not None
            self.runner.teardown()
            try:
                self._open_workload()  # a changed spec starts a new epoch there
            except EdgetuneError as exc:  # e.g. a workload that does not exist: keep serving the old one
                self.errors["reload"] += 1
                log.error("reload refused, keeping the running settings: %s", exc)
                self.settings = old
                self._open_workload()
                self.notifier.ready(self._status_line())
                self._publish()
                return
        elif new.watch != old.watch:
            w = new.watch
            self.drift = DriftWatch(w.drift_tolerance, w.drift_windows, w.slo_windows)
        log.info("settings reloaded from %s", self.config_path)
        self.notifier.ready(self._status_line())
        self._publish()

    # --- control socket (runs on the server's threads) ----------------------------------------
    def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Answer one control request on a socket thread: from the published snapshot only (read once, so
        every part of the answer is of one moment); a command is queued to the loop, never run here."""
        snap = self._snapshot
        cmd = req["cmd"]
        if cmd == "status":
            if not snap.status:
                return {"ok": True, "status": {"starting": True, "pid": os.getpid(), "workloads": []}}
            status = dict(snap.status)
            status["uptime_s"] = round(time.time() - self.started, 1)
            return {"ok": True, "status": status}
        if not snap.ready:
            raise ProtocolError("the daemon is still starting; try again in a moment")
        if cmd == "apply":
            snap.check(req["config"])  # a prompt answer for a bad knob or value; the loop checks again
        self._commands.put(req)
        self._wake.set()
        return {"ok": True, "accepted": cmd, "note": "takes effect after the measurement under way"}

    # --- the loop's side of a command ---------------------------------------------------------
    def _check_config(self, given: dict[str, Any]) -> Config:
        """A requested config checked against every knob's domain as the board offers it now, and completed
        from the held one (else the DVFS reference). Runs in the loop."""
        assert self.ws is not None and self.runner is not None
        self._refresh_knobs()
        check_values(given, self._knobs)
        base = self.ws.applied or self.ws.best
        if base is None:
            from tuner.search import reference_config

            base = reference_config(self.runner, self.space)
        return complete(given, base)

    # --- helpers ----------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        if self._stop.is_set() or not self._commands.empty() or self._reload.is_set():
            raise _Preempted()
        temp = self._temperature()
        if temp is not None and temp > self.settings.watch.temp_limit_c:
            raise _Preempted()

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake for a command, a reload or a stop."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not self._stop.is_set():
            self._wake.wait(min(left, 1.0))
            if self._wake.is_set():
                self._wake.clear()
                if not self._commands.empty() or self._reload.is_set() or self._stop.is_set():
                    return
            self._beat()

    def _temperature(self) -> float | None:
        try:
            temps = self.board.temperatures()
        except (OSError, EdgetuneError) as exc:
            self.errors["sensor"] += 1
            log.warning("temperature read failed: %s", exc)
            return self.temperature_c
        self.temperatures = temps
        self.temperature_c = hottest(temps)
        return self.temperature_c

    def _count_failure(self, m: Measurement) -> None:
        if not m.feasible and m.failure and m.failure.startswith("workload crashed"):
            self.errors["workload"] += 1
            log.error("%s", m.failure)
        elif m.feasible and not self.runner.analytic and self.board.power_source() is not None \
                and not math.isfinite(m.energy_j):  # type: ignore[union-attr]
            self.errors["sensor"] += 1
            log.warning("no energy reading for %s: the power rails did not answer", m.config.to_json())

    def _account(self, trial: Any, *, exploring: bool) -> None:
        """Add a trial or window measured now to the process's totals (the metrics' counters) and keep its power."""
        from tuner.cost import exploration

        done = exploration([trial])
        tot = self.measured
        energy = done.energy_j or 0.0  # None: nothing measured energy (a failed trial, no power monitor)
        tot["energy_j"] += energy
        tot["inferences"] += done.inferences
        if exploring:
            tot["trials"] += 1
            tot["exploration_j"] += energy
        m = trial.measurement
        if m.feasible and m.time_s > 0:
            tot["power_w"] = rounded(m.avg_power_w)
            tot["rails_w"] = rails_w(m)

    def _start_metrics(self) -> None:
        """The Prometheus exporter, when [metrics] is on; a port it cannot bind is logged and counted, not fatal."""
        ms = self.settings.metrics
        if not ms.enabled:
            return
        from tuner.metrics import Exporter

        exporter = Exporter(self.status_snapshot, address=ms.address(), textfile=ms.textfile)
        try:
            self.metrics = exporter.start()
        except OSError as exc:
            self.errors["metrics"] += 1
            log.error("metrics: cannot listen on %s: %s; serving without the endpoint", ms.listen,
                      exc.strerror or exc)
            exporter.address = None
            self.metrics = exporter.start() if ms.textfile is not None else None
        if self.metrics is not None:
            log.info("metrics: %s", ", ".join(x for x in (self.metrics.url, str(ms.textfile or "")) if x))
        self._publish()

    def _write_metrics(self, changed: bool = False) -> None:
        """The node_exporter textfile, when it is due (tuner.metrics.Exporter); a failed write is counted."""
        if self.metrics is None:
            return
        try:
            if changed:
                self.metrics.changed(time.monotonic())
            else:
                self.metrics.tick(time.monotonic())
        except OSError as exc:
            self.errors["metrics"] += 1
            if not self._metrics_failing:  # logged once until a write succeeds again
                log.error("metrics: cannot write %s: %s", self.metrics.textfile, exc.strerror or exc)
            self._metrics_failing = True
        else:
            self._metrics_failing = False

    def status_snapshot(self) -> dict[str, Any]:
        """The latest published status document (any thread)."""
        return dict(self._snapshot.status)

    @property
    def snapshot(self) -> Snapshot:
        """The latest published :class:`~tuner.daemon.snapshot.Snapshot` (any thread)."""
        return self._snapshot

    def _explore_policy(self) -> RunPolicy:
        s = self.settings.search
        return RunPolicy(inferences=s.inferences, min_repeats=s.repeats, max_repeats=s.max_repeats,
                         timeout_s=parse_duration(s.timeout) if s.timeout else None,
                         sample_rate_hz=self.settings.daemon.sample_rate_hz, rate_ips=self.settings.workloads[0].rate)

    def _hold_policy(self) -> RunPolicy:
        return replace(self._explore_policy(), inferences=self.settings.watch.window_inferences, min_repeats=1,
                       max_repeats=1, warmup_inferences=0, settle_s=0.0)

    def _state_key(self, workload: str) -> str:
        return f"daemon:{self.board_name}:{workload}"

    def _save_state(self) -> None:
        if self.store is not None and self.ws is not None:
            doc = self.ws.to_store(self.spec_key)
            if self.identity is not None:  # who this is, for `edgetune fleet`
                doc.update(board=self.board_name, workload=self.ws.name, board_id=self.identity.board_id,
                           host=self.identity.host, model=self.identity.model, l4t=self.identity.l4t,
                           simulated=self.identity.simulated)
            self.store.set_state(self._state_key(self.ws.name), doc)

    # --- the fleet's store --------------------------------------------------------------------
    def _open_fleet(self, state_dir: Path) -> None:
        """With ``[daemon] store``: copy the local record there from now on (first try at once)."""
        from tuner.fleet import FleetSync, board_id, host_name, same_store

        s, info = self.settings, self.board.info
        self.board_id = board_id(info, where=state_dir, root=s.board.root)
        if not s.daemon.store or same_store(s.daemon.store, self.store):
            return
        self.errors["store"] = 0
        self.fleet = FleetSync(self.store, s.daemon.store, self.board_id, interval_s=s.daemon.store_sync_s,
                               extra_state={"host": host_name(), "model": info.model, "l4t": info.l4t,
                                            "simulated": bool(info.simulated)})
        self._sync(force=True)

    def _identify(self) -> Any:
        """Who measures this workload's runs and the fleet key of its space (tuner.fleet.identify)."""
        from tuner.fleet import identify

        s = self.settings
        wl = s.workloads[0]
        return identify(self.board, wl.name, wl.options, self.objective, self.space, where=s.state_path(),
                        root=s.board.root)

    def _sync(self, force: bool = False) -> None:
        """Copy the local record to the fleet's store when due; a failure is counted and retried later."""
        if self.fleet is None:
            return
        failures = self.fleet.failures
        self.fleet.sync(force=force)
        if self.fleet.failures != failures:
            self.errors["store"] = self.errors.get("store", 0) + 1

    def _fleet_prior(self) -> Any:
        """The fleet's trials for this search, or None (and why, in the workload's state)."""
        ws = self.ws
        if self.fleet is None or ws is None or self.identity is None:
            return None
        failures = self.fleet.failures
        prior = self.fleet.prior(self.identity)
        if self.fleet.failures != failures:
            self.errors["store"] = self.errors.get("store", 0) + 1
        if prior is None:
            why = (f"the fleet's store is unreachable ({self.fleet.error})" if self.fleet.error
                   else "no identical board has stored trials yet")
            ws.fleet = {"status": "none", "note": f"{why}: searching on this board's own data"}
            log.info("%s: fleet: %s", ws.name, ws.fleet["note"])
        return prior

    def _publish(self) -> None:
        """Build the status document and replace the snapshot the control threads read (one assignment)."""
        ws = self.ws
        workloads = []
        if ws is not None:
            workloads.append(workload_doc(ws, self.measured, self.settings.watch.on_external_change))
        info = self.board.info if self.board is not None else None
        doc = {
            "version": __version__, "pid": os.getpid(), "started": self.started,
            "config": str(self.config_path) if self.config_path else None,
            "board": {"name": self.board_name, "kind": info.kind if info else None,
                      "model": info.model if info else None},
            "simulated": bool(info.simulated) if info else None,
            "temperature_c": self.temperature_c,
            "temperatures_c": dict(self.temperatures),
            "restored_at_start": self.restored_at_start,
            "errors": dict(self.errors),
            "control": {"requests": self.control.requests if self.control else 0,
                        "refused": self.control.bad_requests if self.control else 0},
            "workloads": workloads,
            "metrics": {"url": self.metrics.url, "textfile": str(self.metrics.textfile or "") or None}
            if self.metrics is not None else None,
            "store": self._store_status(),
        }
        self._snapshot = Snapshot(status=MappingProxyType(doc), knobs=MappingProxyType(dict(self._knobs)),
                                  ready=ws is not None and self.runner is not None)
        if self.metrics is not None:
            self._write_metrics(changed=True)
        line = self._status_line()
        if line != getattr(self, "_last_line", None):
            self._last_line = line
            self.notifier.status(line)

    def _store_status(self) -> dict[str, Any] | None:
        """Where the record is: the local store, and the fleet's (reachable? trials not yet copied)."""
        if self.store is None:
            return None
        doc: dict[str, Any] = {"local": self.store.display, "board_id": self.board_id or None}
        if self.fleet is not None:
            try:
                doc["fleet"] = self.fleet.status()
            except EdgetuneError as exc:  # the local store itself failed: say so, keep serving
                doc["fleet"] = {"url": self.fleet.display, "error": str(exc)}
        return doc

    def _status_line(self) -> str:
        ws = self.ws
        if ws is None:
            return "starting"
        return f"{ws.name}: {ws.state} ({ws.reason})"

    def _beat(self) -> None:
        self._beat_at = time.monotonic()

    def _start_watchdog(self) -> None:
        """Ping systemd's watchdog while the loop keeps beating.

        The loop beats at every trial, window and wait; one trial may run
        ``max_repeats`` repeats of ``timeout`` each, so silence up to that (or an
        hour without a timeout) is progress, longer is a hung loop that
        systemd should restart.
        """
        interval = self.notifier.watchdog_s
        if not interval:
            return
        s = self.settings.search
        stall = (parse_duration(s.timeout) * s.max_repeats + 60.0) if s.timeout else 3600.0

        def ping() -> None:
            while not self._stop.wait(interval / 2):
                if time.monotonic() - self._beat_at < stall:
                    self.notifier.watchdog()

        threading.Thread(target=ping, name="edgetune-watchdog", daemon=True).start()

    # --- signals ------------------------------------------------------------------------------
    def _trap_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.request_stop()
            raise KeyboardInterrupt(signal.Signals(signum).name)

        def reload(signum: int, frame: FrameType | None) -> None:
            self.request_reload()

        # outside the main thread (tests) nothing is trapped: they drive request_stop instead
        self._old_handlers = trap_signals({signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: reload})

    def _ignore_signals(self) -> None:
        """While restoring, a second SIGTERM must not cut the restore short."""
        for sig in self._old_handlers:
            signal.signal(sig, signal.SIG_IGN)

    def _restore_signal_handlers(self) -> None:
        restore_signals(self._old_handlers)


def _describe(changes: list[ExternalChange]) -> str:
    """One line naming the first changed file, its value and edgetune's (reason and log)."""
    c = changes[0]
    more = f" and changed {len(changes) - 1} more file(s)" if len(changes) > 1 else ""
    return f"another program wrote {c.found} to {c.path} (edgetune had written {c.written}){more}"

"""The Search flow (DESIGN §3): ask → measure → cost → tell → store.

``sweep``, ``tune``, ``bench`` and the daemon all run this loop; they differ in
the strategy, the budget and what they do with the result. With a store run,
a config the run already measured is answered from the store (resume), so an
interrupted search continues where it stopped and a finished one measures
nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tuner.config import BATCH_SIZE, CPU_FREQ, EMC_FREQ, GPU_FREQ, HARDWARE_KNOBS, Config, Knob, Space
from tuner.errors import ConfigError
from tuner.measurement import Measurement
from tuner.objective import Objective
from tuner.runner import Trial, TrialRunner, dvfs_config
from tuner.store import REFERENCE, SEARCH, Run
from tuner.strategies.base import Strategy


@dataclass
class Step:
    """One told trial, as the loop's callback sees it."""

    index: int
    trial: Trial
    cost: float
    reused: bool  # answered from the store, not measured now


@dataclass
class SearchResult:
    best: Config | None
    best_trial: Trial | None
    best_cost: float
    reference: Trial | None
    steps: list[Step] = field(default_factory=list)

    @property
    def measured(self) -> int:
        return sum(1 for s in self.steps if not s.reused)


def parse_budget(text: str | None, size: int) -> int:
    """A budget as written by a user: a number of trials (``40``) or a share of the
    space (``10%``, ``0.1``); None is 10 % of the space. At least one trial, at
    most three times the space (a strategy may re-measure)."""
    if text is None:
        return max(1, math.ceil(0.1 * size))
    t = str(text).strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ConfigError(f"a budget is a trial count (40) or a share of the space (10%), not {text!r}") from None
    if not value > 0:
        raise ConfigError("the budget must be positive")
    n = math.ceil(value * size) if (t.endswith("%") or value < 1) else int(value)
    return max(1, min(n, size * 3))


#: The space a search explores when no knob is named: CPU and GPU frequency and
#: the batch size, each where the board and workload offer it. Other knobs
#: (EMC, cores, governors, concurrency, ...) join when asked for with --knob.
DEFAULT_KNOBS = (CPU_FREQ, GPU_FREQ, BATCH_SIZE)

#: Why a default knob a board does not offer is left out of the space.
_NOT_OFFERED = {
    CPU_FREQ: "the board offers no CPU frequency control",
    GPU_FREQ: "the board offers no GPU frequency control",
    EMC_FREQ: "the board offers no memory clock control",
}


def build_space(runner: TrialRunner, knobs: dict[str, tuple | None],
                optional: Iterable[str] = ()) -> Space:
    """The search space: the named knobs, with the device's (or workload's) domain
    narrowed to the given values where a tuple is given (see :func:`plan_space`)."""
    return plan_space(runner, knobs, optional)[0]


def plan_space(runner: TrialRunner, knobs: dict[str, tuple | None],
               optional: Iterable[str] = ()) -> tuple[Space, dict[str, str]]:
    """The search space and, per knob left out of it, why.

    ``knobs`` maps a knob name to its values (None: the whole domain). A name
    in ``optional`` was not asked for by the user (a default): where the board
    or workload does not offer it, it is left out and the reason returned,
    and default values it does not offer are dropped. Any other name is
    explicit, and a knob that cannot be searched here is a clear error.

    A recorded board (``replay:``) offers exactly what its recording varied:
    every knob with more than one recorded value joins the space with its
    recorded values unless narrowed; pinned and absent knobs stay out. Domains
    come from the board and the workload, never from a table; a value the
    device does not offer is a clear error.
    """
    optional = set(optional)
    board = runner.board
    available: dict[str, Knob] = {k.name: k for k in board.knobs()}
    available.update({k.name: k for k in runner.workload_knobs()})
    recorded = getattr(board, "searchable", None)  # a replayed recording: the knobs it varied
    pinned: dict[str, object] = dict(getattr(board, "pinned", None) or {})
    not_searched: dict[str, str] = {}
    wanted: dict[str, tuple | None] = dict(knobs)
    if recorded is not None:
        for name in list(wanted):
            if name in optional and name in recorded:
                wanted[name] = None  # a default narrowing gives way to what was recorded
        for name in recorded:
            wanted.setdefault(name, None)
    chosen = []
    for name, values in wanted.items():
        if recorded is not None and name not in recorded:
            reason = board.absent_reason(name)
            if name in optional:
                not_searched[name] = reason
                continue
            if name in pinned and (values is None or set(values) == {pinned[name]}):
                not_searched[name] = reason
                continue
            held = ", ".join(recorded) or "no knob"
            raise ConfigError(f"{name} cannot be searched on this recording: {reason}; "
                              f"available: {held}")
        if name not in available:
            if name in optional:
                not_searched[name] = _NOT_OFFERED.get(name, "the workload does not offer it")
                continue
            why = f" ({_NOT_OFFERED[name]})" if name in _NOT_OFFERED else ""
            raise ConfigError(f"{name} cannot be searched here{why}; available: {', '.join(sorted(available))}")
        knob = available[name]
        if values is not None:
            if name in optional:
                offered = tuple(v for v in values if v in knob.values)
                values = offered or None
        if values is not None:
            for v in values:
                knob.validate(v)
            knob = Knob(knob.name, tuple(values), knob.unit, knob.ordered)
        chosen.append(knob)
    constraints: tuple = ()
    if recorded is not None:
        check = getattr(board, "covers", None)
        space = Space(tuple(chosen))
        if check is not None and not all(check(c) for c in space):
            constraints = (check,)  # an incomplete grid: only what was recorded
    space = Space(tuple(chosen), constraints)
    if not space.knobs:
        raise ConfigError("nothing to search: " + ("; ".join(f"{k}: {v}" for k, v in not_searched.items())
                                                   or "no knob was given"))
    return space, not_searched


def space_doc(space: Space, not_searched: dict[str, str] | None = None, board: object = None) -> dict[str, object]:
    """The space as ``--json`` shows it: knobs and their number of values, size, what is
    not searched and why, and (a Jetson board) which power mode narrowed the clocks."""
    doc: dict[str, object] = {"knobs": {k.name: len(k) for k in space.knobs}, "size": len(space),
                              "not_searched": dict(not_searched or {})}
    notes = [f"{k} is not searched: {v}" for k, v in (not_searched or {}).items()]
    mode_note = getattr(board, "space_note", lambda: None)()
    if mode_note:
        doc["power_mode"] = mode_note
        notes.append(mode_note)
    if notes:
        doc["note"] = "; ".join(notes)
    return doc


def check_recorded(board: object, objective: Objective) -> None:
    """On a recording, an objective it cannot answer is a clear error, not a space of failures."""
    quantities = getattr(board, "recorded_quantities", None)
    if quantities is None:
        return
    held = quantities()
    needs = {"energy": {"energy"}, "time": {"time"}, "edp": {"energy", "time"}, "ed2p": {"energy", "time"},
             "power": {"energy", "time"}, "weighted": {"energy", "time"}}[objective.kind]
    lacking = needs - held
    if lacking:
        what = " and ".join(f"{q} per inference" for q in sorted(lacking))
        raise ConfigError(f"the {objective.name} objective needs {what}, which this recording does not hold"
                          + (" (import a throughput column for time)" if "time" in lacking else ""))


def can_measure(runner: TrialRunner, config: Config) -> bool:
    """Whether the board can measure ``config``: always, except on a recording
    that did not record it (an imported recording holds no DVFS reference)."""
    covers = getattr(runner.board, "covers", None)
    return covers is None or bool(covers(config))


def reference_config(runner: TrialRunner, space: Space, batch: int | None = None) -> Config:
    """DVFS at ``batch``, by default the workload's default batch: 16 (the reference
    study's) if searched, else the middle one."""
    workload_part: dict[str, object] = {}
    for knob in space.knobs:
        if knob.name == BATCH_SIZE:
            default = 16 if 16 in knob.values else knob.values[(len(knob) - 1) // 2]
            workload_part[BATCH_SIZE] = default if batch is None else batch
        elif knob.name not in HARDWARE_KNOBS:
            workload_part[knob.name] = knob.values[0]
    return dvfs_config(runner.board, Config(workload_part))  # type: ignore[arg-type]


def measure_or_take(runner: TrialRunner, config: Config, run: Run | None, role: str) -> Trial:
    """A trial of ``config`` outside the search (a reference, a governor): from the store
    when the run already has it (resume), else measured and stored under ``role``."""
    trial = run.take(config, role) if run else None
    if trial is None:
        trial = runner.measure(config)
        if run:
            run.add(trial, math.nan, role)
    return trial


def measure_reference(runner: TrialRunner, space: Space, run: Run | None, batch: int | None = None) -> Trial:
    """Measure (or take from the store) the DVFS reference."""
    return measure_or_take(runner, reference_config(runner, space, batch), run, REFERENCE)


def search(strategy: Strategy, runner: TrialRunner, objective: Objective, budget: int, *,
           run: Run | None = None, on_step: Callable[[Step], None] | None = None,
           reference: Trial | None = None) -> SearchResult:
    """Run ``strategy`` for up to ``budget`` trials (or until it is done)."""
    if objective.needs_reference:
        if reference is None:
            raise ConfigError("this objective needs the DVFS reference measured first")
        objective = objective.with_reference(reference.measurement)
    steps: list[Step] = []
    trials: dict[Config, list[Trial]] = {}
    while len(steps) < budget and not strategy.done():
        config = strategy.ask()
        if config is None:
            break
        trial = run.take(config) if run else None
        reused = trial is not None
        if trial is None:
            trial = runner.measure(config)
        cost = objective.cost(trial.measurement)
        if run and not reused:
            run.add(trial, cost, SEARCH)
        strategy.tell(config, cost, objective.check(trial.measurement))
        trials.setdefault(config, []).append(trial)
        step = Step(len(steps), trial, cost, reused)
        steps.append(step)
        if on_step:
            on_step(step)
    best = strategy.best()
    best_trial = None
    best_cost = math.inf
    if best is not None:
        repeats = [r for t in trials[best] for r in t.repeats]
        best_trial = Trial(best, Measurement.combine(repeats), repeats)
        best_cost = objective.cost(best_trial.measurement)
    return SearchResult(best, best_trial, best_cost, reference, steps)

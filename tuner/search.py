"""The Search flow (DESIGN §3): ask → measure → cost → tell → store.

``sweep``, ``tune``, ``bench`` and the daemon all run this loop; they differ in
the strategy, the budget and what they do with the result. With a store run,
a config the run already measured is answered from the store (resume), so an
interrupted search continues where it stopped and a finished one measures
nothing new.

With a :class:`Prior` (what identical boards measured, from a shared store:
:mod:`tuner.fleet`), the search starts warm: it measures the fleet's best
config here first, and if this board agrees with the fleet there (within a
tolerance, beyond the noise of both) the fleet's trials are told to the
strategy as prior data before it asks, and a few trials confirm the best
(:data:`Prior.budget`). A board that disagrees (another carrier board, thermal
design or firmware) drops the prior and searches on its own data. The prior
trials are never stored as this board's trials, and what is held is always a
config measured here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from tuner.config import BATCH_SIZE, CPU_FREQ, EMC_FREQ, GPU_FREQ, HARDWARE_KNOBS, Config, Knob, Space
from tuner.errors import ConfigError
from tuner.measurement import Measurement, Trial
from tuner.objective import Objective
from tuner.runner import TrialRunner, dvfs_config
from tuner.store import REFERENCE, SEARCH, Run

if TYPE_CHECKING:  # the daemon runs strategies in a child process: numpy stays out of it
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
    """What a search ends with: the recommended config, its combined trial and cost, the DVFS
    reference and every told step."""

    best: Config | None
    best_trial: Trial | None
    best_cost: float
    reference: Trial | None
    steps: list[Step] = field(default_factory=list)
    fleet: Optional[Dict[str, Any]] = None  # what the warm start did (Prior.outcome), None without a prior
    stopped: str = "budget"  # why the search ended: budget, converged, done (the strategy finished)

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


@dataclass
class Prior:
    """What identical boards measured (:func:`tuner.fleet.load_prior`): a warm start for a search.

    ``trials`` are the fleet's trials as they were stored, each with its own
    repeats (so its own noise); ``origins`` names the board of each. Boards
    of one model differ a little in level (power supply, silicon, cooling), so
    each board's level is estimated and taken out before the fleet's trials are
    compared (:func:`fleet_estimates`). ``tolerance`` is how far this board
    may measure from the fleet at the fleet's best config, beyond the noise of
    both, and still count as the same kind of board; ``budget`` is how many
    trials a warm search measures here (the verification of the fleet's best
    included); at most ``max_configs`` of the fleet's configs are told (the
    better half and a spread of the rest: a GP refits at every tell).
    """

    trials: List[Trial]
    boards: Tuple[str, ...] = ()
    key: Optional[str] = None
    origins: Optional[List[str]] = None
    tolerance: float = 0.10
    budget: int = 3
    max_configs: int = 64


def race(strategy: Strategy, objective: Objective) -> Callable[[list[Measurement]], bool]:
    """The racing rule for :meth:`TrialRunner.measure`: enough repeats once the strategy
    says a config with this mean over this many repeats is outclassed by its incumbent
    (:meth:`Strategy.outclassed`). A config that may be the best is repeated as the
    policy says, until its repeats agree."""

    def enough(repeats: list[Measurement]) -> bool:
        cost = objective.cost(Measurement.combine(repeats))
        return math.isfinite(cost) and cost > 0 and strategy.outclassed(repeats[0].config, cost, len(repeats))

    return enough


def _measure(runner: TrialRunner, run: Run | None, config: Config, objective: Objective,
             enough: Callable[[list[Measurement]], bool] | None = None,
             known: dict[Config, Trial] | None = None) -> tuple[Trial, float, bool]:
    """A search trial of ``config``: from the store when the run already has it (resume), else
    one of ``known`` (taken: it counts once), else measured (with the racing rule ``enough``, if
    any); stored as the search's; with its cost and whether it was reused (not measured now)."""
    trial = run.take(config) if run else None
    stored = trial is not None
    if trial is None and known and config in known:
        trial = known.pop(config)
    reused = trial is not None
    if trial is None:
        trial = runner.measure(config, enough)
    cost = objective.cost(trial.measurement)
    if run and not stored:
        run.add(trial, cost, SEARCH)
    return trial, cost, reused


def search(strategy: Strategy, runner: TrialRunner, objective: Objective, budget: int, *,
           run: Run | None = None, on_step: Callable[[Step], None] | None = None,
           reference: Trial | None = None, prior: Prior | None = None,
           stop_improvement: float | None = None, known: Iterable[Trial] = ()) -> SearchResult:
    """Run ``strategy`` for up to ``budget`` trials (or until it is done).

    With ``stop_improvement`` (a fraction: 0.01 is 1 %) the search is economical, as a
    search on a board should be, where every trial costs minutes and joules: it stops
    early once the strategy says further trials are unlikely to beat its recommendation
    by more than that (:meth:`Strategy.converged`: the GP strategies when no config has a
    fair chance, descent when widening around its minimum finds nothing; the others run
    to the budget), and its repeats race (:func:`race`): a config
    clearly worse than the incumbent after one repeat is not repeated. Without it, every
    trial gets the runner's repeats and the search spends its budget (sweep and bench
    measure the strategies that way).

    With a ``prior`` the search starts warm (module docstring): the fleet's
    best config is measured first; when this board agrees with the fleet
    there, the fleet's trials are told to the strategy, the budget shrinks to
    ``prior.budget``, and each further trial measures the strategy's best
    (now informed by the fleet) where this board has not measured it yet, else
    what the strategy asks.

    ``known``: trials measured just before the search, the DVFS references. A config the
    strategy asks for that is among them is told that trial, not measured again: on a board
    without clock knobs (NVML without clock control, a host without cpufreq) the reference is
    a config of the space, and a sweep measured each batch size three times (reference, map,
    confirmation) where twice tell the same."""
    if objective.needs_reference:
        if reference is None:
            raise ConfigError("this objective needs the DVFS reference measured first")
        objective = objective.with_reference(reference.measurement)
    steps: list[Step] = []
    trials: dict[Config, list[Trial]] = {}
    fleet = None
    if prior is not None:
        fleet, budget = _warm_start(strategy, runner, objective, budget, prior, run, steps, trials, on_step)
    warm = fleet is not None and fleet.get("status") == "warm"
    economical = stop_improvement is not None
    if economical and not 0 < stop_improvement < 1:
        raise ConfigError(f"the improvement worth searching for is a fraction in (0, 1), not {stop_improvement}")
    enough = race(strategy, objective) if economical else None
    measured_before = {t.config: t for t in known}
    stopped = "budget"
    while len(steps) < budget:
        if strategy.done():
            stopped = "done"
            break
        config = _confirm(strategy, trials) if warm else None
        if config is None:
            config = strategy.ask()
        if config is None:
            stopped = "done"
            break
        trial, cost, reused = _measure(runner, run, config, objective, enough, measured_before)
        strategy.tell(config, cost, objective.check(trial.measurement))
        trials.setdefault(config, []).append(trial)
        step = Step(len(steps), trial, cost, reused)
        steps.append(step)
        if on_step:
            on_step(step)
        if economical and len(steps) < budget and strategy.best() is not None \
                and strategy.converged(stop_improvement):  # never "converged" on nothing feasible
            stopped = "converged"
            break
    best = recommendation(strategy, trials, objective)
    best_trial = None
    best_cost = math.inf
    if best is not None:
        repeats = [r for t in trials[best] for r in t.repeats]
        best_trial = Trial(best, Measurement.combine(repeats), repeats)
        best_cost = objective.cost(best_trial.measurement)
    return SearchResult(best, best_trial, best_cost, reference, steps, fleet, stopped)


def recommendation(strategy: Strategy, measured: dict[Config, list[Trial]], objective: Objective) -> Config | None:
    """The config to hold: the strategy's best where this board measured it, else (its best is a
    config only the fleet measured) the config measured here with the lowest mean cost."""
    best = strategy.best()
    if best is None or best in measured:
        return best
    costs = {c: objective.cost(Measurement.combine([r for t in ts for r in t.repeats] or [ts[0].measurement]))
             for c, ts in measured.items()}
    finite = {c: v for c, v in costs.items() if math.isfinite(v)}
    return min(finite, key=finite.__getitem__) if finite else None


def _confirm(strategy: Strategy, measured: dict[Config, list[Trial]]) -> Config | None:
    """In a warm search: the strategy's best, if this board has not measured it yet (nothing is held
    that was not measured here); None lets the strategy ask."""
    best = strategy.best()
    return best if best is not None and best not in measured else None


def _log_se(repeats: list[Measurement], objective: Objective) -> float:
    """Standard error of the mean log cost of ``repeats`` (one repeat alone: the study's ~1.8 %)."""
    logs = [math.log(c) for c in (objective.cost(r) for r in repeats) if math.isfinite(c) and c > 0]
    if len(logs) < 2:
        return 0.018
    mean = sum(logs) / len(logs)
    var = sum((v - mean) ** 2 for v in logs) / (len(logs) - 1)
    return math.sqrt(var / len(logs))


@dataclass
class FleetEstimates:
    """The fleet's trials on one level: per board a log offset, per config an estimate of its log cost."""

    trials: List[Tuple[Trial, float]]  # each trial in this space, with its cost on the fleet's common level
    level: Dict[Config, float]  # config -> mean log cost on the common level (feasible configs)
    count: Dict[Config, int]  # config -> trials behind it
    offsets: Dict[str, float]  # board -> its log offset from the common level
    residual_sd: float  # one trial's log-cost scatter about the fit (noise and what the fit misses)
    failed: set  # configs the fleet found infeasible


def fleet_estimates(prior: Prior, objective: Objective, space: Space, iterations: int = 25) -> FleetEstimates:
    """Fit log cost = board offset + config level to the fleet's feasible trials (alternating means).

    Without it a board that runs 8 % leaner than the others would make the
    fleet's best its own luckiest reading; with it every board's trials are
    compared on one level. Boards that share no config with the others keep
    offset 0."""
    origins = prior.origins or ["fleet"] * len(prior.trials)
    rows: list[tuple[str, Config, float, Trial]] = []
    failed: set = set()
    for t, board in zip(prior.trials, origins):
        if t.config not in space:
            continue
        cost = objective.cost(t.measurement)
        if math.isfinite(cost) and cost > 0:
            rows.append((board, t.config, math.log(cost), t))
        else:
            failed.add(t.config)
    offsets = {b: 0.0 for b, *_ in rows}
    level: dict[Config, float] = {}
    for _ in range(iterations if len(offsets) > 1 else 1):
        sums: dict[Config, list[float]] = {}
        for b, c, y, _t in rows:
            sums.setdefault(c, []).append(y - offsets[b])
        level = {c: sum(v) / len(v) for c, v in sums.items()}
        if len(offsets) == 1:
            break
        per_board: dict[str, list[float]] = {}
        for b, c, y, _t in rows:
            per_board.setdefault(b, []).append(y - level[c])
        offsets = {b: sum(v) / len(v) for b, v in per_board.items()}
        mean_offset = sum(offsets.values()) / len(offsets)
        offsets = {b: v - mean_offset for b, v in offsets.items()}
    count: dict[Config, int] = {}
    for _b, c, _y, _t in rows:
        count[c] = count.get(c, 0) + 1
    resid = [y - offsets[b] - level[c] for b, c, y, _t in rows]
    dof = max(1, len(rows) - len(level) - max(0, len(offsets) - 1))
    sd = math.sqrt(sum(r * r for r in resid) / dof) if any(n > 1 for n in count.values()) else 0.0
    trials = [(t, math.exp(y - offsets[b])) for b, _c, y, t in rows]
    trials += [(t, math.inf) for t in prior.trials if t.config in failed]
    return FleetEstimates(trials, level, count, offsets, max(sd, 0.018), failed)


def _told_configs(est: FleetEstimates, limit: int) -> set[Config]:
    """At most ``limit`` configs: the better half, an even spread of the rest, and every
    memory failure (they prune the space for nothing)."""
    ranked = sorted(est.level, key=est.level.__getitem__)
    keep = set(ranked[: limit // 2])
    rest = ranked[limit // 2:]
    room = max(0, limit - len(keep))
    if rest and room:
        step = max(1.0, len(rest) / room)
        keep.update(rest[int(i * step)] for i in range(min(room, len(rest))))
    keep.update(t.config for t, cost in est.trials if not math.isfinite(cost) and t.measurement.memory_failure)
    return keep


def _warm_start(strategy: Strategy, runner: TrialRunner, objective: Objective, budget: int, prior: Prior,
                run: Run | None, steps: list[Step], trials: dict[Config, list[Trial]],
                on_step: Callable[[Step], None] | None) -> tuple[dict[str, Any], int]:
    """Verify the fleet's best here; on agreement tell the fleet's trials (on this board's level)
    before the strategy asks, and shrink the budget. Returns (what happened, the budget)."""
    est = fleet_estimates(prior, objective, strategy.space)
    doc: dict[str, Any] = {"key": prior.key, "boards": list(prior.boards), "prior_trials": len(prior.trials),
                           "prior_configs": len(est.level), "tolerance": prior.tolerance,
                           "board_offsets": {b: round(math.expm1(v), 4) for b, v in est.offsets.items()}}
    if not est.level:
        doc.update(status="unused", note="the fleet measured nothing feasible in this space: searching alone")
        return doc, budget
    # the fleet's best: the lowest level, a config measured by one trial only paying for its uncertainty
    # against one measured again (the lowest of many single readings is biased low)
    best = min(est.level, key=lambda c: est.level[c] + est.residual_sd / math.sqrt(est.count[c]))
    fleet_cost = math.exp(est.level[best])
    trial, cost, reused = _measure(runner, run, best, objective)
    ratio = cost / fleet_cost if math.isfinite(cost) else math.inf
    noise = 2.0 * math.sqrt(_log_se(trial.repeats or [trial.measurement], objective) ** 2
                            + est.residual_sd ** 2 / est.count[best])
    limit = math.log1p(prior.tolerance) + noise
    agrees = math.isfinite(ratio) and ratio > 0 and abs(math.log(ratio)) <= limit
    off = (ratio - 1.0) * 100 if math.isfinite(ratio) else math.inf
    doc["verified"] = {"config": best.to_dict(), "fleet_cost": fleet_cost, "local_cost": cost,
                       "ratio": ratio if math.isfinite(ratio) else None, "allowed": math.expm1(limit)}
    if agrees:
        told = _told_configs(est, prior.max_configs)
        n_told = 0
        for t, level_cost in est.trials:  # in the order the fleet measured them, on this board's level
            if t.config in told:
                strategy.tell(t.config, level_cost * ratio, objective.check(t.measurement))
                n_told += 1
        budget = min(budget, max(1, prior.budget))
        doc.update(status="warm", told=n_told, budget=budget,
                   note=f"the fleet's best measures {off:+.1f} % here (within {prior.tolerance * 100:g} % and noise): "
                        f"warm start from {n_told} trials of {len(prior.boards)} board(s), {budget} trials here")
    else:
        where = f"{off:+.1f} %" if math.isfinite(off) else "infeasible"
        doc.update(status="dropped",
                   note=f"this board measures {where} off the fleet at the fleet's best config (more than "
                        f"{prior.tolerance * 100:g} % beyond noise): prior dropped, searching on its own data")
    strategy.tell(best, cost, objective.check(trial.measurement))
    trials.setdefault(best, []).append(trial)
    step = Step(len(steps), trial, cost, reused)
    steps.append(step)
    if on_step:
        on_step(step)
    return doc, budget

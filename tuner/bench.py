"""``edgetune bench``: how fast does each strategy find the optimum of one surface?

For every seed, every strategy searches the same noisy board (simulated, or a
replayed sweep) through the ordinary Search flow, and after each trial its
*recommended* config is judged on the noiseless surface (the full sweep of
expected costs). Two numbers per strategy, median and 90th percentile over
seeds (DESIGN §7):

- ``fraction_to_2pct``: trials (as a fraction of the space) until the
  recommendation is within 2 % of the true optimum — and stays judged there at
  that moment; a seed that never gets there within the horizon counts as
  not reached (``null`` when the statistic falls on it);
- ``regret_at_budget``: the recommendation's true cost over the optimum, minus
  1, after ``budget_fraction`` of the space; ``regret_per_seed`` lists it seed by
  seed (null: nothing feasible recommended), for the tail a p90 over ten seeds
  cannot show (how many seeds end above 5 %).

Re-measuring a config counts as a trial, as it costs one on a board.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.app import explore
from tuner.boards.factory import open_board
from tuner.config import Config
from tuner.cost import Exploration, exploration, payback_s
from tuner.errors import ConfigError
from tuner.measurement import Trial
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import (Step, can_measure, check_recorded, measure_reference, plan_space, reference_config,
                          space_doc)
from tuner.strategies import make_strategy

DEFAULT_STRATEGIES = ("bo", "thompson", "ogd", "random", "tpe")
TARGET = 0.02
ABOVE = 0.05  # the regret the tail counts are taken at (seeds_above): issue 17's p90 target


def seeds_above(per_seed: list[float | None], bound: float = ABOVE) -> int:
    """How many seeds of a ``regret_per_seed`` list end above ``bound`` (None, nothing
    feasible recommended, counts as above)."""
    return sum(1 for v in per_seed if v is None or v > bound)


@dataclass(frozen=True)
class BenchSpec:
    """One benchmark: a replayable board, a workload and space, the strategies to compare, seeds and budget."""

    board: str
    workload: str
    knobs: dict[str, tuple | None]
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    seeds: int = 10
    budget_fraction: float = 0.1
    horizon_fraction: float = 0.3
    objective: Objective = Objective()
    policy: RunPolicy = RunPolicy()
    optional: tuple[str, ...] = ()  # knobs of ``knobs`` that are defaults: left out where not offered
    noise: Any = None  # sim: boards only (tuner.sim.board.Noise, --noise); None: the board's default

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConfigError("--seeds must be at least 1")
        if not 0 < self.budget_fraction <= 1:
            raise ConfigError("--budget is a fraction of the space in (0, 1]")
        if not self.budget_fraction <= self.horizon_fraction <= 1:
            raise ConfigError("--horizon must be between the budget and 1")


def _stats(values: list[float]) -> dict[str, float | None]:
    arr = np.array(values, dtype=float)

    def q(p: float) -> float | None:
        v = float(np.percentile(arr, p, method="higher"))
        return None if not math.isfinite(v) else round(v, 6)

    return {"median": q(50), "p90": q(90)}


def run_bench(spec: BenchSpec, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run every strategy on every seed; returns the ``--json`` document."""
    board = open_board(spec.board, seed=0)
    runner = TrialRunner(board, spec.workload, spec.policy)
    space, not_searched = plan_space(runner, spec.knobs, spec.optional)
    size = len(space)
    check_recorded(board, spec.objective)
    # the truth: every config's noiseless cost (this *is* the full sweep)
    objective = spec.objective
    if objective.needs_reference:
        if not can_measure(runner, reference_config(runner, space)):
            raise ConfigError(f"the {objective.name} objective needs the DVFS reference, which this recording "
                              "does not hold; use --objective energy, time, edp or ed2p")
        ref = measure_reference(runner, space, None)
        reference_m = board.expected(spec.workload, ref.config, spec.policy.inferences)
        objective = objective.with_reference(reference_m)
    truth = {c: objective.cost(board.expected(spec.workload, c, spec.policy.inferences)) for c in space}
    optimum = min(truth.values())
    if not math.isfinite(optimum):
        raise ConfigError("no config of this space is feasible; nothing to benchmark")
    optimum_config = min(truth, key=truth.__getitem__)
    budget = max(1, math.ceil(spec.budget_fraction * size))
    horizon = max(budget, math.ceil(spec.horizon_fraction * size))
    # the held config's payback is judged on the noiseless surface, against noiseless DVFS
    dvfs_config = reference_config(runner, space)
    dvfs_truth = board.expected(spec.workload, dvfs_config, spec.policy.inferences) \
        if can_measure(runner, dvfs_config) else None

    def _cost_at(spent: list[Trial], best: Config | None) -> tuple[Exploration, float | None]:
        """What the search spent up to now, and when its recommendation repays it (noiseless)."""
        explored = exploration(spent)
        held = board.expected(spec.workload, best, spec.policy.inferences) if best is not None else None
        return explored, payback_s(explored, held, dvfs_truth)

    rows = []
    for name in spec.strategies:
        hits: list[float] = []
        regrets: list[float] = []
        costs: list[tuple[Exploration, float | None]] = []
        trials_used: list[int] = []
        repeats: list[float] = []
        started = time.monotonic()
        for seed in range(spec.seeds):
            if progress:
                progress(name, seed, spec.seeds)
            noisy = open_board(spec.board, seed=1000 + seed, noise=spec.noise)
            seeded_runner = TrialRunner(noisy, spec.workload, spec.policy)
            strategy = make_strategy(name, space, seed=seed)
            state: dict[str, Any] = {"hit": math.inf, "regret": math.inf, "cost": None}
            spent: list[Trial] = []  # the DVFS reference (where the objective needs one) and the trials

            def took(reference: Trial | None, measured_now: bool, spent=spent) -> None:
                if reference is not None:
                    spent.append(reference)

            def judge(step: Step, strategy=strategy, state=state, spent=spent) -> None:
                n = step.index + 1
                if n > budget and math.isfinite(state["hit"]):
                    return
                if n <= budget:
                    spent.append(step.trial)
                best = strategy.best()
                cost = truth.get(best, math.inf) if best is not None else math.inf
                if math.isinf(state["hit"]) and cost <= optimum * (1 + TARGET):
                    state["hit"] = n / size
                if n == budget:
                    state["regret"] = cost / optimum - 1
                    state["cost"] = _cost_at(spent, best)

            def keep_going(step: Step, state=state) -> None:
                if step.index + 1 >= budget and math.isfinite(state["hit"]):
                    raise _Stop

            def on_step(step: Step) -> None:
                judge(step)
                keep_going(step)

            try:
                # the search sequence every command runs (tuner.app.explore), without a store; the
                # DVFS reference only where the objective needs one (the tables count trials)
                explore(seeded_runner, space, objective, lambda strategy=strategy: strategy, horizon, run=None,
                        on_step=on_step, on_reference=took,
                        reference_batches=(None,) if objective.needs_reference else ())
            except _Stop:
                pass
            if math.isinf(state["regret"]):  # the strategy stopped before the budget (e.g. a finished sweep)
                best = strategy.best()
                state["regret"] = (truth.get(best, math.inf) / optimum - 1) if best is not None else math.inf
                state["cost"] = _cost_at(spent, best)
            costs.append(state["cost"])
            hits.append(state["hit"])
            regrets.append(state["regret"])
            trials_used.append(len(strategy.order))
            repeats.append(seeded_runner.measured / max(1, len(strategy.order)))
        reached = sum(1 for h in hits if math.isfinite(h))
        rows.append({
            "name": name,
            "fraction_to_2pct": {**_stats(hits), "reached": reached / spec.seeds},
            "regret_at_budget": _stats(regrets),
            "regret_per_seed": [round(r, 6) if math.isfinite(r) else None for r in regrets],
            "budget_fraction": spec.budget_fraction,
            "trials_at_budget": budget,
            "repeats_per_trial": round(float(np.mean(repeats)), 2),
            "exploration_at_budget": {key: _stats([math.nan if getattr(c[0], key) is None else getattr(c[0], key)
                                                   for c in costs])
                                      for key in ("time_s", "energy_j")},
            "payback_s_at_budget": _stats([math.inf if c[1] is None else c[1] for c in costs]),
            "seconds": round(time.monotonic() - started, 2),
        })
    return {
        "board": spec.board,
        "workload": spec.workload,
        "simulated": bool(board.info.simulated),
        "space_size": size,
        "knobs": list(space.names),
        "space": space_doc(space, not_searched),
        **({"noise": noisy.noise.describe()} if hasattr(noisy, "noise") else {}),
        "objective": spec.objective.name,
        "seeds": spec.seeds,
        "horizon_fraction": spec.horizon_fraction,
        "optimum": {"config": optimum_config.to_dict(), "cost": optimum,
                    "within_2pct": sum(1 for v in truth.values() if v <= optimum * (1 + TARGET))},
        "strategies": rows,
    }


class _Stop(Exception):
    """Both numbers are known: stop this search early (saves time, changes nothing)."""


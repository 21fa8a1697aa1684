"""The online governor: online gradient descent moving the clocks while the workload runs.

The workload's run is cut into short windows; each window runs under the
config the descent asks for, and its measurement is told back — exploration
happens on live traffic, the way the daemon will tune a running application.
What the comparison reports for it is the cost of the *whole* run, exploration
included: the honest price of tuning online.
"""

from __future__ import annotations

from dataclasses import replace

from tuner.config import Config, Space
from tuner.measurement import Measurement
from tuner.objective import Objective
from tuner.residency import merge
from tuner.runner import TrialRunner
from tuner.search import search
from tuner.strategies import make_strategy


def run_online(runner: TrialRunner, space: Space, objective: Objective, *, windows: int = 40,
               start: Config | None = None, seed: int = 0) -> tuple[Config | None, Measurement]:
    """Run ``windows`` windows of ``runner.policy.inferences / windows`` inferences each
    under the online descent; returns (where it settled, the whole run's measurement)."""
    window = max(1, runner.policy.inferences // windows)
    policy = replace(runner.policy, inferences=window, min_repeats=1, max_repeats=1, warmup_inferences=0)
    window_runner = TrialRunner(runner.board, runner.workload, policy)
    strategy = make_strategy("ogd", space, seed=seed, start=start)
    result = search(strategy, window_runner, objective, windows)
    parts = [r for s in result.steps for r in s.trial.repeats]
    feasible = [m for m in parts if m.feasible]
    if not feasible:
        failure = parts[0].failure if parts else "no window ran"
        return strategy.best(), Measurement.infeasible(Config(), f"online: {failure}", simulated=runner.simulated)
    total = Measurement(
        config=Config(), simulated=runner.simulated,
        energy_j=sum(m.energy_j for m in feasible), time_s=sum(m.time_s for m in feasible),
        inferences=sum(m.inferences for m in feasible),
        batch_latency_p50_s=max(m.batch_latency_p50_s for m in feasible),
        batch_latency_p95_s=max(m.batch_latency_p95_s for m in feasible),
        residency=merge([(m.time_s, m.residency) for m in feasible]),
        idle_power_w=feasible[0].idle_power_w, repeats=len(feasible),
    )
    return strategy.best(), total


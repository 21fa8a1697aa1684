"""Time to a tuned config (issue 18): what an economical search spends, and how close it lands.

Runs the search a default ``edgetune tune`` runs (bo, ``--repeats 2``, ``--stop-improvement
0.01``, the DVFS reference first) on simulated boards over several seeds, and judges each
held config on the board's noiseless surface. Prints JSON: per case and seed the
exploration (simulated seconds, joules, trials, repeats), why the search stopped, the
held config's regret against the optimum and its payback; per case the medians and how
many seeds met the goal (exploration <= 1800 s, within 2 %, payback <= 3600 s).

Everything here is simulated.

    python benchmarks/economy.py [--seeds 10] [--case sim:jetson-nano:alexnet ...] [--knob emc_freq_hz]
        [--save benchmarks/results/economy.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from tuner.app import explore
from tuner.boards.factory import open_board
from tuner.config import DEFAULT_BATCH_SIZES
from tuner.cost import exploration, payback_s
from tuner.objective import Objective
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import DEFAULT_KNOBS, parse_budget, plan_space, reference_config
from tuner.strategies import make_strategy

CASES = ("sim:jetson-nano:alexnet", "sim:jetson-xavier-nx:resnet18")
GOAL = {"time_s": 1800, "regret": 0.02, "payback_s": 3600}


def one_case(case: str, seeds: int, strategy: str, repeats: int, stop: float, extra: list[str]) -> dict:
    """Every seed of one board x workload."""
    board_name, workload = case.rsplit(":", 1)
    truth_board = open_board(board_name, seed=0)
    policy = RunPolicy(min_repeats=repeats, max_repeats=2 * repeats)
    knobs: dict = {k: None for k in DEFAULT_KNOBS}
    knobs["batch_size"] = DEFAULT_BATCH_SIZES  # tune's
    knobs.update({k: None for k in extra})
    truth_runner = TrialRunner(truth_board, workload, policy)
    space, _ = plan_space(truth_runner, knobs, DEFAULT_KNOBS)
    objective = Objective.parse("energy")
    truth = {c: objective.cost(truth_board.expected(workload, c, policy.inferences)) for c in space}
    optimum = min(truth.values())
    dvfs = truth_board.expected(workload, reference_config(truth_runner, space), policy.inferences)
    runs = []
    for seed in range(seeds):
        runner = TrialRunner(open_board(board_name, seed=1000 + seed), workload, policy)
        # the sequence tune and the daemon run (tuner.app.explore), without a store
        done = explore(runner, space, objective, lambda seed=seed: make_strategy(strategy, space, seed=seed),
                       parse_budget(None, len(space)), run=None, stop_improvement=stop or None)
        result = done.result
        spent = exploration([done.reference] + [s.trial for s in result.steps])
        held = truth_board.expected(workload, result.best, policy.inferences)
        runs.append({"seed": seed, **spent.to_dict(), "stopped": result.stopped,
                     "regret": round(truth[result.best] / optimum - 1, 5),
                     "payback_s": payback_s(spent, held, dvfs)})
    met = [r["time_s"] <= GOAL["time_s"] and r["regret"] <= GOAL["regret"]
           and r["payback_s"] is not None and r["payback_s"] <= GOAL["payback_s"] for r in runs]
    return {"case": case, "knobs": [k.name for k in space.knobs], "space_size": len(space),
            "median": {key: statistics.median(r[key] or 0 for r in runs)
                       for key in ("time_s", "trials", "repeats", "regret", "payback_s")},
            "within_2pct": sum(r["regret"] <= GOAL["regret"] for r in runs),
            "time_within_goal": sum(r["time_s"] <= GOAL["time_s"] for r in runs),
            "all_goals_met": sum(met), "seeds": seeds, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", help="sim:PROFILE:WORKLOAD (repeatable)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--strategy", default="bo")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--stop-improvement", type=float, default=0.01, help="0: spend the budget, no racing")
    ap.add_argument("--knob", action="append", default=[], help="a knob searched beside CPU, GPU and batch")
    ap.add_argument("--save", type=Path)
    args = ap.parse_args()
    started = time.monotonic()
    doc = {"simulated": True, "goal": GOAL, "strategy": args.strategy, "repeats": args.repeats,
           "stop_improvement": args.stop_improvement, "extra_knobs": args.knob,
           "cases": [one_case(c, args.seeds, args.strategy, args.repeats, args.stop_improvement, args.knob)
                     for c in (args.case or CASES)]}
    doc["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(doc, indent=1)
    print(text)
    if args.save:
        args.save.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Speed of a full analytic sweep on a simulated board (issues 3 and 4: < 10 s).

Nano x AlexNet: 15 CPU x 12 GPU frequencies x batch {8, 16, 32, 64}, each trial
at least 3 repeats of 3,200 simulated inferences, through the product's own
path — TrialRunner, the Sweep strategy, the Search loop and the SQLite store
(the same code `edgetune sweep` runs, without the plots). Prints JSON.
Everything measured here is simulated; only the wall time is real.

    python benchmarks/sim_sweep_speed.py [--profile jetson-nano] [--workload alexnet]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tuner.objective import Objective
from tuner.runner import TrialRunner
from tuner.search import build_space, measure_reference, search
from tuner.sim.board import SimBoard
from tuner.store import Store
from tuner.strategies import make_strategy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="jetson-nano")
    ap.add_argument("--workload", default="alexnet")
    args = ap.parse_args()
    t0 = time.perf_counter()
    runner = TrialRunner(SimBoard(args.profile, seed=0), args.workload)
    space = build_space(runner, {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": (8, 16, 32, 64)})
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "edgetune.sqlite")
        run = store.open_run("sweep", args.profile, args.workload, True, {"bench": True})
        ref = measure_reference(runner, space, run)
        strategy = make_strategy("sweep", space)
        result = search(strategy, runner, Objective(), len(space) + strategy.confirm, run=run, reference=ref)
        store.close()
    wall = time.perf_counter() - t0
    best = result.best_trial
    print(json.dumps({
        "benchmark": "sim_sweep_speed", "simulated": True, "profile": args.profile, "workload": args.workload,
        "configs": len(space), "trials": len(result.steps), "repeats_measured": runner.measured,
        "infeasible": sum(1 for s in result.steps if not s.trial.measurement.feasible),
        "wall_s": round(wall, 3), "target_wall_s": 10.0, "meets_target": wall < 10.0,
        "best": {"config": best.config.to_dict(), "energy_j": round(best.measurement.energy_j, 2),
                 "repeats": best.measurement.repeats} if best else None,
    }, indent=2))


if __name__ == "__main__":
    main()

"""BO and Thompson sampling on a space with an unordered knob: GPU clock x batch x power mode.

The simulated Xavier NX has nine nvpmodel modes; with its GPU clocks and batches 8 and 32
that is 270 configs, and the CPU left to its governor. `edgetune bench --knob power_mode`
would add every CPU clock (6,750 configs), so this script asks tuner.bench for the smaller
space directly. Prints the bench JSON per workload (10 seeds, 10 % budget, default noise):
the share of the space measured to within 2 % and the regret at the budget.

Everything here is simulated.

    python benchmarks/power_mode.py [--workloads resnet18,mobilenet_v2,alexnet] [--seeds 10]
        [--save benchmarks/results/power_mode.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tuner.bench import BenchSpec, run_bench
from tuner.config import BATCH_SIZE, GPU_FREQ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="sim:jetson-xavier-nx")
    ap.add_argument("--workloads", default="resnet18,mobilenet_v2,alexnet")
    ap.add_argument("--strategies", default="bo,thompson")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--save", type=Path)
    args = ap.parse_args()
    results = []
    for workload in args.workloads.split(","):
        spec = BenchSpec(args.board, workload, {GPU_FREQ: None, BATCH_SIZE: (8, 32), "power_mode": None},
                         strategies=tuple(args.strategies.split(",")), seeds=args.seeds)
        doc = run_bench(spec)
        results.append(doc)
        for s in doc["strategies"]:
            print(f"{args.board} {workload} ({doc['space_size']} configs) {s['name']}: to 2 % "
                  f"{s['fraction_to_2pct']['median']}, regret median {s['regret_at_budget']['median']} "
                  f"p90 {s['regret_at_budget']['p90']}", flush=True)
    out = {"simulated": True, "board": args.board, "seeds": args.seeds, "results": results}
    if args.save:
        args.save.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Speed of a full analytic sweep on a simulated board (simulator issue: < 10 s).

Nano x AlexNet: 15 CPU x 12 GPU frequencies x batch {8, 16, 32, 64} x 3 repeats,
each a simulated Measurement of 3,200 inferences with noise. Prints JSON.
Everything measured here is simulated; only the wall time is real.

    python benchmarks/sim_sweep_speed.py [--profile jetson-nano] [--workload alexnet]
"""

from __future__ import annotations

import argparse
import json
import time

from tuner.config import Config
from tuner.sim.board import SimBoard


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="jetson-nano")
    ap.add_argument("--workload", default="alexnet")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    board = SimBoard(args.profile, seed=0)
    batches = (8, 16, 32, 64)
    t0 = time.perf_counter()
    n = infeasible = 0
    best = None
    for fc in board.profile.cpu_khz:
        for fg in board.profile.gpu_hz:
            for bs in batches:
                cfg = Config({"cpu_freq_khz": fc, "gpu_freq_hz": fg, "batch_size": bs})
                for _ in range(args.repeats):
                    m = board.measure(args.workload, cfg)
                    n += 1
                    if not m.feasible:
                        infeasible += 1
                    elif best is None or m.energy_j < best[1]:
                        best = (cfg.to_dict(), m.energy_j)
    wall = time.perf_counter() - t0
    print(json.dumps({
        "benchmark": "sim_sweep_speed", "simulated": True, "profile": args.profile, "workload": args.workload,
        "configs": len(board.profile.cpu_khz) * len(board.profile.gpu_hz) * len(batches),
        "measurements": n, "infeasible": infeasible, "wall_s": round(wall, 3),
        "target_wall_s": 10.0, "meets_target": wall < 10.0,
        "lowest_single_reading": {"config": best[0], "energy_j": round(best[1], 2)} if best else None,
    }, indent=2))


if __name__ == "__main__":
    main()

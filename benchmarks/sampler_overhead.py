"""CPU cost of the power sampler, as a fraction of one core (DESIGN §7: < 0.5 % at 10 Hz).

Runs the real Sampler over the rails of an emulated Jetson tree (the same file
reads as on a board) for a fixed duration per rate, while the main thread
sleeps, and reports process CPU time over wall time, minus an idle baseline
of the same length. Prints JSON. Simulated: the tree is emulated, the reads
and the Python work are real.

    python benchmarks/sampler_overhead.py [--seconds 10] [--profile jetson-orin-nx]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from tuner.boards.jetson import JetsonBoard
from tuner.sampler import Sampler
from tuner.sim.tree import create_tree
from tuner.sysfs import Sysfs


def cpu_fraction(seconds: float, sampler: Sampler | None) -> tuple[float, int]:
    c0, w0 = time.process_time(), time.monotonic()
    if sampler:
        sampler.start()
    time.sleep(seconds)
    samples = 0
    if sampler:
        samples = len(sampler.stop().times)
    return (time.process_time() - c0) / (time.monotonic() - w0), samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--profile", default="jetson-orin-nx", help="hwmon layout (2 files per rail) by default")
    ap.add_argument("--rates", type=float, nargs="+", default=[10.0, 100.0])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        create_tree(args.profile, tmp)
        board = JetsonBoard(Sysfs(tmp))
        source = board.power_source()
        baseline, _ = cpu_fraction(args.seconds, None)
        results = []
        for rate in args.rates:
            frac, n = cpu_fraction(args.seconds, Sampler(source, rate_hz=rate))
            results.append({
                "rate_hz": rate,
                "samples": n,
                "achieved_rate_hz": n / args.seconds,
                "cpu_fraction_of_one_core": max(0.0, frac - baseline),
                "cpu_percent_of_one_core": round(100 * max(0.0, frac - baseline), 4),
            })
    print(json.dumps({
        "benchmark": "sampler_overhead",
        "simulated": True,
        "profile": args.profile,
        "rails": [c.name for c in source.channels],
        "seconds_per_rate": args.seconds,
        "baseline_cpu_fraction": baseline,
        "results": results,
        "target": {"rate_hz": 10.0, "max_cpu_percent_of_one_core": 0.5},
        "meets_target": all(r["cpu_percent_of_one_core"] < 0.5 for r in results if r["rate_hz"] == 10.0),
    }, indent=2))


if __name__ == "__main__":
    main()

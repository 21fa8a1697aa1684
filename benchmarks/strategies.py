"""Search efficiency of every strategy on every simulated target surface (issue 4).

For each board (Nano, Xavier NX, Orin NX) and each reference workload, runs
``edgetune bench`` (CPU x GPU x batch {8,16,32,64}, energy objective, default
noise, 10 % budget) and writes the whole table as JSON, plus a check of the
targets: for bo and thompson, median fraction_to_2pct <= 0.05 and p90
regret <= 0.03; for ogd, median regret <= 0.05; each of ours beats random
and TPE on median fraction_to_2pct. Every number is from simulated boards.

    python benchmarks/strategies.py [--seeds 10] [--out benchmarks/results/strategies.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from tuner.bench import BenchSpec, run_bench

BOARDS = ("jetson-nano", "jetson-xavier-nx", "jetson-orin-nx")
WORKLOADS = ("alexnet", "resnet18", "mobilenet_v2", "yolov4_tiny", "bert_tiny", "distilbert")
KNOBS = {"cpu_freq_khz": None, "gpu_freq_hz": None, "batch_size": (8, 16, 32, 64)}  # each surface's space
OURS = ("bo", "thompson", "ogd")
PEERS = ("random", "tpe")


def _median(row: dict, key: str) -> float:
    v = row[key]["median"]
    return math.inf if v is None else v


def check(doc: dict) -> list[str]:
    """Target misses of one bench document (empty when every target is met)."""
    rows = {r["name"]: r for r in doc["strategies"]}
    misses = []
    for name in ("bo", "thompson"):
        r = rows[name]
        if not _median(r, "fraction_to_2pct") <= 0.05:
            misses.append(f"{name}: median fraction_to_2pct {r['fraction_to_2pct']['median']} > 0.05")
        p90 = r["regret_at_budget"]["p90"]
        if p90 is None or p90 > 0.03:
            misses.append(f"{name}: p90 regret {p90} > 0.03")
    if not _median(rows["ogd"], "regret_at_budget") <= 0.05:
        misses.append(f"ogd: median regret {rows['ogd']['regret_at_budget']['median']} > 0.05")
    for ours in OURS:
        for peer in PEERS:
            mine, theirs = rows[ours]["fraction_to_2pct"]["median"], rows.get(peer, {}).get("fraction_to_2pct", {})
            if peer in rows and not _median(rows[ours], "fraction_to_2pct") < _median(rows[peer], "fraction_to_2pct"):
                misses.append(f"{ours} does not beat {peer} on median fraction_to_2pct "
                              f"({mine} vs {theirs.get('median')})")
    return misses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--boards", nargs="*", default=list(BOARDS))
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    started = time.monotonic()
    results = []
    for board in args.boards:
        for workload in args.workloads:
            t0 = time.monotonic()
            doc = run_bench(BenchSpec(f"sim:{board}", workload, KNOBS, strategies=OURS + PEERS, seeds=args.seeds))
            doc["misses"] = check(doc)
            doc["seconds"] = round(time.monotonic() - t0, 1)
            results.append(doc)
            print(f"{board} {workload}: {doc['seconds']} s, misses: {doc['misses'] or 'none'}", file=sys.stderr)
    out = {"simulated": True, "seeds": args.seeds, "budget_fraction": 0.1, "results": results,
           "all_targets_met": not any(r["misses"] for r in results),
           "seconds": round(time.monotonic() - started, 1)}
    text = json.dumps(out, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""Rebuild a LoudVA recording as a CSV that ``edgetune import`` reads (real, measured by others).

The public repository iloudaros/LoudVA (MIT licence; paper doi 10.1145/3721889.3721925)
holds Triton ``perf_analyzer`` runs of Inception-v3 on a Jetson Nano, a Xavier NX and an
AGX Xavier, one run per setting, per pinned GPU clock and per nvpmodel power mode. The
shared real surface ``../shared/real-surfaces/loudva-nano-inception_v3.csv`` is one of
them; README's "Held-out real recordings" are the others, which this repository does not
ship (they are held out). This script turns a board's measurement folder into the shared
file's columns, so that anyone with a checkout can rebuild them and re-run those rows:

    git clone https://github.com/iloudaros/LoudVA
    git -C LoudVA checkout c2888745befc868b82621d003f9468ee8b0b4029
    M=LoudVA/measurements/archive/Representative
    python benchmarks/loudva.py $M/xavier-nx-00/measurements --board jetson-xavier-nx \\
        --out loudva-xaviernx-inception_v3.csv
    python benchmarks/loudva.py $M/xavier-nx-00/measurements --board jetson-xavier-nx --modes \\
        --out loudva-xaviernx-modes-inception_v3.csv
    python benchmarks/loudva.py $M/agx-xavier-00/measurements --board jetson-agx-xavier \\
        --out loudva-agxxavier-inception_v3.csv
    python benchmarks/strategies.py --real loudva-xaviernx-inception_v3.csv --workloads inception_v3 --seeds 10

The folder's layout: per GPU clock F (Hz), ``performance/freqs/performance_measurements_freq_F.csv``
(perf_analyzer's CSV: one row per concurrency, times in microseconds) and
``power/freqs/power_measurement_stats_freq_F.csv`` (one ``Mean: <mW>`` line per row of
the former, in the same order: the mean of tegrastats' power samples over that run);
per mode M the same pair under ``performance/modes`` and ``power/modes``. A row of the
output is one perf_analyzer row joined with its power line:

- ``throughput_inf_per_s``: Inferences/Second; ``power_w``: the mean, in W;
- ``energy_per_inference_j`` = power / throughput (the steady state's energy per image);
- ``latency_s``: the server's time per request (queue + compute input + infer + output);
  ``latency_client_p50_s`` and ``_p99_s``: perf_analyzer's client percentiles;
- ``src_energy_j_power_x_latency``: power x latency, the authors' own energy column.
- ``retries``: how often perf_analyzer re-ran that setting before its numbers held still, from
  the folder's ``retried_freqs.txt`` (lines ``(F, concurrency) N``; 0 where it is absent or
  silent; runs given up after 100 tries have no row at all);
- ``batch_size`` is left empty: Triton batched dynamically (the shared file copies ``concurrency``
  there, which ``edgetune import`` reads as the same dimension).

Values read are copied as written (decimal shifts only); a folder whose power lines do not
match its runs one for one is refused rather than guessed at.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from decimal import Decimal
from pathlib import Path

HEADER = ("board", "device_id", "workload", "nvpmodel_mode", "cpu_freq_khz", "gpu_freq_hz",
          "gpu_freq_frac_of_max", "emc_freq_hz", "batch_size", "concurrency", "throughput_inf_per_s",
          "latency_s", "latency_client_p50_s", "latency_client_p99_s", "power_w", "power_scope",
          "energy_per_inference_j", "src_energy_j_power_x_latency", "retries")
WORKLOAD = "inception_v3_tf_fp32_triton_dynbatch"
POWER_SCOPE = "tegrastats power (mean of the run's samples, mW)"
SERVER_TIME = ("Server Queue", "Server Compute Input", "Server Compute Infer", "Server Compute Output")
MEAN = re.compile(r"^Mean:\s*([0-9.]+)\s*$")
RETRIED = re.compile(r"^\((\d+),\s*(\d+)\)\s+(\d+)")


class LoudvaError(Exception):
    """A folder this script cannot read as LoudVA measurements: one line for the user."""


def _shift(text: str, places: int) -> Decimal:
    """``text`` divided by 10**places, exactly (microseconds to seconds, mW to W)."""
    return Decimal(text.strip()).scaleb(-places)


def _lines(path: Path, pattern: re.Pattern, form: str) -> list[re.Match]:
    """Every non-blank line of ``path`` matched by ``pattern``; a line that is not is an error."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            match = pattern.match(line.strip())
            if match is None:
                raise LoudvaError(f"{path}:{n}: expected '{form}', found {line.strip()!r}")
            out.append(match)
    return out


def _runs(perf: Path, power: Path) -> list[dict[str, str]]:
    """One perf_analyzer file joined row by row with its power means."""
    with perf.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    means = [m.group(1) for m in _lines(power, MEAN, "Mean: <mW>")]
    if len(rows) != len(means):
        raise LoudvaError(f"{perf.name} has {len(rows)} runs but {power.name} {len(means)} power means; "
                          "they are joined one for one, so this folder cannot be read")
    missing = [c for c in ("Concurrency", "Inferences/Second", "p50 latency", "p99 latency", *SERVER_TIME)
               if rows and c not in rows[0]]
    if missing:
        raise LoudvaError(f"{perf} lacks perf_analyzer's column(s) {', '.join(missing)}")
    return [{**row, "_power_mw": mw} for row, mw in zip(rows, means)]


def _retries(folder: Path) -> dict[tuple[str, str], str]:
    """(GPU clock, concurrency) -> perf_analyzer's retries, from ``retried_freqs.txt`` where present."""
    path = folder / "retried_freqs.txt"
    if not path.exists():
        return {}
    return {(m.group(1), m.group(2)): m.group(3) for m in _lines(path, RETRIED, "(<clock>, <concurrency>) <retries>")}


def rows_of(folder: Path, board: str, *, modes: bool = False) -> list[dict[str, str]]:
    """The output rows of one board's measurement folder (per GPU clock, or per mode)."""
    kind, stem = ("modes", "mode") if modes else ("freqs", "freq")
    perf_dir, power_dir = folder / "performance" / kind, folder / "power" / kind
    if not perf_dir.is_dir():
        raise LoudvaError(f"{perf_dir} is not a folder: give a board's measurements folder "
                          "(…/Representative/<device>/measurements)")
    pattern = re.compile(rf"^performance_measurements_{stem}_(\d+)\.csv$")
    settings = sorted(int(m.group(1)) for p in perf_dir.iterdir() if (m := pattern.match(p.name)))
    if not settings:
        raise LoudvaError(f"{perf_dir} holds no performance_measurements_{stem}_*.csv")
    top = max(settings)
    device = folder.parent.name
    retries = {} if modes else _retries(folder)
    out = []
    for value in settings:
        power = power_dir / f"power_measurement_stats_{stem}_{value}.csv"
        if not power.exists():
            raise LoudvaError(f"{power} is missing: every run needs its power means")
        for run in _runs(perf_dir / f"performance_measurements_{stem}_{value}.csv", power):
            ips, concurrency = run["Inferences/Second"].strip(), run["Concurrency"].strip()
            throughput, watts = Decimal(ips), _shift(run["_power_mw"], 3)
            latency = _shift(str(sum(int(run[c]) for c in SERVER_TIME)), 6)
            out.append({
                "board": board, "device_id": device, "workload": WORKLOAD,
                "nvpmodel_mode": str(value) if modes else "", "cpu_freq_khz": "",
                "gpu_freq_hz": "" if modes else str(value),
                "gpu_freq_frac_of_max": "" if modes else f"{value / top:.6f}",
                "emc_freq_hz": "", "batch_size": "", "concurrency": concurrency,
                "throughput_inf_per_s": ips, "latency_s": format(latency, "f"),
                "latency_client_p50_s": format(_shift(run["p50 latency"], 6), "f"),
                "latency_client_p99_s": format(_shift(run["p99 latency"], 6), "f"),
                "power_w": format(watts, "f"), "power_scope": POWER_SCOPE,
                "energy_per_inference_j": f"{float(watts / throughput):.6g}" if throughput > 0 else "",
                "src_energy_j_power_x_latency": f"{float(watts * latency):.6g}",
                "retries": retries.get((str(value), concurrency), "0"),
            })
    if not any(r["energy_per_inference_j"] for r in out):
        raise LoudvaError(f"{perf_dir} holds no run with a throughput: nothing to rebuild")
    return out


def write(rows: list[dict[str, str]], out: Path) -> None:
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    example = __doc__.split("\n\n")[1:3]  # what the script is for, and the commands that rebuild every file
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(example),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a board's measurements folder in a LoudVA checkout "
                        "(measurements/archive/Representative/<device>/measurements)")
    parser.add_argument("--board", required=True, help="edgetune's board name (jetson-nano, jetson-xavier-nx, "
                        "jetson-agx-xavier)")
    parser.add_argument("--modes", action="store_true", help="the runs per nvpmodel mode, not per GPU clock")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (then: edgetune import OUT ...)")
    args = parser.parse_args(argv)
    try:
        rows = rows_of(args.folder, args.board, modes=args.modes)
    except (LoudvaError, OSError, ValueError, ArithmeticError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write(rows, args.out)
    best = min((r for r in rows if r["energy_per_inference_j"]), key=lambda r: float(r["energy_per_inference_j"]))
    knob = "nvpmodel_mode" if args.modes else "gpu_freq_hz"
    print(f"{args.out}: {len(rows)} runs, {len({r[knob] for r in rows})} {knob} values; lowest energy per "
          f"inference {best['energy_per_inference_j']} J at {knob} {best[knob]}, concurrency {best['concurrency']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

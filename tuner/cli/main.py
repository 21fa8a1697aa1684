"""``edgetune``: the command-line entry point.

Every command is a thin shell over the core flows. Errors a user can fix
(:class:`~tuner.errors.EdgetuneError`) print one line and exit 1; usage errors
exit 2 (Click's convention). Imports of anything beyond the standard library,
Typer and Rich stay inside command bodies so that ``edgetune status`` starts
fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from tuner.errors import EdgetuneError

app = typer.Typer(
    name="edgetune",
    help="Find and hold the most energy-efficient clocks and batch size for DNN inference on NVIDIA Jetson boards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)
sim_app = typer.Typer(help="Simulated boards: emulated sysfs trees for testing without a Jetson.",
                      no_args_is_help=True)
app.add_typer(sim_app, name="sim")

RootOpt = typer.Option(Path("/"), "--root", help="Filesystem root holding /sys, /proc and /etc: '/' on a "
                       "real board, or a directory made by `edgetune sim create`.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


@app.command()
def probe(
    root: Path = RootOpt,
    board: str = typer.Option("auto", "--board", help="auto, jetson, linux or nvml[:INDEX]."),
    as_json: bool = JsonOpt,
) -> None:
    """Show the board: identity, clocks and governors, power rails, temperatures.

    Reads only; changes nothing. Use it first on a new board, and to check an
    emulated tree made by `edgetune sim create`."""
    from tuner.boards.factory import open_board

    doc = open_board(board, root).describe()
    if as_json:
        emit_json(doc)
        return
    from tuner.cli.render import render_probe

    render_probe(doc)


@sim_app.command("create")
def sim_create(
    board: str = typer.Option(..., "--board", help="Profile: jetson-nano, jetson-tx2, jetson-xavier-nx, "
                              "jetson-agx-xavier, jetson-orin-nano, jetson-orin-nx, jetson-agx-orin."),
    root: Path = typer.Option(..., "--root", help="Empty directory to write the tree into."),
    jetpack: Optional[str] = typer.Option(None, "--jetpack", help="JetPack major release to emulate "
                                          "(4, 5 or 6 where the board had it); default: the profile's."),
) -> None:
    """Write an emulated Jetson sysfs tree (real paths, units, frequency tables, rails)
    that every other command can use through --root."""
    from tuner.sim.tree import create_tree

    path = create_tree(board, root, jetpack)
    typer.echo(f"emulated {board.removeprefix('sim:')} written to {path} (simulated: readings are not hardware)")


@sim_app.command("run")
def sim_run(
    root: Path = typer.Option(..., "--root", help="Emulated tree made by `edgetune sim create`."),
    rate: float = typer.Option(20.0, "--rate", help="Simulator updates per second."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many seconds "
                                             "(default: until SIGTERM or Ctrl-C)."),
    seed: int = typer.Option(0, "--seed", help="Seed for governor residency draws."),
) -> None:
    """Animate an emulated tree: clocks follow what was written, rails and
    temperatures follow the simulated workload (live mode). Readings are simulated."""
    import signal
    import threading

    from tuner.boards.factory import check_root
    from tuner.sim.live import LiveSimulator

    if rate <= 0:
        raise EdgetuneError("--rate must be positive")
    sim = LiveSimulator(check_root(root), rate_hz=rate, seed=seed)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    sim.start()
    typer.echo(f"live simulator running on {root} at {rate:g} Hz ({sim.model.profile.name}, simulated)")
    done.wait(duration)
    sim.stop()
    typer.echo(f"stopped after {sim.ticks} ticks")


@sim_app.command("validate")
def sim_validate(as_json: bool = JsonOpt) -> None:
    """Check the simulator against every published calibration target (Dutt 2023).

    Prints each target, the model's value, the tolerance and pass/fail; exits 1
    if any target is missed. Boards without published measurements (TX2, AGX
    Xavier, Orin Nano, AGX Orin) are extrapolated and have no targets."""
    from tuner.sim.model import device_model
    from tuner.sim.targets import CALIBRATED, evaluate

    results = evaluate({b: device_model(b) for b in CALIBRATED})
    all_ok = all(r.ok for r in results)
    if as_json:
        emit_json({"simulated": True, "targets": [r.to_dict() for r in results], "all_ok": all_ok})
    else:
        from tuner.cli.render import render_validation

        render_validation(results, all_ok)
    if not all_ok:
        raise typer.Exit(1)


@app.command()
def apply(
    root: Path = RootOpt,
    board: str = typer.Option("auto", "--board", help="auto, jetson, linux or nvml[:INDEX]."),
    cpu_freq: Optional[str] = typer.Option(None, "--cpu-freq", help="Pin every CPU cluster, e.g. 1428MHz "
                                           "(a bare number is kHz, as in scaling_available_frequencies)."),
    gpu_freq: Optional[str] = typer.Option(None, "--gpu-freq", help="Pin the GPU, e.g. 614.4MHz "
                                           "(a bare number is Hz, as in available_frequencies)."),
    emc_freq: Optional[str] = typer.Option(None, "--emc-freq", help="Pin the memory clock (needs debugfs)."),
    cpu_cores: Optional[int] = typer.Option(None, "--cpu-cores", help="Number of online CPU cores."),
    cpu_governor: Optional[str] = typer.Option(None, "--cpu-governor", help="cpufreq governor for every policy."),
    gpu_governor: Optional[str] = typer.Option(None, "--gpu-governor", help="GPU devfreq governor."),
    allow_clock_control: bool = typer.Option(False, "--allow-clock-control",
                                             help="Allow locking clocks on an NVIDIA dGPU (NVML)."),
) -> None:
    """Set clocks, cores or governors now and hold them until `edgetune restore`.

    Every value is checked against the device's own lists before anything is
    written; originals are journalled first, so `edgetune restore` undoes it."""
    from tuner.boards.factory import open_board
    from tuner.config import (CPU_CORES, CPU_FREQ, CPU_GOVERNOR, EMC_FREQ, GPU_FREQ, GPU_GOVERNOR,
                              Config)
    from tuner.units import parse_freq

    values: dict[str, Any] = {}
    if cpu_freq is not None:
        values[CPU_FREQ] = parse_freq(cpu_freq, "kHz")
    if gpu_freq is not None:
        values[GPU_FREQ] = parse_freq(gpu_freq, "Hz")
    if emc_freq is not None:
        values[EMC_FREQ] = parse_freq(emc_freq, "Hz")
    if cpu_cores is not None:
        values[CPU_CORES] = cpu_cores
    if cpu_governor is not None:
        values[CPU_GOVERNOR] = cpu_governor
    if gpu_governor is not None:
        values[GPU_GOVERNOR] = gpu_governor
    if not values:
        raise EdgetuneError("nothing to apply: give at least one of --cpu-freq, --gpu-freq, --emc-freq, "
                            "--cpu-cores, --cpu-governor, --gpu-governor")
    b = open_board(board, root, allow_clock_control=allow_clock_control)
    config = Config(values)
    b.apply(config)
    typer.echo(f"applied {config.to_json()}; undo with: edgetune restore --root {root}")


@app.command()
def restore(root: Path = RootOpt) -> None:
    """Write back every clock and governor value edgetune changed, from its journal.

    Use after a crash or `kill -9`; the daemon does this itself when it starts."""
    from tuner.boards.factory import check_root
    from tuner.sysfs import Sysfs

    fs = Sysfs(check_root(root))
    entries = fs.journal.entries()
    if not entries:
        typer.echo(f"nothing to restore: no journal at {fs.journal.path}")
        return
    failures = fs.restore_journal()
    if failures:
        raise EdgetuneError(f"restored {len(entries) - len(failures)} of {len(entries)} values; "
                            f"still changed: {'; '.join(failures)}")
    typer.echo(f"restored {len(entries)} values from {fs.journal.path}")


def main() -> None:
    try:
        app()
    except EdgetuneError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

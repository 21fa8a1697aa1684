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
    """Show what edgetune sees on this board: identity, CPU and GPU clocks and governors,
    power rails with their current power, and temperatures. Changes nothing."""
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

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
from typing import Any, List, Optional

import typer

from tuner.config import DEFAULT_BATCH_SIZES
from tuner.daemon.protocol import DEFAULT_CONFIG, DEFAULT_SOCKET
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
workloads_app = typer.Typer(help="Inference workloads edgetune can run and tune.", no_args_is_help=True)
app.add_typer(workloads_app, name="workloads")

RootOpt = typer.Option(Path("/"), "--root", help="Filesystem root holding /sys, /proc and /etc: '/' on a "
                       "real board, or a directory made by `edgetune sim create`.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")
SocketOpt = typer.Option(Path(DEFAULT_SOCKET), "--socket", envvar="EDGETUNE_SOCKET",
                         help="The daemon's control socket (daemon.socket in its config).")


def parse_options(items: list[str]) -> dict[str, str]:
    """``--option KEY=VALUE`` pairs for a workload's factory, values as text (the factory types them);
    the rules are :mod:`tuner.cli.params`'s."""
    from tuner.cli.params import parse_assignments

    return parse_assignments(items, "--option")


def workload_options(items: Optional[List[str]], model_file: Optional[str], images: Optional[str]) -> dict[str, str]:
    """``-o KEY=VALUE`` pairs plus ``--model-file`` and ``--images``, which are shorthands for two of them."""
    out = parse_options(items or [])
    for key, value in (("model_file", model_file), ("images", images)):
        if value is not None:
            out[key] = value
    return out


def emit_json(data: Any) -> None:
    """Print ``data`` as the stable, indented JSON every ``--json`` prints."""
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


@app.command()
def doctor(
    root: Path = RootOpt,
    socket: Path = SocketOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check a board before tuning it: privileges, CPU/GPU/EMC clock control, power
    rails, the nvpmodel power mode, services that change clocks (jtop, jetson_clocks),
    the systemd unit and the daemon socket.

    One line per check, with the fix when it fails. Reads only. Exits 1 when a check
    that tuning needs fails (board, privileges, cpufreq, gpu, rails); the others are
    advice. `--json` gives {"ok", "checks": [{"name", "ok", "detail", "fix", "needed"}]}."""
    from tuner.boards.factory import check_root
    from tuner.doctor import format_report, report, run_checks

    checks = run_checks(check_root(root), socket)
    doc = report(checks)
    if as_json:
        emit_json(doc)
    else:
        sys.stdout.write(format_report(checks))
    if not doc["ok"]:
        raise typer.Exit(1)


@sim_app.command("create")
def sim_create(
    board: str = typer.Option(..., "--board", help="Profile: jetson-nano, jetson-nano-2gb, jetson-tx2, "
                              "jetson-xavier-nx, jetson-agx-xavier, jetson-orin-nano, jetson-orin-nx, "
                              "jetson-agx-orin, jetson-agx-thor."),
    root: Path = typer.Option(..., "--root", help="Empty directory to write the tree into."),
    jetpack: Optional[str] = typer.Option(None, "--jetpack", help="JetPack release to emulate (4, 5, 6, "
                                          "6.2 with the Orin Super modes, 7, where the board had it); "
                                          "default: the profile's."),
) -> None:
    """Write an emulated Jetson sysfs tree (real paths, units, frequency tables, rails)
    that every other command can use through --root."""
    from tuner.sim.tree import create_tree

    path = create_tree(board, root, jetpack)
    name = board[len("sim:"):] if board.startswith("sim:") else board
    typer.echo(f"emulated {name} written to {path} (simulated: readings are not hardware)")


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
    all_ok = all(r.ok for r in results if r.gated)
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


BoardOpt = typer.Option("auto", "--board", help="auto (a Jetson at --root), jetson, linux, sim:PROFILE "
                        "(e.g. sim:jetson-nano, analytic simulation) or replay:RUN_DIR (a recorded sweep).")
WorkloadOpt = typer.Option(..., "--workload", "-w", help="Workload to tune; on sim: boards and emulated trees one of "
                           "alexnet, resnet18, mobilenet_v2, yolov4_tiny, bert_tiny, distilbert.")
BatchOpt = typer.Option(None, "--batch-sizes", help="Batch sizes to search, comma-separated (default 8,16,32,64).")
CpuFreqsOpt = typer.Option(None, "--cpu-freqs", help="Only these CPU frequencies, e.g. 921.6MHz,1428MHz "
                           "(default: every step the device lists).")
GpuFreqsOpt = typer.Option(None, "--gpu-freqs", help="Only these GPU frequencies, e.g. 614.4MHz,921.6MHz "
                           "(default: every step the device lists).")
ObjectiveOpt = typer.Option("energy", "--objective", help="energy (per inference), time, edp, ed2p, power, or "
                            "weighted:W = W*E/E_dvfs + (1-W)*T/T_dvfs.")
SloOpt = typer.Option(None, "--latency-slo", help="Constraint: p95 batch latency at most this, e.g. 50ms.")
ThroughputOpt = typer.Option(None, "--min-throughput", help="Constraint: at least this many inferences/s.")
PowerCapOpt = typer.Option(None, "--power-cap", help="Constraint: average board power at most this many watts.")
InferencesOpt = typer.Option(3200, "--inferences", help="Inferences per repeat (fixed work; 3,200 as in the "
                             "reference study).")
RepeatsOpt = typer.Option(3, "--repeats", help="Repeats per config; more are run (up to twice as many) while they "
                          "disagree by more than 5 %.")
TuneRepeatsOpt = typer.Option(2, "--repeats", help="Repeats per config, until they agree within 5 % (up to twice "
                              "as many). A config whose first repeat is already worse than the best so far beyond "
                              "noise gets no more (racing), unless --stop-improvement is 0.")
StopOpt = typer.Option(0.01, "--stop-improvement", help="Stop before the budget once no config has a fair chance "
                       "of beating the best found by more than this share (bo, thompson; ogd once its descent "
                       "settles). 0: spend the whole budget, every config repeated.")
TimeoutOpt = typer.Option(None, "--timeout", help="A repeat that runs longer than this is infeasible, e.g. 30s.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the strategy and of the simulated noise.")
ModelFileOpt = typer.Option(None, "--model-file", help="Model file for workloads that take one (torchscript, "
                            "tflite, onnx); the same as -o model_file=PATH.")
ImagesOpt = typer.Option(None, "--images", help="Directory of images for vision workloads (decoded on the CPU per "
                         "batch); the same as -o images=DIR.")
NoiseOpt = typer.Option(None, "--noise", help="sim: boards: relative SD of one repeat's energy and time, e.g. "
                        "0.05 (real boards' single runs differ by 5-15 %). Default: the reference study's "
                        "~1 % time, ~1.5 % power.")
NoiseTailsOpt = typer.Option(False, "--noise-tails", help="With --noise: heavy-tailed (Student-t) repeats, "
                             "now and then one far off.")
NoiseDriftOpt = typer.Option(False, "--noise-drift", help="With --noise: the surface drifts slowly (temperature, "
                             "governor state) over about 20 repeats.")
OutOpt = typer.Option(None, "--out", help="Run directory (store, trials.csv, summary.json, plots). The same "
                      "command on the same directory resumes and measures nothing twice. Default: under the "
                      "state directory.")
TimeScaleOpt = typer.Option(1.0, "--sim-time-scale", help="Emulated trees only: simulated batches run this many "
                            "times faster than the model says (times and energies shrink alike, comparisons hold).")
KnobOpt = typer.Option(None, "--knob", "-k", help="Also search this workload knob: NAME (its whole domain) or "
                       "NAME=v1,v2, repeatable, e.g. --knob concurrency=1,2,4 --knob graph (values that contain "
                       "commas are separated by ';': placement=cuda,cpu;cpu,cuda).")
WorkloadOptionOpt = typer.Option(None, "--option", "-o", help="Workload option KEY=VALUE, repeatable (e.g. "
                                 "-o command='python3 app.py' for external, -o model=mobilenet_v2 for cme).")
StoreOpt = typer.Option(None, "--store", envvar="EDGETUNE_STORE", help="Where runs and trials are stored: "
                        "sqlite:///PATH or postgresql://USER@HOST/DB (a fleet's shared store: a tune starts from what "
                        "identical boards measured there). Default: edgetune.sqlite in the run directory.")


@app.command()
def sweep(
    workload: str = WorkloadOpt,
    board: str = BoardOpt,
    root: Path = RootOpt,
    batch_sizes: Optional[str] = BatchOpt,
    cpu_freqs: Optional[str] = CpuFreqsOpt,
    gpu_freqs: Optional[str] = GpuFreqsOpt,
    knob: Optional[List[str]] = KnobOpt,
    objective: str = ObjectiveOpt,
    latency_slo: Optional[str] = SloOpt,
    min_throughput: Optional[float] = ThroughputOpt,
    power_cap: Optional[float] = PowerCapOpt,
    inferences: int = InferencesOpt,
    repeats: int = RepeatsOpt,
    timeout: Optional[str] = TimeoutOpt,
    seed: int = SeedOpt,
    noise: Optional[float] = NoiseOpt,
    noise_tails: bool = NoiseTailsOpt,
    noise_drift: bool = NoiseDriftOpt,
    out: Optional[Path] = OutOpt,
    store: Optional[str] = StoreOpt,
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the heatmap and 3-D surface PNGs."),
    time_scale: float = TimeScaleOpt,
    option: Optional[List[str]] = WorkloadOptionOpt,
    model_file: Optional[str] = ModelFileOpt,
    images: Optional[str] = ImagesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Measure every config (CPU x GPU frequency x batch size, where offered): the energy topology map.

    Writes the run directory (trials.csv, summary.json, per-batch heatmap and
    3-D surface PNGs with the minimum and the DVFS level marked) and prints the
    minimum, its saving over DVFS and its latency cost. Interrupted? Run the
    same command again: it resumes. The board is restored afterwards."""
    from tuner.cli.searching import (make_knobs, make_noise, make_objective, make_policy, render_summary,
                                     run_search_command)

    knobs, optional = make_knobs(batch_sizes, cpu_freqs, gpu_freqs, DEFAULT_BATCH_SIZES, knob)
    doc = run_search_command(
        kind="sweep", strategy="sweep", budget=None, board=board, root=root, workload=workload,
        knobs=knobs, optional=optional,
        objective=make_objective(objective, latency_slo, min_throughput, power_cap),
        policy=make_policy(inferences, repeats, None, timeout), out=out, seed=seed, plots=plots,
        time_scale=time_scale, options=workload_options(option, model_file, images),
        noise=make_noise(noise, noise_tails, noise_drift), store=store)
    emit_json(doc) if as_json else render_summary(doc)


@app.command()
def tune(
    workload: str = WorkloadOpt,
    strategy: str = typer.Option("bo", "--strategy", "-s", help="bo (Bayesian optimisation), thompson, ogd "
                                 "(online gradient descent), random, tpe (needs optuna) or sweep."),
    budget: Optional[str] = typer.Option(None, "--budget", "-n", help="Trials to spend: a count (40) or a share "
                                         "of the space (10%). Default 10%."),
    apply_best: bool = typer.Option(False, "--apply", help="Hold the best config afterwards (journalled; undo with "
                                    "`edgetune restore`)."),
    board: str = BoardOpt,
    root: Path = RootOpt,
    batch_sizes: Optional[str] = BatchOpt,
    cpu_freqs: Optional[str] = CpuFreqsOpt,
    gpu_freqs: Optional[str] = GpuFreqsOpt,
    knob: Optional[List[str]] = KnobOpt,
    objective: str = ObjectiveOpt,
    latency_slo: Optional[str] = SloOpt,
    min_throughput: Optional[float] = ThroughputOpt,
    power_cap: Optional[float] = PowerCapOpt,
    inferences: int = InferencesOpt,
    repeats: int = TuneRepeatsOpt,
    stop_improvement: float = StopOpt,
    timeout: Optional[str] = TimeoutOpt,
    seed: int = SeedOpt,
    noise: Optional[float] = NoiseOpt,
    noise_tails: bool = NoiseTailsOpt,
    noise_drift: bool = NoiseDriftOpt,
    out: Optional[Path] = OutOpt,
    store: Optional[str] = StoreOpt,
    time_scale: float = TimeScaleOpt,
    option: Optional[List[str]] = WorkloadOptionOpt,
    model_file: Optional[str] = ModelFileOpt,
    images: Optional[str] = ImagesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Search for the best config with a strategy and a budget, and print it with its measured cost.

    The best config is recommended from repeated measurements (the model's
    estimate for bo/thompson), never from one lucky reading. With --apply it is
    held afterwards; otherwise the board is restored.

    On a board every trial costs minutes and joules, so a tune is economical by
    default: it stops before the budget once further trials are unlikely to gain
    more than --stop-improvement, and a config clearly worse than the best so far
    gets one repeat. The JSON's `exploration` and `payback_s` say what it cost
    and when the saving repays it; `stopped` says why it ended."""
    from tuner.cli.searching import (make_knobs, make_noise, make_objective, make_policy, parse_stop_improvement,
                                     render_summary, run_search_command)

    knobs, optional = make_knobs(batch_sizes, cpu_freqs, gpu_freqs, DEFAULT_BATCH_SIZES, knob)
    doc = run_search_command(
        kind="tune", strategy=strategy, budget=budget, board=board, root=root, workload=workload,
        knobs=knobs, optional=optional,
        objective=make_objective(objective, latency_slo, min_throughput, power_cap),
        policy=make_policy(inferences, repeats, None, timeout), out=out, seed=seed, apply_best=apply_best,
        plots=False, time_scale=time_scale, options=workload_options(option, model_file, images),
        noise=make_noise(noise, noise_tails, noise_drift), store=store,
        stop_improvement=parse_stop_improvement(stop_improvement))
    emit_json(doc) if as_json else render_summary(doc)


@app.command()
def compare(
    workload: str = WorkloadOpt,
    board: str = BoardOpt,
    root: Path = RootOpt,
    governors: Optional[str] = typer.Option(None, "--governors", help="Kernel governor pairs CPU/GPU to compare, "
                                            "comma-separated ('-' = the board's default side), e.g. "
                                            "performance/performance,powersave/-. Default: DVFS, then every other "
                                            "CPU governor and every other GPU governor alone."),
    tuned: Optional[Path] = typer.Option(None, "--tuned", help="Run directory of a `tune` or `sweep` whose best "
                                         "config is the tuned row."),
    config: Optional[str] = typer.Option(None, "--config", help="The tuned row's config instead: JSON or "
                                         "cpu_freq_khz=921600,gpu_freq_hz=614400000."),
    rate: Optional[float] = typer.Option(None, "--rate", help="Rate-driven: the application asks for this many "
                                         "inferences per second; rows compare average power at equal service and "
                                         "a config that cannot keep up is infeasible."),
    online: bool = typer.Option(False, "--online", help="Add a row for the online governor (gradient descent "
                                "moving the clocks while the workload runs, exploration included)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Batch size every governor runs at (16 as in the "
                                   "reference study)."),
    strategy: str = typer.Option("bo", "--strategy", help="Strategy of the tune run when no --tuned/--config."),
    budget: Optional[str] = typer.Option(None, "--budget", help="Budget of that tune (count or share; "
                                         "default 10%)."),
    inferences: int = InferencesOpt,
    repeats: int = RepeatsOpt,
    seed: int = SeedOpt,
    noise: Optional[float] = NoiseOpt,
    noise_tails: bool = NoiseTailsOpt,
    noise_drift: bool = NoiseDriftOpt,
    out: Optional[Path] = OutOpt,
    store: Optional[str] = StoreOpt,
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the bar chart and residency histograms."),
    time_scale: float = TimeScaleOpt,
    option: Optional[List[str]] = WorkloadOptionOpt,
    model_file: Optional[str] = ModelFileOpt,
    images: Optional[str] = ImagesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Measure the workload under the kernel's governors and under a tuned config: the saving over DVFS.

    Every row repeats until its repeats agree, and reports energy, time,
    average power, energy per inference, saving and latency cost vs DVFS, and
    the CPU/GPU frequency residency. Without --tuned or --config a tune runs
    first. Writes compare.json, compare.png and residency.png to the run
    directory; the board is restored afterwards."""
    from tuner.cli.comparing import render_compare, run_compare_command
    from tuner.cli.searching import make_noise, make_policy

    doc = run_compare_command(board=board, root=root, workload=workload, governors=governors, tuned_dir=tuned,
                              config_text=config, rate=rate, online=online, batch_size=batch_size,
                              strategy=strategy, budget=budget, policy=make_policy(inferences, repeats, None, None),
                              out=out, seed=seed, plots=plots, time_scale=time_scale,
                              options=workload_options(option, model_file, images),
                              noise=make_noise(noise, noise_tails, noise_drift), store=store)
    emit_json(doc) if as_json else render_compare(doc)


@app.command()
def bench(
    board: str = typer.Option(..., "--board", help="sim:PROFILE or replay:RUN_DIR (a sweep recorded with "
                              "`edgetune sweep --out`, on a real board or not)."),
    workload: str = WorkloadOpt,
    strategies: str = typer.Option("bo,thompson,ogd,random,tpe", "--strategies", help="Comma-separated "
                                   "strategies to compare (tpe needs optuna)."),
    seeds: int = typer.Option(10, "--seeds", help="Independent runs per strategy (noise and strategy seeds)."),
    budget: float = typer.Option(0.1, "--budget", help="Budget as a share of the space for regret_at_budget."),
    horizon: float = typer.Option(0.3, "--horizon", help="Give up on reaching 2 % after this share of the space."),
    batch_sizes: Optional[str] = BatchOpt,
    cpu_freqs: Optional[str] = CpuFreqsOpt,
    gpu_freqs: Optional[str] = GpuFreqsOpt,
    knob: Optional[List[str]] = KnobOpt,
    objective: str = ObjectiveOpt,
    latency_slo: Optional[str] = SloOpt,
    repeats: int = RepeatsOpt,
    noise: Optional[float] = NoiseOpt,
    noise_tails: bool = NoiseTailsOpt,
    noise_drift: bool = NoiseDriftOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Compare strategies on one surface over many seeds, against the true optimum of the full sweep.

    Reports, median and 90th percentile over seeds, the share of the space a
    strategy measures before its recommendation is within 2 % of the optimum,
    and its regret after the budget. Re-measurements count as trials. On
    replay:RUN_DIR the space is every knob the recording varies (a sweep's,
    or measurements brought in with `edgetune import`)."""
    from tuner.bench import BenchSpec, run_bench
    from tuner.cli.searching import Progress, make_knobs, make_noise, make_objective, make_policy, render_bench
    from tuner.units import parse_list

    if not (board.startswith("sim:") or board.startswith("replay:")):
        raise EdgetuneError("bench needs a board it can replay many times: --board sim:PROFILE or "
                            "--board replay:RUN_DIR")
    names = parse_list(strategies, str, "--strategies") or ()
    from tuner.strategies import strategy_class

    for name in names:
        strategy_class(name)
    # on a replay the defaults give way to what the recording varies (tuner.search.plan_space)
    knobs, optional = make_knobs(batch_sizes, cpu_freqs, gpu_freqs, DEFAULT_BATCH_SIZES, knob)
    spec = BenchSpec(board, workload, knobs, tuple(names), seeds, budget, horizon,
                     make_objective(objective, latency_slo, None, None), make_policy(3200, repeats, None, None),
                     optional, make_noise(noise, noise_tails, noise_drift))
    with Progress("bench", len(names) * seeds) as bar:
        doc = run_bench(spec, progress=lambda name, seed, total: bar.advance(description=f"bench {name}"))
    emit_json(doc) if as_json else render_bench(doc)


@app.command("import")
def import_(
    csv_file: Path = typer.Argument(..., metavar="CSV", help="Measurements taken elsewhere: one row per "
                                    "setting (rows with the same setting are repeats)."),
    out: Path = typer.Option(..., "--out", help="Run directory to write (trials.csv, summary.json, the store and "
                             "a copy of the CSV); replay it with --board replay:DIR."),
    workload: Optional[str] = typer.Option(None, "--workload", "-w", help="Workload name to record (default: the "
                                           "CSV's workload column, else the file name)."),
    board: Optional[str] = typer.Option(None, "--board", help="Board it was measured on (default: the CSV's board "
                                        "column)."),
    map_: Optional[List[str]] = typer.Option(None, "--map", help="COLUMN=KNOB: read this column as a knob (or "
                                             "COLUMN=FIELD as a result: power_w, throughput_ips, "
                                             "energy_per_inference_j, latency_p95_s, ...; COLUMN=- to leave it "
                                             "out), repeatable."),
    simulated: bool = typer.Option(False, "--simulated", help="The numbers are simulated, not measured (default: "
                                   "measured, unless a simulated column says otherwise)."),
    provenance: Optional[str] = typer.Option(None, "--provenance", help="Where the numbers come from (source, "
                                             "commit, paper), recorded in summary.json."),
    as_json: bool = JsonOpt,
) -> None:
    """Turn measurements taken elsewhere (a CSV) into a run directory that replay: plays.

    Knob columns are recognised by edgetune's knob names (cpu_freq_khz,
    gpu_freq_hz, emc_freq_hz, batch_size, concurrency, power_mode, cpu_cores,
    threads, ...; "GPU Freq (MHz)" reads as gpu_freq_mhz) or named with
    --map; an empty column is an absent knob, a
    single-valued one is pinned. Energy per inference comes from an
    energy_per_inference_j column, or from power_w / throughput; time per
    inference is 1 / throughput. Then: edgetune bench --board replay:DIR
    --workload W."""
    from tuner.recorded import import_csv

    doc = import_csv(csv_file, out, workload=workload, board=board, maps=map_ or [], simulated=simulated,
                     provenance=provenance)
    if as_json:
        emit_json(doc)
        return
    from tuner.cli.searching import render_import

    render_import(doc)


@workloads_app.command("list")
def workloads_list(as_json: bool = JsonOpt) -> None:
    """List the registered workloads (entry-point group edgetune.workloads) and the
    simulated ones, with what each needs installed."""
    from workloads.registry import list_workloads

    items = [w.to_dict() for w in list_workloads()]
    if as_json:
        emit_json({"workloads": items})
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title_justify="left")
    for col in ("workload", "kind", "available", "description"):
        t.add_column(col)
    for w in items:
        avail = "yes" if w["available"] else f"no: pip install {' '.join(w['missing'])}"
        t.add_row(w["name"], "simulated" if w["simulated"] else "real", avail, w["description"])
    Console().print(t)


@workloads_app.command("probe")
def workloads_probe(
    model: str = typer.Option(..., "--model", "-m", help="The model to run concurrent instances of, e.g. "
                              "mobilenet_v2."),
    batch_size: int = typer.Option(1, "--batch-size", help="Batch size of every instance."),
    max_concurrency: int = typer.Option(8, "--max", help="Stop at this many instances if nothing fails first."),
    inferences: int = typer.Option(32, "--inferences", help="Inferences per instance at each level."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda, where the model supports it."),
    as_json: bool = JsonOpt,
) -> None:
    """Find how many concurrent instances of a model fit and which count is fastest (CME).

    Raises the concurrency from 1 until a level fails (out of memory, a crash)
    and reports each level's aggregate throughput, the largest level that runs
    and the throughput-maximising one. Set the cme workload's max_concurrency
    from it."""
    from workloads.cme import MultiTenant, probe_concurrency

    options = {"device": device} if device else {}
    report = probe_concurrency(MultiTenant(model=model, max_concurrency=max_concurrency, **options),
                               batch_size=batch_size, inferences_per_tenant=inferences)
    if as_json:
        emit_json(report)
        return
    for lv in report["levels"]:
        typer.echo(f"{lv['concurrency']:>3} instances: " + (f"{lv['throughput_ips']:.1f} inferences/s"
                                                         if lv["ok"] else f"failed ({lv['failure']})"))
    if report["best_concurrency"] is None:
        raise EdgetuneError(f"even one instance of {model} failed: {report['stopped_by']}")
    typer.echo(f"largest that runs: {report['max_concurrency']}; fastest: {report['best_concurrency']} "
               f"({report['speedup']:.2f}x one instance)")


@app.command()
def run(
    workload: str = typer.Option(..., "--workload", "-w", help="A workload from `edgetune workloads list`."),
    board: str = typer.Option("auto", "--board", help="auto (a Jetson at --root; elsewhere this Linux machine, "
                              "time only unless it has RAPL), jetson, linux, nvml[:N] or sim:PROFILE."),
    root: Path = RootOpt,
    batch_size: int = typer.Option(1, "--batch-size", help="Inferences per batch."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="cme: concurrent instances."),
    placement: Optional[str] = typer.Option(None, "--placement", help="dmp: the processor of each model, "
                                            "e.g. cuda,cpu."),
    inferences: int = typer.Option(64, "--inferences", help="Inferences to run (after one warm-up batch)."),
    cpu_freq: Optional[str] = typer.Option(None, "--cpu-freq", help="Pin the CPU for the run, e.g. 1428MHz."),
    gpu_freq: Optional[str] = typer.Option(None, "--gpu-freq", help="Pin the GPU for the run, e.g. 614.4MHz."),
    graph: Optional[str] = typer.Option(None, "--graph", help="eager or script (static graph), where supported."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda, where supported."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Weights file (state dict) instead of random."),
    model_file: Optional[str] = typer.Option(None, "--model-file", help="Model file for workloads that take one."),
    images: Optional[str] = typer.Option(None, "--images", help="Directory of images, decoded on the CPU per "
                                         "batch (default: synthetic tensors)."),
    option: Optional[List[str]] = WorkloadOptionOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run one config of a workload once and print the measurement: inferences, time,
    throughput and batch latency always; energy where the board has power sensors.
    Clocks given here are restored afterwards."""
    from tuner.boards.factory import open_board
    from tuner.config import BATCH_SIZE, CPU_FREQ, GPU_FREQ, Config
    from tuner.errors import BoardNotFound
    from tuner.runner import RunPolicy, TrialRunner
    from tuner.app import open_workload
    from tuner.units import parse_freq

    try:
        b = open_board(board, root)
    except BoardNotFound:
        if board != "auto":
            raise
        from tuner.boards.linux import LinuxBoard
        from tuner.sysfs import Sysfs

        b = LinuxBoard(Sysfs(root))
    values: dict[str, Any] = {BATCH_SIZE: batch_size}
    if cpu_freq:
        values[CPU_FREQ] = parse_freq(cpu_freq, "kHz")
    if gpu_freq:
        values[GPU_FREQ] = parse_freq(gpu_freq, "Hz")
    if concurrency is not None:
        values["concurrency"] = concurrency
    if placement:
        values["placement"] = placement
    if graph:
        values["graph"] = graph
    if device:
        values["device"] = device
    config = Config(values)
    options = {"weights": weights, "model_file": model_file, "images": images, **parse_options(option or [])}
    wl = open_workload(workload, b, options=options)
    policy = RunPolicy(inferences=inferences, warmup_inferences=batch_size, min_repeats=1, max_repeats=1,
                       settle_s=0.0 if not config.hardware() else 0.2, min_window_updates=0)  # exactly N
    runner = TrialRunner(b, wl, policy)
    try:
        trial = runner.measure(config)
    finally:
        runner.teardown()
        if config.hardware():
            b.restore()
    m = trial.measurement
    source = b.power_source() if hasattr(b, "power_source") else None
    period = getattr(source, "update_period_s", None)
    if m.feasible and period and m.time_s < RunPolicy.min_window_updates * period:
        typer.echo(f"note: the power sensor updates every {period * 1e3:.0f} ms, so the energy of a "
                   f"{m.time_s:.2f} s run is uncertain by up to {period / m.time_s:.0%}; run at least "
                   f"{RunPolicy.min_window_updates * period:.1f} s (more --inferences) for a figure to compare",
                   err=True)
    doc = {"board": b.info.profile or b.info.kind, "workload": workload, **m.to_dict(),
           "load_s": getattr(wl, "load_s", None)}
    if as_json:
        emit_json(doc)
        return
    if not m.feasible:
        raise EdgetuneError(f"the run failed: {m.failure}")
    energy = f", {m.energy_j:.2f} J ({m.energy_per_inference_j * 1e3:.2f} mJ/inference, {m.avg_power_w:.2f} W)" \
        if m.energy_j == m.energy_j else " (no power sensors: no energy)"
    sim = " (simulated)" if m.simulated else ""
    typer.echo(f"{workload}{sim}: {m.inferences} inferences in {m.time_s:.3f} s ({m.throughput_ips:.1f}/s){energy}; "
               f"batch latency p50 {m.batch_latency_p50_s * 1e3:.1f} ms, p95 {m.batch_latency_p95_s * 1e3:.1f} ms")


@app.command()
def restore(root: Path = RootOpt) -> None:
    """Write back every clock and governor value edgetune changed, from its journal.

    Use after a crash or `kill -9`; the daemon does this itself when it starts.
    A file another program (jetson_clocks, nvpmodel, jtop) changed after
    edgetune's last write keeps that program's value, and is listed."""
    from tuner.boards.factory import check_root
    from tuner.sysfs import Sysfs

    fs = Sysfs(check_root(root))
    entries = fs.journal.entries()
    if not entries:
        typer.echo(f"nothing to restore: no journal at {fs.journal.path}")
        return
    failures = fs.restore_journal()
    report = fs.last_restore  # each file left as another program set it is logged (stderr) by the restore
    if failures:
        raise EdgetuneError(f"restored {len(report.restored)} of {len(entries)} values; "
                            f"still changed: {'; '.join(failures)}")
    kept = f", {len(report.skipped)} left as another program set them" if report.skipped else ""
    typer.echo(f"restored {len(report.restored)} values from {fs.journal.path}{kept}")




@app.command()
def fleet(
    store: Optional[str] = typer.Option(None, "--store", envvar="EDGETUNE_STORE", help="The fleet's store: "
                                        "postgresql://USER@HOST/DB or sqlite:///PATH. Default: the local state "
                                        "directory's store (the daemon's)."),
    root: Path = RootOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List the boards a store knows: board id and host, model, workload, state (a daemon's, or done
    for a one-shot run), held config, saving against DVFS, trials spent, last seen.

    `--json` gives {"store", "schema_version", "boards": [{board_id, host, board, model, l4t, workload,
    simulated, kind, state, held, saving_vs_dvfs, trials, runs, last_seen, warm_start}]}."""
    from tuner.fleet import fleet_doc, render_fleet
    from tuner.app import STORE_NAME, state_dir
    from tuner.store import Store

    from tuner.store import sqlite_path, store_url

    target = store if store is not None else str(state_dir(root) / STORE_NAME)
    path = sqlite_path(store_url(target))
    if path is not None and not path.is_file():  # a listing makes no store where there was none
        raise EdgetuneError(f"no store at {path}" + ("" if store else "; give the fleet's with --store URL"))
    with Store(target) as opened:
        doc = fleet_doc(opened)
    emit_json(doc) if as_json else render_fleet(doc)


@app.command()
def daemon(
    config: Path = typer.Option(Path(DEFAULT_CONFIG), "--config", "-c",
                                help="TOML settings; see systemd/edgetune.toml for every key."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Run the tuning service: search the configured workload's best config, hold it,
    re-search when the workload drifts; answer `edgetune status` on the control socket.

    This is what systemd's edgetune.service runs. SIGTERM or Ctrl-C restores every
    changed clock and exits 0; SIGHUP reloads the config; after a crash or kill -9
    the next start restores the board before it tunes."""
    import logging

    from tuner.daemon.service import Daemon
    from tuner.daemon.settings import load_settings

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise EdgetuneError(f"unknown log level {log_level!r}; use debug, info, warning or error")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = load_settings(config)
    raise typer.Exit(Daemon(settings, config_path=config).run())


@app.command()
def status(socket: Path = SocketOpt, as_json: bool = JsonOpt) -> None:
    """Ask the running daemon what it is doing: per workload its state (exploring,
    holding, paused, safe, overridden), the applied config, trials used, the best energy per
    inference and its saving over DVFS, current power and temperature."""
    from tuner.cli.status import show_status

    show_status(socket, as_json)


@app.command()
def control(
    action: str = typer.Argument(..., help="pause, resume, retune, apply or restore."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="For apply: KNOB=VALUE, repeatable "
                                             "(e.g. --set gpu_freq_hz=614400000 --set batch_size=16)."),
    socket: Path = SocketOpt,
) -> None:
    """Send the daemon a command: pause (stop tuning, keep the clocks), resume,
    retune (search again now), apply a config (held until resume or retune), or
    restore (the board's own DVFS settings, then pause)."""
    from tuner.cli.status import send_control

    send_control(socket, action, set_ or [])


def main() -> None:
    """Console-script entry: a user-fixable error is one ``error:`` line and exit 1, never a traceback."""
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

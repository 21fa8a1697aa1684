"""``edgetune sweep``, ``tune``, ``bench`` and ``import``: their options parsed, their documents rendered.

``main.py`` declares the options; these functions turn them into the core's
objects (objective, knobs, policy, noise) and hand them to the application
layer (:func:`tuner.app.run_search`), which opens the board, runs the search
and writes the run directory. Progress goes to stderr so that ``--json``
output on stdout stays clean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.cli.params import knob_values, parse_assignments
from tuner.config import BATCH_SIZE, CPU_FREQ, GPU_FREQ, Config
from tuner.errors import ConfigError
from tuner.objective import Constraints, Objective
from tuner.runner import RunPolicy
from tuner.units import config_text, cost_text, parse_duration, parse_freq, parse_list


def make_objective(objective: str, latency_slo: str | None, min_throughput: float | None,
                   power_cap: float | None) -> Objective:
    """The objective and constraints from the command-line options (one-line errors for bad values)."""
    slo = parse_duration(latency_slo) if latency_slo else None
    return Objective.parse(objective, Constraints(slo, min_throughput, power_cap))


def make_knobs(batch_sizes: str | None, cpu_freqs: str | None, gpu_freqs: str | None,
               default_batches: tuple[int, ...] | None, extra: list[str] | None = None
               ) -> tuple[dict[str, tuple | None], tuple[str, ...]]:
    """The searched knobs, and which of them are defaults rather than asked for.

    By default the space is what the board and workload offer of CPU and GPU
    frequency (every step of the device) and the batch size
    (``default_batches``; None = every batch size the workload offers); a
    default the board does not offer (no cpufreq) is left out and said so. A
    replayed recording offers exactly the knobs it varied. Narrowing one
    (``--cpu-freqs``, ``--gpu-freqs``, ``--batch-sizes``) or naming another
    knob (``--knob NAME``: its whole domain; ``--knob NAME=v1,v2``: those
    values) asks for it explicitly: a board that cannot offer it is an error."""
    knobs: dict[str, tuple | None] = {
        CPU_FREQ: parse_list(cpu_freqs, lambda t: parse_freq(t, "kHz"), "--cpu-freqs"),
        GPU_FREQ: parse_list(gpu_freqs, lambda t: parse_freq(t, "Hz"), "--gpu-freqs"),
        BATCH_SIZE: parse_list(batch_sizes, int, "--batch-sizes") or default_batches,
    }
    optional = tuple(name for name, given in ((CPU_FREQ, cpu_freqs), (GPU_FREQ, gpu_freqs),
                                              (BATCH_SIZE, batch_sizes)) if given is None)
    for name, values in parse_assignments(extra or [], "--knob", "NAME or NAME=v1,v2", bare=True).items():
        if name in (CPU_FREQ, GPU_FREQ, BATCH_SIZE):
            if values is not None:
                raise ConfigError(f"{name} has its own option (--cpu-freqs, --gpu-freqs, --batch-sizes)")
            # --knob cpu_freq_khz: asked for explicitly, with its default domain
            optional = tuple(n for n in optional if n != name)
            continue
        # NAME: its whole domain; NAME=v1,v2 (or a,b;c,d for values that hold commas): those values
        knobs[name] = None if values is None else knob_values(values, f"--knob {name}")
    return knobs, optional


def make_policy(inferences: int, repeats: int, max_repeats: int | None, timeout: str | None) -> RunPolicy:
    """How much work a trial is and how many repeats settle it, from the command-line options."""
    return RunPolicy(inferences=inferences, min_repeats=repeats, max_repeats=max(repeats, max_repeats or 2 * repeats),
                     timeout_s=parse_duration(timeout) if timeout else None)


class Progress:
    """A rich progress bar with ETA on stderr (quiet when stderr is not a terminal)."""

    def __init__(self, label: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True)
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=True,
                                 disable=not console.is_terminal)
        self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def advance(self, n: int = 1, description: str | None = None) -> None:
        self._bar.update(self._task, advance=n, **({"description": description} if description else {}))

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


def parse_stop_improvement(value: float) -> float | None:
    """``--stop-improvement``: a share in [0, 1); 0 means no early stop (None to :func:`tuner.search.search`)."""
    if not 0 <= value < 1:
        raise ConfigError(f"--stop-improvement is a share from 0 (spend the budget) to below 1, e.g. 0.01; "
                          f"not {value:g}")
    return value or None


def make_noise(sigma: float | None, tails: bool, drift: bool) -> Any:
    """``--noise SIGMA [--noise-tails] [--noise-drift]`` as a :class:`tuner.sim.board.Noise`, or None (the default)."""
    if sigma is None:
        if tails or drift:
            raise ConfigError("--noise-tails and --noise-drift go with --noise SIGMA (e.g. --noise 0.05)")
        return None
    from tuner.sim.board import Noise

    return Noise.field(sigma, tails=tails, drift=drift)


def run_search_command(*, kind: str, strategy: str, budget: str | None, board: str, root: Path, workload: str,
                       knobs: dict[str, tuple | None], objective: Objective, policy: RunPolicy, out: Path | None,
                       seed: int, apply_best: bool = False, plots: bool = True,
                       time_scale: float = 1.0, options: dict[str, Any] | None = None,
                       optional: tuple[str, ...] = (), noise: Any = None, store: str | None = None,
                       stop_improvement: float | None = None) -> dict[str, Any]:
    """Shared by sweep (strategy ``sweep``, whole space) and tune: :func:`tuner.app.run_search` with the
    progress bar on stderr; returns the summary document.

    ``optional`` names the knobs of ``knobs`` that are defaults (see :func:`make_knobs`)."""
    from tuner.app import run_search

    return run_search(kind=kind, strategy=strategy, budget=budget, board=board, root=root, workload=workload,
                      knobs=knobs, objective=objective, policy=policy, out=out, seed=seed, apply_best=apply_best,
                      plots=plots, time_scale=time_scale, options=options, optional=optional, noise=noise,
                      store=store, stop_improvement=stop_improvement, progress=Progress)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or value != value else format(value, spec)


def render_summary(doc: dict[str, Any]) -> None:
    """The text form of a sweep/tune summary: space, best vs DVFS, cost, run directory."""
    from rich.console import Console

    console = Console()
    sim = " [yellow](simulated)[/]" if doc["simulated"] else ""
    console.print(f"[bold]{doc['kind']}[/] {doc['workload']} on {doc['board']}{sim}: {doc['n_trials']} trials "
                  f"of {doc['space_size']} configs ({doc['n_measured_now']} measured now, "
                  f"{doc['n_infeasible']} infeasible); objective {doc['objective']}")
    for line in space_lines(doc.get("space")):
        console.print(line)
    best, dvfs = doc["best"], doc["dvfs"]
    if best is None:
        console.print("[red]no feasible config found[/]")
    else:
        cfg = Config(best["config"])
        console.print(f"best: {config_text(cfg)}: {_fmt(best['energy_per_inference_mj'], '.3f')} mJ/inference, "
                      f"{_fmt(best['avg_power_w'], '.2f')} W, p95 batch {_fmt(best['batch_latency_p95_ms'], '.1f')} "
                      f"ms ({best['repeats']} repeats, spread {_fmt(best['energy_spread'] * 100, '.1f')} %)")
    if dvfs is not None and dvfs.get("energy_per_inference_mj") is not None:
        console.print(f"DVFS ({config_text(Config(dvfs['config']))}): {dvfs['energy_per_inference_mj']:.3f} "
                      "mJ/inference")
    if doc.get("saving_vs_dvfs") is not None:
        console.print(f"saving vs DVFS: [bold]{doc['saving_vs_dvfs'] * 100:.1f} %[/] energy per inference, "
                      f"latency cost {doc['latency_cost_vs_dvfs'] * 100:+.1f} % time per inference")
    cost = cost_text(doc.get("exploration"), doc.get("payback_s"))
    if cost:
        console.print(cost)
    if (doc.get("fleet") or {}).get("note"):
        console.print(f"fleet: {doc['fleet']['note']}")
    if "applied" in doc:
        console.print(f"applied {Config(doc['applied']).to_json()}; undo with `edgetune restore`")
    console.print(f"run directory: {doc['run_dir']}")
    if isinstance(doc.get("plots"), str):
        console.print(doc["plots"])


def space_lines(space: dict[str, Any] | None) -> list[str]:
    """The space in words: its knobs, and each knob not searched with why."""
    if not space:
        return []
    knobs = " x ".join(f"{name} ({n})" for name, n in space.get("knobs", {}).items())
    lines = [f"space: {knobs} = {space.get('size')} configs"]
    for name, why in (space.get("not_searched") or {}).items():
        lines.append(f"not searched: {name}: {why}")
    if space.get("power_mode"):
        lines.append(space["power_mode"])
    if space.get("no_reference"):
        lines.append(space["no_reference"])
    return lines


def render_bench(doc: dict[str, Any]) -> None:
    """The text form of ``bench``: per strategy, share of the space to the 2 % band and regret at the budget."""
    from rich.console import Console
    from rich.table import Table

    from tuner.bench import seeds_above

    sim = " (simulated)" if doc["simulated"] else ""
    t = Table(title=f"{doc['workload']} on {doc['board']}{sim}: {doc['space_size']} configs, {doc['seeds']} seeds, "
                    f"objective {doc['objective']}", title_justify="left")
    # two-line headers of short words: the eight columns fit an 80-column terminal
    for col in ("strategy", "to 2 %\nmedian", "to 2 %\np90", "reached", "regret\nmedian", "regret\np90",
                "seeds\n> 5 %", "seconds"):
        t.add_column(col, justify="right" if col != "strategy" else "left", no_wrap=True)

    def pct(v: float | None) -> str:
        return "not reached" if v is None else f"{v * 100:.1f} %"

    for r in doc["strategies"]:
        f, g = r["fraction_to_2pct"], r["regret_at_budget"]
        above = seeds_above(r["regret_per_seed"])
        t.add_row(r["name"], pct(f["median"]), pct(f["p90"]), f"{f['reached'] * 100:.0f} %", pct(g["median"]),
                  pct(g["p90"]), f"{above} of {len(r['regret_per_seed'])}", f"{r['seconds']:.1f}")
    Console().print(t)
    for line in space_lines(doc.get("space")):
        Console().print(line)
    Console().print(f"budget: {doc['strategies'][0]['budget_fraction'] * 100:g} % of the space; to 2 %: share of "
                    "the space measured before the recommendation is within 2 % of the true optimum; regret: the "
                    "recommendation's true cost over the optimum's at the budget; seeds > 5 %: seeds whose regret "
                    "exceeds 5 %")


_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def render_import(doc: dict[str, Any]) -> None:
    """What ``edgetune import`` read and how, in words."""
    from rich.console import Console

    console = Console(highlight=False)
    sim = "simulated" if doc["simulated"] else "measured (not simulated)"
    reps = doc["repeats"]
    rep_text = f"{reps['min']}" if reps["min"] == reps["max"] else f"{reps['min']}-{reps['max']}"
    console.print(f"imported {doc['n_rows']} rows of {doc['source']['file']}: {doc['workload']} on "
                  f"{doc['board']}, {sim}")
    fmt = doc["source"].get("format") or {}
    read_as = [f"fields separated by {_SEPARATORS.get(fmt.get('delimiter'), repr(fmt.get('delimiter')))}"
               ] if fmt.get("delimiter", ",") != "," else []
    read_as += ["decimal commas"] if fmt.get("decimal") == "," else []
    read_as += [f"text in {fmt['encoding']}"] if fmt.get("encoding", "utf-8") != "utf-8" else []
    read_as += [f"{fmt['comment_lines']} comment line(s) before the header skipped"] if fmt.get("comment_lines") else []
    if read_as:
        console.print("read as: " + "; ".join(read_as))
    knobs = " x ".join(f"{k} ({len(v)})" for k, v in doc["knobs"].items())
    grid = "" if doc["complete"] else f" of a {doc['grid_size']}-config grid"
    console.print(f"space: {knobs}: {doc['space_size']} recorded configs{grid}, {rep_text} repeat(s) each"
                  + (f", {doc['n_infeasible']} infeasible row(s)" if doc["n_infeasible"] else ""))
    if doc["pinned"]:
        console.print("pinned: " + ", ".join(f"{k}={v}" for k, v in doc["pinned"].items()))
    if doc["absent"]:
        console.print("absent (empty columns): " + ", ".join(doc["absent"]))
    for copy, kept in doc["aliases"].items():
        console.print(f"{copy} is a one-to-one copy of {kept}: searched as {kept}")
    for field, how in doc["results"].items():
        if how:
            console.print(f"{field}: {how}")
    for column, how in doc.get("units_inferred", {}).items():
        unit, quantity = how["unit"], how["quantity"]
        other = {"W": "mw", "mW": "w"}.get(unit, "mhz" if unit != "MHz" else "khz")
        named = "power" if quantity == "power" else quantity.rsplit("_", 1)[0]
        console.print(f"{column}: its header has no unit; read as {unit}, which its values' size implies "
                      f"(if wrong, name the unit: --map '{column}={named}_{other}')")
    if doc["ignored_columns"]:
        console.print("not used (name them with --map COLUMN=KNOB): " + ", ".join(doc["ignored_columns"]))
    if doc.get("differ_within_repeats"):
        console.print("rows read as repeats of one setting differ in " + ", ".join(doc["differ_within_repeats"])
                      + ": if one is a setting, name it with --map COLUMN=KNOB, or each setting's repeats mix")
    best = doc["best"]
    if best:
        console.print(f"lowest recorded energy per inference: {config_text(Config(best['config']))}: "
                      f"{_fmt(best['energy_per_inference_mj'], '.3f')} mJ")
    console.print(f"run directory: {doc['run_dir']}; replay: {doc['replay']}")

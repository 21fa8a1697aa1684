"""Body of ``edgetune compare``: governors vs the tuned config, in one session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuner.cli.params import knob_value, parse_assignments
from tuner.config import BATCH_SIZE, CPU_FREQ, GPU_FREQ, Config
from tuner.errors import ConfigError
from tuner.objective import Objective, check_power_sensors
from tuner.runner import RunPolicy


def tuned_from(tuned_dir: Path | None, config_text: str | None) -> Config | None:
    """The config to hold as ``tuned``: a run directory's best, or one given on the command line."""
    if tuned_dir is not None and config_text is not None:
        raise ConfigError("give either --tuned RUN_DIR or --config, not both")
    if tuned_dir is not None:
        try:
            best = json.loads((tuned_dir / "summary.json").read_text()).get("best")
        except FileNotFoundError:
            raise ConfigError(f"{tuned_dir} has no summary.json (make one with `edgetune tune` or "
                              "`edgetune sweep --out DIR`)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {tuned_dir / 'summary.json'}: {exc}") from None
        if not best:
            raise ConfigError(f"the run in {tuned_dir} found no feasible config")
        return Config(best["config"])
    if config_text is not None:
        text = config_text.strip()
        if text.startswith("{"):
            return Config.from_json(text)
        items = [t for t in text.split(",") if t.strip()]
        return Config(parse_assignments(items, "--config", "KNOB=VALUE,...", value=knob_value,
                                        example="cpu_freq_khz=1479000,gpu_freq_hz=614400000"))
    return None


def run_compare_command(*, board: str, root: Path, workload: str, governors: str | None, tuned_dir: Path | None,
                        config_text: str | None, rate: float | None, online: bool, batch_size: int, strategy: str,
                        budget: str | None, policy: RunPolicy, out: Path | None, seed: int, plots: bool,
                        time_scale: float, options: dict[str, Any] | None = None,
                        noise: Any = None, store: str | None = None) -> dict[str, Any]:
    """Open the board, tune (or take the tuned config), then run every governor and the tuned config:
    the ``compare`` document (also written as compare.json beside the plots)."""
    from dataclasses import replace

    from governors.base import Governor
    from governors.compare import GOVERNOR_ROLE, compare, measure_governor
    from governors.kernel import kernel_governors
    from governors.online import run_online
    from tuner.cli.searching import Progress
    from tuner.report import finite_json, plot_compare
    from tuner.search import parse_budget, search
    from tuner.session import Session
    from tuner.strategies import make_strategy, strategy_class

    strategy_class(strategy)
    given = tuned_from(tuned_dir, config_text)
    policy = replace(policy, rate_ips=rate)
    # fixed work: energy per inference; rate-driven: average power while keeping up
    objective = Objective("power") if rate else Objective("energy")
    knobs: dict[str, tuple | None] = {CPU_FREQ: None, GPU_FREQ: None, BATCH_SIZE: (batch_size,)}
    spec = {"rate_ips": rate, "strategy": strategy, "seed": seed, "tuned": given.to_json() if given else None,
            **({"options": options} if options else {}), **({"noise": noise.describe()} if noise else {})}
    # the tune searches the clocks the board offers (a board without cpufreq: the GPU alone)
    with Session.open(kind="compare", board=board, root=root, workload=workload, knobs=knobs, policy=policy,
                      out=out, seed=seed, spec=spec, time_scale=time_scale, options=options,
                      optional=(CPU_FREQ, GPU_FREQ), noise=noise, store=store, objective=objective) as session:
        check_power_sensors(session.board, objective, "compare")  # every row is energy: the board must measure it
        govs = kernel_governors(session.board, governors)
        workload_part = Config({BATCH_SIZE: batch_size})
        runner = session.runner
        tune_trials = 0
        if given is None:
            n = parse_budget(budget, len(session.space))
            strat = make_strategy(strategy, session.space, seed=seed)
            with Progress(f"tune {workload} ({strategy})", n) as bar:
                result = search(strat, runner, objective, n, run=session.run, on_step=lambda s: bar.advance())
            if result.best is None:
                raise ConfigError("the tune found no feasible config to compare (at this rate nothing keeps up)"
                                  if rate else "the tune found no feasible config to compare")
            given, tune_trials = result.best, len(result.steps)
        tuned_config = given if BATCH_SIZE in given else given.replace(**{BATCH_SIZE: batch_size})
        with Progress("compare", len(govs) + 1 + int(online)) as bar:
            tuned = measure_governor(runner, Governor.pinned(tuned_config), tuned_config.workload(), session.run)
            bar.advance()
            online_result = None
            if online:
                online_result = run_online(runner, session.space, objective, seed=seed,
                                           start=Config({BATCH_SIZE: batch_size}))
                bar.advance()
            doc = compare(runner, govs, tuned, workload_part, run=session.run, online=online_result,
                          progress=lambda name: bar.advance(description=f"compare {name}"))
        doc = {"board": session.board_name, "workload": workload, "simulated": bool(session.board.info.simulated),
               "batch_size": batch_size, **doc, "tune_trials": tune_trials, "run_dir": str(session.out_dir),
               "governor_role": GOVERNOR_ROLE, "not_searched": session.not_searched,
               **({"noise": session.board.noise.describe()} if hasattr(session.board, "noise") else {})}
        doc = finite_json(doc)
        if plots:
            drawn = plot_compare(session.out_dir, doc)
            doc["plots"] = [p.name for p in drawn] if isinstance(drawn, list) else drawn
        (session.out_dir / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def render_compare(doc: dict[str, Any]) -> None:
    """The text form of ``compare``: one row per governor pair and the tuned config, savings vs DVFS."""
    from rich.console import Console
    from rich.table import Table

    rate = doc.get("rate_ips")
    sim = " (simulated)" if doc["simulated"] else ""
    service = f", {rate:g} inferences/s" if rate else ""
    t = Table(title=f"{doc['workload']} on {doc['board']}{sim}, batch {doc['batch_size']}{service}; DVFS = "
                    f"{doc['dvfs']}", title_justify="left")
    for col in ("governor", "energy (J)", "time (s)", "power (W)", "mJ/inference", "saving vs DVFS",
                "p95 latency cost" if rate else "latency cost"):
        t.add_column(col, justify="left" if col == "governor" else "right")

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for r in doc["rows"]:
        if not r["feasible"]:
            t.add_row(r["governor"], "[red]infeasible[/]", "", "", "", "", r["failure"] or "")
            continue
        t.add_row(r["governor"], num(r["energy_j"], ".1f"), num(r["time_s"], ".1f"), num(r["avg_power_w"], ".2f"),
                  num(r["energy_per_inference_mj"], ".2f"),
                  "-" if r["saving_vs_dvfs"] is None else f"{r['saving_vs_dvfs'] * 100:+.1f} %",
                  "-" if r["latency_cost_vs_dvfs"] is None else f"{r['latency_cost_vs_dvfs'] * 100:+.1f} %")
    console = Console()
    console.print(t)
    tuned = next(r for r in doc["rows"] if r["governor"] == "tuned")
    console.print(f"tuned config: {Config(tuned['config']).to_json()}"
                  + (f" (found in {doc['tune_trials']} trials)" if doc.get("tune_trials") else ""))
    console.print(f"run directory: {doc['run_dir']}")
    if isinstance(doc.get("plots"), str):
        console.print(doc["plots"])


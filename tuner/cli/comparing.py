"""``edgetune compare``: its tuned-config options parsed and its document rendered; the work is
:func:`tuner.app.run_compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuner.cli.params import knob_value, parse_assignments
from tuner.config import Config
from tuner.errors import ConfigError
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
    """The tuned config from ``--tuned``/``--config`` (or a tune first), then :func:`tuner.app.run_compare`
    with the progress bar: the ``compare`` document (also written as compare.json beside the plots)."""
    from tuner.app import run_compare
    from tuner.cli.searching import Progress
    from tuner.strategies import strategy_class

    strategy_class(strategy)
    given = tuned_from(tuned_dir, config_text)
    return run_compare(board=board, root=root, workload=workload, governors=governors, given=given, rate=rate,
                       online=online, batch_size=batch_size, strategy=strategy, budget=budget, policy=policy,
                       out=out, seed=seed, plots=plots, time_scale=time_scale, options=options, noise=noise,
                       store=store, progress=Progress)


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


"""Rich renderings of command results (tables for people; --json is for scripts)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _mhz(hz: int | None) -> str:
    return "-" if hz is None else f"{hz / 1e6:g}"


def _freq_range(values: list[int], scale: float) -> str:
    if not values:
        return "-"
    return f"{values[0] / scale:g}–{values[-1] / scale:g} MHz ({len(values)} steps)"


def render_probe(doc: dict[str, Any], console: Console | None = None) -> None:
    """Print the ``probe`` document for people: identity, clock domains (MHz), power mode, rails (mW)
    and thermal zones (°C)."""
    console = console or Console()
    b = doc["board"]
    label = " [bold yellow](simulated)[/]" if b.get("simulated") else ""
    console.print(f"[bold]{b.get('model') or b.get('kind')}[/]{label}  profile={b.get('profile')}  "
                  f"L4T={b.get('l4t')}  JetPack={b.get('jetpack')}")
    t = Table(title="Clocks", title_justify="left")
    for col in ("domain", "cpus / path", "frequencies", "governor", "current", "governors"):
        t.add_column(col)
    for p in doc["cpu"]["policies"]:
        t.add_row(f"CPU {p['name']}", ",".join(str(c) for c in p["cpus"]), _freq_range(p["frequencies_khz"], 1e3),
                  p.get("governor") or "-", f"{(p.get('cur_freq_khz') or 0) / 1e3:g} MHz",
                  " ".join(p["governors"]))
    g = doc.get("gpu")
    if g:
        t.add_row("GPU", g["path"], _freq_range(g["frequencies_hz"], 1e6), g.get("governor") or "-",
                  f"{_mhz(g.get('cur_freq_hz'))} MHz", " ".join(g["governors"]))
    e = doc.get("emc")
    if e:
        t.add_row("EMC", "bpmp debugfs", _freq_range(e["frequencies_hz"], 1e6), "-",
                  f"{_mhz(e.get('cur_freq_hz'))} MHz", "")
    console.print(t)
    if "power_mode" in doc and (doc["power_mode"] or b.get("kind") == "jetson"):
        for line in _power_mode_lines(doc["power_mode"]):
            console.print(line)
    r = Table(title="Power rails", title_justify="left")
    # a sensor that updates coarsely (NVML: 100 ms) makes every measured window longer: say so
    coarse = any(rail.get("update_period_s") for rail in doc["rails"])
    for col in ("rail", "role", "power (mW)", "in total") + (("updates every",) if coarse else ()):
        r.add_column(col)
    for rail in doc["rails"]:
        p, every = rail.get("power_mw"), rail.get("update_period_s")
        row = [rail["name"], rail["role"], "-" if p is None else f"{p:.0f}", "yes" if rail.get("in_total") else ""]
        r.add_row(*row, *([f"{every * 1e3:.0f} ms" if every else "-"] if coarse else []))
    if not doc["rails"]:
        r.add_row("(no power sensors found)", "", "", "")
    console.print(r)
    if doc["thermal"]:
        console.print("Thermal: " + ", ".join(f"{z['name']} {z['temp_c']:.1f}°C" for z in doc["thermal"]))


def _window(lo: int | None, hi: int | None, scale: float) -> str:
    if lo is None and hi is None:
        return "no cap"
    if lo is None:
        return f"≤ {hi / scale:g} MHz"
    if hi is None:
        return f"≥ {lo / scale:g} MHz"
    return f"{lo / scale:g}–{hi / scale:g} MHz"


def _power_mode_lines(pm: dict[str, Any] | None) -> list[str]:
    """The nvpmodel power mode: which, read from where, its caps, the other
    modes, and how far it narrows the search space."""
    if pm is None:
        return ["Power mode: [dim]none (no /etc/nvpmodel.conf)[/]"]
    if pm.get("id") is None:
        return [f"Power mode: [yellow]unknown[/] ({pm.get('note') or 'no status and no default'})"]
    where = f"read from {pm['source_path']}" if pm.get("source") == "status" else f"default of {pm['conf']}"
    caps = pm.get("caps") or {}
    parts = [f"CPU {_window(caps.get('cpu_min_khz'), caps.get('cpu_max_khz'), 1e3)}",
             f"GPU {_window(caps.get('gpu_min_hz'), caps.get('gpu_max_hz'), 1e6)}",
             f"EMC {_window(None, caps.get('emc_max_hz'), 1e6)}"]
    if caps.get("cpu_online") is not None:
        parts.append(f"{caps['cpu_online']} cores online")
    lines = [f"Power mode: [bold]{pm['id']} ({pm['name']})[/], {where}; caps: " + ", ".join(parts)]
    modes = ", ".join(f"{m['id']} {m['name']}" + ("*" if m["id"] == pm.get("default_id") else "")
                      for m in pm.get("modes", []))
    lines.append(f"  modes: {modes}  (* default)")
    if pm.get("note"):
        lines.append(f"  [yellow]note[/]: {pm['note']}")
    narrowed = [f"{name} {c['allowed']} of {c['of']} values" for name, c in (pm.get("capped") or {}).items()
                if c["allowed"] < c["of"]]
    if narrowed:
        lines.append("  search space holds only what the mode allows: " + ", ".join(narrowed))
    return lines


def render_validation(results: list[Any], all_ok: bool, console: Console | None = None) -> None:
    """Print ``sim validate``: each simulated value against its published target, then how many gated
    targets were missed."""
    console = console or Console()
    t = Table(title="Simulator calibration (simulated values vs published measurements)", title_justify="left")
    for col in ("board", "workload", "quantity", "target", "model", "tol.", ""):
        t.add_column(col, overflow="fold")
    for r in results:
        verdict = "[green]ok[/]" if r.ok else ("[red]MISS[/]" if r.gated else "[yellow]out[/] (not gated)")
        t.add_row(r.board.replace("jetson-", "", 1), r.workload, r.quantity, str(r.target), str(r.model),
                  "" if r.tolerance is None else str(r.tolerance), verdict)
    console.print(t)
    gated = [r for r in results if r.gated]
    missed = sum(not r.ok for r in gated)
    console.print("[green]all targets met[/]" if all_ok else f"[red]{missed} of {len(gated)} targets missed[/]")

"""Bodies of ``edgetune status`` and ``edgetune control``: clients of the daemon's socket.

Standard library only (plain text, no Rich table): ``status`` is what people
and scripts poll, and DESIGN §7 gives it 0.3 s — no torch, pandas,
scikit-optimize or pydantic on this path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tuner.cli.params import knob_value, parse_assignments
from tuner.daemon.protocol import COMMANDS, request
from tuner.errors import EdgetuneError
from tuner.units import config_text, cost_text, duration_text


def show_status(socket: Path, as_json: bool) -> None:
    """``edgetune status``: the daemon's status as text, or as JSON for scripts."""
    doc = request(socket, {"cmd": "status"})["status"]
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    sys.stdout.write(format_status(doc))


def format_status(doc: dict[str, Any]) -> str:
    """The daemon's status document as plain text: the daemon, then one block per workload (energy
    in mJ per inference, power in W)."""
    if doc.get("starting"):
        return f"edgetune daemon, pid {doc.get('pid')}: starting (restoring the board, opening the workload)\n"
    sim = " (simulated)" if doc.get("simulated") else ""
    temp = doc.get("temperature_c")
    up = duration_text(doc.get("uptime_s"))
    lines = [f"edgetune {doc.get('version', '?')} daemon, pid {doc.get('pid')}, up {up}",
             f"board: {doc['board'].get('name')}{sim}" + (f", {temp:.1f} °C" if temp is not None else "")]
    if doc.get("restored_at_start"):
        lines.append(f"restored {doc['restored_at_start']} setting(s) an earlier run left changed")
    errors = {k: v for k, v in (doc.get("errors") or {}).items() if v}
    if errors:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    for w in doc.get("workloads", []):
        lines.append("")
        lines.append(f"{w['name']}: {w['state']} ({w['reason']})")
        if w.get("applied"):
            lines.append(f"  applied:  {config_text(w['applied'])}" + ("  [manual]" if w.get("manual") else ""))
        if w.get("pending"):
            waiting = f" ({w['waiting']})" if w.get("waiting") else ""
            lines.append(f"  once cooled: {config_text(w['pending'])}{waiting}")
        lines.append(f"  trials:   {w['trials_used']} in the last search, {w['searches']} search(es) done")
        cost = cost_text(w.get("exploration"), w.get("payback_s"))
        if cost:
            lines.append(f"  cost:     {cost}")
        if w.get("best_energy_per_inference_mj") is not None:
            best = f"  best:     {w['best_energy_per_inference_mj']:.3f} mJ/inference ({w['best_repeats']} repeats)"
            if w.get("saving_vs_dvfs") is not None:
                saving = w["saving_vs_dvfs"]
                best += f", {abs(saving) * 100:.1f} % {'below' if saving >= 0 else 'above'} DVFS " \
                        f"({w['dvfs_energy_per_inference_mj']:.3f} mJ)"
            lines.append(best)
        if w.get("external_changes"):
            lines.append("  outside:  " + _external_text(w))
        now = ([f"{w['power_w']:.2f} W"] if w.get("power_w") is not None else []) + \
            ([f"{w['throughput_ips']:.1f} inferences/s"] if w.get("throughput_ips") is not None else [])
        if now:  # a board without power sensors still shows the throughput
            lines.append(f"  now:      {', '.join(now)} (window {w['windows']})")
    return "\n".join(lines) + "\n"


def _external_text(w: dict[str, Any]) -> str:
    """Other programs' changes to the knob files edgetune wrote: how often, and the last one."""
    n = w["external_changes"]
    text = f"{n} change{'s' if n != 1 else ''} by other programs"
    last = w.get("last_external_change") or {}
    files = last.get("files") or []
    if files:
        f = files[0]
        more = f" and {len(files) - 1} more" if len(files) > 1 else ""
        text += f"; last: {f['path']} = {f['found']} (edgetune wrote {f['written']}){more}, {last.get('action')}"
    return text


def send_control(socket: Path, action: str, assignments: list[str]) -> None:
    """``edgetune control``: check the action and its ``--set KNOB=VALUE`` assignments here, send
    it and print the daemon's acceptance (it acts at its next check point)."""
    if action not in COMMANDS or action == "status":
        raise EdgetuneError(f"unknown action {action!r}; use pause, resume, retune, apply or restore")
    req: dict[str, Any] = {"cmd": action}
    if action == "apply":
        if not assignments:
            raise EdgetuneError("apply needs at least one --set KNOB=VALUE")
        req["config"] = parse_assignments(assignments, "--set", "KNOB=VALUE", value=knob_value,
                                          example="gpu_freq_hz=614400000")
    elif assignments:
        raise EdgetuneError("--set is for apply only")
    reply = request(socket, req)
    sys.stdout.write(f"{action}: accepted; {reply.get('note', '')}\n")



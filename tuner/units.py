"""Parsing of human-entered quantities: frequencies with units, durations."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tuner.errors import EdgetuneError

FREQ_UNITS = {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}  # Hz per unit, by lower-case name


def parse_freq(text: str, native: str) -> int:
    """``614.4MHz`` -> 614400000 (native ``Hz``) or 614400 (native ``kHz``).

    A bare number is taken in the knob's native sysfs unit (cpufreq kHz,
    devfreq Hz), so values can be pasted from ``available_frequencies``.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m:
        example = 1479000 if native == "kHz" else 614400000
        raise EdgetuneError(f"cannot read frequency {text!r}; write e.g. 614.4MHz or {example}")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit and unit not in FREQ_UNITS:
        raise EdgetuneError(f"unknown frequency unit {m.group(2)!r} in {text!r}; use Hz, kHz, MHz or GHz")
    hz = value * FREQ_UNITS[unit] if unit else value * FREQ_UNITS[native.lower()]
    return round(hz / FREQ_UNITS[native.lower()])


_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}


def parse_duration(text: str) -> float:
    """``50ms`` -> 0.05 (seconds); a bare number is seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _TIME_UNITS:
        raise EdgetuneError(f"cannot read duration {text!r}; write e.g. 50ms or 0.05s")
    return float(m.group(1)) * _TIME_UNITS[m.group(2).lower()]


def parse_list(text: str | None, parse, what: str) -> tuple | None:
    """A comma-separated list (``8,16,32``) parsed item by item; None stays None."""
    if text is None:
        return None
    items = [t for t in text.split(",") if t.strip()]
    if not items:
        raise EdgetuneError(f"{what}: empty list")
    try:
        return tuple(parse(t.strip()) for t in items)
    except ValueError:
        raise EdgetuneError(f"{what}: cannot read {text!r} (write e.g. 8,16,32)") from None


def parse_scalar(text: str) -> int | float | str:
    """A knob value as written: an integer, a number, or else a name (``script``, ``cuda,cpu``)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def config_text(config: Mapping[str, object]) -> str:
    """A config as people read it: ``CPU 1479 MHz, GPU 614.4 MHz, batch_size=16``."""
    parts = []
    for k, v in config.items():
        if k == "cpu_freq_khz":
            parts.append(f"CPU {int(v) / 1e3:g} MHz")  # type: ignore[call-overload]
        elif k == "gpu_freq_hz":
            parts.append(f"GPU {int(v) / 1e6:g} MHz")  # type: ignore[call-overload]
        else:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def duration_text(seconds: float | None) -> str:
    """``4570`` -> ``1h16m``; ``95`` -> ``1m35s``; None -> ``?``."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def cost_text(exploration: Mapping[str, object] | None, payback_s: float | None) -> str | None:
    """One line on what a search cost and when it pays back (``tuner.cost``), or None without a cost."""
    if not exploration:
        return None
    e = exploration
    if e.get("energy_j") is None:
        joules = "energy not measured"
    else:
        energy = float(e["energy_j"])  # type: ignore[arg-type]
        joules = f"{energy / 1000:.1f} kJ" if energy >= 1000 else f"{energy:.0f} J"
    text = (f"exploration: {duration_text(float(e['time_s']))} measuring, {joules} "  # type: ignore[arg-type]
            f"({e['trials']} trials, {e['repeats']} repeats); ")
    if payback_s is None:
        return text + "no payback (the held config saves nothing against DVFS, or there is no DVFS reference)"
    return text + f"pays back after {duration_text(payback_s)} at the held config"

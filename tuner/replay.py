"""``--board replay:<run dir>``: a recorded sweep played back as a board.

A sweep measured on a real Jetson leaves ``trials.csv`` with every repeat of
every config. Played back, each "measurement" of a config is one of its
recorded repeats drawn at random, so strategies meet the board's own noise,
and the truth they are judged on is the mean of those repeats. That lets
``edgetune bench`` choose the best strategy for *that* board and model from
one sweep, without touching the hardware again. A replay is as simulated as
the sweep it plays: it carries the sweep's ``simulated`` flag.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tuner.boards.base import BoardInfo, validate_hardware
from tuner.config import HARDWARE_KNOBS, Config, Knob
from tuner.errors import EdgetuneError
from tuner.measurement import Measurement
from tuner.units import parse_scalar

#: trials.csv columns that are not config knobs (see tuner.store.Run.export_csv)
RESULT_COLUMNS = ("trial", "role", "repeat", "feasible", "failure", "energy_j", "time_s", "inferences",
                  "energy_per_inference_mj", "avg_power_w", "batch_latency_p50_ms", "batch_latency_p95_ms",
                  "simulated")


def _num(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


class ReplayBoard:
    def __init__(self, run_dir: str | Path, *, seed: int | None = 0) -> None:
        self.dir = Path(run_dir)
        csv_path = self.dir / "trials.csv"
        try:
            summary = json.loads((self.dir / "summary.json").read_text())
            with csv_path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except FileNotFoundError as exc:
            raise EdgetuneError(f"{self.dir} is not a sweep run directory: {Path(exc.filename).name} is missing "
                                "(record one with `edgetune sweep --out DIR`)") from None
        except (OSError, json.JSONDecodeError, csv.Error) as exc:
            raise EdgetuneError(f"cannot read the sweep in {self.dir}: {exc}") from None
        if not rows:
            raise EdgetuneError(f"{csv_path} has no trials")
        self.workload = str(summary.get("workload"))
        knob_names = [c for c in rows[0] if c not in RESULT_COLUMNS and not c.startswith("rail_")]
        self.repeats: dict[Config, list[Measurement]] = defaultdict(list)
        values: dict[str, set] = defaultdict(set)
        for row in rows:
            config = Config({k: parse_scalar(row[k]) for k in knob_names if row[k] != ""})
            for k, v in config.items():
                values[k].add(v)
            feasible = row["feasible"] == "1"
            if not feasible:
                m = Measurement.infeasible(config, row["failure"] or "infeasible", simulated=row["simulated"] == "1")
            else:
                rails = {c[5:-2]: _num(row[c]) for c in row if c.startswith("rail_") and row[c] != ""}
                m = Measurement(config=config, simulated=row["simulated"] == "1", energy_j=_num(row["energy_j"]),
                                time_s=_num(row["time_s"]), inferences=int(row["inferences"] or 0),
                                rail_energy_j=rails, batch_latency_p50_s=_num(row["batch_latency_p50_ms"]) / 1e3,
                                batch_latency_p95_s=_num(row["batch_latency_p95_ms"]) / 1e3)
            self.repeats[config].append(m)
        self._knobs: dict[str, Knob] = {}
        for name, vals in values.items():
            numeric = all(isinstance(v, (int, float)) for v in vals)
            self._knobs[name] = Knob(name, tuple(sorted(vals) if numeric else sorted(vals, key=str)),
                                     ordered=numeric)
        self.rng = np.random.default_rng(seed)
        self.info = BoardInfo("replay", summary.get("board"), None, None, bool(summary.get("simulated", True)),
                              {"run_dir": str(self.dir)})
        self._state: dict[str, Any] = {}

    def knobs(self) -> list[Knob]:
        return [k for n, k in self._knobs.items() if n in HARDWARE_KNOBS]

    def workload_knobs(self, workload: str) -> list[Knob]:
        if workload != self.workload:
            raise EdgetuneError(f"the replayed sweep recorded workload {self.workload!r}, not {workload!r}")
        return [k for n, k in self._knobs.items() if n not in HARDWARE_KNOBS]

    def apply(self, config: Config) -> None:
        hw = validate_hardware(config, self.knobs(), f"the replayed sweep in {self.dir}")
        self._state.update(hw.to_dict())

    def current(self) -> Config:
        return Config(self._state)

    def snapshot(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._state.items()}

    def restore(self) -> list[str]:
        self._state = {}
        return []

    def power_source(self) -> None:
        return None

    def temperatures(self) -> dict[str, float]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"board": {"kind": "replay", "profile": self.info.profile, "simulated": self.info.simulated,
                          "run_dir": str(self.dir)}, "configs": len(self.repeats)}

    def _recorded(self, config: Config) -> list[Measurement]:
        found = self.repeats.get(config)
        if not found:
            raise EdgetuneError(f"config {config.to_json()} was not recorded in the sweep in {self.dir}")
        return found

    def measure(self, workload: str, config: Config, inferences: int = 0) -> Measurement:
        """One recorded repeat of ``config``, drawn at random: the board's own noise."""
        recorded = self._recorded(config)
        picked = recorded[int(self.rng.integers(len(recorded)))]
        return Measurement.combine([picked])

    def expected(self, workload: str, config: Config, inferences: int = 0) -> Measurement:
        """The mean of every recorded repeat: the truth a replayed benchmark is judged on."""
        return Measurement.combine(self._recorded(config))

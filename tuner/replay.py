"""``--board replay:<run dir>``: a recorded surface played back as a board.

A run directory holds ``trials.csv`` (one row per measured repeat, config
columns first) and ``summary.json``: ``edgetune sweep --out`` writes one from a
board, ``edgetune import`` from measurements taken elsewhere
(:mod:`tuner.recorded`), in the same format. Played back, each "measurement"
of a config is one of its recorded repeats drawn at random, so strategies meet
the board's own noise, and the truth they are judged on is the mean of those
repeats. That lets ``edgetune bench`` choose the best strategy for *that*
board and model without touching the hardware again. A replay is as simulated
as what it plays: every repeat carries its recorded ``simulated`` flag.

The recording decides the space: a knob with more than one recorded value
(among the search rows) is searchable; a knob recorded at one value is pinned
(configs are matched without it); a knob the recording does not hold is not
there. Where the recorded configs do not fill the product of their knobs (an
incomplete grid), :meth:`ReplayBoard.covers` tells the search which exist.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from tuner.boards.base import BoardInfo, validate_hardware
from tuner.config import HARDWARE_KNOBS, UNORDERED_KNOBS, Config, Knob, Scalar
from tuner.errors import ConfigError, EdgetuneError
from tuner.measurement import Measurement
from tuner.units import parse_scalar

#: trials.csv columns that are not config knobs (see tuner.store.Run.export_csv)
RESULT_COLUMNS = ("trial", "role", "repeat", "feasible", "failure", "energy_j", "time_s", "inferences",
                  "energy_per_inference_mj", "avg_power_w", "batch_latency_p50_ms", "batch_latency_p95_ms",
                  "simulated")

#: Knobs a recording may hold that belong to the board, not the workload
#: (the nvpmodel power mode is a board setting, though no live board applies it yet).
BOARD_KNOBS = HARDWARE_KNOBS  # the knobs a board applies (power_mode among them)

#: Rows of the search itself (references and governor rows are extra: they do not
#: define the space)
SEARCH_ROLE = "search"


def _num(text: str | None, column: str, line: int, where: Path) -> float:
    if text in ("", None):
        return math.nan
    try:
        return float(text)  # type: ignore[arg-type]
    except ValueError:
        raise EdgetuneError(f"{where}, line {line}: {column} is {text!r}, not a number") from None


#: Words other tools append to a model's name to say how it was deployed, not which model
#: it is (see ``ReplayBoard.plays``).
DEPLOYMENT_QUALIFIERS = frozenset("""
    tf tensorflow keras torch pytorch jit torchscript onnx onnxruntime ort trt tensorrt tflite
    tvm openvino triton tfserving fp32 fp16 bf16 int8 int4 fp8 amp quant quantized
    dynbatch dynamic static cuda gpu cpu dla""".split())


class ReplayBoard:
    """A recorded sweep as an analytic board: a measurement is one recorded repeat of the config drawn
    at random (seeded), and the truth is the mean of its repeats."""

    computes_measurements = True  # an AnalyticBoard: the runner asks it for each repeat by workload name

    def __init__(self, run_dir: str | Path, *, seed: int | None = 0) -> None:
        self.dir = Path(run_dir)
        csv_path = self.dir / "trials.csv"
        try:
            summary = json.loads((self.dir / "summary.json").read_text())
            with csv_path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except FileNotFoundError as exc:
            raise EdgetuneError(f"{self.dir} is not a sweep run directory: {Path(exc.filename).name} is missing "
                                "(record one with `edgetune sweep --out DIR` or `edgetune import CSV --out DIR`)"
                                ) from None
        except (OSError, json.JSONDecodeError, csv.Error) as exc:
            raise EdgetuneError(f"cannot read the sweep in {self.dir}: {exc}") from None
        if not rows:
            raise EdgetuneError(f"{csv_path} has no trials")
        missing = [c for c in ("feasible", "energy_j", "time_s", "inferences") if c not in rows[0]]
        if missing:
            raise EdgetuneError(f"{csv_path} is not edgetune's trials.csv: it has no {', '.join(missing)} column "
                                "(import measurements with `edgetune import CSV --out DIR`)")
        self.summary: Dict[str, Any] = summary if isinstance(summary, dict) else {}
        self.workload = str(self.summary.get("workload"))
        knob_names = [c for c in rows[0] if c not in RESULT_COLUMNS and not c.startswith("rail_")]
        parsed = []
        search_values: Dict[str, set] = defaultdict(set)
        search_rows = 0
        empty_in_search: Dict[str, int] = defaultdict(int)
        for line, row in enumerate(rows, start=2):
            values = {k: parse_scalar(row[k]) for k in knob_names if row.get(k) not in ("", None)}
            role = row.get("role") or SEARCH_ROLE
            if role == SEARCH_ROLE:
                search_rows += 1
                for k in knob_names:
                    if k in values:
                        search_values[k].add(values[k])
                    else:
                        empty_in_search[k] += 1
            parsed.append((line, row, values))
        # pinned: one value in every search row; searchable: more than one value
        self.pinned: Dict[str, Scalar] = {k: next(iter(v)) for k, v in search_values.items()
                                          if len(v) == 1 and not empty_in_search.get(k)}
        self.searchable: Tuple[str, ...] = tuple(sorted(
            (k for k, v in search_values.items() if len(v) > 1),
            key=lambda k: (k not in BOARD_KNOBS, knob_names.index(k))))
        self.repeats: Dict[Config, List[Measurement]] = defaultdict(list)
        values_seen: Dict[str, set] = defaultdict(set)
        for line, row, values in parsed:
            config = self._strip(Config(values))
            for k, v in config.items():
                values_seen[k].add(v)
            simulated = row.get("simulated") == "1"
            if row.get("feasible") != "1":
                m = Measurement.infeasible(config, row.get("failure") or "infeasible", simulated=simulated)
            else:
                rails = {c[5:-2]: _num(row[c], c, line, csv_path) for c in row
                         if c.startswith("rail_") and row[c] not in ("", None)}
                inferences = _num(row.get("inferences"), "inferences", line, csv_path)
                m = Measurement(config=config, simulated=simulated,
                                energy_j=_num(row.get("energy_j"), "energy_j", line, csv_path),
                                time_s=_num(row.get("time_s"), "time_s", line, csv_path),
                                inferences=int(inferences) if math.isfinite(inferences) else 0,
                                rail_energy_j=rails,
                                batch_latency_p50_s=_num(row.get("batch_latency_p50_ms"), "batch_latency_p50_ms",
                                                         line, csv_path) / 1e3,
                                batch_latency_p95_s=_num(row.get("batch_latency_p95_ms"), "batch_latency_p95_ms",
                                                         line, csv_path) / 1e3)
            self.repeats[config].append(m)
        self._knobs: Dict[str, Knob] = {}
        for name, vals in values_seen.items():
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
            self._knobs[name] = Knob(name, tuple(sorted(vals) if numeric else sorted(vals, key=str)),
                                     ordered=numeric and name not in UNORDERED_KNOBS)
        self.rng = np.random.default_rng(seed)
        self.info = BoardInfo("replay", self.summary.get("board"), None, None,
                              bool(self.summary.get("simulated", True)), {"run_dir": str(self.dir)})
        self._state: Dict[str, Any] = {}

    def _strip(self, config: Config) -> Config:
        """``config`` without its pinned knobs (recorded at one value, they are not searched)."""
        if not any(k in config and config[k] == v for k, v in self.pinned.items()):
            return config
        return Config((k, v) for k, v in config.items() if not (k in self.pinned and self.pinned[k] == v))

    # --- what the recording holds ---------------------------------------------------
    def absent_reason(self, name: str) -> str:
        """Why knob ``name`` cannot be searched on this recording."""
        if name in self.pinned:
            return f"pinned at {self.pinned[name]} in the recording"
        aliases = self.summary.get("aliases") or {}
        if name in aliases:
            return f"a copy of {aliases[name]} in the recording (searched as {aliases[name]})"
        pinned = self.summary.get("pinned") or {}
        if name in pinned:
            return f"pinned at {pinned[name]} in the recording"
        if name in (self.summary.get("absent") or []):
            return "empty in the recording (not set when it was measured)"
        return "not in the recording"

    def covers(self, config: Config) -> bool:
        """Whether ``config`` was recorded (a search config, a reference, any row)."""
        return self._strip(config) in self.repeats

    def recorded_quantities(self) -> set:
        """Which of energy and time per inference the recording holds (some feasible repeat)."""
        out = set()
        for reps in self.repeats.values():
            for m in reps:
                if m.feasible and math.isfinite(m.energy_j) and m.inferences > 0:
                    out.add("energy")
                if m.feasible and math.isfinite(m.time_s) and m.inferences > 0:
                    out.add("time")
        return out

    # --- Board protocol -------------------------------------------------------------
    def knobs(self) -> List[Knob]:
        return [k for n, k in self._knobs.items() if n in BOARD_KNOBS]

    def plays(self, workload: str) -> bool:
        """Whether this recording is of ``workload``: its recorded name, or that name less
        the deployment qualifiers other tools append to a model's name (framework,
        precision, runtime, server: ``inception_v3`` finds a recording named
        ``inception_v3_tf_fp32_triton_dynbatch``). Only those words, so a model's size or
        variant (``bert`` against ``bert_tiny``) never matches another model's recording."""
        recorded = self.workload
        if workload == recorded:
            return True
        if not workload or not recorded.startswith(workload) or recorded[len(workload):][:1] not in ("_", "-"):
            return False
        rest = re.split(r"[_\-]", recorded[len(workload) + 1:].lower())
        return all(word in DEPLOYMENT_QUALIFIERS for word in rest)

    def workload_knobs(self, workload: str) -> List[Knob]:
        if not self.plays(workload):
            raise EdgetuneError(f"the replayed sweep recorded workload {self.workload!r}, not {workload!r}")
        return [k for n, k in self._knobs.items() if n not in BOARD_KNOBS]

    def apply(self, config: Config) -> None:
        hw = validate_hardware(config, self.knobs(), f"the replayed sweep in {self.dir}")
        self._state.update(hw.to_dict())

    def current(self) -> Config:
        return Config(self._state)

    def snapshot(self) -> Dict[str, str]:
        return {k: str(v) for k, v in self._state.items()}

    def restore(self) -> List[str]:
        self._state = {}
        return []

    def power_source(self) -> None:
        return None

    def temperatures(self) -> Dict[str, float]:
        return {}

    def describe(self) -> Dict[str, Any]:
        return {"board": {"kind": "replay", "profile": self.info.profile, "simulated": self.info.simulated,
                          "run_dir": str(self.dir)}, "configs": len(self.repeats),
                "searchable": list(self.searchable), "pinned": dict(self.pinned)}

    def _recorded(self, config: Config) -> List[Measurement]:
        found = self.repeats.get(self._strip(config))
        if not found:
            raise ConfigError(f"config {config.to_json()} was not recorded in the sweep in {self.dir}")
        return found

    def measure(self, workload: str, config: Config, inferences: int = 0) -> Measurement:
        """One recorded repeat of ``config``, drawn at random: the board's own noise."""
        recorded = self._recorded(config)
        picked = recorded[int(self.rng.integers(len(recorded)))]
        return Measurement.combine([picked])

    def expected(self, workload: str, config: Config, inferences: int = 0) -> Measurement:
        """The mean of every recorded repeat: the truth a replayed benchmark is judged on."""
        return Measurement.combine(self._recorded(config))

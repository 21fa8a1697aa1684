"""``edgetune import``: measurements taken elsewhere, as a run directory ``replay:`` plays.

A CSV of measurements (a perf_analyzer sweep, a lab spreadsheet, another
tool's log) becomes a run directory in the format ``edgetune sweep --out``
writes — ``edgetune.sqlite``, ``trials.csv`` (one row per repeat, config
columns first) and ``summary.json`` — so ``--board replay:DIR`` plays it like a
recorded sweep, and ``bench`` and ``tune`` search it. One format, not two.

What is read:

- CSV as spreadsheets and loggers write it (:func:`_read`): UTF-8, UTF-16 or
  Windows-1252 text; comma, semicolon, tab or bar separated; decimal commas beside
  semicolons or tabs; comment lines before the header; the summary's
  ``source.format`` says what was found;
- one row per measured setting; rows with the same setting are its repeats;
- headers in lower case, spaces and punctuation as underscores ("GPU Freq
  (MHz)" is ``gpu_freq_mhz``, "Power [W]" ``power_w``);
- knob columns by edgetune's knob names (``cpu_freq_khz``, ``gpu_freq_hz``,
  ``emc_freq_hz``, ``batch_size``, ``concurrency``, ``power_mode``,
  ``cpu_cores``, ``threads``, ...), a few spellings in other units
  (``gpu_freq_mhz``, ``nvpmodel_mode``, ...), headers in other words that
  name one quantity without doubt ("gpu_freq", "CPU clock (GHz)", "bs"; a
  missing unit is taken from the values' size, see ``_by_words``), and any
  column named by ``--map COLUMN=KNOB``. A knob column that is empty in every row is absent
  (not set when measured); one with a single value is pinned (context, not a
  knob); one that is a one-to-one copy of another knob column is the same
  dimension and is kept once (``aliases``);
- results: energy per inference (``energy_per_inference_j``), or average
  power with throughput (energy per inference = power / throughput), or
  energy with an inference count; time per inference = 1 / throughput;
  latency where present (p50, p95 — else p99, an upper bound on it — else the
  mean). A row without an energy result, or marked failed, is infeasible;
- ``simulated``: false, unless ``--simulated`` or a ``simulated`` column says
  so: data imported from elsewhere is taken as measured, and the summary
  names the file, its digest and its provenance.

Everything else is recorded, not guessed: single-valued columns as context,
varying unrecognised columns by name as ignored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tuner.config import (BATCH_SIZE, CONCURRENCY, CPU_CORES, CPU_FREQ, CPU_GOVERNOR, EMC_FREQ, GPU_FREQ,
                          GPU_GOVERNOR, PLACEMENT, POWER_MODE, Config)
from tuner.errors import EdgetuneError
from tuner.measurement import Measurement
from tuner.objective import Objective
from tuner.units import FREQ_UNITS, parse_freq, parse_scalar

IGNORE = "-"  # --map COLUMN=- leaves a column out
SOURCE_COPY = "source.csv"
RUN_FILES = ("edgetune.sqlite", "edgetune.sqlite-wal", "edgetune.sqlite-shm", "trials.csv", "summary.json",
             SOURCE_COPY)

#: knob -> (kind, native unit): "freq" values are whole numbers in the native unit
#: (or carry their own unit: 614.4MHz), "count" whole numbers, "name" any text,
#: "any" a number where it reads as one, else a name
KNOBS: Dict[str, Tuple[str, str]] = {
    CPU_FREQ: ("freq", "kHz"), GPU_FREQ: ("freq", "Hz"), EMC_FREQ: ("freq", "Hz"),
    CPU_CORES: ("count", ""), BATCH_SIZE: ("count", ""), CONCURRENCY: ("count", ""), "threads": ("count", ""),
    POWER_MODE: ("any", ""), CPU_GOVERNOR: ("name", ""), GPU_GOVERNOR: ("name", ""), PLACEMENT: ("name", ""),
    "graph": ("name", ""), "device": ("name", ""), "provider": ("name", ""),
}

#: other spellings of a knob column: column -> (knob, factor to the knob's unit)
KNOB_ALIASES: Dict[str, Tuple[str, float]] = {
    "cpu_freq_hz": (CPU_FREQ, 1e-3), "cpu_freq_mhz": (CPU_FREQ, 1e3), "cpu_freq_ghz": (CPU_FREQ, 1e6),
    "gpu_freq_khz": (GPU_FREQ, 1e3), "gpu_freq_mhz": (GPU_FREQ, 1e6), "gpu_freq_ghz": (GPU_FREQ, 1e9),
    "emc_freq_khz": (EMC_FREQ, 1e3), "emc_freq_mhz": (EMC_FREQ, 1e6),
    "nvpmodel_mode": (POWER_MODE, 1.0), "nvpmodel": (POWER_MODE, 1.0), "nvp_mode": (POWER_MODE, 1.0),
    "batch": (BATCH_SIZE, 1.0), "num_threads": ("threads", 1.0),
}

#: when two knob columns are one-to-one copies, the earlier here is kept; batch
#: size last: beside concurrency under dynamic batching it is what a server formed
KEEP_ORDER = (CPU_FREQ, GPU_FREQ, EMC_FREQ, POWER_MODE, CPU_CORES, CPU_GOVERNOR, GPU_GOVERNOR, CONCURRENCY,
              "threads", PLACEMENT, "graph", "device", "provider")

# result fields: energy per inference (J), energy (J), inferences, time (s), time per
# inference (s), power (W), throughput (/s), latencies (s), flags
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
RESULTS: Dict[str, Tuple[str, float]] = {
    "energy_per_inference_j": ("epi", 1.0), "energy_per_inference_mj": ("epi", 1e-3),
    "energy_per_inf_j": ("epi", 1.0), "joules_per_inference": ("epi", 1.0),
    "energy_j": ("energy", 1.0), "energy_mj": ("energy", 1e-3), "inferences": ("inferences", 1.0),
    "time_s": ("time", 1.0), "time_ms": ("time", 1e-3),
    "time_per_inference_s": ("tpi", 1.0), "time_per_inference_ms": ("tpi", 1e-3),
    "power_w": ("power", 1.0), "avg_power_w": ("power", 1.0), "power_mw": ("power", 1e-3),
    "avg_power_mw": ("power", 1e-3),
    "throughput_ips": ("throughput", 1.0), "throughput_inf_per_s": ("throughput", 1.0),
    "throughput_per_s": ("throughput", 1.0), "throughput": ("throughput", 1.0),
    "inferences_per_s": ("throughput", 1.0), "fps": ("throughput", 1.0), "throughput_fps": ("throughput", 1.0),
    "inferences_per_second": ("throughput", 1.0), "inferences_second": ("throughput", 1.0),
    "throughput_inf_s": ("throughput", 1.0), "mean_power_w": ("power", 1.0), "mean_power_mw": ("power", 1e-3),
    "simulated": ("simulated", 1.0), "feasible": ("feasible", 1.0), "failure": ("failure", 1.0),
    "error": ("failure", 1.0),
}
for _unit, _factor in _UNITS.items():
    RESULTS[f"latency_{_unit}"] = ("latency", _factor)
    RESULTS[f"latency_mean_{_unit}"] = ("latency", _factor)
    for _q in (50, 95, 99):
        for _name in (f"latency_p{_q}", f"latency_client_p{_q}", f"client_latency_p{_q}", f"p{_q}_latency",
                      f"batch_latency_p{_q}"):
            RESULTS[f"{_name}_{_unit}"] = (f"p{_q}", _factor)

#: columns naming what was measured rather than a setting
META = {"board": "board", "workload": "workload", "model": "workload"}

# --- headers the tables above do not spell: read by their words -----------------------------
# Spreadsheets and other tools name the same quantities many ways ("gpu_freq", "GPU clock
# (MHz)", "throughput (img/s)", "energy per image (mJ)", "avg power"). A header the tables do
# not hold is read by its words, when they name one quantity without doubt; a header that
# names a frequency or a power without its unit takes the unit its values' magnitude implies
# (the summary's ``units_inferred`` says which), since a Jetson's clocks lie between 10 MHz and
# 5 GHz and its power between 0.5 W and 100 W, and no unit puts two of those ranges on the
# same numbers. Anything still unclear stays unrecognised, for --map.
_FREQ_OF = {"cpu": CPU_FREQ, "gpu": GPU_FREQ, "emc": EMC_FREQ, "mem": EMC_FREQ, "memory": EMC_FREQ,
            "ram": EMC_FREQ, "dram": EMC_FREQ}
_FREQ_WORD = re.compile(r"(?P<dev>cpu|gpu|emc|mem|memory|ram|dram)_?(?P<word>freq|frequency|clock|clk|clock_rate)?"
                        r"(?:_(?P<unit>hz|khz|mhz|ghz))?")
_PER_SECOND = r"(?:_per)?_(?:s|sec|second|seconds)"
_ITEMS = r"(?:inferences|inference|infer|inf|images|image|imgs|img|samples|sample|frames|frame|queries|query|items)"
# "inference (s)" is a duration: a count per second needs a plural, or "per"
_PLURAL = r"(?:inferences|infer|inf|images|imgs|img|samples|frames|queries|items)"
_THROUGHPUT = re.compile(rf"(?:throughput|tput)(?:_{_ITEMS})?(?:{_PER_SECOND}|_fps|_qps|_ips)?|fps|qps|ips"
                         rf"|{_ITEMS}_per_(?:s|sec|second)|{_PLURAL}_(?:s|sec|second)")
# "energy/inference (mJ)" and "inference energy (mJ)" are per inference too: with one item
# in the singular ("energy_inferences_j" could be the energy of all of them, and is not read)
_ONE = r"(?:inference|infer|inf|image|img|sample|frame|query|item)"
_EPI = re.compile(rf"(?:energy|e)_per_{_ITEMS}_(?P<unit>j|mj|uj)|(?P<unit2>j|mj|uj)_per_{_ITEMS}"
                  rf"|epi_(?P<unit3>j|mj|uj)|energy_{_ONE}_(?P<unit4>j|mj|uj)|{_ONE}_energy_(?P<unit5>j|mj|uj)")
# the board's power, or tegrastats' name for the module's input rail (VDD_IN; POM_5V_IN on a
# Nano), which is what the board draws; never one rail's (gpu_power, VDD_CPU_GPU_CV)
_POWER_WHICH = r"(?:avg|average|mean|total|board|input|in)"
_POWER = re.compile(rf"(?:(?:{_POWER_WHICH}_)?power(?:_{_POWER_WHICH})?|vdd_in|pom_5v_in)(?:_(?P<unit>w|mw))?")
_LATENCY = re.compile(r"(?:(?P<q>avg|average|mean|median|p50|p95|p99)_)?(?:client_|server_|batch_)?latency"
                      r"(?:_(?P<q2>avg|average|mean|median|p50|p95|p99))?_(?P<unit>s|ms|us)")
_ENERGY_UNITS = {"j": 1.0, "mj": 1e-3, "uj": 1e-6}
# a count of inferences run (beside a total energy and a duration); never of a sensor's
# samples, nor of requests or queries, each of which may carry a batch
_COUNTED = r"(?:inferences|images|frames)"
_COUNT = re.compile(rf"(?:(?:num|n|number_of|total|count_of)_)?{_COUNTED}|{_ONE}_count|{_COUNTED}_count")
# how long a measured run lasted, as a time over the inference count
_DURATION = re.compile(r"(?:duration|elapsed|elapsed_time|wall_time|run_time|runtime|total_time)_(?P<unit>s|ms)")
_QUANTILE = {"avg": "latency", "average": "latency", "mean": "latency", "median": "p50", "p50": "p50",
             "p95": "p95", "p99": "p99", None: "latency"}
_OTHER_KNOBS = {"bs": BATCH_SIZE, "batchsize": BATCH_SIZE, "batch_sz": BATCH_SIZE, "concurrency_level": CONCURRENCY,
                "conc": CONCURRENCY, "concurrent_requests": CONCURRENCY,
                "cores": CPU_CORES, "num_cores": CPU_CORES, "n_cores": CPU_CORES, "online_cores": CPU_CORES}


def _by_words(key: str) -> Optional[Tuple[str, str, Optional[float]]]:
    """("knob", KNOB, factor) or ("result", FIELD, factor) for a header the tables do not
    hold, read by its words; factor None where the header gives no unit and the values'
    magnitude must (:func:`_unit_by_magnitude`). None where the words are unclear."""
    if key in _OTHER_KNOBS:
        return "knob", _OTHER_KNOBS[key], 1.0
    m = _FREQ_WORD.fullmatch(key)
    if m and (m.group("word") or m.group("unit")):
        knob = _FREQ_OF[m.group("dev")]
        unit = m.group("unit")
        return "knob", knob, _freq_factor(unit, knob) if unit else None
    if _THROUGHPUT.fullmatch(key):
        return "result", "throughput", 1.0
    m = _EPI.fullmatch(key)
    if m:
        return "result", "epi", _ENERGY_UNITS[next(u for u in m.groups() if u)]
    if _COUNT.fullmatch(key):
        return "result", "inferences", 1.0
    m = _DURATION.fullmatch(key)
    if m:
        return "result", "time", _UNITS[m.group("unit")]
    m = _POWER.fullmatch(key)
    if m:
        return "result", "power", (1.0 if m.group("unit") == "w" else 1e-3) if m.group("unit") else None
    m = _LATENCY.fullmatch(key)
    if m and not (m.group("q") and m.group("q2")):
        return "result", _QUANTILE[m.group("q") or m.group("q2")], _UNITS[m.group("unit")]
    return None


def _unit_by_magnitude(quantity: str, cells: List[str]) -> Tuple[float, Optional[str]]:
    """The factor to ``quantity``'s unit (a frequency knob's, or the power field's W), and
    the unit's name, that the numbers in ``cells`` imply (see the comment above
    ``_FREQ_OF``): by their largest value. (1, None) when no cell is a number: an empty
    column, or values that carry their own unit (614.4MHz)."""
    numbers = []
    for cell in cells:
        try:
            numbers.append(abs(float(cell)))
        except ValueError:
            continue
    top = max((v for v in numbers if math.isfinite(v)), default=None)
    if top is None:
        return 1.0, None
    if quantity == "power":
        return (1e-3, "mW") if top >= 1000 else (1.0, "W")
    unit = next((u for limit, u in ((20.0, "GHz"), (2e4, "MHz"), (2e7, "kHz")) if top < limit), "Hz")
    return _freq_factor(unit, quantity), unit


def _freq_factor(unit: str, knob: str) -> float:
    """How many of frequency ``knob``'s own unit (``KNOBS``: kHz for the CPU, Hz else) one ``unit`` is."""
    return FREQ_UNITS[unit.lower()] / FREQ_UNITS[KNOBS[knob][1].lower()]


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


#: unit spellings a header may use, as the names above spell them; the micro sign becomes u
#: (µs is us), never nothing, so "Energy (µJ)" stays unrecognised rather than read as joules
_SPELLINGS = (("µ", "u"), ("μ", "u"), ("usec", "us"), ("msec", "ms"))


def _key(column: str) -> str:
    """A header as edgetune reads it: lower case, every run of spaces and punctuation one
    underscore — "GPU Freq (MHz)" is gpu_freq_mhz, "Power [W]" power_w, "Latency p95
    (µs)" latency_p95_us, perf_analyzer's "Inferences/Second" inferences_second — so a
    spreadsheet's headers need no --map where the words are edgetune's."""
    key = column.strip().lower()
    for spelled, unit in _SPELLINGS:
        key = key.replace(spelled, unit)
    return re.sub(r"[^a-z0-9]+", "_", key).strip("_")


def parse_maps(items: Sequence[str]) -> Dict[str, str]:
    """``--map COLUMN=KNOB`` (or ``COLUMN=FIELD``, ``COLUMN=-``) pairs."""
    maps: Dict[str, str] = {}
    for item in items:
        column, sep, target = item.rpartition("=")
        column, target = column.strip(), target.strip().lower()
        if not sep or not column or not target:
            raise EdgetuneError(f"--map takes COLUMN=KNOB (or COLUMN=- to leave a column out), not {item!r}")
        if target != IGNORE and not _NAME.fullmatch(target):
            raise EdgetuneError(f"--map {item!r}: {target!r} is not a knob name (lowercase, e.g. gpu_freq_hz)")
        if column in maps:
            raise EdgetuneError(f"--map names column {column!r} twice")
        maps[column] = target
    return maps


def _truth(text: str, column: str, line: int) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise EdgetuneError(f"line {line}: {column} is {text!r}; write 1/0, true/false or yes/no")


class _Reader:
    """One CSV's columns, classified."""

    def __init__(self, path: Path, header: List[str], rows: List[Dict[str, str]], maps: Dict[str, str]) -> None:
        self.path = path
        self.rows = rows
        unknown = [c for c in maps if c not in header]
        if unknown:
            raise EdgetuneError(f"--map names column {unknown[0]!r}, which {path.name} does not have; its columns: "
                                f"{', '.join(header)}")
        self.knob_cols: Dict[str, Tuple[str, float]] = {}  # column -> (knob, factor)
        self.result_cols: Dict[str, List[Tuple[str, float]]] = {}  # field -> [(column, factor)] in header order
        self.meta_cols: Dict[str, str] = {}  # "board"/"workload" -> column
        self.other: List[str] = []
        self.dropped: List[str] = []
        self.mapped: Dict[str, str] = dict(maps)
        self.inferred: Dict[str, Dict[str, str]] = {}  # column -> the quantity, and the unit its values imply
        targets: Dict[str, str] = {}
        for column in header:
            target = maps.get(column, _key(column))
            if target == IGNORE:
                self.dropped.append(column)
                continue
            kind, name, factor = self._classify(column, target, column in maps)
            if factor is None:  # a frequency or power whose header gives no unit
                factor, unit = _unit_by_magnitude(name, self.values(column))
                if unit is not None:
                    self.inferred[column] = OrderedDict([("quantity", name), ("unit", unit)])
            if kind == "knob":
                if name in targets:
                    raise EdgetuneError(f"columns {targets[name]!r} and {column!r} would both be knob {name}; "
                                        f"leave one out with --map {column!r}=-")
                targets[name] = column
                self.knob_cols[column] = (name, factor)
            elif kind == "result":
                self.result_cols.setdefault(name, []).append((column, factor))
            elif kind == "meta" and name not in self.meta_cols:
                self.meta_cols[name] = column
            else:
                self.other.append(column)

    @staticmethod
    def _classify(column: str, target: str, mapped: bool) -> Tuple[str, str, Optional[float]]:
        """(kind, name, factor): a knob, a result field, a meta column or other; the tables
        first, then (for a header not --map'ed) its words."""
        if target in KNOBS or target in KNOB_ALIASES or (mapped and target not in RESULTS and target not in META):
            knob, factor = KNOB_ALIASES.get(target, (target, 1.0))
            return "knob", knob, factor
        if target in RESULTS:
            return ("result",) + RESULTS[target]
        if target in META:
            return "meta", META[target], 1.0
        words = None if mapped else _by_words(target)
        return words if words is not None else ("other", column, 1.0)

    def column(self, field: str) -> Optional[Tuple[str, float]]:
        found = self.result_cols.get(field)
        return found[0] if found else None

    def values(self, column: str) -> List[str]:
        return [(row.get(column) or "").strip() for row in self.rows]


def _number(text: str, column: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise EdgetuneError(f"line {line}: {column} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise EdgetuneError(f"line {line}: {column} is {text!r}, not a finite number")
    return value


def _knob_value(text: str, knob: str, factor: float, column: str, line: int) -> Any:
    kind, unit = KNOBS.get(knob, ("any", ""))
    if kind == "name":
        return text
    if kind == "any":
        value = parse_scalar(text)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return value * factor if isinstance(value, (int, float)) and factor != 1.0 else value
    try:
        number = float(text) * factor
    except ValueError:
        if kind == "freq" and re.fullmatch(r"\s*[0-9.]+\s*[a-zA-Z]+\s*", text):
            return parse_freq(text, unit)  # a value that carries its own unit: 614.4MHz
        raise EdgetuneError(f"line {line}: {column} is {text!r}, not a number ({knob} takes numbers"
                            + (f" in {unit}" if unit else "") + ")") from None
    if not math.isfinite(number) or abs(number - round(number)) > 1e-6 * max(1.0, abs(number)):
        raise EdgetuneError(f"line {line}: {column} is {text!r}; {knob} takes whole numbers"
                            + (f" of {unit}" if unit else ""))
    return int(round(number))


#: Field separators a CSV may use, in the order they are tried: a spreadsheet set to a
#: language that writes a decimal comma saves "CSV" with semicolons, and loggers write tabs.
DELIMITERS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"\s*[-+]?[0-9]+,[0-9]+(?:[eE][-+]?[0-9]+)?\s*")
_DECIMAL_POINT = re.compile(r"\s*[-+]?[0-9]*\.[0-9]+(?:[eE][-+]?[0-9]+)?\s*")


def _decode(data: bytes) -> Tuple[str, str]:
    """The text and the encoding it was read in: UTF-16 where a byte order mark says so
    (a spreadsheet's "Unicode text"), else UTF-8 (with or without its mark), else
    Windows-1252 — what a spreadsheet on Windows saves as "CSV", where "°C" or "µJ" in a
    header is not UTF-8 — else Latin-1, which reads any bytes."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), "utf-8" if encoding == "utf-8-sig" else encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def _delimiter(sample: List[str]) -> str:
    """The separator that splits the header and the lines after it (``sample``) into the
    same number of fields, more than one: the first of ``DELIMITERS`` that does; a comma
    where none does, so that a malformed file fails on a line edgetune can name."""
    for delimiter in DELIMITERS:
        try:
            counts = [len(fields) for fields in csv.reader(sample, delimiter=delimiter) if fields]
        except csv.Error:
            continue
        if counts and counts[0] > 1 and all(c == counts[0] for c in counts):
            return delimiter
    return ","


def _read(path: Path) -> Tuple[bytes, List[str], List[Dict[str, str]], List[int], Dict[str, Any]]:
    """The file's bytes, its header, its rows (column -> text), each row's line number in
    the file, and the format found (``encoding``, ``delimiter``, ``decimal``, ``comment_lines``).

    Read as spreadsheets and loggers write CSV, not only as edgetune does: in UTF-8,
    UTF-16 or a Windows spreadsheet's code page (:func:`_decode`); comment lines
    (``#``) and blank lines before the header are skipped (numpy's ``savetxt`` header, a
    comment above rows of numbers only, is the header); the separator is found
    (``DELIMITERS``); where it is not a comma and the numbers are written with a decimal
    comma (2,26, and no 2.26 anywhere), they are read as decimal points; columns with no
    header and no values (a spreadsheet's trailing separators) are left out."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EdgetuneError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise EdgetuneError(f"{path} is a directory, not a CSV file") from None
    except OSError as exc:
        raise EdgetuneError(f"cannot read {path}: {exc.strerror or exc}") from None
    text, encoding = _decode(data)
    if "\x00" in text:
        raise EdgetuneError(f"{path} is not text (it holds NUL bytes): a CSV file is")
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and (not lines[skip].strip() or lines[skip].lstrip().startswith("#")):
        skip += 1
    comments = sum(1 for line in lines[:skip] if line.strip())
    delimiter = _delimiter(lines[skip:skip + 20])
    try:
        reader = csv.reader(io.StringIO("".join(lines[skip:]), newline=""), delimiter=delimiter)
        table = []
        for fields in reader:
            if any(f.strip() for f in fields):
                table.append((skip + reader.line_num, fields))
        # numpy's savetxt writes its header as a comment ("# a,b,c") above rows of numbers only:
        # a last comment line with as many fields as the first row, which holds no name, is the header
        last = next((line for line in reversed(lines[:skip]) if line.strip()), None)
        if table and last is not None and all(_is_number(f) for f in table[0][1]):
            named = next(csv.reader([last.lstrip()[1:]], delimiter=delimiter))
            if len(named) == len(table[0][1]) > 1:
                table.insert(0, (skip, named))
                comments -= 1
    except csv.Error as exc:
        raise EdgetuneError(f"{path} is not a readable CSV: {exc}") from None
    if not table:
        raise EdgetuneError(f"{path} is empty: no header row")
    header_fields = [h.strip() for h in table[0][1]]
    body = table[1:]
    width = max([len(header_fields)] + [len(fields) for _, fields in body])
    header_fields += [""] * (width - len(header_fields))
    unnamed = [j for j, h in enumerate(header_fields) if not h]
    for j in unnamed:
        filled = next((line for line, fields in body if j < len(fields) and fields[j].strip()), None)
        if filled is not None:
            raise EdgetuneError(f"{path}: line {filled} has a value in column {j + 1}, which has no header")
    keep = [j for j, h in enumerate(header_fields) if h]
    header = [header_fields[j] for j in keep]
    if len(set(header)) != len(header):
        twice = sorted({h for h in header if header.count(h) > 1})
        raise EdgetuneError(f"{path}: column {twice[0]!r} appears twice in the header")
    if not body:
        raise EdgetuneError(f"{path} has a header but no rows")
    cells = [[fields[j] if j < len(fields) else "" for j in keep] for _, fields in body]
    decimal = "."
    if delimiter != "," and any(_DECIMAL_COMMA.fullmatch(c) for row in cells for c in row) \
            and not any(_DECIMAL_POINT.fullmatch(c) for row in cells for c in row):
        decimal = ","
        cells = [[c.replace(",", ".") if _DECIMAL_COMMA.fullmatch(c) else c for c in row] for row in cells]
    rows = [dict(zip(header, row)) for row in cells]
    fmt = OrderedDict([("encoding", encoding), ("delimiter", delimiter), ("decimal", decimal),
                       ("comment_lines", comments)])
    return data, header, rows, [line for line, _ in body], fmt


def _single(values: List[str]) -> Optional[str]:
    distinct = {v for v in values}
    return next(iter(distinct)) if len(distinct) == 1 else None


def import_csv(source: str | Path, out: str | Path, *, workload: Optional[str] = None, board: Optional[str] = None,
               maps: Sequence[str] = (), simulated: bool = False, provenance: Optional[str] = None
               ) -> Dict[str, Any]:
    """Read ``source`` and write the run directory ``out``; returns its summary."""
    from tuner.measurement import Trial
    from tuner.store import SEARCH, Store

    path = Path(source)
    data, header, rows, line_of, fmt = _read(path)
    r = _Reader(path, header, rows, parse_maps(maps))

    # --- results: how energy and time per inference are derived (one way per file) ------
    def col(field: str) -> Optional[Tuple[str, float]]:
        return r.column(field)

    energy_how: Optional[Tuple[str, Callable[[Dict[str, float]], float]]] = None
    if col("epi"):
        energy_how = (f"column {col('epi')[0]}", lambda v: v["epi"])  # type: ignore[index]
    elif col("power") and col("throughput"):
        energy_how = (f"{col('power')[0]} / {col('throughput')[0]}",  # type: ignore[index]
                      lambda v: v["power"] / v["throughput"])
    elif col("energy") and col("inferences"):
        energy_how = (f"{col('energy')[0]} / {col('inferences')[0]}",  # type: ignore[index]
                      lambda v: v["energy"] / v["inferences"])
    elif col("power") and col("tpi"):
        energy_how = (f"{col('power')[0]} x {col('tpi')[0]}", lambda v: v["power"] * v["tpi"])  # type: ignore[index]
    if energy_how is None:
        has = ", ".join(sorted(f for f in r.result_cols if f not in ("simulated", "feasible", "failure"))) or "none"
        raise EdgetuneError(f"{path.name} has no result columns edgetune can use: it needs energy per inference "
                            "(energy_per_inference_j), or power (power_w) with throughput (throughput_ips), or "
                            f"energy_j with inferences (recognised results here: {has}; name others with "
                            "--map COLUMN=FIELD, e.g. --map 'Avg W=power_w')")
    time_how: Optional[Tuple[str, Callable[[Dict[str, float]], float]]] = None
    if col("throughput"):
        time_how = (f"1 / {col('throughput')[0]}", lambda v: 1.0 / v["throughput"])  # type: ignore[index]
    elif col("tpi"):
        time_how = (f"column {col('tpi')[0]}", lambda v: v["tpi"])  # type: ignore[index]
    elif col("time") and col("inferences"):
        time_how = (f"{col('time')[0]} / {col('inferences')[0]}",  # type: ignore[index]
                    lambda v: v["time"] / v["inferences"])
    # the latency fields a Measurement has (p50, p95), from the best column recorded
    p50 = next((f for f in ("p50", "latency") if col(f)), None)
    p95 = next((f for f in ("p95", "p99", "latency") if col(f)), None)
    why = {"p50": "", "p95": "", "p99": " (the p99: an upper bound on the p95)",
           "latency": " (the mean: no percentile recorded)"}
    results = OrderedDict([
        ("energy_per_inference_j", energy_how[0]),
        ("time_per_inference_s", time_how[0] if time_how else None),
        ("latency_p50_s", None if p50 is None else f"column {col(p50)[0]}{why[p50]}"),  # type: ignore[index]
        ("latency_p95_s", None if p95 is None else f"column {col(p95)[0]}{why[p95]}"),  # type: ignore[index]
    ])
    if time_how is None:
        results["note"] = "no throughput or time column: the time, edp and power objectives cannot be replayed"

    # --- knobs: absent, pinned, copies, searched -------------------------------------
    absent: List[str] = []
    pinned: Dict[str, Any] = {}
    varied: Dict[str, List[Any]] = OrderedDict()  # knob -> value per row
    knob_column: Dict[str, str] = {}
    for column, (knob, factor) in r.knob_cols.items():
        cells = r.values(column)
        empty = [line_of[i] for i, c in enumerate(cells) if c == ""]
        if len(empty) == len(cells):
            absent.append(knob)
            continue
        if empty:
            shown = ", ".join(str(n) for n in empty[:5]) + (" ..." if len(empty) > 5 else "")
            raise EdgetuneError(f"{path.name}: knob column {column} is empty on line(s) {shown}; a knob needs a "
                                "value in every row, or none (leave it out with --map "
                                f"{column!r}=-)")
        parsed = [_knob_value(c, knob, factor, column, line_of[i]) for i, c in enumerate(cells)]
        if len(set(parsed)) == 1:
            pinned[knob] = parsed[0]
        else:
            varied[knob] = parsed
            knob_column[knob] = column
    aliases: Dict[str, str] = {}
    rank = {k: i for i, k in enumerate(KEEP_ORDER)}
    order = sorted(varied, key=lambda k: (k == BATCH_SIZE, rank.get(k, len(rank)), k))
    for i, keep in enumerate(order):
        if keep in aliases:
            continue
        for other in order[i + 1:]:
            if other in aliases:
                continue
            pairs = set(zip(varied[keep], varied[other]))
            if len(pairs) == len(set(varied[keep])) == len(set(varied[other])):  # one-to-one
                aliases[other] = keep
    knobs = [k for k in order if k not in aliases]
    if not knobs:
        held = ", ".join(f"{k}={v}" for k, v in pinned.items()) or "none"
        raise EdgetuneError(f"{path.name} varies no knob (pinned: {held}): every row is the same setting, so "
                            "there is nothing to search; name knob columns with --map COLUMN=KNOB")

    # --- context: board, workload and single-valued columns ---------------------------
    context: Dict[str, Any] = {}
    ignored: List[str] = []
    names: Dict[str, Optional[str]] = {"board": board, "workload": workload}
    for what, column in r.meta_cols.items():
        value = _single(r.values(column))
        if value is None:
            raise EdgetuneError(f"{path.name} holds several {what}s in column {column} "
                                f"({', '.join(sorted(set(r.values(column)))[:4])}); import one at a time")
        if names[what] is None and value:
            names[what] = value
        elif value:
            context[column] = value
    for column in r.other + [c for f in r.result_cols.values() for c, _ in f[1:]]:
        value = _single(r.values(column))
        if value is not None:
            if value:
                context[column] = parse_scalar(value)
        else:
            ignored.append(column)
    workload_name = names["workload"] or path.stem
    board_name = names["board"] or "unknown"

    # --- rows -> repeats ----------------------------------------------------------------
    sim_col = col("simulated")
    failure_col = col("failure")
    ok_col = col("feasible")
    need = {"epi", "power", "throughput", "energy", "inferences", "tpi", "time", "p50", "p95", "p99", "latency"}
    repeats: Dict[Config, List[Measurement]] = OrderedDict()
    lines_of: Dict[Config, List[int]] = {}  # the rows behind each setting
    n_infeasible = 0
    for i, row in enumerate(rows):
        line = line_of[i]
        config = Config({k: varied[k][i] for k in knobs})
        values: Dict[str, float] = {}
        for field in need:
            found = col(field)
            if found is None:
                continue
            text = (row.get(found[0]) or "").strip()
            if text == "":
                values[field] = math.nan
                continue
            values[field] = _number(text, found[0], line) * found[1]
        sim = simulated or (sim_col is not None and _truth(row.get(sim_col[0]) or "", sim_col[0], line))
        failure = (row.get(failure_col[0]) or "").strip() if failure_col else ""
        if ok_col is not None and not _truth(row.get(ok_col[0]) or "1", ok_col[0], line) and not failure:
            failure = "infeasible (as recorded)"
        with_nan = dict(values)
        try:
            epi = energy_how[1](with_nan)
        except (KeyError, ZeroDivisionError):
            epi = math.nan
        if not failure and not (epi == epi):
            failure = "no result recorded"
        if not failure and not epi > 0:
            raise EdgetuneError(f"line {line}: energy per inference is {epi:g} J ({energy_how[0]}); it must be "
                                "positive")
        if failure:
            n_infeasible += 1
            m = Measurement.infeasible(config, failure, simulated=sim)
        else:
            try:
                tpi = time_how[1](with_nan) if time_how else math.nan
            except (KeyError, ZeroDivisionError):
                tpi = math.nan
            # a count of inferences where recorded, else results per one inference
            count = values.get("inferences", math.nan)
            n = int(round(count)) if count == count and count >= 1 else 1
            m = Measurement(config=config, simulated=sim, energy_j=epi * n,
                            time_s=tpi * n if tpi > 0 else math.nan, inferences=n,
                            batch_latency_p50_s=values.get(p50, math.nan) if p50 else math.nan,
                            batch_latency_p95_s=values.get(p95, math.nan) if p95 else math.nan)
        repeats.setdefault(config, []).append(m)
        lines_of.setdefault(config, []).append(i)
    # an ignored column whose values differ between rows taken as repeats of one setting may be
    # a setting itself (a knob in words edgetune does not read): say so, as the repeats would hide it
    differ = [c for c in ignored if any(len({rows[i].get(c) for i in g}) > 1 for g in lines_of.values())]

    # --- the run directory ----------------------------------------------------------------
    out_dir = Path(out)
    _prepare(out_dir)
    domains = OrderedDict((k, sorted(set(varied[k]), key=_order)) for k in knobs)
    size = 1
    for values_ in domains.values():
        size *= len(values_)
    counts = [len(v) for v in repeats.values()]
    any_sim = any(m.simulated for reps in repeats.values() for m in reps)
    objective = Objective()
    best_trial, best_cost = None, math.inf
    trials = []
    for config, reps in repeats.items():
        trial = Trial(config, Measurement.combine(reps), reps)
        cost = objective.cost(trial.measurement)
        trials.append((trial, cost))
        if cost < best_cost:
            best_trial, best_cost = trial, cost
    store = Store(out_dir / "edgetune.sqlite")
    try:
        run = store.open_run("import", board_name, workload_name, any_sim,
                             {"source": hashlib.sha256(data).hexdigest(), "maps": dict(r.mapped)})
        for trial, cost in trials:
            run.add(trial, cost, SEARCH)
        n_rows = run.export_csv(out_dir / "trials.csv")
        (out_dir / SOURCE_COPY).write_bytes(data)
        summary: Dict[str, Any] = OrderedDict([
            ("kind", "import"),
            ("board", board_name),
            ("workload", workload_name),
            ("simulated", any_sim),
            ("objective", "energy"),
            ("source", OrderedDict([("file", str(path.resolve())), ("sha256", hashlib.sha256(data).hexdigest()),
                                    ("rows", len(rows)), ("format", fmt), ("copy", SOURCE_COPY),
                                    ("provenance", provenance),
                                    ("simulated_from", "--simulated" if simulated else
                                     f"column {sim_col[0]}" if sim_col else "default: measured, not simulated")])),
            ("knobs", OrderedDict((k, list(v)) for k, v in domains.items())),
            ("knob_columns", OrderedDict((k, knob_column[k]) for k in knobs)),
            ("pinned", pinned),
            ("absent", absent),
            ("aliases", aliases),
            ("context", context),
            ("ignored_columns", ignored + r.dropped),
            ("units_inferred", OrderedDict(r.inferred)),
            ("results", results),
            ("space_size", len(repeats)),
            ("grid_size", size),
            ("complete", len(repeats) == size),
            ("n_trials", len(repeats)),
            ("n_rows", len(rows)),
            ("n_infeasible", n_infeasible),
            ("repeats", {"min": min(counts), "max": max(counts)}),
            ("differ_within_repeats", differ),
            ("best", _point(best_trial)),
            ("best_cost", best_cost if math.isfinite(best_cost) else None),
            ("dvfs", None),
            ("saving_vs_dvfs", None),
            ("latency_cost_vs_dvfs", None),
            ("run_dir", str(out_dir)),
            ("trials_csv_rows", n_rows),
            ("replay", f"edgetune bench --board replay:{out_dir} --workload {workload_name}"),
        ])
        from tuner.report import finite_json, write_summary

        summary = finite_json(summary)
        run.set_summary(summary)
        write_summary(out_dir, summary)
    finally:
        store.close()
    return summary


def _order(value: Any) -> Tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _point(trial: Any) -> Optional[Dict[str, Any]]:
    """The best recorded setting, with the keys of a sweep's ``best``."""
    if trial is None:
        return None
    m = trial.measurement
    return OrderedDict([
        ("config", trial.config.to_dict()), ("energy_j", m.energy_j), ("time_s", m.time_s),
        ("inferences", m.inferences), ("energy_per_inference_mj", m.energy_per_inference_j * 1e3),
        ("avg_power_w", m.avg_power_w), ("throughput_ips", m.throughput_ips),
        ("batch_latency_p50_ms", m.batch_latency_p50_s * 1e3), ("batch_latency_p95_ms", m.batch_latency_p95_s * 1e3),
        ("repeats", m.repeats), ("energy_spread", m.energy_spread),
    ])


def _prepare(out: Path) -> None:
    """Make ``out`` ready: new, empty, or an earlier import (replaced). Another kind of run is kept."""
    import json

    if out.exists() and not out.is_dir():
        raise EdgetuneError(f"--out {out} is a file, not a directory")
    summary = out / "summary.json"
    if summary.exists():
        try:
            kind = json.loads(summary.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind != "import":
            raise EdgetuneError(f"{out} already holds a run ({kind or 'unknown kind'}); import into another "
                                "directory")
        for name in RUN_FILES:
            (out / name).unlink() if (out / name).exists() else None
    elif (out / "trials.csv").exists():
        raise EdgetuneError(f"{out} already holds a trials.csv; import into another directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgetuneError(f"cannot create {out}: {exc.strerror or exc}") from None

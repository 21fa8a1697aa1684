"""Knobs, spaces and configs: the vocabulary every other module speaks.

A :class:`Knob` is one controllable dimension with an ordered, finite domain.
Order matters: strategies exploit that neighbouring frequencies behave alike,
so frequency knobs keep the device's ascending order and are searched by index.
A :class:`Config` is one point, immutable and hashable so that it can key
stores and caches, and JSON round-trippable so that it can be journalled,
stored and sent over the control socket.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

from tuner.errors import ConfigError

# Knob names with a fixed meaning across boards and workloads (DESIGN §3).
CPU_FREQ = "cpu_freq_khz"
GPU_FREQ = "gpu_freq_hz"
EMC_FREQ = "emc_freq_hz"
CPU_CORES = "cpu_cores"
CPU_GOVERNOR = "cpu_governor"
GPU_GOVERNOR = "gpu_governor"
BATCH_SIZE = "batch_size"
#: The batch sizes searched when none are named (``tune``, ``sweep``, ``bench`` and the
#: daemon alike): the reference study's. Larger ones a workload offers rarely pay (energy
#: per inference flattens by 64, latency doubles); smaller ones cost minutes a trial on a
#: Nano. Those the workload does not offer are dropped; none offered: its whole domain.
DEFAULT_BATCH_SIZES = (8, 16, 32, 64)
CONCURRENCY = "concurrency"
PLACEMENT = "placement"
POWER_MODE = "power_mode"  # an nvpmodel mode id: caps the clocks (and sets the cores) as one preset

#: Knobs a board applies; everything else belongs to the workload.
HARDWARE_KNOBS = frozenset({CPU_FREQ, GPU_FREQ, EMC_FREQ, CPU_CORES, CPU_GOVERNOR, GPU_GOVERNOR, POWER_MODE})
#: Knobs whose values are names of presets or choices, not points on a scale, even where
#: they are numbered: an nvpmodel mode id names a preset (a power budget with a core count
#: and clock caps), and neighbouring ids need not be neighbouring budgets. Strategies must
#: not assume that neighbouring ids behave alike.
UNORDERED_KNOBS = frozenset({CPU_GOVERNOR, GPU_GOVERNOR, PLACEMENT, POWER_MODE})

Scalar = Union[int, float, str, bool]


@dataclass(frozen=True)
class Knob:
    """One dimension: a name, its allowed values in order, and a unit.

    ``ordered`` is True for numeric knobs (frequencies, batch sizes) whose
    neighbours are related, False for categorical ones (governor, placement).
    """

    name: str
    values: tuple[Scalar, ...]
    unit: str = ""
    ordered: bool = True

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError(f"knob {self.name!r} has an empty domain")
        if len(set(self.values)) != len(self.values):
            raise ConfigError(f"knob {self.name!r} has duplicate values")
        if self.ordered and list(self.values) != sorted(self.values):  # type: ignore[type-var]
            object.__setattr__(self, "values", tuple(sorted(self.values)))  # type: ignore[type-var]

    def __len__(self) -> int:
        return len(self.values)

    def index(self, value: Scalar) -> int:
        """Position of ``value`` in the domain; a clear error if absent."""
        try:
            return self.values.index(value)
        except ValueError:
            shown = ", ".join(str(v) for v in self.values[:8])
            more = f", ... ({len(self.values)} values)" if len(self.values) > 8 else ""
            raise ConfigError(
                f"{self.name}={value} is not one of the allowed values: {shown}{more}"
            ) from None

    def validate(self, value: Scalar) -> Scalar:
        self.index(value)
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values), "unit": self.unit, "ordered": self.ordered}


class Config(Mapping[str, Scalar]):
    """An immutable mapping knob name -> value; hashable, ordered by name."""

    __slots__ = ("_items", "_hash")

    def __init__(self, values: Mapping[str, Scalar] | Iterable[tuple[str, Scalar]] = ()) -> None:
        items = dict(values)
        for key, val in items.items():
            if not isinstance(key, str):
                raise ConfigError(f"config keys must be strings, got {key!r}")
            if not isinstance(val, (int, float, str, bool)):
                raise ConfigError(f"config value for {key} must be a scalar, got {type(val).__name__}")
        self._items: tuple[tuple[str, Scalar], ...] = tuple(sorted(items.items()))
        self._hash = hash(self._items)

    def __getitem__(self, key: str) -> Scalar:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._items)
        return f"Config({inner})"

    def replace(self, **changes: Scalar) -> Config:
        merged = dict(self._items)
        merged.update(changes)
        return Config(merged)

    def subset(self, names: Iterable[str]) -> Config:
        wanted = set(names)
        return Config((k, v) for k, v in self._items if k in wanted)

    def hardware(self) -> Config:
        """The part a board applies."""
        return self.subset(HARDWARE_KNOBS)

    def workload(self) -> Config:
        """The part a workload applies (batch size, concurrency, ...)."""
        return Config((k, v) for k, v in self._items if k not in HARDWARE_KNOBS)

    def to_dict(self) -> dict[str, Scalar]:
        return dict(self._items)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ConfigError("config JSON must be an object")
        return cls(data)


Constraint = Callable[[Config], bool]


@dataclass(frozen=True)
class Space:
    """The product of knobs a run explores, minus configs a constraint rejects."""

    knobs: tuple[Knob, ...]
    constraints: tuple[Constraint, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        names = [k.name for k in self.knobs]
        if len(set(names)) != len(names):
            raise ConfigError(f"space has duplicate knobs: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        raise ConfigError(f"unknown knob {name!r}; this space has {', '.join(self.names)}")

    def __contains__(self, config: object) -> bool:
        if not isinstance(config, Mapping):
            return False
        try:
            self.validate(Config(config))
        except ConfigError:
            return False
        return True

    def validate(self, config: Config) -> Config:
        """Check that ``config`` sets exactly this space's knobs to allowed values."""
        extra = set(config) - set(self.names)
        if extra:
            raise ConfigError(f"unknown knob(s) {', '.join(sorted(extra))}; this space has {', '.join(self.names)}")
        for knob in self.knobs:
            if knob.name not in config:
                raise ConfigError(f"config does not set {knob.name}")
            knob.validate(config[knob.name])
        for check in self.constraints:
            if not check(config):
                raise ConfigError(f"config {config.to_json()} violates a constraint of this space")
        return config

    def raw_size(self) -> int:
        size = 1
        for k in self.knobs:
            size *= len(k)
        return size

    def __iter__(self) -> Iterator[Config]:
        """All feasible configs, last knob varying fastest."""
        for combo in itertools.product(*(k.values for k in self.knobs)):
            config = Config(zip(self.names, combo))
            if all(check(config) for check in self.constraints):
                yield config

    def __len__(self) -> int:
        if not self.constraints:
            return self.raw_size()
        return sum(1 for _ in self)

    def to_indices(self, config: Config) -> tuple[int, ...]:
        return tuple(k.index(config[k.name]) for k in self.knobs)

    def from_indices(self, indices: Iterable[int]) -> Config:
        idx = list(indices)
        if len(idx) != len(self.knobs):
            raise ConfigError(f"expected {len(self.knobs)} indices, got {len(idx)}")
        return Config((k.name, k.values[i]) for k, i in zip(self.knobs, idx))

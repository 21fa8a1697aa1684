"""The Board seam: what a config's hardware part is applied to, and its sensors.

Implementations: Jetson sysfs, generic Linux (cpufreq + RAPL + hwmon), NVIDIA
dGPU (NVML) and simulated boards. Everything above this layer (sampler,
runner, strategies, daemon) talks only to this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tuner.config import Config, Knob
from tuner.errors import ConfigError

#: Rail roles (DESIGN §4). ``total`` is the module input and already contains
#: every other rail; ``cpu_gpu_cv`` is CPU+GPU+CV together and is not "cpu".
ROLES = ("total", "cpu", "gpu", "cpu_gpu_cv", "soc", "ddr", "other")

#: A channel either reports instantaneous power or a cumulative energy counter.
POWER = "power_mw"
ENERGY = "energy_mj"


@dataclass(frozen=True)
class Channel:
    """One sensor channel a sampler can read: a power rail or an energy counter."""

    name: str
    role: str
    kind: str = POWER

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown rail role {self.role!r}")
        if self.kind not in (POWER, ENERGY):
            raise ValueError(f"unknown channel kind {self.kind!r}")


@runtime_checkable
class PowerSource(Protocol):
    """What the sampler reads. ``read()`` returns one value per channel name:
    milliwatts for power channels, cumulative millijoules for energy channels.
    A channel that failed this time is simply absent from the dict.

    A source whose readings change only every so often (NVML's energy counter:
    every 100 ms on the H200 measured) also has ``update_period_s``, the
    seconds between changes; the runner then warms up for at least one period
    and makes each measured window many periods long (:class:`~tuner.runner.RunPolicy`).
    The INA3221 says it where its hwmon driver has ``update_interval`` (6.6 ms by default);
    where a source says nothing (iio, RAPL) its readings count as continuous."""

    channels: tuple[Channel, ...]

    def read(self) -> dict[str, float]: ...


@dataclass
class BoardInfo:
    """Identity shown by ``probe`` and stamped on every result."""

    kind: str  # "jetson", "linux", "nvml", "sim"
    profile: str | None = None
    model: str | None = None
    l4t: str | None = None
    simulated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Board(Protocol):
    """What a config's hardware part is applied to, and its sensors (power, °C): the only interface
    the sampler, runner, strategies and daemon use, whatever the board."""

    info: BoardInfo

    def knobs(self) -> list[Knob]:
        """The hardware knobs this board can set, with the device's domains."""
        ...

    def apply(self, config: Config) -> None:
        """Apply the hardware part of ``config``; verified, journalled."""
        ...

    def current(self) -> Config:
        """The hardware config as it reads now (pinned or not)."""
        ...

    def snapshot(self) -> dict[str, str]:
        """Raw values of every knob file this board may write."""
        ...

    def restore(self) -> list[str]:
        """Undo every change this board (or a crashed predecessor) made; returns failures."""
        ...

    def power_source(self) -> PowerSource | None: ...

    def temperatures(self) -> dict[str, float]: ...

    def describe(self) -> dict[str, Any]:
        """The ``probe`` JSON document for this board."""
        ...


def validate_hardware(config: Config, knobs: list[Knob], where: str) -> Config:
    """The hardware part of ``config``, each value checked against the board's
    own knob domains, before anything is written; ``where`` names the board in
    the error."""
    hw = config.hardware()
    by_name = {k.name: k for k in knobs}
    for name, value in hw.items():
        if name not in by_name:
            raise ConfigError(f"{name} cannot be set on {where}")
        by_name[name].validate(value)
    return hw


@runtime_checkable
class AnalyticBoard(Protocol):
    """A board whose measurements are computed, not sampled: the simulated
    board and the replay of a recorded sweep. The runner asks it for a
    measurement instead of running a workload under a sampler; it says so with
    ``computes_measurements = True``, which the runner reads to pick its source
    (:func:`tuner.runner.source_for`)."""

    info: BoardInfo
    computes_measurements: bool

    def workload_knobs(self, workload: str) -> list[Knob]: ...

    def measure(self, workload: str, config: Config, inferences: int) -> Any:
        """One noisy repeat (a Measurement)."""
        ...

    def expected(self, workload: str, config: Config, inferences: int) -> Any:
        """The noiseless Measurement: the truth strategy benchmarks are judged on."""
        ...

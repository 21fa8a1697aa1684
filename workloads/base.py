"""The Workload seam: something that does inference under a config.

The trial runner only needs ``setup`` (load the model for the workload part of
a config: batch size, concurrency, ...), ``run`` (do a fixed amount of work and
say how long each batch took) and ``teardown``. Anything that cannot run a
config — a batch that does not fit in memory, a model that fails to load —
raises :class:`Infeasible`; the runner records it as an infeasible trial and
the search goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tuner.config import Config, Knob
from tuner.errors import EdgetuneError


class Infeasible(EdgetuneError):
    """This config cannot run (out of memory, too large a batch, ...): a result, not a crash.

    ``memory`` is True when the cause is memory: then every config with the
    same or larger memory knobs (batch size, concurrency) fails too, whatever
    the clocks, and strategies skip them.
    """

    def __init__(self, message: str, *, memory: bool = False) -> None:
        super().__init__(message)
        self.memory = memory


@dataclass
class RunResult:
    """What one ``run`` did: inferences completed and the latency of each batch."""

    inferences: int
    batch_latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


@runtime_checkable
class Workload(Protocol):
    name: str

    def knobs(self) -> list[Knob]:
        """The workload knobs this workload accepts (batch size, concurrency, ...), with their domains."""
        ...

    def setup(self, config: Config) -> None:
        """Load/prepare for the workload part of ``config``; raise :class:`Infeasible` if it cannot run."""
        ...

    def run(self, inferences: int) -> RunResult:
        """Do ``inferences`` inferences now and report them."""
        ...

    def teardown(self) -> None: ...

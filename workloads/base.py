"""The Workload seam: something that does inference under a config.

The trial runner only needs ``setup`` (load the model for the workload part of
a config: batch size, concurrency, ...), ``run`` (do a fixed amount of work and
say how long each batch took) and ``teardown``. Anything that cannot run a
config — a batch that does not fit in memory, a model that fails to load —
raises :class:`~tuner.errors.Infeasible`; the runner records it as an
infeasible trial and the search goes on. ``Infeasible`` is defined in the
core (:mod:`tuner.errors`) and re-exported here for workloads, in this repo
or in plugins, that import it from ``workloads.base``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tuner.config import Config, Knob
from tuner.errors import Infeasible  # noqa: F401  (re-exported: the seam's error, defined in the core)


@dataclass
class RunResult:
    """What one ``run`` did: inferences completed and the latency of each batch."""

    inferences: int
    batch_latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def timed_batches(inferences: int, batch_size: int, one_batch: Callable[[int], None]) -> RunResult:
    """Run ``inferences`` as batches of ``batch_size`` (the last one partial), timing each.

    ``one_batch(n)`` does one batch of ``n`` inferences, from input to result taken;
    its wall time is the batch latency the runner reports.
    """
    out = RunResult(0)
    start = time.perf_counter()
    while out.inferences < inferences:
        n = min(batch_size, inferences - out.inferences)
        t0 = time.perf_counter()
        one_batch(n)
        out.batch_latencies_s.append(time.perf_counter() - t0)
        out.inferences += n
    out.wall_s = time.perf_counter() - start
    return out


@runtime_checkable
class Workload(Protocol):
    """What the trial runner drives: ``setup`` for a config's workload part, ``run`` for a fixed
    number of inferences, ``teardown``; ``name`` is its registry name."""

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

"""Error types whose message is shown to the user as one line.

The CLI catches :class:`EdgetuneError` and prints ``error: <message>`` without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EdgetuneError(Exception):
    """A user-facing error: bad input, missing hardware, refused write."""


class ConfigError(EdgetuneError):
    """A config names an unknown knob or a value outside the knob's domain."""


class HardwareError(EdgetuneError):
    """A sysfs/NVML read or write failed or did not verify."""


class BoardNotFound(EdgetuneError):
    """No supported board at the given root."""


class Infeasible(EdgetuneError):
    """This config cannot run (out of memory, too large a batch, ...): a result, not a crash.

    A workload's ``setup`` or ``run`` raises it; the trial runner records an
    infeasible trial and the search goes on. ``memory`` is True when the cause
    is memory: then every config with the same or larger memory knobs (batch
    size, concurrency) fails too, whatever the clocks, and strategies skip them.
    """

    def __init__(self, message: str, *, memory: bool = False) -> None:
        super().__init__(message)
        self.memory = memory

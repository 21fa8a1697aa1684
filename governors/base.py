"""A governor, as the comparison sees it: a named way of choosing clocks.

Kernel governors and pinned configs are static — a config the board applies
(a governor pair over the full range, or frequencies held with min = max) —
so the ordinary trial runner measures them. The online governor is dynamic:
it keeps moving the clocks while the workload runs (:mod:`governors.online`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tuner.config import Config

KERNEL = "kernel"
PINNED = "pinned"
ONLINE = "online"


@dataclass(frozen=True)
class Governor:
    """One way of choosing clocks that ``compare`` measures: its row name, its kind
    (kernel, pinned or online) and the hardware config the board applies for it."""

    name: str
    kind: str
    config: Config  # the hardware part (empty for the online governor)

    @classmethod
    def pinned(cls, config: Config, name: str = "tuned") -> Governor:
        return cls(name, PINNED, config.hardware())

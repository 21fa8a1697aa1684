"""Finding workloads: the ``edgetune.workloads`` entry-point group.

Every workload — the built-in ones included — is an entry point whose value
is a factory: ``name = "package.module:factory"``. ``factory(**options)``
returns a :class:`~workloads.base.Workload`; its docstring's first line is the
description, and an optional ``requires`` attribute (module names) says what
must be installed. A third-party package adds a workload by declaring one
entry point, without touching edgetune.

The simulated reference workloads (calibrated models, no inference) are
listed too: they run on ``sim:`` boards and emulated trees.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from tuner.errors import EdgetuneError

GROUP = "edgetune.workloads"
SIMULATED = ("alexnet", "resnet18", "mobilenet_v2", "yolov4_tiny", "bert_tiny", "distilbert")


@dataclass(frozen=True)
class WorkloadInfo:
    """One line of ``edgetune workloads list``: a registered (or simulated reference) workload, its
    description, and the modules it needs."""

    name: str
    description: str
    requires: tuple[str, ...]
    source: str  # "module:factory", or "simulated"
    simulated: bool = False

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(m for m in self.requires if importlib.util.find_spec(m) is None)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "requires": list(self.requires),
                "missing": list(self.missing), "available": not self.missing, "source": self.source,
                "simulated": self.simulated}


def _entry_points() -> list[EntryPoint]:
    eps = entry_points()
    # Python 3.10+ selects by group; 3.8/3.9 return a dict of groups.
    found = eps.select(group=GROUP) if hasattr(eps, "select") else eps.get(GROUP, [])
    # 3.8/3.9 also list a distribution found twice (installed, and a checkout's egg-info on sys.path)
    # twice: the first one found of each name stands, as 3.10+ does
    first: dict[str, EntryPoint] = {}
    for ep in found:
        first.setdefault(ep.name, ep)
    return sorted(first.values(), key=lambda ep: ep.name)


def _describe(ep: EntryPoint) -> WorkloadInfo:
    """Describe without importing heavy libraries: the factory module must import cheaply."""
    try:
        factory = ep.load()
    except Exception as exc:  # a broken third-party plugin is listed as broken, not fatal
        return WorkloadInfo(ep.name, f"(cannot load {ep.value}: {exc})", (), ep.value)
    doc = (factory.__doc__ or "").strip().splitlines()
    return WorkloadInfo(ep.name, doc[0] if doc else "", tuple(getattr(factory, "requires", ())), ep.value)


def list_workloads() -> list[WorkloadInfo]:
    """Every workload: the registered entry points (described without running them), then the
    simulated reference workloads."""
    real = [_describe(ep) for ep in _entry_points()]
    sim = [WorkloadInfo(n, f"{n}, simulated: calibrated power/latency model (sim: boards and emulated trees)", (),
                        "simulated", True) for n in SIMULATED]
    return real + sim


def make_workload(name: str, **options: Any) -> Any:
    """Instantiate the registered workload ``name`` (options: weights, images, device, ...)."""
    for ep in _entry_points():
        if ep.name == name:
            factory = ep.load()
            missing = [m for m in getattr(factory, "requires", ()) if importlib.util.find_spec(m) is None]
            if missing:
                raise EdgetuneError(f"workload {name!r} needs {', '.join(missing)}: "
                                    f"pip install 'edgetune[{getattr(factory, 'extra', 'vision')}]'")
            return factory(**{k: v for k, v in options.items() if v is not None})
    names = ", ".join(ep.name for ep in _entry_points())
    raise EdgetuneError(f"no workload {name!r}; registered: {names or '(none)'} — see `edgetune workloads list`")

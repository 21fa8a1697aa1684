"""Search strategies behind one ask/tell interface (:mod:`tuner.strategies.base`).

Import is lazy per strategy: scikit-optimize and optuna load only when a
strategy that needs them is made.
"""

from __future__ import annotations

from importlib import import_module

from tuner.config import Config, Space
from tuner.errors import ConfigError
from tuner.strategies.base import Strategy

#: name -> (module, class). ``sweep`` is the full map; the others search.
STRATEGIES = {
    "sweep": ("tuner.strategies.sweep", "Sweep"),
    "random": ("tuner.strategies.random_search", "RandomSearch"),
    "thompson": ("tuner.strategies.thompson", "ThompsonSampling"),
    "ogd": ("tuner.strategies.descent", "OnlineDescent"),
    "bo": ("tuner.strategies.bayes", "BayesOpt"),
    "tpe": ("tuner.strategies.tpe", "OptunaTPE"),
}


def strategy_class(name: str) -> type[Strategy]:
    """The strategy class registered as ``name``, imported on demand (``bo`` pulls in
    scikit-optimize, ``tpe`` Optuna: a command that never uses them never loads them);
    an unknown name is a one-line ConfigError listing the choices."""
    try:
        module, cls = STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}") from None
    return getattr(import_module(module), cls)


def make_strategy(name: str, space: Space, *, seed: int = 0, start: Config | None = None) -> Strategy:
    """A fresh strategy over ``space``; ``seed`` makes its choices repeatable, ``start`` is
    where the workload runs now (an online search begins there)."""
    return strategy_class(name)(space, seed=seed, start=start)

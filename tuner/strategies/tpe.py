"""Optuna's TPE sampler as a peer to compare against (needs optuna installed).

Each knob is an integer index, so TPE sees the order of the frequencies as
our own strategies do. Failed configs are told as a cost worse than any
measured, as they are to ours. TPE may propose a config it has seen before;
that is measured again and counted, as a re-measurement is for every strategy.
"""

from __future__ import annotations

import math

from tuner.config import Config
from tuner.errors import EdgetuneError
from tuner.strategies.base import Strategy


class OptunaTPE(Strategy):
    """Optuna's tree-structured Parzen estimator over the knob indices: the peer baseline
    the strategy tables compare against (no prior, no noise model)."""

    name = "tpe"
    summary = "Optuna's TPE sampler (peer baseline; needs optuna)"

    def __init__(self, space, *, seed: int = 0, start: Config | None = None) -> None:
        super().__init__(space, seed=seed, start=start)
        try:
            import optuna
        except ImportError:
            raise EdgetuneError("strategy tpe needs optuna: pip install 'edgetune[tpe]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        self._dists = {k.name: optuna.distributions.IntDistribution(0, len(k) - 1) for k in space.knobs}
        self._trials: dict[Config, list] = {}
        self._worst = 0.0

    def ask(self) -> Config | None:
        for _ in range(100):
            trial = self.study.ask(self._dists)
            config = self.space.from_indices(trial.params[k.name] for k in self.space.knobs)
            row = self.lattice.get(config)
            if row is not None and self.allowed[row]:
                self._trials.setdefault(config, []).append(trial)
                return config
            self.study.tell(trial, self._penalty())  # pruned: tell it so TPE moves on
        return None

    def _penalty(self) -> float:
        return self._worst * 1.25 if self._worst > 0 else 1e9

    def tell(self, config: Config, cost: float, measurement=None) -> None:
        super().tell(config, cost, measurement)
        if math.isfinite(cost):
            self._worst = max(self._worst, cost)
        pending = self._trials.get(config)
        if pending:
            self.study.tell(pending.pop(0), cost if math.isfinite(cost) else self._penalty())

"""Random search without replacement: the baseline every other strategy must beat."""

from __future__ import annotations

from tuner.config import Config
from tuner.strategies.base import Strategy


class RandomSearch(Strategy):
    """Uniformly random configs, none twice: the floor every strategy must beat."""

    name = "random"
    summary = "uniformly random configs, none twice (baseline)"

    def __init__(self, space, *, seed: int = 0, start: Config | None = None) -> None:
        super().__init__(space, seed=seed, start=start)
        self._queue = [int(r) for r in self.rng.permutation(len(self.lattice))]

    def ask(self) -> Config | None:
        while self._queue:
            row = self._queue.pop()
            if self.allowed[row] and row not in self.costs:
                return self.lattice.configs[row]
        return None

    def done(self) -> bool:
        return not any(self.allowed[r] and r not in self.costs for r in self._queue)

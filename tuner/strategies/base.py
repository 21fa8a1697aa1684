"""The Strategy interface (ask/tell) and what every strategy shares.

Strategies differ only in which config they ask for next. What they share
lives here: the :class:`Lattice` (every config of the space as a row of
ordered knob indices, which is how strategies see that neighbouring
frequencies behave alike), the record of what was measured, memory-failure
pruning, and the default recommendation.

Memory failures prune: a batch that did not fit does not fit at any clock, and
neither does a larger one, so after one out-of-memory trial every config
with the same or larger memory knobs is skipped.

The recommendation (:meth:`Strategy.best`) is the config with the lowest mean
cost over its measurements, not the lowest single reading; model-based
strategies override it with their posterior mean (the lowest single noisy
reading is biased low — the winner's curse).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import defaultdict
from typing import ClassVar

import numpy as np

from tuner.config import BATCH_SIZE, CONCURRENCY, HARDWARE_KNOBS, Config, Space
from tuner.measurement import Measurement
from tuner.strategies.noise import TrialNoise

MEMORY_KNOBS = (BATCH_SIZE, CONCURRENCY)


class Lattice:
    """Every config of a space as integer index rows, and as points in [0, 1]^d."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.configs = list(space)
        if not self.configs:
            from tuner.errors import ConfigError

            raise ConfigError("the search space is empty")
        self.index = np.array([space.to_indices(c) for c in self.configs], dtype=int)
        self.sizes = np.array([len(k) for k in space.knobs], dtype=int)
        self.unit = self.index / np.maximum(self.sizes - 1, 1)
        self._row = {c: i for i, c in enumerate(self.configs)}

    def __len__(self) -> int:
        return len(self.configs)

    def row(self, config: Config) -> int:
        return self._row[config]

    def get(self, config: Config) -> int | None:
        return self._row.get(config)

    def find(self, indices: np.ndarray | tuple[int, ...]) -> int | None:
        config = self.space.from_indices(int(i) for i in indices)
        return self._row.get(config)

    def design(self, n: int, rng: np.random.Generator, allowed: np.ndarray, tries: int = 64) -> list[int]:
        """``n`` distinct allowed rows from a Latin hypercube: the initial design of model-based strategies.

        Each knob's range is cut into ``n`` strata and every stratum is used
        once, so the design sees every knob at low, middle and high values —
        not only the corners, which a maximin design favours and where energy
        is worst and least informative. Of ``tries`` random hypercubes the one
        with the largest minimum distance between points wins.
        """
        rows = np.flatnonzero(allowed)
        if rows.size <= n:
            return [int(r) for r in rows]
        if n <= 1:
            return [int(rng.choice(rows))] if n == 1 else []
        best: list[int] = []
        best_gap = -1.0
        for _ in range(tries):
            u = (np.argsort(rng.random((self.unit.shape[1], n)), axis=1).T + rng.random((n, self.unit.shape[1]))) / n
            picked: list[int] = []
            for point in u:
                dist = np.abs(self.unit[rows] - point).sum(axis=1)
                for r in rows[np.argsort(dist)]:
                    if int(r) not in picked:
                        picked.append(int(r))
                        break
            pts = self.unit[picked]
            gap = min(np.linalg.norm(pts[i] - pts[j]) for i in range(n) for j in range(i))
            if gap > best_gap:
                best, best_gap = picked, gap
        return best


class Strategy(ABC):
    """ask() → a config to measure (None when finished); tell() its cost; best() the recommendation."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def __init__(self, space: Space, *, seed: int = 0, start: Config | None = None) -> None:
        self.space = space
        self.lattice = Lattice(space)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.start = start
        self.costs: dict[int, list[float]] = defaultdict(list)  # row -> every cost told
        self.repeats: dict[int, list[int]] = defaultdict(list)  # row -> the repeats behind each told cost
        self.noise = TrialNoise()  # how far one trial's cost is from the truth (from repeats, re-measurements)
        self.order: list[int] = []  # rows in the order they were told
        self.allowed = np.ones(len(self.lattice), dtype=bool)  # not pruned by a memory failure

    @abstractmethod
    def ask(self) -> Config | None: ...

    def tell(self, config: Config, cost: float, measurement: Measurement | None = None) -> None:
        row = self.lattice.row(config)
        self.costs[row].append(cost)
        self.repeats[row].append(int(measurement.repeats) if measurement is not None and measurement.repeats else 1)
        self.noise.add(row, cost, measurement)
        self.order.append(row)
        if measurement is not None and measurement.memory_failure:
            self._prune_memory(config)

    def done(self) -> bool:
        return False

    #: Racing: a config whose first repeats are this many standard errors worse than the
    #: incumbent gets no more repeats: it is unlikely to be the answer, and repeats would
    #: only sharpen how bad it is. A model still weighs its single reading by one repeat's
    #: noise, so a config cut by bad luck is not lost. One standard error, not three: on a
    #: Nano a repeat is ~80 s, and near the optimum most probes are within a few per cent
    #: (simulated Nano x AlexNet, 10 seeds: at 3 the default tune spent a median 3,200 s;
    #: at 1, 1,640 s, the held config within 1.8 % on every seed).
    RACE_Z = 1.0

    def outclassed(self, config: Config, cost: float, repeats: int) -> bool:
        """Whether ``config``, whose ``repeats`` repeats so far average ``cost``, is worse than
        the incumbent's measured mean beyond the noise of both (``RACE_Z`` standard errors of
        the pooled repeat noise): the racing rule of an economical search. Never for the
        incumbent itself."""
        best = self.best()
        row = self.lattice.get(best) if best is not None else None
        if row is None or best == config:
            return False
        told = [c for c in self.costs.get(row, []) if math.isfinite(c) and c > 0]
        if not told:
            return False
        incumbent = math.exp(sum(math.log(c) for c in told) / len(told))
        se = math.sqrt(self.noise.repeat_var / max(1, repeats) + self.noise.mean_sd(row) ** 2)
        return math.log(cost / incumbent) > self.RACE_Z * se

    #: An economical search stops when no config has this chance of beating the recommendation
    #: by more than the improvement asked for (``--stop-improvement``, 1 % by default): the
    #: model-based strategies' rule, and descent's on a recording (:meth:`converged`).
    STOP_CHANCE = 0.2

    def converged(self, improvement: float) -> bool:
        """Whether further trials are unlikely to find a config better than the recommendation
        by more than ``improvement`` (a fraction), so an economical search may stop
        (:func:`tuner.search.search`). False here: a strategy without a view of the
        surface (random, TPE, a sweep) cannot tell, and spends its budget."""
        return False

    def best(self) -> Config | None:
        means = self.mean_costs()
        if not means:
            return None
        row = min(means, key=means.__getitem__)
        return self.lattice.configs[row] if math.isfinite(means[row]) else None

    # --- helpers for subclasses --------------------------------------------------------
    def mean_costs(self) -> dict[int, float]:
        return {row: float(np.mean(c)) for row, c in self.costs.items()}

    def measured(self) -> np.ndarray:
        mask = np.zeros(len(self.lattice), dtype=bool)
        mask[list(self.costs)] = True
        return mask

    def nearest_allowed(self, x, *, fresh: bool = False, within: np.ndarray | None = None) -> int | None:
        """The allowed row nearest to index vector ``x`` (memory pruning may have
        removed ``x`` itself); with ``fresh``, the nearest not yet measured; with
        ``within`` (a row mask), the nearest among those rows."""
        ok = self.allowed & ~self.measured() if fresh else self.allowed
        if within is not None:
            ok = ok & within
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return None
        dist = np.abs(self.lattice.index[rows] - np.asarray(x)).sum(axis=1)
        return int(rows[int(np.argmin(dist))])

    def _prune_memory(self, failed: Config) -> None:
        names = self.space.names
        mem = [i for i, n in enumerate(names) if n in MEMORY_KNOBS]
        same = [i for i, n in enumerate(names) if n not in MEMORY_KNOBS and n not in HARDWARE_KNOBS]
        if not mem:
            return
        f = np.array(self.space.to_indices(failed))
        worse = np.all(self.lattice.index[:, mem] >= f[mem], axis=1)
        if same:
            worse &= np.all(self.lattice.index[:, same] == f[same], axis=1)
        self.allowed &= ~worse

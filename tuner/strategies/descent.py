"""Online gradient descent over the ordered lattice, from the maximum clocks down.

It starts where the board's DVFS governors spend most of their time — every
clock at its maximum (and, unless told where the workload runs now, the
largest batch) — and descends: each round probes one step along every
knob (a finite-difference gradient; the GPU clock first, its first step
aimed at the published minimum of :mod:`tuner.strategies.prior`; a batch
already at its largest fit joins from the third round), moves
along every knob whose probe improved, and checks the combined move. Steps
adapt per knob: they grow after a successful move and halve (and turn
around) after a failed one, so the first rounds cross the lattice in big
strides and the last ones settle on single steps. When no single step in
either direction improves, it has converged and keeps re-measuring its
position and neighbours — which is what lets it run *online*, as a
governor, while the workload runs and the surface drifts (issue 6 uses it
that way).

Costs are compared as the mean of everything measured at a config, so
re-measurements firm up decisions under noise.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np

from tuner.config import GPU_FREQ, HARDWARE_KNOBS, Config
from tuner.strategies.base import MEMORY_KNOBS, Strategy
from tuner.strategies.prior import likely_best


class OnlineDescent(Strategy):
    name = "ogd"
    summary = "online gradient descent from the maximum clocks, adaptive steps; runs online as a governor"
    growth = 1.5
    IDLE_ROUNDS = 64  # rounds in a row that measure nothing before the position is re-measured
    MEMORY_WAIT = 2  # rounds a memory knob starting at its largest value sits out first

    def __init__(self, space, *, seed: int = 0, start: Config | None = None) -> None:
        super().__init__(space, seed=seed, start=start)
        names = space.names
        self.dims = [i for i, k in enumerate(space.knobs) if k.ordered and len(k) > 1]
        origin = []
        for i, knob in enumerate(space.knobs):
            if names[i] in HARDWARE_KNOBS and knob.ordered:
                origin.append(len(knob) - 1)
            elif start is not None and names[i] in start and start[names[i]] in knob.values:
                origin.append(knob.index(start[names[i]]))  # online: where the workload runs now
            else:
                origin.append(len(knob) - 1 if knob.ordered else 0)  # largest batch; memory pruning backs off
        self.origin = np.array(origin)
        self.sign = {d: (-1 if names[d] in HARDWARE_KNOBS else +1) for d in self.dims}
        self.step = {d: max(1.0, (len(space.knobs[d]) - 1) / 4) for d in self.dims}
        # The GPU clock moves energy most (Dutt 2023, Nano: its sweep spans 4.7x the
        # CPU's in power and 9x in time), so it is probed first, and its first step goes
        # straight to where published minima lie (:mod:`tuner.strategies.prior`).
        self.dims.sort(key=lambda d: names[d] != GPU_FREQ)
        guess = likely_best(space)
        self._aimed: set[int] = set()  # knobs whose step is the jump to the guess, not a learned size
        for d in self.dims:
            if names[d] == GPU_FREQ and self.origin[d] > guess[d]:
                self.step[d] = float(self.origin[d] - guess[d])
                self._aimed.add(d)
        self.position: int | None = None
        self.converged = False
        self._gen = self._search()

    # --- the search is a generator of rows; tell() records costs it reads back --------
    def ask(self) -> Config | None:
        try:
            row = next(self._gen)
        except StopIteration:
            return None
        return self.lattice.configs[row]

    def _cost(self, row: int) -> float:
        costs = self.costs.get(row)
        return float(np.mean(costs)) if costs else math.inf

    def _clamp_row(self, x: np.ndarray) -> int | None:
        sizes = self.lattice.sizes
        y = np.clip(x, 0, sizes - 1)
        row = self.lattice.find(tuple(int(v) for v in y))
        return row if row is not None and self.allowed[row] else None

    def _search(self) -> Generator[int, None, None]:
        here = self.nearest_allowed(self.origin)
        if here is None:
            return
        yield here
        while not self.allowed[here]:  # the start did not fit in memory: the nearest smaller one
            here = self.nearest_allowed(self.lattice.index[here])
            if here is None:
                return
            yield here
        x = self.lattice.index[here].copy()
        self.position = here
        # rounds a knob sits out: after its probes failed, and at first for a memory knob
        # (batch, concurrency) that starts at the largest value that fits. That is where the prior
        # puts its best (energy per inference falls with the batch until memory runs out),
        # and at the top of the range neighbours differ by less than one trial's noise
        # (Xavier NX DistilBERT, simulated: 0.8 % from batch 64 to 32). Probed while the
        # clocks are still far off, a smaller batch wins by noise about as often as not,
        # and the descent then refines the wrong batch.
        rest = {d: self.MEMORY_WAIT if self.space.names[d] in MEMORY_KNOBS and self._at_largest(x, d) else 0
                for d in self.dims}
        misses = {d: 0 for d in self.dims}
        told, idle = len(self.order), 0
        while True:
            # A round asks for nothing when its probes are all measured already. A few such
            # rounds are normal (knobs sitting out); many in a row would spin ask() forever
            # under the daemon, so after IDLE_ROUNDS the position is re-measured instead.
            idle, told = (idle + 1 if len(self.order) == told else 0), len(self.order)
            if idle >= self.IDLE_ROUNDS:
                idle = 0
                yield here
                told = len(self.order)
            probes: dict[int, tuple[int, int]] = {}  # dim -> (row, direction)
            for d in self.dims:
                if rest[d] > 0:
                    rest[d] -= 1
                    continue
                h = max(1, int(round(self.step[d])))
                for direction in (self.sign[d], -self.sign[d]):
                    y = x.copy()
                    y[d] += direction * h
                    row = self._clamp_row(y)
                    if row is not None and row != here:
                        break
                else:
                    continue
                if row not in self.costs:
                    yield row
                probes[d] = (row, direction)
            f_here = self._cost(here)
            better = {d: (r, s) for d, (r, s) in probes.items() if self._cost(r) < f_here}
            for d in probes:
                # a knob whose probe keeps failing (a batch already at its best
                # size) sits out 1, 2, 4 ... rounds while the others move
                misses[d] = 0 if d in better else misses[d] + 1
                rest[d] = 0 if d in better else min(2 ** (misses[d] - 1), 4)
            moved = False
            if better:
                target = x.copy()
                for d, (r, _s) in better.items():
                    target[d] = self.lattice.index[r][d]
                combined = self._clamp_row(target)
                candidates = [r for r, _ in better.values()]
                if combined is not None and len(better) > 1:
                    if combined not in self.costs:
                        yield combined
                    candidates.append(combined)
                best = min(candidates, key=self._cost)
                if self._cost(best) < self._cost(here):
                    for d, (_r, s) in better.items():
                        if self.lattice.index[best][d] != x[d]:
                            self.sign[d] = s
                            # A successful jump to the guess landed near the minimum: refine from
                            # single steps rather than grow the jump (which overshot to the wall)
                            grown = self.step[d] * self.growth if d not in self._aimed else 1.0
                            self.step[d] = min(max(1.0, grown), (len(self.space.knobs[d]) - 1) / 2)
                    here, x, moved = best, self.lattice.index[best].copy(), True
                    self.position = here
            if not moved and not probes and any(rest.values()):
                continue  # every knob was sitting out: nothing was tried this round
            self._aimed.clear()
            if not moved:
                for d in probes:
                    self.sign[d] = -self.sign[d]
                    self.step[d] = max(1.0, self.step[d] / 2)
                self.converged = all(self.step[d] <= 1.0 for d in self.dims) and self._stuck(x, here)
                if self.converged:
                    # online: hold, and keep checking the position and its neighbours
                    yield here
                    for d in self.dims:
                        for direction in (-1, 1):
                            y = x.copy()
                            y[d] += direction
                            row = self._clamp_row(y)
                            if row is not None and row != here and len(self.costs[row]) < 3:
                                yield row
                    self.converged = False

    def _at_largest(self, x: np.ndarray, d: int) -> bool:
        """Knob ``d`` is at its largest value, or the next one up did not fit in memory."""
        if x[d] == self.lattice.sizes[d] - 1:
            return True
        y = x.copy()
        y[d] += 1
        return self._clamp_row(y) is None

    def _stuck(self, x: np.ndarray, here: int) -> bool:
        """No single step in either direction measured better than here."""
        for d in self.dims:
            for direction in (-1, 1):
                y = x.copy()
                y[d] += direction
                row = self._clamp_row(y)
                if row is None or row == here:
                    continue
                if row not in self.costs or self._cost(row) < self._cost(here):
                    return False
        return True

"""A trust region for the model-based strategies (after TuRBO, Eriksson et al. 2019).

Why: a GP is least certain at the corners of the box, so expected improvement
and Thompson draws keep asking for them — the lowest clock with the smallest
batch, the highest CPU clock with the lowest GPU clock — though on an energy
surface those corners are the walls of the basin, and each such trial is a
trial spent learning that a wall is a wall. A trust region confines the next
trial to a box around the incumbent (the measured config with the lowest
posterior mean) that grows while trials improve on it and shrinks while they
do not. The box is in unit coordinates (each ordered knob's index over its
range), so its side means the same share of every knob. It confines only
ordered knobs with at least ``FINE`` values — the clocks. A short knob (batch
size, concurrency, core count: 2-6 values) is searched whole: a box cannot be
narrower than a step either side of the incumbent, so on such a knob it would
save a value or two while hiding the far end, and the far end is where the
batch-size optimum usually is (larger batches cost less per inference until
memory runs out) when the first good config was measured at a small batch.
Unordered knobs (governor, placement) are never confined.

Success and failure are judged with a 1 % margin, so that a noisy repeat of
the leader does not count as an improvement: the model-based strategies pass
the model's view of the trial (its posterior mean once fitted with it)
against the incumbent's before it, since under field noise a single reading
against a best mean that is itself biased low says more about luck than about
progress; without a model, the trial's own cost against the best mean. When the box has shrunk below one
step of the finest confined knob it has nothing left to teach, and it
restarts at its initial size (keeping every measurement): that is how the
search leaves a local basin.
"""

from __future__ import annotations

import numpy as np

from tuner.strategies.base import Lattice

INITIAL = 0.8  # side of the box in unit coordinates (TuRBO's default)
LARGEST = 1.6  # TuRBO's largest: centred in the cube, it holds all of it
SUCCESSES = 3  # consecutive improvements that double the side
FAILURES = 3  # consecutive non-improvements that halve it (TuRBO: max(4, dimension); our searches are short)
MARGIN = 0.01  # an improvement must beat the best mean by this share
FINE = 7  # an ordered knob with fewer values is never confined


class TrustRegion:
    """A box around the incumbent, in unit coordinates of the finely stepped ordered knobs,
    that grows after successes and shrinks after failures (module docstring)."""

    def __init__(self, lattice: Lattice) -> None:
        confined = np.array([k.ordered and len(k) >= FINE for k in lattice.space.knobs])
        self._unit = lattice.unit[:, confined]  # every row's position along the confined knobs
        # one step of the finest confined knob: a box narrower than this is spent
        steps = 1.0 / np.maximum(lattice.sizes[confined] - 1, 1)
        self.smallest = float(steps.min()) if steps.size else 1.0
        self.side = INITIAL
        self._wins = 0
        self._losses = 0

    def update(self, cost: float, best_before: float) -> None:
        """Record a trial's cost against the best mean measured before it."""
        if np.isfinite(cost) and np.isfinite(best_before) and cost < best_before * (1 - MARGIN):
            self._wins, self._losses = self._wins + 1, 0
        else:
            self._wins, self._losses = 0, self._losses + 1
        if self._wins >= SUCCESSES:
            self.side, self._wins = min(2 * self.side, LARGEST), 0
        elif self._losses >= FAILURES:
            self.side, self._losses = self.side / 2, 0
            if self.side < self.smallest:
                self.side = INITIAL  # restart: the data stays, the box opens again

    def inside(self, candidates: np.ndarray, centre: int) -> np.ndarray:
        """The candidates within the box around row ``centre``."""
        if self._unit.shape[1] == 0:
            return candidates
        near = np.all(np.abs(self._unit[candidates] - self._unit[centre]) <= self.side / 2 + 1e-9, axis=1)
        return candidates[near]

    def confine(self, candidates: np.ndarray, centre: int, usable) -> np.ndarray:
        """The candidates within the box, widening it (for this ask only) until
        ``usable`` of them is true — e.g. until the box holds a config not yet
        measured; all candidates if even the whole space does not satisfy it."""
        side = self.side
        try:
            while True:
                inner = self.inside(candidates, centre)
                if inner.size and usable(inner):
                    return inner
                if self.side >= LARGEST:
                    return candidates
                self.side = min(2 * self.side, LARGEST)
        finally:
            self.side = side

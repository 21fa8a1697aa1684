"""Thompson sampling with a GP prior over the lattice.

Each step draws one whole surface from the GP posterior (jointly, so the
draw respects the correlation between neighbouring configs) and measures its
minimum. Configs are arms, but correlated arms: one measurement updates the
belief about all its neighbours, which is what makes a few dozen trials enough
on a lattice of hundreds. A draw's minimum may be a config already measured:
measuring it again is how Thompson sampling firms up a leader under noise —
twice at most, and only while its repeats leave doubt (not on a replayed
recording whose repeats agree); otherwise the draw's best other config is
measured instead.
"""

from __future__ import annotations

import numpy as np

from tuner.strategies.surrogate import ModelBased


class ThompsonSampling(ModelBased):
    """The argmin of one joint posterior draw, in the trust region (module docstring)."""

    name = "thompson"
    summary = "Thompson sampling: joint draws from a GP posterior over the correlated configs"

    plausible = 300  # candidates in one joint draw
    temperature = 1.0
    max_measurements = 2
    def choose(self, candidates: np.ndarray) -> int:
        counts = np.array([len(self.costs.get(int(r), ())) for r in candidates])
        # A leader measured this often is known to the model's noise floor, and one
        # whose repeats agree (a replayed recording, a quiet board) would return the
        # same number: another draw at it would teach nothing, its neighbours would.
        again = (counts == 0) | ((counts < self.max_measurements) & self.uncertain(candidates))
        if np.any(again):
            candidates = candidates[again]
        if candidates.size > self.plausible:
            # A draw's minimum is, in practice, among the rows with the lowest
            # lower confidence bounds; drawing jointly over all of them costs
            # O(n^3) for nothing.
            mu, sd = self.gp.predict(candidates)
            candidates = candidates[np.argsort(mu - 2.0 * sd)[: self.plausible]]
        rows, draw = self.gp.sample(candidates, self.rng, self.temperature)
        return int(rows[int(np.argmin(draw))])

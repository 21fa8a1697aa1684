"""Thompson sampling with a GP prior over the lattice.

Each step draws one whole surface from the GP posterior (jointly, so the
draw respects the correlation between neighbouring configs) and measures its
minimum. Configs are arms, but correlated arms: one measurement updates the
belief about all its neighbours, which is what makes a few dozen trials enough
on a lattice of hundreds. A draw's minimum may be a config already measured:
measuring it again is how Thompson sampling firms up a leader under noise —
twice at most, and only while its repeats leave doubt that one more trial would
settle (``settles``); otherwise the draw's best other config is measured instead.
On a quiet board that second trial settles a close race; under heavy field noise
it would not, and the neighbour teaches the model more (simulated, 10 % per
repeat: summed median trials to the 2 % band over the 18 surfaces 173 -> 143,
summed median regret 9.2 % -> 4.6 %).

Never on a board whose repeats have all agreed exactly. A physical
measurement never does: two runs of the same setting differ (sensor
sampling, clocks, temperature), so exact agreement on every trial means a
deterministic source — a replayed recording of one run per setting — where
measuring a config again returns the same number and teaches nothing. The
noise estimate alone cannot say so early: it starts from the study's 1.8 %
per repeat (:mod:`tuner.strategies.noise`) and needs several trials to fall
below the point where a re-measure looks worthless, and by then Thompson
sampling had spent one of a replayed surface's few trials re-measuring its
first guess (the shared LoudVA Nano surface: on 8 of 50 seeds, with a budget of 15).
The first repeat that differs, or a re-measured config that reads
differently, ends it for the rest of the search (``TrialNoise.exact``, the
shared noise estimate's). On such a recording, once the basin is found, the search
sweeps it in the smooth model's order, as BO does (``ModelBased.sweep_basin``).
"""

from __future__ import annotations

import numpy as np

from tuner.strategies.surrogate import ModelBased


class ThompsonSampling(ModelBased):
    """Thompson sampling on the shared GP model (see the module's docstring)."""

    name = "thompson"
    summary = "Thompson sampling: joint draws from a GP posterior over the correlated configs"

    plausible = 300  # candidates in one joint draw
    temperature = 1.0
    max_measurements = 2

    #: A measured config is drawn again only if one more trial would bring its mean's
    #: standard error within the 2 % band a search aims for. (Half the band was tried:
    #: at 5 % per repeat it stopped the re-measures that still paid there; see README.)
    SETTLE_TO = 0.02

    def settles(self, rows: np.ndarray) -> np.ndarray:
        """Which ``rows`` one more trial would settle to within ``SETTLE_TO``. Where trials
        are noisier than that (a noisy board in the field: 10 % per repeat, ~4 % per trial,
        leaves a leader measured twice ~3 % in doubt), a second reading settles nothing,
        while a neighbour's informs the leader through the model's correlation and explores
        besides."""
        return np.array([self.noise.mean_sd_after(int(r)) <= self.SETTLE_TO for r in rows], dtype=bool)

    def choose(self, candidates: np.ndarray) -> int:
        counts = np.array([len(self.costs.get(int(r), ())) for r in candidates])
        # A leader measured this often is known to the model's noise floor, and one
        # whose repeats agree (a replayed recording, a quiet board) would return the
        # same number: another draw at it would teach nothing, its neighbours would.
        again = counts == 0
        if not self.noise.exact:
            maybe = np.flatnonzero((counts > 0) & (counts < self.max_measurements))
            maybe = maybe[self.uncertain(candidates[maybe])]
            again[maybe] = self.settles(candidates[maybe])
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

"""Bayesian optimisation: expected improvement on a GP over the lattice (scikit-optimize).

The next config is the unmeasured candidate with the largest expected
improvement (skopt's ``gaussian_ei``) over the best posterior mean measured
so far. EI on a noise-aware GP trades exploring uncertain corners against
refining around the incumbent; it stops re-asking a region once the model is
sure of it.

On a recording of one run per setting, once the basin is found, the search
sweeps it in the smooth model's order instead (``ModelBased.sweep_basin``):
there an unmeasured setting's uncertainty is mostly its own run's luck, which
expected improvement values as a chance of a win that no model can locate.
"""

from __future__ import annotations

import numpy as np

from tuner.strategies.surrogate import ModelBased


def expected_improvement(mu: np.ndarray, sd: np.ndarray, y_best: float, xi: float) -> np.ndarray:
    """EI of a minimisation at posterior (mu, sd) over the incumbent ``y_best`` minus ``xi``."""
    from scipy.stats import norm

    z = (y_best - xi - mu) / sd
    return (y_best - xi - mu) * norm.cdf(z) + sd * norm.pdf(z)


class BayesOpt(ModelBased):
    """Expected improvement on the GP, among unmeasured configs in the trust region (module docstring)."""

    name = "bo"
    summary = "Bayesian optimisation: GP (scikit-optimize) with expected improvement over ordered indices"
    xi = 0.01  # in log cost: ask for improvements of about 1 %

    def choose(self, candidates: np.ndarray) -> int:
        # Only unmeasured configs: EI at a measured one counts the model's uncertainty about
        # it as a chance of improvement, which measuring it again cannot deliver. Under noise
        # the posterior mean already weighs a lucky reading against its neighbours.
        fresh = candidates[~self.measured()[candidates]]
        if fresh.size == 0:
            fresh = candidates
        incumbent = self.incumbent
        y_best = float(self.gp.mean(np.array([incumbent]))[0]) if incumbent is not None else 0.0
        ei = expected_improvement(*self.gp.predict(fresh), y_best, self.xi)
        return int(fresh[int(np.argmax(ei))])

"""Bayesian optimisation: expected improvement on a GP over the lattice (scikit-optimize).

The next config is the unmeasured candidate with the largest expected
improvement (skopt's ``gaussian_ei``) over the best posterior mean measured
so far. EI on a noise-aware GP trades exploring uncertain corners against
refining around the incumbent; it stops re-asking a region once the model is
sure of it.
"""

from __future__ import annotations

import numpy as np

from tuner.strategies.surrogate import ModelBased


class BayesOpt(ModelBased):
    name = "bo"
    summary = "Bayesian optimisation: GP (scikit-optimize) with expected improvement over ordered indices"
    xi = 0.01  # in log cost: ask for improvements of about 1 %

    def choose(self, candidates: np.ndarray) -> int:
        from skopt.acquisition import gaussian_ei

        fresh = candidates[~self.measured()[candidates]]
        if fresh.size == 0:
            fresh = candidates
        incumbent = self.gp.recommend(self.measured() & self.allowed, self.costs)
        y_best = float(self.gp.predict(np.array([incumbent]))[0][0]) if incumbent is not None else 0.0
        ei = gaussian_ei(self.gp.X[fresh], self.gp.model, y_opt=y_best, xi=self.xi)
        return int(fresh[int(np.argmax(ei))])

"""A Gaussian-process model of the cost over the config lattice (scikit-optimize).

Why a GP: neighbouring configs are correlated — one clock step changes energy
by a few per cent — so every measurement says something about its
neighbours. Ordered knobs (frequencies, batch size) enter as integer indices
scaled to [0, 1] (skopt ``Integer`` with ``normalize``), never as unordered
categories; unordered knobs (governor, placement) are one-hot.

The model is fitted to log cost (energy spans ~3-10x over the lattice and
its noise is multiplicative). The kernel is Matern-5/2 with one length scale
per knob plus a learned Gaussian noise term that skopt leaves out of
predictions, so the posterior mean estimates the noiseless surface.

The prior mean is not flat along the batch size: it follows the published
batch effect (:func:`tuner.strategies.prior.batch_trend`, energy per
inference ~ 1 + k/batch) times a weight estimated from the data (generalised
least squares under the GP's covariance, with a prior of 1 ± 1). Before any
small batch is measured, the model therefore expects batch 8 to cost more
than batch 32 — as the study measured — and a search does not spend its
early trials learning that; once two batch sizes are measured, the data set
the weight (Orin NX YOLOv4-tiny, simulated, where the batch barely matters:
~0).

Configs that failed for a reason other than memory (SLO miss, timeout,
crash) get a pessimistic value just above the worst measured cost, so the
model steers away from them without bending the surface far. Memory
failures are pruned instead (see :mod:`tuner.strategies.base`).

The space is finite, so acquisitions are evaluated exactly on the candidates
(those in the trust region around the incumbent, or a shortlist of them on
large lattices) rather than optimised continuously and rounded.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from tuner.config import BATCH_SIZE
from tuner.errors import EdgetuneError
from tuner.strategies.base import Lattice, Strategy
from tuner.strategies.prior import batch_trend, likely_best
from tuner.strategies.trust_region import TrustRegion

MAX_JOINT = 2000  # candidates in one joint posterior draw; beyond this, a random subset
NOISE_SD = 0.01  # prior noise of one trial's log cost (3 repeats at ~1.8 % each)
MAX_NOISE_SD = 0.015
# The prior mean: where the model has no data it expects a config to be as bad as
# the 90th percentile of what it has measured, not average. Energy surfaces have
# one broad basin and steep walls (a GPU clock too low for the model, a batch too
# small); with a pessimistic prior the unexplored corners do not look promising
# merely for being unknown, and the search spends its trials in the basin.
PRIOR_QUANTILE = 0.9
# A length scale this long (in unit coordinates) already makes a knob's effect nearly
# flat over its range. Allowed to grow further, the fit can declare a knob irrelevant
# when its effect is a few per cent (the GPU clock on a flat Orin NX surface), and
# the recommendation then breaks posterior-mean ties along it at random: simulated,
# with the batch trend, that recommended a config 3.7 % off the optimum after 73 trials.
LONGEST_SCALE = 10.0
TREND_SD = 1.0  # prior standard deviation of the batch trend's weight (its mean is 1)


def _skopt():
    try:
        from skopt.learning import GaussianProcessRegressor
        from skopt.learning.gaussian_process.kernels import ConstantKernel, Matern
        from skopt.space import Categorical, Integer
        from skopt.space import Space as SkSpace
    except ImportError:
        raise EdgetuneError("this strategy needs scikit-optimize: pip install scikit-optimize") from None
    return GaussianProcessRegressor, ConstantKernel, Matern, Categorical, Integer, SkSpace


class GPSurrogate:
    def __init__(self, lattice: Lattice, seed: int = 0) -> None:
        gpr, const, matern, categorical, integer, sk_space = _skopt()
        self.lattice = lattice
        self.seed = seed
        dims = []
        self._cols = []
        for i, knob in enumerate(lattice.space.knobs):
            if len(knob) < 2:
                continue  # a fixed knob carries no information
            self._cols.append(i)
            if knob.ordered:
                dims.append(integer(0, len(knob) - 1, transform="normalize"))
            else:
                dims.append(categorical(list(range(len(knob))), transform="onehot"))
        if not dims:
            raise EdgetuneError("the search space has a single config; there is nothing to model")
        self._sk_space = sk_space(dims)
        rows = lattice.index[:, self._cols]
        self.X = np.asarray(self._sk_space.transform([[int(v) for v in r] for r in rows]), dtype=float)
        self._gpr = gpr
        self._const, self._matern = const, matern
        self._theta = {"c": 1.0, "ls": np.full(self.X.shape[1], 0.4), "noise": NOISE_SD**2}
        self.model = None
        self._tuned_at = 0  # observations when the hyperparameters were last optimised
        # the prior mean's shape along the batch (0 for a fixed or absent batch knob)
        self._trend = np.zeros(len(lattice))
        for i, knob in enumerate(lattice.space.knobs):
            if knob.name == BATCH_SIZE and len(knob) > 1:
                self._trend += np.asarray(batch_trend(knob))[lattice.index[:, i]]
        self._beta = 1.0  # the trend's weight: the prior's until the data say otherwise

    REOPTIMISE = 1.5  # re-fit hyperparameters when the data grew by this factor (or 4 points)

    def _kernel(self, y_std: float):
        """Matern-5/2 (ARD) + white noise bounded by what the runner's repeats allow.

        The noise bound matters: with it free, a GP explains a knob with a small
        effect (the CPU clock on Orin moves energy by ~10 %) as noise and then
        recommends at random along it. In log cost a trial of 3 repeats is
        accurate to ~1 %; the bound allows up to 3 % (in the model's
        normalised units, hence ``y_std``).
        """
        from skopt.learning.gaussian_process.kernels import WhiteKernel

        scale = max(y_std, 1e-6) ** 2
        lo, hi = (0.002**2) / scale, (MAX_NOISE_SD**2) / scale
        noise = float(np.clip(self._theta["noise"] / scale, lo, hi))
        return (self._const(self._theta["c"], (1e-2, 1e2))
                * self._matern(length_scale=self._theta["ls"], length_scale_bounds=(0.1, LONGEST_SCALE), nu=2.5)
                + WhiteKernel(noise, (lo, hi)))

    def fit(self, costs: dict[int, list[float]], allowed: np.ndarray) -> bool:
        """Fit to every finite told cost (each told trial is one observation); False if too few."""
        rows, ys = [], []
        finite = [math.log(c) for cs in costs.values() for c in cs if math.isfinite(c) and c > 0]
        if len(finite) < 2:
            return False
        penalty = max(finite) + 0.25 * (max(finite) - min(finite) + 0.1)
        for row, cs in costs.items():
            if not allowed[row]:
                continue  # memory failure: pruned, not modelled
            for c in cs:
                rows.append(row)
                ys.append(math.log(c) if math.isfinite(c) and c > 0 else penalty)
        y = np.asarray(ys)
        trend = self._trend[rows]
        n = len(ys)
        retune = self.model is None or n >= max(self._tuned_at * self.REOPTIMISE, self._tuned_at + 4)
        # warm start from the last hyperparameters; between re-tunes keep them fixed (one Cholesky)
        self._scale = max(float(np.std(y)), 1e-6)
        model = self._fit_gp(rows, y - self._beta * trend, optimise=retune)
        if retune:
            self._tuned_at = n
            params = model.kernel_.get_params()
            self._theta = {"c": float(params["k1__k1__constant_value"]),
                           "ls": np.atleast_1d(params["k1__k2__length_scale"]).astype(float),
                           "noise": float(model.noise_ or 0.0) * self._scale**2}
        if np.ptp(trend) > 0:  # two batch sizes measured: the data can weigh the trend
            self._beta = self._trend_weight(model, y, trend)
            model = self._fit_gp(rows, y - self._beta * trend, optimise=False)
        self.model = model
        return True

    def _fit_gp(self, rows: list[int], y: np.ndarray, optimise: bool):
        """A GP on log cost less the trend, about a pessimistic constant (``PRIOR_QUANTILE``)."""
        self._prior = float(np.quantile(y, PRIOR_QUANTILE))
        model = self._gpr(kernel=self._kernel(self._scale), normalize_y=False, noise="gaussian",
                          optimizer="fmin_l_bfgs_b" if optimise else None,
                          n_restarts_optimizer=1 if self.model is None else 0, random_state=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter from the kernel optimiser at bounds
            model.fit(self.X[rows], (y - self._prior) / self._scale)
        return model

    def _trend_weight(self, model, y: np.ndarray, trend: np.ndarray) -> float:
        """The trend's weight given the data: the generalised-least-squares estimate
        under the fitted GP's covariance K, shrunk towards the prior's 1 (Bayesian
        linear regression on the one basis function ``trend``)."""
        from scipy.linalg import cho_solve

        h = trend / self._scale
        r = (y - self._prior) / self._scale  # the data less only the constant, in the model's units
        k_inv_h = cho_solve((model.L_, True), h)
        precision = 1.0 / TREND_SD**2
        return (float(k_inv_h @ r) + precision) / (float(k_inv_h @ h) + precision)

    def _offset(self, rows: np.ndarray) -> np.ndarray:
        """The prior mean at ``rows``: the constant plus the weighted batch trend."""
        return self._prior + self._beta * self._trend[rows]

    def mean(self, rows: np.ndarray) -> np.ndarray:
        """Posterior mean of log cost at ``rows`` (cheap: no variance)."""
        return self.model.predict(self.X[rows]) * self._scale + self._offset(rows)

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of log cost at ``rows``."""
        mu, sd = self.model.predict(self.X[rows], return_std=True)
        return mu * self._scale + self._offset(rows), np.maximum(sd * self._scale, 1e-9)

    def sample(self, rows: np.ndarray, rng: np.random.Generator,
               temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """One joint draw of log cost over ``rows`` (or a random subset of them); returns (rows, values).

        ``temperature`` scales the posterior spread (1 = the exact posterior)."""
        if rows.size > MAX_JOINT:
            rows = np.sort(rng.choice(rows, MAX_JOINT, replace=False))
        mu, cov = self.model.predict(self.X[rows], return_cov=True)
        mu, cov = mu * self._scale + self._offset(rows), cov * self._scale**2
        cov = 0.5 * (cov + cov.T)
        jitter = 1e-9 * max(float(np.mean(np.diag(cov))), 1e-12)
        for _ in range(6):
            try:
                chol = np.linalg.cholesky(cov + jitter * np.eye(rows.size))
                break
            except np.linalg.LinAlgError:
                jitter *= 100
        else:  # numerically degenerate: independent draws from the marginals
            sd = np.sqrt(np.maximum(np.diag(cov), 0))
            return rows, mu + temperature * sd * rng.standard_normal(rows.size)
        return rows, mu + temperature * (chol @ rng.standard_normal(rows.size))

    def recommend(self, measured: np.ndarray, costs: dict[int, list[float]]) -> int | None:
        """The measured, feasible config with the lowest posterior mean."""
        rows = np.array([r for r in np.flatnonzero(measured) if any(math.isfinite(c) for c in costs[r])])
        if rows.size == 0:
            return None
        mu, _ = self.predict(rows)
        return int(rows[int(np.argmin(mu))])


class ModelBased(Strategy):
    """Shared by Bayesian optimisation and Thompson sampling: an initial design
    (the prior guess, the top corner, a Latin-hypercube point), then
    :meth:`choose` on the fitted GP among the candidates in a trust region
    around the incumbent (:mod:`tuner.strategies.trust_region`);
    recommendation by posterior mean among measured configs."""

    init_points = 3

    def __init__(self, space, *, seed: int = 0, start=None) -> None:
        super().__init__(space, seed=seed, start=start)
        self.gp = GPSurrogate(self.lattice, seed)
        # The design, in order: the published prior's guess of the energy minimum
        # (:mod:`tuner.strategies.prior`; where a search restarts from a known
        # config, that config first), the top corner (every clock and batch at its
        # maximum: where DVFS runs, and the time objective's best guess), then a
        # Latin hypercube for the rest. Entries are knob indices; each becomes the
        # nearest allowed, unmeasured config when its turn comes, so a guess whose
        # batch ran out of memory moves to the largest batch that fits.
        anchors = [likely_best(space), tuple(len(k) - 1 if k.ordered else 0 for k in space.knobs)]
        if start is not None and self.lattice.get(start) is not None:
            anchors.insert(0, tuple(space.to_indices(start)))
        anchors = list(dict.fromkeys(anchors))
        spread = self.lattice.design(max(0, self.init_points - len(anchors)), self.rng, self.allowed)
        self._design = anchors + [tuple(self.lattice.index[r]) for r in spread]
        self._design_asked: tuple[int, tuple[int, ...]] | None = None  # (row, entry) if the last ask was the design's
        self._fitted = False
        self.region = TrustRegion(self.lattice)
        self.incumbent: int | None = None  # the measured row with the lowest posterior mean, as of the last ask

    def tell(self, config, cost, measurement=None) -> None:
        from_design = self._design_asked is not None and self._design_asked[0] == self.lattice.row(config)
        if not from_design:  # design trials do not steer the region
            means = [m for m in self.mean_costs().values() if math.isfinite(m)]
            self.region.update(cost, min(means) if means else math.inf)
        super().tell(config, cost, measurement)
        if from_design and measurement is not None and measurement.memory_failure:
            self._design.insert(0, self._design_asked[1])  # the same design entry, at a batch that fits
        # Fit here, once per trial, and nowhere else: when the GP is fitted decides
        # when its hyperparameters are re-optimised, so fitting on demand would let a
        # caller who merely asks for best() between trials change the search.
        self._fitted = self.gp.fit(self.costs, self.allowed)

    def ask(self):
        self._design_asked = None
        while self._design:
            target = self._design.pop(0)
            row = self.nearest_allowed(target, fresh=True)
            if row is not None:
                self._design_asked = (row, target)
                return self.lattice.configs[row]
        candidates = np.flatnonzero(self.allowed)
        if candidates.size == 0:
            return None
        if not self._fitted:  # everything so far failed: keep exploring at random
            fresh = candidates[~self.measured()[candidates]]
            return self.lattice.configs[int(self.rng.choice(fresh if fresh.size else candidates))]
        measured = self.measured()
        self.incumbent = self.gp.recommend(measured & self.allowed, self.costs)
        if self.incumbent is not None:
            candidates = self.region.confine(candidates, self.incumbent, lambda rows: not measured[rows].all())
        return self.lattice.configs[self.choose(self.shortlist(candidates))]

    shortlist_size = 600

    def shortlist(self, candidates: np.ndarray) -> np.ndarray:
        """On large lattices, the candidates worth an acquisition: the lowest posterior
        means, plus a random share for exploration. The posterior mean costs O(n) per
        candidate, its variance O(n^2): this keeps a step's cost flat as the lattice grows."""
        if candidates.size <= self.shortlist_size:
            return candidates
        mu = self.gp.mean(candidates)
        keep = self.shortlist_size * 2 // 3
        best = candidates[np.argsort(mu)[:keep]]
        rest = np.setdiff1d(candidates, best)
        explore = self.rng.choice(rest, min(rest.size, self.shortlist_size - keep), replace=False)
        return np.sort(np.concatenate([best, explore]))

    def choose(self, candidates: np.ndarray) -> int:
        """The next row among ``candidates``; ``self.incumbent`` is the current best guess."""
        raise NotImplementedError

    def best(self):
        if not self._fitted:
            return super().best()
        row = self.gp.recommend(self.measured() & self.allowed, self.costs)
        return self.lattice.configs[row] if row is not None else super().best()

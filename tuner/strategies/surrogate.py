"""A Gaussian-process model of the cost over the config lattice (scikit-optimize).

Why a GP: neighbouring configs are correlated — one clock step changes energy
by a few per cent — so every measurement says something about its
neighbours. Ordered knobs (frequencies, batch size) enter as integer indices
scaled to [0, 1] (skopt ``Integer`` with ``normalize``), never as unordered
categories; unordered knobs (governor, placement) are one-hot.

The model is fitted to log cost (energy spans ~3-10x over the lattice and
its noise is multiplicative). The kernel is Matern-5/2 with one length scale
per knob (a weak log-normal prior on the clocks' scales: a MAP fit), plus the
surface's *roughness*, a learned per-config term (up to 15 %, a prior about
0.3 %) that stays in predictions: a config that measured 6 % below its neighbours on every repeat
keeps its 6 %. Measurement noise is not learned but given, per observation,
from the repeats behind each trial (:mod:`tuner.strategies.noise`): ~1 % at
the study's practice, 2-4 % a trial at 5-10 % field noise per repeat, ~0 on a
replayed recording of single runs. So under field noise the posterior mean
weighs a lucky reading against its neighbours, and on a recording whose
repeats agree it keeps every recorded value.

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
from tuner.errors import ConfigError, EdgetuneError
from tuner.strategies.base import Lattice, Strategy
from tuner.strategies.noise import RUN_LUCK_SD, TrialNoise
from tuner.strategies.prior import batch_trend, likely_best
from tuner.strategies.trust_region import TrustRegion

# RUN_LUCK_SD (tuner.strategies.noise): a single run's own luck, frozen into each value of a
# recording of one run per setting. The GP's learned roughness says the same once it has seen
# enough, but its prior (``ROUGH_PRIOR``, for smooth surfaces) holds it near 0.3 % for the
# first 20-30 trials of a real recording (LoudVA Nano, Xavier NX, AGX Xavier), and an
# economical search then stopped early: on AGX Xavier after 13 trials, 15 % above the
# recording's best. The stop rule (:meth:`ModelBased.chance_of_improvement`) counts at least
# that much for every unmeasured setting of such a recording.
CHANCE_CHUNK = 1500  # candidates per joint posterior in chance_of_improvement (memory: its square)
MAX_JOINT = 2000  # candidates in one joint posterior draw; beyond this, a random subset
# The noise of an observation has two parts. Measurement noise — how far one trial's mean
# is from the config's true cost — is not learned by the GP but given to it, per
# observation, from the repeats behind each trial (:mod:`tuner.strategies.noise`: ~1 % for
# the study's practice, 2-4 % at 5-10 % field noise per repeat, ~0 on a replayed recording
# of single runs). What the smooth kernel cannot follow — the roughness of a real surface
# measured once per setting, where a neighbour differs by 5-10 % for no reason a
# neighbour shares — is a learned white-noise term, from MIN_ROUGH_SD up to MAX_ROUGH_SD
# (real single runs differ by 5-15 %).
MIN_ROUGH_SD = 0.002
MAX_ROUGH_SD = 0.15
ROUGH_SD = 0.005  # where the learned roughness starts
# The roughness has a log-normal prior: median ROUGH_PRIOR, ROUGH_PRIOR_SD in log units.
# Without it, maximum likelihood gave a smooth simulated surface 1-2 % of roughness, and
# a model that believes each config's own readings that much pools less from its
# neighbours (default noise, 18 simulated surfaces: summed median trials to the band BO
# 92 -> 115, Thompson sampling 105 -> 128). A real surface measured once per setting,
# whose neighbours differ by 5-10 % (the shared LoudVA Nano surface), overcomes it.
ROUGH_PRIOR = 0.003
ROUGH_PRIOR_SD = 0.5
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
# A weak prior on each length scale (log-normal: median SCALE_PRIOR, SCALE_PRIOR_SD in log
# units), so the fit is a MAP estimate rather than maximum likelihood. Under noise a few
# dozen trials cannot tell a knob with a gentle effect from an irrelevant one, and maximum
# likelihood then sends its length scale to the cap (simulated Orin NX x MobileNet-V2 at
# 10 % noise: the CPU clock, whose lowest setting costs 8 % more, declared flat on 2 of 10
# seeds, one of which recommended that setting). The prior costs 4.5 nats at the cap, about
# what such data can say; a knob that truly does not matter still gets a long scale.
SCALE_PRIOR = 0.5
SCALE_PRIOR_SD = 1.0
SCALE_PRIOR_MIN_VALUES = 7  # the clocks (as the trust region); a short knob such as the batch size has its trend


def _skopt():
    try:
        from skopt.learning import GaussianProcessRegressor
        from skopt.learning.gaussian_process.kernels import ConstantKernel, Matern
        from skopt.space import Categorical, Integer
        from skopt.space import Space as SkSpace
    except ImportError:
        raise EdgetuneError("this strategy needs scikit-optimize: pip install scikit-optimize") from None
    return GaussianProcessRegressor, ConstantKernel, Matern, Categorical, Integer, SkSpace


_NUGGET = None


def _config_nugget():
    """A kernel that adds ``noise_level`` between observations of the *same* config,
    at fit and at prediction alike (sklearn's WhiteKernel adds it to the diagonal of
    the training covariance only, i.e. per observation, and skopt drops it when it
    predicts). Built on first use, so importing this module loads no scikit-optimize."""
    global _NUGGET
    if _NUGGET is not None:
        return _NUGGET
    from sklearn.gaussian_process.kernels import GenericKernelMixin, Hyperparameter, StationaryKernelMixin
    from skopt.learning.gaussian_process.kernels import Kernel  # skopt's: its sums accept only its own kernels

    class ConfigNugget(StationaryKernelMixin, GenericKernelMixin, Kernel):
        def __init__(self, noise_level=1.0, noise_level_bounds=(1e-5, 1e5)):
            self.noise_level = noise_level
            self.noise_level_bounds = noise_level_bounds

        @property
        def hyperparameter_noise_level(self):
            return Hyperparameter("noise_level", "numeric", self.noise_level_bounds)

        def __call__(self, X, Y=None, eval_gradient=False):
            X = np.asarray(X, dtype=float)
            other = X if Y is None else np.asarray(Y, dtype=float)
            same = np.ones((X.shape[0], other.shape[0]), dtype=bool)
            for j in range(X.shape[1]):  # column by column: no (n, m, d) temporary
                same &= X[:, j, None] == other[None, :, j]
            K = self.noise_level * same
            if not eval_gradient:
                return K
            if Y is not None:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            if self.hyperparameter_noise_level.fixed:
                return K, np.empty((X.shape[0], X.shape[0], 0))
            return K, K[:, :, np.newaxis]

        def diag(self, X):
            return np.full(np.asarray(X).shape[0], self.noise_level, dtype=float)

        def gradient_x(self, x, X_train):
            return np.zeros_like(np.asarray(X_train, dtype=float))

        def __repr__(self):
            return f"ConfigNugget(noise_level={self.noise_level:.3g})"

    ConfigNugget.__module__ = __name__
    ConfigNugget.__qualname__ = "ConfigNugget"
    _NUGGET = ConfigNugget
    return _NUGGET


def _map_optimizer(kernel, priored: np.ndarray, scale: float, rough_sd: float):
    """sklearn's optimiser hook, minimising the negative log marginal likelihood plus the
    negative log priors of the length scales flagged in ``priored`` (``SCALE_PRIOR``) and
    of the roughness (``ROUGH_PRIOR``, ``rough_sd`` in log units; 0: no prior, the roughness
    fitted freely); ``scale`` is the model's unit of log cost."""
    from scipy.optimize import minimize

    mask, rough = [], []
    for hp in kernel.hyperparameters:
        if not hp.fixed:
            mask += list(priored) if hp.name.endswith("length_scale") else [False] * hp.n_elements
            rough += [hp.name == "k2__noise_level"] * hp.n_elements
    scales, nugget = np.asarray(mask, dtype=bool), np.asarray(rough, dtype=bool)
    centre = math.log(SCALE_PRIOR)
    # theta holds log(roughness variance / scale^2): the roughness's log SD is half of it plus log(scale)
    rough_centre = 2 * (math.log(ROUGH_PRIOR) - math.log(max(scale, 1e-12)))

    def optimizer(obj_func, initial_theta, bounds):
        def objective(theta):
            value, grad = obj_func(theta, eval_gradient=True)
            grad = np.array(grad, dtype=float)
            z = (theta[scales] - centre) / SCALE_PRIOR_SD
            grad[scales] += z / SCALE_PRIOR_SD
            value += 0.5 * float(z @ z)
            if rough_sd:
                r = (theta[nugget] - rough_centre) / (2 * rough_sd)
                grad[nugget] += r / (2 * rough_sd)
                value += 0.5 * float(r @ r)
            return value, grad

        result = minimize(objective, initial_theta, jac=True, method="L-BFGS-B", bounds=bounds)
        return result.x, result.fun

    return optimizer


class GPSurrogate:
    """The GP of log cost over the whole lattice (module docstring): fitted to the told
    costs with their measurement noise, it predicts, draws and recommends."""

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
            raise ConfigError("the search space has a single config: there is nothing to search "
                              "(name more values, or use strategy sweep to measure it)")
        self._sk_space = sk_space(dims)
        rows = lattice.index[:, self._cols]
        self.X = np.asarray(self._sk_space.transform([[int(v) for v in r] for r in rows]), dtype=float)
        self._gpr = gpr
        self._const, self._matern = const, matern
        self._theta = {"c": 1.0, "ls": np.full(self.X.shape[1], 0.4), "rough": ROUGH_SD**2}
        # which of the model's input columns carry the length-scale prior
        widths = []
        for i, dim in zip(self._cols, self._sk_space.dimensions):
            widths += [len(lattice.space.knobs[i])] * dim.transformed_size
        self._priored = np.array([w >= SCALE_PRIOR_MIN_VALUES for w in widths], dtype=bool)
        self.model = None
        self._tuned_at = 0  # observations when the hyperparameters were last optimised
        # the prior mean's shape along the batch (0 for a fixed or absent batch knob)
        self._trend = np.zeros(len(lattice))
        for i, knob in enumerate(lattice.space.knobs):
            if knob.name == BATCH_SIZE and len(knob) > 1:
                self._trend += np.asarray(batch_trend(knob))[lattice.index[:, i]]
        self._beta = 1.0  # the trend's weight: the prior's until the data say otherwise
        #: The roughness's prior (``ROUGH_PRIOR``) holds it near a smooth surface's; off, the
        #: fit learns it freely (see ``ModelBased.sweep_basin``).
        self.rough_prior = True

    REOPTIMISE = 1.5  # re-fit hyperparameters when the data grew by this factor (or 4 points), or on a surprise

    def _kernel(self, y_std: float):
        """Matern-5/2 (ARD) plus the surface's roughness, a learned per-config term.

        Measurement noise is not in the kernel: it is each observation's ``alpha``,
        known from the repeats (see ``fit``), and the GP's mean estimates the cost
        without it. The roughness is part of the cost: a config that measured 6 %
        below its neighbours on every repeat keeps that 6 %, so measuring it again
        returns it and the recommendation should see it; an unmeasured config's
        roughness is unknown, which widens its posterior. Left free to explain the
        measurement noise too, a white term would let a fit call a knob with a small
        effect (the CPU clock on Orin moves energy by ~10 %) noise and recommend at
        random along it; with the measurement noise given, it only has to explain
        what repeats cannot.
        """
        scale = max(y_std, 1e-6) ** 2
        lo, hi = (MIN_ROUGH_SD**2) / scale, (MAX_ROUGH_SD**2) / scale
        rough = float(np.clip(self._theta["rough"] / scale, lo, hi))
        return (self._const(self._theta["c"], (1e-2, 1e2))
                * self._matern(length_scale=self._theta["ls"], length_scale_bounds=(0.1, LONGEST_SCALE), nu=2.5)
                + _config_nugget()(rough, (lo, hi)))

    def fit(self, costs: dict[int, list[float]], allowed: np.ndarray, noise: TrialNoise | None = None,
            repeats: dict[int, list[int]] | None = None, retune: bool = False) -> bool:
        """Fit to every finite told cost (each told trial is one observation); False if too few.

        ``noise`` and ``repeats`` give each observation its measurement noise (the
        variance of the mean of that trial's repeats); without them, the prior's.
        ``retune`` re-optimises the hyperparameters now, whatever the data's growth."""
        rows, ys, var = [], [], []
        repeat_var = (noise or TrialNoise()).repeat_var
        finite = [math.log(c) for cs in costs.values() for c in cs if math.isfinite(c) and c > 0]
        if len(finite) < 2:
            return False
        penalty = max(finite) + 0.25 * (max(finite) - min(finite) + 0.1)
        for row, cs in costs.items():
            if not allowed[row]:
                continue  # memory failure: pruned, not modelled
            counts = (repeats or {}).get(row) or [1] * len(cs)
            for c, n in zip(cs, counts):
                rows.append(row)
                ys.append(math.log(c) if math.isfinite(c) and c > 0 else penalty)
                var.append(repeat_var / max(1, n))
        y = np.asarray(ys)
        self._var = np.asarray(var)
        trend = self._trend[rows]
        n = len(ys)
        retune = retune or self.model is None or n >= max(self._tuned_at * self.REOPTIMISE, self._tuned_at + 4)
        # warm start from the last hyperparameters; between re-tunes keep them fixed (one Cholesky)
        self._scale = max(float(np.std(y)), 1e-6)
        model = self._fit_gp(rows, y - self._beta * trend, optimise=retune)
        if not retune and self._surprised(model):
            retune = True
            model = self._fit_gp(rows, y - self._beta * trend, optimise=True)
        if retune:
            self._tuned_at = n
            params = model.kernel_.get_params()
            self._theta = {"c": float(params["k1__k1__constant_value"]),
                           "ls": np.atleast_1d(params["k1__k2__length_scale"]).astype(float),
                           "rough": float(params["k2__noise_level"]) * self._scale**2}
        if np.ptp(trend) > 0:  # two batch sizes measured: the data can weigh the trend
            self._beta = self._trend_weight(model, y, trend)
            model = self._fit_gp(rows, y - self._beta * trend, optimise=False)
        self.model = model
        return True

    #: A fit whose hyperparameters contradict an observation this strongly (its leave-one-out
    #: residual, in the fit's own standard deviations) is re-tuned at once, not at the next
    #: REOPTIMISE step. Between re-tunes the hyperparameters are those fitted to fewer points;
    #: when a new point falls outside what they allow (a length scale fitted to eight points
    #: on a rough real surface, the shared LoudVA Nano one, then pulled a config measured 3 %
    #: below its neighbours 3 % up, 10 of the fit's standard deviations, and the
    #: recommendation moved off it), the posterior mean no longer follows the data.
    #: Under calibrated hyperparameters an observation lies beyond 4 SD once in ~16,000, so on
    #: simulated surfaces under noise a surprise is rare, and the re-tune it costs with it.
    SURPRISE_Z = 4.0

    def _surprised(self, model) -> bool:
        """Whether some observation lies beyond ``SURPRISE_Z`` leave-one-out standard
        deviations of the fit (closed form: ``[K^-1 y]_i / [K^-1]_ii`` over ``1 / [K^-1]_ii``).
        ``K^-1 y`` is the fit's own ``alpha_``; the diagonal of ``K^-1`` comes from one
        triangular solve with its Cholesky factor (the squared column norms of ``L^-1``)."""
        from scipy.linalg import solve_triangular

        l_inv = solve_triangular(model.L_, np.eye(model.L_.shape[0]), lower=True)
        diag = np.maximum((l_inv**2).sum(axis=0), 1e-12)
        z = np.ravel(model.alpha_) / np.sqrt(diag)
        return bool(np.max(np.abs(z)) > self.SURPRISE_Z)

    def _fit_gp(self, rows: list[int], y: np.ndarray, optimise: bool):
        """A GP on log cost less the trend, about a pessimistic constant (``PRIOR_QUANTILE``)."""
        self._prior = float(np.quantile(y, PRIOR_QUANTILE))
        alpha = np.maximum(self._var, 1e-8) / self._scale**2  # measurement noise, in the model's units
        model = self._gpr(kernel=self._kernel(self._scale), normalize_y=False, noise=None, alpha=alpha,
                          optimizer=_map_optimizer(self._kernel(self._scale), self._priored, self._scale,
                                                   ROUGH_PRIOR_SD if self.rough_prior else 0.0) if optimise
                          else None,
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

    def joint(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and covariance of log cost at ``rows`` (O(len(rows)^2) memory)."""
        mu, cov = self.model.predict(self.X[rows], return_cov=True)
        return mu * self._scale + self._offset(rows), cov * self._scale**2

    def sample(self, rows: np.ndarray, rng: np.random.Generator,
               temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """One joint draw of log cost over ``rows`` (or a random subset of them); returns (rows, values).

        ``temperature`` scales the posterior spread (1 = the exact posterior)."""
        if rows.size > MAX_JOINT:
            rows = np.sort(rng.choice(rows, MAX_JOINT, replace=False))
        mu, cov = self.joint(rows)
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
    around the incumbent (:mod:`tuner.strategies.trust_region`) — on a recording of
    one run per setting, once the incumbent stands, the lowest smoothed cost anywhere
    instead (:meth:`sweep_basin`); recommendation by posterior mean among measured configs."""

    init_points = 3
    UNORDERED_SHARE = 16  # an unordered knob's values enter the design if they are at most 1/16 of the space

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
        # An unordered knob (a power mode, a provider) gives the GP nothing to interpolate
        # across: a value never measured stays the prior's guess, and the trust region
        # rarely reaches it. Where its values are a small share of the space, the design
        # tries each at the first anchor's other settings, as descent compares them.
        base = anchors[0]
        for i, knob in enumerate(space.knobs):
            if not knob.ordered and len(knob) * self.UNORDERED_SHARE <= len(self.lattice):
                anchors += [base[:i] + (v,) + base[i + 1:] for v in range(len(knob))]
        anchors = list(dict.fromkeys(anchors))
        spread = self.lattice.design(max(0, self.init_points - len(anchors)), self.rng, self.allowed)
        self._design = anchors + [tuple(self.lattice.index[r]) for r in spread]
        self._design_asked: tuple[int, tuple[int, ...]] | None = None  # (row, entry) if the last ask was the design's
        self._fitted = False
        self.region = TrustRegion(self.lattice)
        self.incumbent: int | None = None  # the measured row with the lowest posterior mean, as of the last ask
        self._held = 0  # asks in a row at which the incumbent was the same row
        self.sweeping = False  # the second phase on a recording of one run per setting (sweep_basin)

    MODEL_REGION = True

    def tell(self, config, cost, measurement=None) -> None:
        row = self.lattice.row(config)
        from_design = self._design_asked is not None and self._design_asked[0] == row
        steer = not from_design  # design trials do not steer the region
        before = math.inf
        if steer and self.MODEL_REGION and self._fitted and self.incumbent is not None:
            before = math.exp(float(self.gp.mean(np.array([self.incumbent]))[0]))
        elif steer:
            means = [m for m in self.mean_costs().values() if math.isfinite(m)]
            before = min(means) if means else math.inf
        super().tell(config, cost, measurement)
        if from_design and measurement is not None and measurement.memory_failure:
            self._design.insert(0, self._design_asked[1])  # the same design entry, at a batch that fits
        # Fit here, once per trial, and nowhere else (but once in ask, when a search of a
        # recording changes phase: sweep_basin): when the GP is fitted decides when its
        # hyperparameters are re-optimised, so fitting on demand would let a caller who
        # merely asks for best() between trials change the search.
        self._fitted = self.gp.fit(self.costs, self.allowed, self.noise, self.repeats)
        if steer:
            # Under noise a single reading is judged against a best mean that is itself biased
            # low; the model's view of the trial (its posterior mean, once fitted with it)
            # against the incumbent's before it is what TuRBO's success means.
            after = cost
            if self.MODEL_REGION and self._fitted and math.isfinite(before) and math.isfinite(cost):
                after = math.exp(float(self.gp.mean(np.array([row]))[0]))
            self.region.update(after, before)

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
        incumbent = self.gp.recommend(measured & self.allowed, self.costs)
        self._held = self._held + 1 if incumbent == self.incumbent else 0
        self.incumbent = incumbent
        if not self.sweeping and self._held >= self.SWEEP_AFTER and self.noise.recording:
            self.sweep_basin()
        if self.sweeping and self.noise.exact:
            fresh = candidates[~measured[candidates]]
            if fresh.size:  # the posterior mean alone: O(n) a candidate, no shortlist needed
                return self.lattice.configs[int(fresh[int(np.argmin(self.gp.mean(fresh)))])]
        if self.incumbent is not None:
            candidates = self.region.confine(candidates, self.incumbent, lambda rows: not measured[rows].all())
        return self.lattice.configs[self.choose(self.shortlist(candidates))]

    #: On a recording of one run per setting, the asks in a row with the same incumbent
    #: after which the search has found its basin and sweeps it (``sweep_basin``). Chosen on
    #: the 18 simulated rough recordings (``benchmarks/strategies.py --rough 0.05``), not on
    #: the real ones: 3 to 5 did equally well there within the seeds' scatter, 2 worse, and the
    #: smallest of them starts the sweep soonest on a small budget; see README, "Rough
    #: recordings".
    SWEEP_AFTER = 3

    def sweep_basin(self) -> None:
        """The second phase of a search of a recording of one run per setting: from now on,
        measure the unmeasured setting with the lowest *smoothed* cost, anywhere in the
        space, with the surface's roughness fitted freely.

        Why: every recorded value there carries its one run's luck (real single runs of a
        setting differ by 5-15 %), frozen, and an unmeasured setting's luck is unknowable
        before it is measured. Expected improvement and Thompson draws keep valuing that
        luck as uncertainty worth exploring, and the roughness's prior — right for a smooth
        surface under repeats — holds the model's view of it near 0.3 % for the first 20-30
        trials. Once the incumbent has stood for ``SWEEP_AFTER`` asks, the search has found
        the basin; the best any strategy can then do is measure the basin's settings in the
        order the smooth part of the model ranks them, and keep the luckiest. Fitted freely,
        the roughness takes the luck (3.5 % for a GP fitted to the whole real Xavier NX clock
        sweep) and leaves the smooth surface to the kernel, so the ranking is not pulled
        towards one lucky neighbour. Not confined to the trust region: its box halves after
        every three trials that do not beat the incumbent by 1 %, which is most trials of a
        sweep, and it then held the sweep to the incumbent's nearest neighbours (simulated
        rough recordings, 10 seeds: BO's and Thompson sampling's seeds above 5 % 74 -> 65 of
        360 without it, mean median regret 2.8 -> 2.4 % and 3.2 -> 2.6 %; a box of fixed
        side 0.8 around the incumbent 66 seeds, of side 0.4 76). Measured on the 18 rough
        recordings and on real ones: README, "Rough recordings".

        Never on a board whose repeats differ (``TrialNoise.exact``): under measurement noise
        a reading's luck is not the setting's, and re-measuring and expected improvement
        handle it."""
        self.sweeping = True
        self.gp.rough_prior = False
        self._fitted = self.gp.fit(self.costs, self.allowed, self.noise, self.repeats, retune=True)
        self.incumbent = self.gp.recommend(self.measured() & self.allowed, self.costs)

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

    #: A measured config whose mean is known to within this (one standard error, in log
    #: cost) is not worth measuring again: a quarter of the 2 % band.
    SETTLED_SD = 0.005

    def uncertain(self, rows: np.ndarray) -> np.ndarray:
        """Which ``rows`` a further measurement could still move: their mean's standard
        error (from the repeats behind them) is above ``SETTLED_SD``."""
        return np.array([self.noise.mean_sd(int(r)) > self.SETTLED_SD for r in rows], dtype=bool)

    def choose(self, candidates: np.ndarray) -> int:
        """The next row among ``candidates``; ``self.incumbent`` is the current best guess."""
        raise NotImplementedError

    def best(self):
        if not self._fitted:
            return super().best()
        row = self.gp.recommend(self.measured() & self.allowed, self.costs)
        return self.lattice.configs[row] if row is not None else super().best()

    #: An economical search stops (``Strategy.STOP_CHANCE``) not before this many trials per
    #: searched knob after the design: hyperparameters
    #: fitted to a few points are overconfident (simulated Xavier NX x ResNet-18: every
    #: unmeasured config below a 5 % chance after the design, 35 % once refitted at 6 trials;
    #: with 2 per knob, 3 of 10 seeds stopped 2.3-3.2 % off the optimum, with 3, 1 of 10).
    MIN_TRIALS_PER_KNOB = 3

    def converged(self, improvement: float) -> bool:
        """No config has a fair chance (``STOP_CHANCE``) of beating the incumbent by more than
        ``improvement``, after enough trials for the model's judgement to count."""
        searched = sum(1 for k in self.space.knobs if len(k) > 1)
        feasible = sum(1 for cs in self.costs.values() for c in cs if math.isfinite(c))
        if feasible < self.init_points + self.MIN_TRIALS_PER_KNOB * searched:
            return False  # failures (out of memory, a constraint) teach the model little about the cost
        return self.chance_of_improvement(improvement) < self.STOP_CHANCE

    def chance_of_improvement(self, improvement: float) -> float:
        """The largest posterior probability, over every allowed config, that its cost is
        below the incumbent's by more than ``improvement`` (a fraction: 0.01 is 1 %).
        1.0 while the initial design runs or nothing is fitted: the model is not yet
        entitled to say no.

        The incumbent is the recommendation. The comparison is of the two costs under
        the joint posterior of the GP of log cost, ``f(x) - f(incumbent) <
        log(1 - improvement)``: the incumbent's own level is uncertain too (its
        readings are noisy; on a flat surface a tie measured twice is not settled),
        and so is a measured config's (a config measured once under noise may still
        hide a real win). The posterior includes the surface's roughness but not the
        measurement noise: a win that is only a lucky reading does not count — except on a
        recording of one run per setting, where the luck is the recorded value: there an
        unmeasured setting's own variance is at least ``RUN_LUCK_SD`` squared.
        """
        if self._design or not self._fitted:
            return 1.0
        incumbent = self.gp.recommend(self.measured() & self.allowed, self.costs)
        if incumbent is None:
            return 1.0
        candidates = np.flatnonzero(self.allowed)
        candidates = candidates[candidates != incumbent]
        if candidates.size == 0:
            return 1.0
        from scipy.stats import norm

        # on a recording of one run per setting, an unmeasured setting holds its run's luck too
        luck = RUN_LUCK_SD**2 if self.noise.recording else 0.0
        measured = self.measured()
        best = 0.0
        for chunk in np.array_split(candidates, max(1, math.ceil(candidates.size / CHANCE_CHUNK))):
            mu, cov = self.gp.joint(np.concatenate([[incumbent], chunk]))
            diff = mu[1:] - mu[0]
            own = np.diag(cov)[1:]
            own = np.where(measured[chunk], own, np.maximum(own, luck))
            sd = np.sqrt(np.maximum(own + cov[0, 0] - 2 * cov[0, 1:], 1e-18))
            best = max(best, float(np.max(norm.cdf((math.log1p(-improvement) - diff) / sd))))
        return best

"""How noisy is one trial? An estimate from the repeats behind each trial and from re-measured configs.

A trial is the mean of its repeats (the runner repeats until three agree
within 5 %, up to six). How far that mean is from the config's true cost
decides how much a strategy may trust one reading: whether a probe that
beats the incumbent by 2 % has won or was lucky, how much a GP should smooth.
The study's own practice (clocks pinned, 3,200 inferences a repeat) gives
~1.8 % per repeat's energy; real boards in the field give 5-15 % (sensor
sampling, unpinned clocks, temperature). A constant fitted to one of them is
wrong for the other, so the strategies estimate it from what they measure:

- the repeats: for ``n`` normal repeats the range over the mean is ``d2(n)``
  standard deviations on average (``D2``), so each trial with two or more
  repeats gives an estimate of one repeat's variance, ``(spread / d2(n))^2``.
  The runner stops early when repeats agree, which biases a single trial's
  range low at three repeats and high at six; pooled, the two nearly cancel
  (simulated with the runner's rule: estimated 2.1 % per trial against a true
  2.3 % at 5 % per repeat, 4.2 % against 4.2 % at 10 %). The mean of ``n``
  repeats then has variance ``var / n``: normal repeats' mean is independent
  of their range, so stopping early does not bias it.
- re-measured configs: the spread of a config's trial means is the trial
  noise itself, drift between trials included, and it is all there is when
  a trial has a single repeat (online windows).

A recording replayed with one run per setting has repeats that agree exactly:
the estimate falls to ~0, as it should — measuring again would return the same
number. Its roughness is not measurement noise; a model has to learn that
separately (:mod:`tuner.strategies.surrogate`).

Everything is relative, in log cost (the noise of energy is multiplicative).
"""

from __future__ import annotations

import math

#: Mean range of n standard normal draws, in standard deviations.
D2 = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}
#: Before any repeat is seen: the study's practice, ~1.8 % per repeat's energy,
#: held with the weight of this many degrees of freedom.
PRIOR_REPEAT_SD = 0.018
PRIOR_DOF = 2.0
#: How much a single run's own luck may move a setting's recorded cost: the middle of what
#: real single runs of one setting differ by (5-15 %; the shared LoudVA recording's source
#: reports 10-15 % between repeats). On a recording of one run per setting
#: (``TrialNoise.recording``) that luck is frozen into each value, and an unmeasured
#: setting's is unknown: the stop rules of an economical search count at least this much
#: for every unmeasured setting of such a recording
#: (:meth:`tuner.strategies.surrogate.ModelBased.chance_of_improvement`,
#: :meth:`tuner.strategies.descent.OnlineDescent.converged`).
RUN_LUCK_SD = 0.10


class TrialNoise:
    """Pooled estimate of one repeat's relative standard deviation, and of one trial's."""

    def __init__(self) -> None:
        self._sum = PRIOR_DOF * PRIOR_REPEAT_SD**2  # sum of dof-weighted variance estimates
        self._dof = PRIOR_DOF
        self._replicates: dict[int, list[tuple[float, int]]] = {}  # row -> [(log cost, repeats)]
        self._var: float | None = None  # repeat_var, until the next add
        #: Nothing told so far says a measurement differs from the truth: every trial had two or
        #: more repeats, all equal, and every config measured again read the same. No physical
        #: measurement does that; a deterministic source — a replayed recording of one run per
        #: setting — does, and there measuring a config again returns the same number. The
        #: variance estimate cannot say so early: it starts from the prior's 1.8 % per repeat and
        #: needs several trials to fall. Trials told without a measurement say nothing either way,
        #: nor does a single-repeat trial once repeats have agreed (see ``add``).
        self.exact = True
        self.agreed = 0  # trials of two or more repeats, all equal: the evidence behind ``exact``

    @property
    def recording(self) -> bool:
        """Whether the trials so far come from a recording of one run per setting: repeats have
        agreed exactly (``agreed``) and nothing has differed since (``exact``). There a setting's
        recorded value holds its one run's luck, frozen."""
        return self.exact and self.agreed > 0

    def add(self, row: int, cost: float, measurement=None) -> None:
        """Record one told trial (its repeats' spread when the measurement says it)."""
        self._var = None
        n = int(getattr(measurement, "repeats", 1) or 1) if measurement is not None else 1
        if measurement is not None and getattr(measurement, "feasible", False) and n >= 2:
            spread = getattr(measurement, "energy_spread", math.nan)
            if spread is not None and math.isfinite(spread) and spread >= 0:
                d2 = D2.get(n, 3.078 + 0.1 * (n - 10))
                self._sum += (n - 1) * (spread / d2) ** 2
                self._dof += n - 1
        if self.exact and measurement is not None and getattr(measurement, "feasible", False) \
                and math.isfinite(cost) and cost > 0:
            differs = any(v != math.log(cost) for v, _ in self._replicates.get(row, ()))
            if n >= 2 and getattr(measurement, "energy_spread", math.nan) == 0 and not differs:
                self.agreed += 1
            elif differs or n >= 2 or not self.agreed:
                # noise seen; or one repeat a trial from the start (online windows), which never rules it
                # out. A single repeat after repeats that agreed (racing cut a poor config short) is neutral.
                self.exact = False
        if math.isfinite(cost) and cost > 0:
            self._replicates.setdefault(row, []).append((math.log(cost), n))

    @property
    def repeat_var(self) -> float:
        """The variance of one repeat's log cost (repeats and re-measured configs pooled)."""
        if self._var is not None:
            return self._var
        total, dof = self._sum, self._dof
        for values in self._replicates.values():
            k = len(values)
            if k < 2:
                continue
            mean = sum(v for v, _ in values) / k
            n_bar = sum(n for _, n in values) / k
            # the trial means' sample variance, scaled back to one repeat
            total += sum((v - mean) ** 2 for v, _ in values) * n_bar
            dof += k - 1
        self._var = total / dof
        return self._var

    def trial_var(self, repeats: int = 1) -> float:
        """The variance of one trial's log cost, the mean of ``repeats`` repeats."""
        return self.repeat_var / max(1, repeats)

    def trial_sd(self, repeats: int = 1) -> float:
        return math.sqrt(self.trial_var(repeats))

    def mean_sd(self, row: int, fallback_repeats: int = 3) -> float:
        """The standard error of the mean of every trial at ``row`` (one trial of
        ``fallback_repeats`` repeats when it has none)."""
        ns = self.repeats(row)
        return self._mean_sd(ns) if ns else self.trial_sd(fallback_repeats)

    def mean_sd_after(self, row: int) -> float:
        """What ``mean_sd(row)`` would be after one more trial there, of as many repeats as
        the row's trials before had on average (three for a row not yet measured)."""
        ns = self.repeats(row)
        return self._mean_sd(ns + [round(sum(ns) / len(ns)) if ns else 3])

    def _mean_sd(self, ns: list[int]) -> float:
        # trials of n_i repeats each: the mean of k trial means has variance sum(var/n_i)/k^2
        var = self.repeat_var
        return math.sqrt(sum(var / max(1, n) for n in ns)) / len(ns)

    def repeats(self, row: int) -> list[int]:
        return [n for _, n in self._replicates.get(row, [])]

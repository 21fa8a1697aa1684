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
strides and the last ones settle on single steps.

Noise. A config's cost, as the descent compares it, is an estimate
(:meth:`OnlineDescent.estimates`): its own mean, combined with what a local
quadratic fitted to its measured neighbours predicts, each weighted by its
precision — the trial noise is estimated from the repeats behind each trial
(:mod:`tuner.strategies.noise`). Under field noise one reading is 2-4 % off,
as much as a clock step changes the cost near the minimum, and a descent
that follows single readings walks wherever they send it; the neighbours
average that out. A probe that beats the position by less than ``Z``
standard errors is also measured again before the descent moves. Where
repeats agree (a quiet board, a replayed recording) every estimate is the
config's own mean and nothing is measured twice without cause.

When no single step in either direction improves (a local minimum, or a
plateau), the descent does not stop there: it re-checks the position and
any neighbour within noise of it, then *widens* — probes 2, 4, 8 ... steps
along each knob, up to half its range — and moves on if something farther
is better; failing that, it re-checks the best config found and its
neighbours (so it can run *online*, as a governor, while the workload runs
and the surface drifts) and *restarts* the descent from an unmeasured config
at random, keeping everything measured. On a real surface measured once per
setting, single-step local minima 5-10 % above the best point are common; a
descent without these settled on one and never moved again.

A recording of one run per setting (repeats agree exactly, ``TrialNoise.recording``)
is the exception to the restart: there every recorded value carries its run's
luck, frozen, and the best setting is a lucky run in the basin, which no step
can point to. Once the descent has settled, it *sweeps*: every unmeasured
setting, in the order the smooth part of the surface ranks them (``_sweep``).

Unordered knobs (a power mode, a governor, a placement) have no steps: their
values are compared one by one, the rest of the config kept — at the start
(a preset moves every clock at once, more than any step) and at every local
minimum, before widening.

The recommendation is the config with the lowest estimate plus one standard
error of it: a single lucky reading with no neighbours to vouch for it does
not beat a config they confirm (the winner's curse). The other side of that
rule: a config whose estimate beats the recommendation's but is still
uncertain is measured again before the descent goes on, so a better config
met once is not passed over for one measured more (racing; ``_challenger``).
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np

from tuner.config import GPU_FREQ, HARDWARE_KNOBS, Config
from tuner.strategies.base import MEMORY_KNOBS, Strategy
from tuner.strategies.noise import RUN_LUCK_SD
from tuner.strategies.prior import likely_best


class OnlineDescent(Strategy):
    """Descent over the ordered lattice from the top clocks, robust to noise (module docstring)."""

    name = "ogd"
    summary = "online gradient descent from the maximum clocks, adaptive steps; runs online as a governor"
    growth = 1.5
    IDLE_ROUNDS = 64  # rounds in a row that measure nothing before the position is re-measured
    MEMORY_WAIT = 2  # rounds a memory knob starting at its largest value sits out first
    Z = 0.5  # a win by less than this many standard errors of the difference is measured again
    Z_MOVE = 0.0  # ... and after that, a win by less is a tie
    CHECKS = 3  # ... until each side has this many trials
    CHALLENGE_SD = 0.02  # a config reading better than the recommendation is measured again while
    # its standard error (log cost) is at least this: the 2 % band (_challenger)
    SETTLED_SD = 0.005  # a config whose mean is known to within this (log cost) is not measured again
    WIDEST = 0.5  # widening probes reach this share of a knob's range
    TAIL_DOF = 4.0  # of the Student-t roughness of that model
    BANDWIDTH = 0.2  # of the local model behind the recommendation, in unit coordinates

    def __init__(self, space, *, seed: int = 0, start: Config | None = None) -> None:
        super().__init__(space, seed=seed, start=start)
        names = space.names
        self.dims = [i for i, k in enumerate(space.knobs) if k.ordered and len(k) > 1]
        # unordered knobs (a power mode, a governor, a placement) have no steps to descend:
        # at the start and at each local minimum every other value of each is tried there
        # (``_alternatives``)
        self.choices = [i for i, k in enumerate(space.knobs) if not k.ordered and len(k) > 1]
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
        self.restarts = 0
        self.settled = False  # a descent ended in a minimum that widening and re-checks confirmed
        self._estimated: tuple[int, dict[int, tuple[float, float]]] | None = None
        self._gen = self._search()
        self._pending: int | None = None  # the generator's next row, when converged() looked ahead

    # --- the search is a generator of rows; tell() records costs it reads back --------
    def ask(self) -> Config | None:
        row = self._challenger()
        if row is None:
            row = self._next_row()
            self._pending = None
        return None if row is None else self.lattice.configs[row]

    def _next_row(self) -> int | None:
        """The generator's next row (computed once: :meth:`converged` may look ahead)."""
        if self._pending is None:
            try:
                self._pending = next(self._gen)
            except StopIteration:
                return None
        return self._pending

    def converged(self, improvement: float) -> bool:
        """A descent has converged once it reached a minimum that widening could not
        leave and re-checks confirmed: its next step would be a restart elsewhere
        (on a recording, the sweep), which an economical search gives up
        (``improvement`` is already in the descent's tests: a win within noise is
        measured again before it moves) —
        once no challenger of the recommendation is left (:meth:`_challenger`).
        Looks ahead one step, which the next :meth:`ask` returns.

        On a recording of one run per setting the sweep is not given up while an unmeasured
        setting has a fair chance (``STOP_CHANCE``) of beating the recommendation by more
        than ``improvement``: its cost the trend's (:meth:`_smooth`) plus its own run's
        luck (``RUN_LUCK_SD``), as the model-based strategies' stop rule counts it. Without
        this, a `tune` of the held-out real Xavier NX clock sweep stopped after 16 trials,
        6.3 % above its best, with it after 26 trials on the best; on the 18 simulated rough
        recordings the economical searches measured 417 trials instead of 378 and ended
        above 5 % on 4 instead of 6 (summed regret 0.58 against 0.78)."""
        if not self.settled:
            self._next_row()
        if not self.settled or self._challenger() is not None:
            return False
        return not self.noise.recording or self._chance_of_luck(improvement) < self.STOP_CHANCE

    def _chance_of_luck(self, improvement: float) -> float:
        """On a recording: the largest chance that an unmeasured setting, its run's luck
        included, beats the recommendation by more than ``improvement`` (0 when none is left)."""
        upcoming = self._sweep_next()
        champion = self._stat(self._champion())
        if upcoming is None or champion is None:
            return 0.0
        gap = upcoming[1] - champion[0]
        return 0.5 * math.erfc(-(math.log1p(-improvement) - gap) / (RUN_LUCK_SD * math.sqrt(2)))

    def best(self) -> Config | None:
        """The measured config whose estimated cost plus one standard error of the
        estimate is lowest (see :meth:`estimates`)."""
        est = self.estimates()
        if not est:
            return super().best()
        return self.lattice.configs[_recommended(est)]

    def _challenger(self) -> int | None:
        """A measured config to measure again before the descent goes on, or None.

        :meth:`best` ranks by estimate plus one standard error, so a config measured once
        whose estimate beats the recommendation's is passed over for its doubt alone, and
        unless the descent comes back to it, it is never measured again: the
        recommendation then rests on a config that was merely measured more (simulated
        Orin NX x ResNet-18 at noise 0.10, seed 7: a config 2.1 % above the optimum, met
        once at trial 53, was never measured again, and the recommendation ended 5.7 %
        above; with this rule that seed ends 0.3 % above). So, as in racing, a doubt
        about the recommendation is settled before anything new is measured: of the
        *challengers* — configs still uncertain (:meth:`_uncertain`) whose estimate is
        below the recommendation's — the one with the lowest estimate minus one standard
        error is measured again, up to ``CHECKS`` trials each. An economical search does
        not stop while one is left (:meth:`converged`).

        Only a doubt of at least ``CHALLENGE_SD`` (2 %, the band a search is judged to
        have found the optimum in) is worth a trial: on a quiet board one trial already
        knows a config to about 1 %, and measuring it again there only delayed the descent
        (simulated, default noise: summed median trials to the band 97 -> 98 without this
        bound). Where repeats agree exactly (a replayed recording) no mean is uncertain
        and nothing changes. README ("ogd", "Field noise 0.10") has what it measured."""
        est = self.estimates()
        if len(est) < 2:
            return None
        rec = _recommended(est)
        rivals = [r for r in est if r != rec and est[r][0] < est[rec][0]
                  and est[r][1] >= self.CHALLENGE_SD and self._uncertain(r)]
        return min(rivals, key=lambda r: est[r][0] - est[r][1]) if rivals else None

    def estimates(self) -> dict[int, tuple[float, float]]:
        """Every feasible measured config's log cost as a local model of the measurements
        sees it: (estimate, its standard error).

        Under noise, the lowest of dozens of means is biased low (the winner's curse),
        and a descent measures the configs along its path about once each. But
        neighbouring configs cost about the same, so each estimate borrows from them:
        a quadratic in the knobs' positions, fitted to the *other* measured configs
        weighted by closeness (a Gaussian of ``BANDWIDTH`` in unit coordinates) and
        precision, predicts the config; the prediction and the config's own mean are
        combined by their precisions, the prediction's including the roughness the
        fits leave unexplained (empirical Bayes; with Student-t tails, so a config far
        outside what its neighbours allow keeps its own mean). Where repeats agree — a replayed
        recording, a quiet board — a config's own mean is exact and is the estimate;
        under field noise a single lucky reading among honest neighbours counts for
        what it is worth, and one with no neighbours keeps its full standard error,
        which :meth:`best` adds before it ranks."""
        if self._estimated is not None and self._estimated[0] == len(self.order):
            return self._estimated[1]
        scores = self._scores()
        rows = list(scores)
        y = np.array([scores[r][0] for r in rows])
        var = np.array([scores[r][1] for r in rows]) ** 2 + 1e-8
        out = {r: (float(y[k]), math.sqrt(var[k])) for k, r in enumerate(rows)}
        if len(rows) >= 4 and self.dims:
            u = self.lattice.unit[np.array(rows)][:, self.dims]
            phi = _quadratic(u)
            near = np.exp(-((u[:, None, :] - u[None, :, :]) ** 2).sum(axis=2) / (2 * self.BANDWIDTH**2))
            # the roughness: what in-sample local fits leave unexplained beyond measurement noise
            fit = np.array([_local_fit(phi, y, near[k] / var, k, None)[0] for k in range(len(rows))])
            rough = max(0.0, float(np.mean((y - fit) ** 2 - var)))
            for k, r in enumerate(rows):
                pred, pred_var = _local_fit(phi, y, near[k] / (var + rough), k, var + rough)
                if not math.isfinite(pred_var):
                    continue
                prior_var = pred_var + rough
                # heavy-tailed (Student-t) rather than normal: a config far outside what its
                # neighbours and its own noise allow is a feature of the surface (a narrow
                # basin, a step), not luck, and keeps its own mean
                z2 = (y[k] - pred) ** 2 / (var[k] + prior_var)
                prior_var *= (self.TAIL_DOF + z2) / (self.TAIL_DOF + 1)
                post_var = 1.0 / (1.0 / var[k] + 1.0 / prior_var)
                out[r] = (post_var * (y[k] / var[k] + pred / prior_var), math.sqrt(post_var))
        self._estimated = (len(self.order), out)
        return out

    def _cost(self, row: int) -> float:
        """What the descent compares: the config's estimated cost (:meth:`estimates`; its
        mean where repeats agree), inf when unmeasured or failed."""
        stat = self._stat(row)
        return math.exp(stat[0]) if stat is not None else math.inf

    def _clamp_row(self, x: np.ndarray) -> int | None:
        sizes = self.lattice.sizes
        y = np.clip(x, 0, sizes - 1)
        row = self.lattice.find(tuple(int(v) for v in y))
        return row if row is not None and self.allowed[row] else None

    # --- noise --------------------------------------------------------------------------
    def _uncertain(self, row: int) -> bool:
        """Another trial at ``row`` could still move its mean."""
        return len(self.costs.get(row, ())) < self.CHECKS and self.noise.mean_sd(row) > self.SETTLED_SD

    def _stat(self, row: int) -> tuple[float, float] | None:
        """``row``'s log cost as the descent compares it, with its standard error: the
        estimate of :meth:`estimates` (its own mean where repeats agree); None when
        unmeasured or failed."""
        costs = self.costs.get(row)
        if not costs or not all(math.isfinite(c) and c > 0 for c in costs):
            return None
        est = self.estimates().get(row)
        if est is not None:
            return est
        return math.log(float(np.mean(costs))), self.noise.mean_sd(row)

    def _gap(self, row: int, here: int) -> tuple[float, float] | None:
        """How much better ``row`` is than ``here`` (log), and the standard error of that."""
        a, b = self._stat(row), self._stat(here)
        if a is None or b is None:
            return None
        return b[0] - a[0], math.hypot(a[1], b[1])

    def _doubtful(self, row: int, here: int) -> int | None:
        """If ``row`` reads better than ``here`` by less than ``Z`` standard errors, the
        one of the two to measure again (the less measured; None when neither can be)."""
        gap = self._gap(row, here)
        if gap is None or not 0 < gap[0] < self.Z * gap[1]:
            return None
        order = sorted((row, here), key=lambda r: len(self.costs.get(r, ())))
        return next((r for r in order if self._uncertain(r)), None)

    def _confirm(self, row: int, here: int) -> Generator[int, None, None]:
        """Measure ``row`` and ``here`` again while ``row``'s win over ``here`` is within noise."""
        again = self._doubtful(row, here)
        while again is not None:
            yield again
            again = self._doubtful(row, here)

    def _better(self, row: int, here: int) -> bool:
        """``row`` beats ``here`` by at least ``Z`` standard errors; a smaller win that
        measuring again could not settle is a tie, and a tie does not move the descent
        (on a plateau, single readings would otherwise walk it anywhere)."""
        if self._stat(here) is None and here in self.costs:  # the position failed (an SLO, a crash)
            return self._stat(row) is not None
        gap = self._gap(row, here)
        return gap is not None and gap[0] > 0 and gap[0] >= self.Z_MOVE * gap[1]

    # --- the search ------------------------------------------------------------------------
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
        self._rest = {d: self.MEMORY_WAIT if self.space.names[d] in MEMORY_KNOBS and self._at_largest(x, d) else 0
                      for d in self.dims}
        self._misses = {d: 0 for d in self.dims}
        # a preset (a power mode) sets every clock at once, a bigger move than any step,
        # so the presets are compared before the first descent as well as at every minimum
        moved = yield from self._alternatives(here)
        if moved is not None:
            here = moved
        self.position = here
        while True:
            told = len(self.order)
            here = yield from self._descend(here)
            moved = yield from self._alternatives(here)
            if moved is None:
                moved = yield from self._widen(here)
            if moved is not None:
                here = moved
                continue
            # nothing better near: keep the best config found and its neighbours checked
            # (online, this is holding), then descend again from somewhere new
            yield from self._recheck()
            self.settled = True
            if self.noise.recording:
                yield from self._sweep()
            start = self._restart_point()
            if start is not None:
                yield start
                self.restarts += 1  # counted once its first trial is told (converged() may look ahead)
                if self.allowed[start]:
                    here = start
                    self._reset_steps()
            else:
                here = self._champion()
            self.position = here
            if len(self.order) == told:  # everything is measured and settled: hold, measuring the best again
                yield here

    def _descend(self, here: int) -> Generator[int, None, int]:
        """Rounds of probes and moves from ``here`` until no single step improves; returns the position."""
        x = self.lattice.index[here].copy()
        rest, misses = self._rest, self._misses
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
            blocked: list[int] = []  # knobs whose step lands on no recorded config either way
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
                    blocked.append(d)
                    continue
                if row not in self.costs:
                    yield row
                probes[d] = (row, direction)
            for _d, (r, _s) in probes.items():  # a small win is measured again before it counts
                yield from self._confirm(r, here)
            better = {d: (r, s) for d, (r, s) in probes.items() if self._better(r, here)}
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
                    yield from self._confirm(combined, here)
                    candidates.append(combined)
                best = min(candidates, key=self._cost)
                if self._better(best, here):
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
                for d in blocked:  # an incomplete grid (a recording): a shorter step may land
                    self.step[d] = max(1.0, self.step[d] / 2)
                if all(self.step[d] <= 1.0 for d in self.dims) and self._stuck(x, here):
                    # a local minimum, or a lucky reading here: check both before leaving
                    yield from self._check_position(x, here)
                    if self._stuck(x, here):
                        return here

    def _check_position(self, x: np.ndarray, here: int) -> Generator[int, None, None]:
        """Measure ``here`` again, and every single-step neighbour within noise of it."""
        if self._uncertain(here) and len(self.costs[here]) < 2:
            yield here
        for row in self._neighbours(x, here):
            if row in self.costs:
                yield from self._confirm_close(row, here)

    def _confirm_close(self, row: int, here: int) -> Generator[int, None, None]:
        """``row`` reads worse than ``here`` by less than ``Z`` standard errors: measure the
        less measured of the two again (it may be the better one)."""
        for _ in range(2 * self.CHECKS):
            gap = self._gap(here, row)
            if gap is None or gap[0] < 0 or gap[0] >= self.Z * gap[1]:
                return
            order = sorted((row, here), key=lambda r: len(self.costs.get(r, ())))
            again = next((r for r in order if self._uncertain(r)), None)
            if again is None:
                return
            yield again

    def _alternatives(self, here: int) -> Generator[int, None, int | None]:
        """At the start or a local minimum, every other value of each unordered knob, the rest of the
        config kept; returns the best of those that beat ``here`` (confirmed), else None.
        A preset's neighbours by id say nothing about it (nvpmodel mode 3 is not between
        2 and 4), so there is no step to take: each value is a trial of its own. Without
        this a descent never left the value it started at (the first power mode) except
        by a random restart."""
        x = self.lattice.index[here]
        for d in self.choices:
            rows = []
            for value in range(self.lattice.sizes[d]):
                y = x.copy()
                y[d] = value
                row = self._clamp_row(y)
                if row is None:  # this value caps the clocks elsewhere (a power mode): its nearest config
                    row = self.nearest_allowed(y, within=self.lattice.index[:, d] == value)
                if row is None or row == here or row in rows:
                    continue
                if row not in self.costs:
                    yield row
                rows.append(row)
            for row in rows:
                yield from self._confirm(row, here)
            better = [row for row in rows if self._better(row, here)]
            if better:
                self.position = min(better, key=self._cost)
                return self.position
        return None

    def _widen(self, here: int) -> Generator[int, None, int | None]:
        """Probe 2, 4, 8 ... steps along each knob (up to ``WIDEST`` of its range) from a
        local minimum; returns the new position if one is better (confirmed), else None."""
        x = self.lattice.index[here]
        width = 2
        reach = {d: max(1, int(self.WIDEST * (self.lattice.sizes[d] - 1))) for d in self.dims}
        while any(width <= reach[d] for d in self.dims):
            for d in self.dims:
                if width > reach[d]:
                    continue
                for direction in (-1, 1):
                    y = x.copy()
                    y[d] += direction * width
                    if not 0 <= y[d] < self.lattice.sizes[d]:
                        continue
                    row = self._clamp_row(y)
                    if row is None or row == here:
                        continue
                    if row not in self.costs:
                        yield row
                    yield from self._confirm(row, here)
                    if self._better(row, here):
                        self.sign[d] = direction
                        self.step[d] = max(1.0, width / 2)
                        self.position = row
                        return row
            width *= 2
        return None

    def _recheck(self) -> Generator[int, None, None]:
        """The best config found and its neighbours, each measured until its mean is settled
        (or ``CHECKS`` trials): what holding online looks like, and what the recommendation rests on."""
        champion = self._champion()
        x = self.lattice.index[champion]
        for row in [champion, *self._neighbours(x, champion)]:
            if self._uncertain(row):
                yield row

    def _scores(self) -> dict[int, tuple[float, float]]:
        """Every feasible measured config's (log mean, standard error)."""
        out = {}
        for row, costs in self.costs.items():
            if costs and all(math.isfinite(c) and c > 0 for c in costs):
                out[row] = (math.log(float(np.mean(costs))), self.noise.mean_sd(row))
        return out

    def _champion(self) -> int:
        best = self.best()
        return self.lattice.row(best) if best is not None else int(self.position or 0)

    def _sweep(self) -> Generator[int, None, None]:
        """On a recording of one run per setting, from a settled minimum: every unmeasured
        setting, lowest smooth cost first (:meth:`_smooth`), until none is left.

        Why not restart: there a recorded value is its run's luck as much as the setting's
        (real single runs differ by 5-15 %), so single-step minima are everywhere and the
        best setting is a lucky run near the basin, as likely a diagonal or two steps off
        as anywhere the descent's axis-wise probes reach. A random restart spends its
        trials far from the basin and a descent from a lucky reading sees nothing.
        Ranking the unmeasured settings by the fitted trend (not by the lucky values
        around them) measures the basin first: on the held-out real Xavier NX clock
        sweep every seed ended on the recording's best (restarts: 6.0-6.3 % above it on
        9 of 10 seeds), on the 18 simulated rough recordings the runs ending above 5 %
        went from 38 to 30 of 180 (README, "Rough recordings"). Never under measurement
        noise (``TrialNoise.recording`` is False where repeats differ): a lucky reading
        there is not the setting's, and re-measuring handles it."""
        upcoming = self._sweep_next()
        while upcoming is not None:
            yield upcoming[0]
            self.position = self._champion()
            upcoming = self._sweep_next()

    def _sweep_next(self) -> tuple[int, float] | None:
        """The sweep's next setting — the unmeasured one of lowest smooth log cost — and that
        cost; None when everything is measured or too little is to fit a trend."""
        fresh = np.flatnonzero(self.allowed & ~self.measured())
        scores = self._scores()
        if fresh.size == 0 or len(scores) < 2:
            return None
        smooth = self._smooth(fresh, scores)
        k = int(np.argmin(smooth))
        return int(fresh[k]), float(smooth[k])

    def _smooth(self, rows: np.ndarray, scores: dict[int, tuple[float, float]]) -> np.ndarray:
        """The smooth part of the log cost at ``rows``: least squares, over every feasible
        measured config (``scores``, :meth:`_scores`), of a quadratic in the ordered knobs'
        positions plus an offset for each value of each unordered knob (a power mode). One
        fit over the whole space,
        not the local fits of :meth:`estimates`: near a lucky run a local fit bends
        towards it, and the sweep then circles that run instead of the basin (simulated
        rough recordings: a bandwidth of 0.2 left 40 runs of 180 above 5 %, 0.6 and a
        single fit 30)."""
        measured = list(scores)
        y = np.array([scores[r][0] for r in measured])
        coef = np.linalg.lstsq(self._trend_terms(np.array(measured)), y, rcond=None)[0]
        return self._trend_terms(rows) @ coef

    def _trend_terms(self, rows: np.ndarray) -> np.ndarray:
        """The columns of :meth:`_smooth`'s fit at ``rows``."""
        cols = [_quadratic(self.lattice.unit[rows][:, self.dims])]
        for d in self.choices:
            cols.append((self.lattice.index[rows, d][:, None] == np.arange(self.lattice.sizes[d])).astype(float))
        return np.hstack(cols)

    def _restart_point(self) -> int | None:
        """An unmeasured config at random (None when everything is measured). Near the
        best config, widening has looked already; a restart is for what it cannot see:
        another basin beyond a plateau."""
        fresh = np.flatnonzero(self.allowed & ~self.measured())
        if fresh.size == 0:
            return None
        return int(self.rng.choice(fresh))

    def _reset_steps(self) -> None:
        for d in self.dims:
            self.step[d] = max(1.0, (len(self.space.knobs[d]) - 1) / 4)
            self._rest[d] = 0
            self._misses[d] = 0

    def _neighbours(self, x: np.ndarray, here: int) -> list[int]:
        rows = []
        for d in self.dims:
            for direction in (-1, 1):
                y = x.copy()
                y[d] += direction
                if not 0 <= y[d] < self.lattice.sizes[d]:
                    continue
                row = self._clamp_row(y)
                if row is not None and row != here:
                    rows.append(row)
        return rows

    def _at_largest(self, x: np.ndarray, d: int) -> bool:
        """Knob ``d`` is at its largest value, or the next one up did not fit in memory."""
        if x[d] == self.lattice.sizes[d] - 1:
            return True
        y = x.copy()
        y[d] += 1
        return self._clamp_row(y) is None

    def _stuck(self, x: np.ndarray, here: int) -> bool:
        """No single step in either direction measured better than here."""
        for row in self._neighbours(x, here):
            if row not in self.costs or self._better(row, here):
                return False
        return True


def _recommended(est: dict[int, tuple[float, float]]) -> int:
    """The row :meth:`OnlineDescent.best` recommends among ``estimates()``: the lowest
    estimate plus one standard error."""
    return min(est, key=lambda r: est[r][0] + est[r][1])


def _quadratic(u: np.ndarray) -> np.ndarray:
    """Columns 1, u_i, then u_i * u_j (i <= j): a full quadratic in the unit coordinates."""
    n, d = u.shape
    cols = [np.ones(n)] + [u[:, i] for i in range(d)]
    cols += [u[:, i] * u[:, j] for i in range(d) for j in range(i, d)]
    return np.column_stack(cols)


def _local_fit(phi: np.ndarray, y: np.ndarray, w: np.ndarray, k: int, noise: np.ndarray | None) -> tuple[float, float]:
    """Weighted least squares of ``y`` on the columns of ``phi`` (as many as the weights
    support), predicted at row ``k``. With ``noise`` (each row's variance), row ``k`` is
    left out and the prediction's variance is returned too (a sandwich estimate: the
    weights are not only precisions); without it, the in-sample fit and nan."""
    w = w.copy()
    if noise is not None:
        w[k] = 0.0
    support = float(w.sum() / max(w.max(), 1e-300)) if w.max() > 0 else 0.0  # effective number of rows
    d = int(round((math.sqrt(8 * phi.shape[1] + 1) - 3) / 2))  # phi = 1 + d + d(d+1)/2 columns
    for cols in (phi.shape[1], 1 + d, 1):
        if support >= 1.5 * cols or cols == 1:
            break
    if support <= 0:
        return float(y[k]), math.inf
    a = phi[:, :cols]
    aw = a * w[:, None]
    gram = a.T @ aw + 1e-6 * float(w.sum()) * np.diag([0.0] + [1.0] * (cols - 1))
    try:
        inv = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        return float(y[k]), math.inf
    coef = inv @ (aw.T @ y)
    pred = float(a[k] @ coef)
    if noise is None:
        return pred, math.nan
    meat = (aw * noise[:, None]).T @ aw
    g = a[k] @ inv
    return pred, float(g @ meat @ g)

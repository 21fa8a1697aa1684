"""What a search costs, and when the saving repays it (DESIGN §7).

On a board, every trial charges wall-clock time and joules: a search that
measures 70 configs three times each at 3,200 inferences spends hours running
mostly worse configs than the one it ends up holding. The user's question is
not "how many trials" but "how long until tuning paid for itself":

- ``exploration``: the time and energy of every measured repeat of the search
  (the DVFS reference included), with the trial and repeat counts;
- ``payback_s``: the exploration energy *above* what the held config would
  have used for the same work, divided by the rate at which the held config
  saves energy against DVFS while serving at its own throughput. ``None``
  when the held config saves nothing (it never pays back) or there is no DVFS
  reference.

Times are those of the measured repeats (simulated seconds on a simulated
board); warm-ups, settling and model loading are not in them, so on a real
board the wall-clock time of the command is somewhat longer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional, Tuple

from tuner.measurement import Measurement, Trial

if TYPE_CHECKING:
    from tuner.search import SearchResult


@dataclass(frozen=True)
class Exploration:
    """The measured work of a search: seconds, joules, trials and repeats, and inferences done."""

    time_s: float = 0.0
    energy_j: Optional[float] = 0.0  # None: no repeat measured energy (a board without a power monitor)
    trials: int = 0
    repeats: int = 0
    inferences: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {"time_s": round(self.time_s, 3),
                "energy_j": None if self.energy_j is None else round(self.energy_j, 3),
                "trials": self.trials, "repeats": self.repeats}


def exploration(trials: Iterable[Trial]) -> Exploration:
    """Sum every repeat of ``trials`` (an infeasible repeat costs the time and energy it ran, where known)."""
    time_s = energy_j = 0.0
    n_trials = n_repeats = inferences = 0
    measured_energy = False
    for trial in trials:
        n_trials += 1
        for r in trial.repeats or [trial.measurement]:
            n_repeats += 1
            time_s += r.time_s if math.isfinite(r.time_s) else 0.0
            if math.isfinite(r.energy_j):
                energy_j += r.energy_j
                measured_energy = True
            inferences += r.inferences
    return Exploration(time_s, energy_j if measured_energy or n_repeats == 0 else None, n_trials, n_repeats,
                       inferences)


def payback_s(explored: Exploration, held: Optional[Measurement], dvfs: Optional[Measurement]) -> Optional[float]:
    """Seconds of serving at the held config until its saving against DVFS repays the exploration.

    The exploration's own inferences were useful work, so only the energy above
    what the held config would have spent on them counts against it.
    """
    if held is None or dvfs is None or not (held.feasible and dvfs.feasible) or explored.energy_j is None:
        return None
    e_held, e_dvfs = held.energy_per_inference_j, dvfs.energy_per_inference_j
    rate = held.throughput_ips
    if not all(math.isfinite(v) for v in (e_held, e_dvfs, rate)) or rate <= 0:
        return None
    saving_w = (e_dvfs - e_held) * rate
    if saving_w <= 0:
        return None
    extra_j = max(0.0, explored.energy_j - explored.inferences * e_held)
    return extra_j / saving_w


def search_cost(result: SearchResult, references: Optional[Dict[Any, Trial]] = None
                ) -> Tuple[Exploration, Optional[float]]:
    """A finished search's exploration (its steps, re-measurements included, and its DVFS
    references) and the payback of the config it recommends against its DVFS reference."""
    trials = {id(s.trial): s.trial for s in result.steps}
    for ref in [result.reference, *(references or {}).values()]:
        if ref is not None:
            trials[id(ref)] = ref
    explored = exploration(trials.values())
    held = result.best_trial.measurement if result.best_trial is not None else None
    dvfs = result.reference.measurement if result.reference is not None else None
    return explored, payback_s(explored, held, dvfs)

"""Where published Jetson measurements put the energy minimum: the first guess of a search.

Dutt 2023 swept every CPU x GPU clock pair on three boards for six DNN
workloads. The energy minimum usually lay at GPU 614.4 MHz on the Nano (the
8th of its 12 GPU clocks), 803.25 MHz on the Xavier NX (the 9th of 15) and
714 MHz on the Orin NX (the 5th of 7): 60 % of the way up each board's list,
to the nearest clock. Energy per inference fell with the batch size (40-45 %
from batch 8 to 64 on the Nano) until memory ran out, and the CPU clock
mattered far less than the GPU's (on the Nano its sweep spanned 1 W and
60 s of 3,200 inferences, the GPU's 4.7 W and 532 s). So the guess is: the
GPU clock 60 % up its list, every other clock and core count at its maximum
(the DVFS governors' choice, never starving the pre- and post-processing),
the largest batch and concurrency, and the first value of an unordered knob.

The batch effect is also a prior for the model-based strategies' surrogate
(:func:`batch_trend`): the study attributes it to fewer mini-batches — less
I/O and pre-processing per inference — which is a fixed cost per batch
amortised over its size, energy per inference ~ 1 + k/batch. k = 6.7 makes
batch 64 cost 40 % less than batch 8, the study's Nano figure (Xavier NX:
35-42 %, Orin NX: 15-19 %). The surrogate weighs this shape by a factor it
re-estimates from the data, so a workload whose batch barely matters (or
matters more) overrides it as soon as two batch sizes are measured.

This is a prior, not a result: a search measures it like any other config
(first, because on the energy objective it is the best single bet) and moves
on when it is not the minimum. On the time objective the top corner — the
model-based strategies' second trial — is the better guess. On boards the
study did not cover (a discrete GPU through NVML, a generic Linux host) the
same rule is only a plausible start, and costs at most one trial.
"""

from __future__ import annotations

import math

from tuner.config import GPU_FREQ, Knob, Space

GPU_SHARE = 0.6  # of the way up the GPU's frequency list (index, rounded)
BATCH_OVERHEAD = 6.7  # per-batch cost in inferences' worth: batch 64 costs 40 % less than batch 8


def likely_best(space: Space) -> tuple[int, ...]:
    """The guess as knob indices (the nearest allowed config is the caller's to find)."""
    guess = []
    for knob in space.knobs:
        if not knob.ordered:
            guess.append(0)
        elif knob.name == GPU_FREQ:
            guess.append(round(GPU_SHARE * (len(knob) - 1)))
        else:
            guess.append(len(knob) - 1)
    return tuple(guess)


def batch_trend(knob: Knob) -> list[float]:
    """Expected log energy per inference at each of the knob's batch sizes, over the largest's.

    ``log(1 + k/b) - log(1 + k/b_max)``: 0 at the largest batch, growing as the
    batch shrinks (for 8, 16, 32, 64: 0.51, 0.25, 0.09, 0)."""
    top = math.log1p(BATCH_OVERHEAD / max(knob.values))
    return [math.log1p(BATCH_OVERHEAD / b) - top for b in knob.values]

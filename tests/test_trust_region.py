"""The model-based strategies' trust region: what it confines, how it grows, shrinks and restarts."""

from __future__ import annotations

import numpy as np

from tuner.config import Config, Knob, Space
from tuner.strategies.base import Lattice
from tuner.strategies.trust_region import FAILURES, INITIAL, LARGEST, SUCCESSES, TrustRegion

# 15 CPU steps, 12 GPU steps, 4 batch sizes: the clocks are confined, the batch size is not
SPACE = Space((Knob("cpu_freq_khz", tuple(range(100, 1600, 100))), Knob("gpu_freq_hz", tuple(range(10, 130, 10))),
               Knob("batch_size", (8, 16, 32, 64))))
LATTICE = Lattice(SPACE)
ALL = np.arange(len(LATTICE))


def row(cpu: int, gpu: int, batch: int) -> int:
    return LATTICE.row(Config({"cpu_freq_khz": cpu, "gpu_freq_hz": gpu, "batch_size": batch}))


def spans(rows: np.ndarray) -> dict[str, set]:
    return {k.name: {LATTICE.configs[r][k.name] for r in rows} for k in SPACE.knobs}


def test_the_box_confines_the_clocks_around_the_centre_and_leaves_the_batch_size_whole():
    region = TrustRegion(LATTICE)
    region.side = 0.3  # +-0.15 of each clock's range: +-2 CPU steps (of 14), +-1 GPU step (of 11)
    inside = spans(region.inside(ALL, row(800, 60, 8)))
    assert inside["cpu_freq_khz"] == {600, 700, 800, 900, 1000}
    assert inside["gpu_freq_hz"] == {50, 60, 70}
    assert inside["batch_size"] == {8, 16, 32, 64}


def test_three_improvements_double_the_side_and_three_misses_halve_it():
    region = TrustRegion(LATTICE)
    for _ in range(SUCCESSES):
        region.update(0.9, 1.0)
    assert region.side == min(2 * INITIAL, LARGEST)
    region.side = INITIAL
    for _ in range(FAILURES - 1):
        region.update(1.2, 1.0)
    region.update(0.9, 1.0)  # an improvement resets the count of misses
    for _ in range(FAILURES - 1):
        region.update(1.0, 1.0)
    assert region.side == INITIAL
    region.update(0.995, 1.0)  # within the 1 % margin: noise, not an improvement
    assert region.side == INITIAL / 2
    region.update(float("inf"), 1.0)  # a failed trial is a miss
    region.update(1.1, 1.0)
    region.update(1.1, 1.0)
    assert region.side == INITIAL / 4


def test_a_box_smaller_than_one_step_restarts_at_its_initial_size():
    region = TrustRegion(LATTICE)
    region.side = region.smallest * 1.5
    for _ in range(FAILURES):
        region.update(1.5, 1.0)
    assert region.side == INITIAL


def test_confine_widens_the_box_until_it_holds_a_usable_config_and_keeps_its_size():
    region = TrustRegion(LATTICE)
    region.side = 0.1
    centre = row(800, 60, 16)
    box = region.inside(ALL, centre)
    measured = np.zeros(len(LATTICE), dtype=bool)
    measured[box] = True  # everything in the small box is measured
    wider = region.confine(ALL, centre, lambda rows: not measured[rows].all())
    assert wider.size > box.size and not measured[wider].all()
    assert region.side == 0.1
    assert region.confine(ALL, centre, lambda rows: False).size == ALL.size  # nothing usable: everything

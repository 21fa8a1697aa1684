"""Objectives and constraints: the one definition of "best"."""

from __future__ import annotations

import math

import pytest

from tuner.config import Config
from tuner.errors import ConfigError
from tuner.measurement import Measurement
from tuner.objective import Constraints, Objective


def m(energy: float, time: float, n: int = 100, p95: float = 0.01) -> Measurement:
    return Measurement(Config({"batch_size": 8}), True, energy_j=energy, time_s=time, inferences=n,
                       batch_latency_p50_s=p95 / 2, batch_latency_p95_s=p95)


def test_costs_are_per_inference():
    a = m(100.0, 10.0)
    assert Objective.parse("energy").cost(a) == pytest.approx(1.0)
    assert Objective.parse("time").cost(a) == pytest.approx(0.1)
    assert Objective.parse("edp").cost(a) == pytest.approx(0.1)
    assert Objective.parse("ed2p").cost(a) == pytest.approx(0.01)
    assert Objective.parse("power").cost(a) == pytest.approx(10.0)
    # twice the work for twice the energy is the same cost
    assert Objective().cost(m(200.0, 20.0, n=200)) == pytest.approx(Objective().cost(a))


def test_weighted_is_relative_to_the_reference():
    ref = m(100.0, 10.0)
    obj = Objective.parse("weighted:0.7").with_reference(ref)
    assert obj.name == "weighted:0.7"
    assert obj.cost(ref) == pytest.approx(1.0)
    # 20 % less energy, 10 % more time: 0.7*0.8 + 0.3*1.1
    assert obj.cost(m(80.0, 11.0)) == pytest.approx(0.56 + 0.33)
    with pytest.raises(ConfigError, match="reference"):
        Objective.parse("weighted:0.5").cost(ref)


def test_constraints_make_configs_infeasible_with_a_reason():
    obj = Objective.parse("energy", Constraints(latency_p95_s=0.05, min_throughput_ips=5.0, power_cap_w=12.0))
    assert math.isfinite(obj.cost(m(100.0, 10.0, p95=0.04)))
    slow = m(100.0, 10.0, p95=0.06)
    assert obj.cost(slow) == math.inf
    checked = obj.check(slow)
    assert not checked.feasible and "latency SLO" in checked.failure
    assert slow.feasible  # check() does not mutate
    assert "throughput" in obj.check(m(100.0, 40.0)).failure
    assert "power" in obj.check(m(200.0, 10.0)).failure
    assert obj.cost(Measurement.infeasible(Config(), "out of memory: x", simulated=True)) == math.inf


@pytest.mark.parametrize("text", ["joules", "weighted:x", "weighted:1.5", "energy:3"])
def test_bad_objectives_are_one_line_errors(text):
    with pytest.raises(ConfigError):
        Objective.parse(text)

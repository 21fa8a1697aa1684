import json

import pytest

from tuner.config import Config, Knob, Space
from tuner.errors import ConfigError
from tuner.measurement import Measurement, percentile


def test_knob_keeps_ascending_order_and_reports_bad_values():
    k = Knob("gpu_freq_hz", (921600000, 76800000, 614400000), "Hz")
    assert k.values == (76800000, 614400000, 921600000)
    assert k.index(614400000) == 1
    with pytest.raises(ConfigError, match="gpu_freq_hz=600 is not one of"):
        k.validate(600)


def test_knob_rejects_empty_or_duplicate_domain():
    with pytest.raises(ConfigError):
        Knob("x", ())
    with pytest.raises(ConfigError):
        Knob("x", (1, 1))


def test_categorical_knob_keeps_given_order():
    k = Knob("cpu_governor", ("schedutil", "performance", "powersave"), ordered=False)
    assert k.values == ("schedutil", "performance", "powersave")


def test_config_is_immutable_hashable_and_round_trips_json():
    a = Config({"gpu_freq_hz": 614400000, "batch_size": 8})
    b = Config({"batch_size": 8, "gpu_freq_hz": 614400000})
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert Config.from_json(a.to_json()) == a
    assert json.loads(a.to_json()) == {"batch_size": 8, "gpu_freq_hz": 614400000}
    with pytest.raises(TypeError):
        a["batch_size"] = 4  # type: ignore[index]
    assert a.replace(batch_size=16)["batch_size"] == 16 and a["batch_size"] == 8


def test_config_splits_hardware_and_workload_parts():
    c = Config({"gpu_freq_hz": 1, "cpu_freq_khz": 2, "batch_size": 8, "concurrency": 2})
    assert set(c.hardware()) == {"gpu_freq_hz", "cpu_freq_khz"}
    assert set(c.workload()) == {"batch_size", "concurrency"}


def test_config_rejects_bad_json_and_non_scalars():
    with pytest.raises(ConfigError, match="not valid JSON"):
        Config.from_json("{nope")
    with pytest.raises(ConfigError):
        Config({"a": [1, 2]})  # type: ignore[dict-item]


def test_space_iterates_validates_and_maps_indices():
    space = Space((Knob("cpu_freq_khz", (102000, 204000)), Knob("batch_size", (8, 16, 32))),
                  constraints=(lambda c: not (c["cpu_freq_khz"] == 102000 and c["batch_size"] == 32),))
    configs = list(space)
    assert len(configs) == 5 and space.raw_size() == 6 and len(space) == 5
    assert configs[0] == Config({"cpu_freq_khz": 102000, "batch_size": 8})
    assert space.from_indices((1, 2)) == Config({"cpu_freq_khz": 204000, "batch_size": 32})
    assert space.to_indices(Config({"cpu_freq_khz": 204000, "batch_size": 16})) == (1, 1)
    assert Config({"cpu_freq_khz": 102000, "batch_size": 32}) not in space
    with pytest.raises(ConfigError, match="unknown knob"):
        space.validate(Config({"cpu_freq_khz": 102000, "batch_size": 8, "x": 1}))
    with pytest.raises(ConfigError, match="does not set batch_size"):
        space.validate(Config({"cpu_freq_khz": 102000}))


def test_measurement_derived_values_combine_and_round_trip():
    c = Config({"batch_size": 8})
    reps = [Measurement(c, simulated=True, energy_j=e, time_s=10.0, inferences=100,
                        rail_energy_j={"VDD_IN": e}) for e in (9.0, 10.0, 11.0)]
    m = Measurement.combine(reps)
    assert m.energy_j == pytest.approx(10.0)
    assert m.energy_spread == pytest.approx(0.2)
    assert m.repeats == 3 and m.simulated
    assert m.avg_power_w == pytest.approx(1.0)
    assert m.energy_per_inference_j == pytest.approx(0.1)
    d = m.to_dict()
    assert d["simulated"] is True and d["config"] == {"batch_size": 8}
    back = Measurement.from_dict(json.loads(json.dumps(d)))
    assert back.energy_j == pytest.approx(10.0) and back.config == c


def test_infeasible_repeat_makes_the_trial_infeasible():
    c = Config({"batch_size": 64})
    m = Measurement.combine([Measurement(c, False, energy_j=1, time_s=1, inferences=1),
                             Measurement.infeasible(c, "out of memory", simulated=False)])
    assert not m.feasible and m.failure == "out of memory"


def test_percentile():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([5], 95) == 5

"""The memory clock and nvpmodel power modes as knobs of simulated boards (issue 18)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.config import Config
from tuner.sim.board import SimBoard

TOP = {"cpu_freq_khz": 1984000, "gpu_freq_hz": 918000000, "batch_size": 16}


@pytest.fixture
def orin() -> SimBoard:
    return SimBoard("sim:jetson-orin-nx", noise=None)


def test_orin_nx_offers_its_emc_table_and_its_power_modes(orin):
    knobs = {k.name: k for k in orin.knobs()}
    assert knobs["emc_freq_hz"].values == (204000000, 665600000, 2133000000, 3199000000)
    assert knobs["power_mode"].values == (0, 1, 2, 3) and not knobs["power_mode"].ordered
    assert "emc_freq_hz" not in {k.name for k in SimBoard("sim:jetson-nano").knobs()}  # no BPMP EMC on a Nano


def test_the_top_memory_clock_is_the_calibrated_model(orin):
    calibrated = orin.expected("resnet18", Config(TOP))
    at_top = orin.expected("resnet18", Config({**TOP, "emc_freq_hz": 3199000000}))
    assert at_top.energy_j == pytest.approx(calibrated.energy_j, rel=1e-12)
    assert at_top.time_s == pytest.approx(calibrated.time_s, rel=1e-12)


def test_a_lower_memory_clock_slows_memory_bound_work_most(orin):
    def slowdown(workload: str) -> float:
        top = orin.expected(workload, Config({**TOP, "emc_freq_hz": 3199000000}))
        low = orin.expected(workload, Config({**TOP, "emc_freq_hz": 2133000000}))
        return low.time_s / top.time_s - 1

    resnet, membound = slowdown("resnet18"), slowdown("membound")
    assert 0.02 < resnet < 0.2  # published: 11-48 % across 2133-3199 MHz on an Orin Nano, by model
    assert 0.3 < membound < 0.6 and membound > 3 * resnet
    idle_top = orin.expected("membound", Config({**TOP, "emc_freq_hz": 3199000000})).avg_power_w
    idle_low = orin.expected("membound", Config({**TOP, "emc_freq_hz": 665600000})).avg_power_w
    assert idle_low < idle_top  # DRAM background power falls with the rate


def test_a_power_mode_caps_pinned_and_governed_clocks(orin):
    capped = orin.expected("resnet18", Config({**TOP, "power_mode": 3}))  # 25W: GPU <= 408 MHz
    pinned_low = orin.expected("resnet18", Config({**TOP, "gpu_freq_hz": 408000000, "cpu_freq_khz": 1497600}))
    assert capped.energy_j == pytest.approx(pinned_low.energy_j, rel=1e-9)  # the firmware clamps to the cap
    governed = orin.expected("resnet18", Config({"batch_size": 16, "power_mode": 1}))
    assert max(int(f) for f in governed.residency["gpu"]) <= 612000000
    assert max(int(f) for f in governed.residency["cpu"]) <= 1190400
    maxn = orin.expected("resnet18", Config({"batch_size": 16, "power_mode": 0}))
    default = orin.expected("resnet18", Config({"batch_size": 16}))
    assert maxn.energy_j == pytest.approx(default.energy_j, rel=1e-12)  # MAXN caps nothing


def cli(*args: str) -> dict:
    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 0, (out.output, out.exception)
    return json.loads(out.stdout)


def test_tune_searches_the_memory_clock_and_power_modes(tmp_path):
    emc = cli("tune", "--board", "sim:jetson-orin-nx", "--workload", "membound", "--knob", "emc_freq_hz",
              "--gpu-freqs", "612MHz,918MHz", "--cpu-freqs", "1984MHz", "--batch-sizes", "16", "--budget", "6",
              "--out", str(tmp_path / "emc"))
    assert emc["space"]["knobs"]["emc_freq_hz"] == 4 and "emc_freq_hz" in emc["best"]["config"]
    modes = cli("tune", "--board", "sim:jetson-xavier-nx", "--workload", "resnet18", "--knob", "power_mode",
                "--gpu-freqs", "510MHz,1109.25MHz", "--cpu-freqs", "1907.2MHz", "--batch-sizes", "16",
                "--budget", "6", "--out", str(tmp_path / "modes"))
    assert modes["space"]["knobs"]["power_mode"] >= 6 and "power_mode" in modes["best"]["config"]

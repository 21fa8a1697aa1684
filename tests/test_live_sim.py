"""Live mode end to end: real sysfs writes, live simulator, real sampler."""

from __future__ import annotations

import time

import pytest

from tuner.boards.jetson import JetsonBoard
from tuner.config import Config
from tuner.sampler import Sampler
from tuner.sim.live import LiveSimulator, read_activity
from tuner.sim.workload import LiveSimWorkload
from tuner.sysfs import Sysfs

SCALE = 40.0  # simulated workload runs 40x faster than modeled


def measure(board: JetsonBoard, wl: LiveSimWorkload, inferences: int) -> tuple[float, float, float]:
    """(GPU rail average W, total average W, mean batch latency s) of one run."""
    sampler = Sampler(board.power_source(), rate_hz=100).start()
    time.sleep(0.1)  # let the simulator see the new clocks before work starts
    sampler.mark("inference")
    run = wl.run(inferences)
    tr = sampler.stop()
    rep = tr.phase("inference")
    gpu_w = rep.rails_j["POM_5V_GPU"] / rep.duration_s
    return gpu_w, rep.avg_power_w, sum(run.batch_latencies_s) / len(run.batch_latencies_s)


def test_lower_gpu_frequency_lowers_gpu_rail_power_and_lengthens_batches(nano):
    board = JetsonBoard(Sysfs(nano))
    wl = LiveSimWorkload("alexnet", nano, batch_size=8, time_scale=SCALE)
    wl.setup()
    with LiveSimulator(nano, rate_hz=100):
        board.apply(Config({"cpu_freq_khz": 1479000, "gpu_freq_hz": 921600000}))
        gpu_hi, total_hi, lat_hi = measure(board, wl, 80)
        board.apply(Config({"gpu_freq_hz": 307200000}))
        gpu_lo, total_lo, lat_lo = measure(board, wl, 80)
    assert gpu_lo < 0.8 * gpu_hi
    assert total_lo < total_hi
    assert lat_lo > 1.5 * lat_hi
    # the simulator followed the real backend's writes
    assert (nano / "sys/devices/gpu.0/devfreq/57000000.gpu/cur_freq").read_text().split()[0] == "307200000"
    assert board.restore() == []
    assert not read_activity(nano).active


def test_idle_board_draws_idle_power_and_load_file_follows_activity(make_tree):
    root = make_tree("jetson-orin-nx")
    board = JetsonBoard(Sysfs(root))
    sim = LiveSimulator(root, rate_hz=50)
    sim.step(0.1)
    idle = board.power_source().read()["VDD_IN"]
    assert idle == pytest.approx(sim.model.idle_power() * 1000 * (1 + 0.002 * (sim.temp_c - 40)), rel=0.02)
    wl = LiveSimWorkload("resnet18", root, batch_size=16, time_scale=SCALE)
    wl.setup()
    from tuner.sim.live import Activity, write_activity

    write_activity(root, Activity("resnet18", 16, 1, True))
    sim.step(0.1)
    busy = board.power_source().read()["VDD_IN"]
    load = int((root / "sys/devices/17000000.ga10b/load").read_text().split()[0])
    assert busy > idle * 1.3 and load > 300


def test_live_workload_rejects_unknown_workload_and_oom(nano):
    from tuner.errors import EdgetuneError
    from tuner.sim.model import OutOfMemory

    with pytest.raises(EdgetuneError, match="no simulated model"):
        LiveSimWorkload("vgg19", nano)
    wl = LiveSimWorkload("mobilenet_v2", nano)
    with pytest.raises(OutOfMemory):
        wl.setup(Config({"batch_size": 64}))


def test_sim_run_command_animates_the_tree_and_stops_on_sigterm(nano):
    import signal
    import subprocess
    import sys

    power = nano / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input"
    before = power.read_text()
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli.main", "sim", "run", "--root", str(nano),
                             "--rate", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while power.read_text() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert power.read_text() != before  # fixed-width records written in place
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after" in out
    assert int(power.read_text().split()[0]) > 0

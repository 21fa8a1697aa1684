"""Field noise of the analytic simulated board (``--noise SIGMA``, heavy tails, slow drift)."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.boards.factory import open_board
from tuner.config import Config
from tuner.errors import EdgetuneError
from tuner.sim.board import Noise, SimBoard

CONFIG = Config({"cpu_freq_khz": 1479000, "gpu_freq_hz": 614400000, "batch_size": 16})


def repeats(noise: Noise, n: int = 2000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    board = SimBoard("sim:jetson-nano", seed=seed, noise=noise)
    board.apply(CONFIG)
    ms = [board.measure("alexnet", CONFIG) for _ in range(n)]
    return np.array([m.energy_j for m in ms]), np.array([m.time_s for m in ms])


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.10])
def test_sigma_is_the_relative_sd_of_one_repeats_energy_and_time(sigma):
    energy, time_s = repeats(Noise.field(sigma))
    truth = SimBoard("sim:jetson-nano").expected("alexnet", CONFIG)
    assert energy.std() / energy.mean() == pytest.approx(sigma, rel=0.1)
    assert time_s.std() / time_s.mean() == pytest.approx(sigma, rel=0.1)
    assert energy.mean() == pytest.approx(truth.energy_j, rel=3 * sigma / np.sqrt(len(energy)) + 0.005)
    assert 0.3 < np.corrcoef(energy, time_s)[0, 1] < 0.7  # a slow repeat also costs more, half the time


def test_heavy_tails_keep_the_sd_and_widen_the_extremes():
    normal, _ = repeats(Noise.field(0.05), n=4000)
    heavy, _ = repeats(Noise.field(0.05, tails=True), n=4000)
    dev = [np.abs(x / x.mean() - 1) for x in (normal, heavy)]
    assert heavy.std() / heavy.mean() == pytest.approx(0.05, rel=0.2)
    assert np.percentile(dev[1], 99.9) > 1.3 * np.percentile(dev[0], 99.9)
    assert heavy.min() > 0


def test_drift_makes_consecutive_repeats_alike():
    plain, _ = repeats(Noise.field(0.05), n=1500)
    drifting, _ = repeats(Noise.field(0.05, drift=True), n=1500)

    def lag1(x: np.ndarray) -> float:
        return float(np.corrcoef(x[:-1], x[1:])[0, 1])

    assert abs(lag1(plain)) < 0.1
    assert lag1(drifting) > 0.2


def test_the_default_noise_is_unchanged_and_says_so():
    energy, time_s = repeats(Noise(), n=1500)
    assert energy.std() / energy.mean() == pytest.approx(0.018, rel=0.15)
    assert time_s.std() / time_s.mean() == pytest.approx(0.01, rel=0.15)
    assert Noise().describe()["default"] is True and Noise.field(0.05).describe() == {
        "sigma": 0.05, "tails": False, "drift": False}


def test_bad_noise_is_one_line_and_only_for_simulated_boards(tmp_path):
    with pytest.raises(EdgetuneError, match="from 0 to 0.5"):
        Noise.field(0.9)
    with pytest.raises(EdgetuneError, match="simulated boards"):
        open_board("linux", tmp_path, noise=Noise.field(0.05))
    assert open_board("sim:jetson-nano", noise=Noise.field(0.05)).noise.energy_sd == 0.05


SMALL = ["--cpu-freqs", "403.2MHz,921.6MHz,1479MHz", "--gpu-freqs", "307.2MHz,614.4MHz,921.6MHz",
         "--batch-sizes", "8,16"]


def cli_json(*args: str) -> dict:
    import json

    from typer.testing import CliRunner

    from tuner.cli.main import app

    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 0, (out.output, out.exception)
    return json.loads(out.stdout)


def test_sweep_tune_bench_and_compare_take_noise_and_say_so(tmp_path):
    noisy = ["--noise", "0.08", "--noise-tails"]
    sweep = cli_json("sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", "--out", str(tmp_path / "s"),
                     "--no-plots", *SMALL, *noisy)
    quiet = cli_json("sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", "--out", str(tmp_path / "q"),
                     "--no-plots", *SMALL)
    assert sweep["noise"] == {"sigma": 0.08, "tails": True, "drift": False} and quiet["noise"]["default"] is True
    # noisier repeats disagree more, so the runner takes more of them to settle
    assert sweep["trials_csv_rows"] > quiet["trials_csv_rows"]
    tune = cli_json("tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--budget", "4",
                    "--out", str(tmp_path / "t"), *SMALL, "--noise", "0.05", "--noise-drift")
    assert tune["noise"] == {"sigma": 0.05, "tails": False, "drift": True} and tune["simulated"] is True
    bench = cli_json("bench", "--board", "sim:jetson-nano", "--workload", "alexnet", "--strategies", "random",
                     "--seeds", "2", *SMALL, "--noise", "0.1")
    assert bench["noise"]["sigma"] == 0.1
    compare = cli_json("compare", "--board", "sim:jetson-nano", "--workload", "alexnet", "--governors", "-/-",
                       "--config", "cpu_freq_khz=921600,gpu_freq_hz=614400000", "--no-plots",
                       "--out", str(tmp_path / "c"), "--noise", "0.05")
    assert compare["noise"]["sigma"] == 0.05

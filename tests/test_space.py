"""The space is what the board, the workload or the recording offers: nothing is assumed present."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.cli.searching import make_knobs
from tuner.config import Config, Knob, Space
from tuner.errors import ConfigError
from tuner.replay import ReplayBoard
from tuner.runner import RunPolicy, TrialRunner
from tuner.search import plan_space
from tuner.sim.board import SimBoard
from tuner.strategies import STRATEGIES, make_strategy

cli = CliRunner()
FAST = ["--inferences", "16", "--repeats", "1", "--sim-time-scale", "50"]


def invoke(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def one_line_error(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "tuner.cli.main", *args], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def without_cpufreq(root):
    cpu = root / "sys/devices/system/cpu"
    shutil.rmtree(cpu / "cpufreq", ignore_errors=True)
    for d in cpu.glob("cpu[0-9]*/cpufreq"):
        shutil.rmtree(d) if d.is_dir() and not d.is_symlink() else d.unlink()
    return root


def test_a_board_without_cpufreq_searches_without_the_cpu_and_says_so(make_tree, tmp_path):
    root = without_cpufreq(make_tree("jetson-nano"))
    args = ["tune", "--root", str(root), "--workload", "resnet18", "--strategy", "ogd", "--budget", "3", *FAST]
    doc = invoke(*args, "--out", str(tmp_path / "run"))
    assert doc["space"]["knobs"] == {"gpu_freq_hz": 12, "batch_size": 4} and doc["space_size"] == 48
    assert doc["space"]["not_searched"] == {"cpu_freq_khz": "the board offers no CPU frequency control"}
    assert "cpu_freq_khz is not searched" in doc["space"]["note"]
    assert doc["best"] is not None and "cpu_freq_khz" not in doc["best"]["config"]
    assert doc["dvfs"]["config"].get("cpu_governor") is None  # the DVFS reference is the GPU governor alone
    text = cli.invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert text.exit_code == 0
    assert "not searched: cpu_freq_khz: the board offers no CPU frequency control" in " ".join(text.output.split())
    # asked for explicitly, a knob the board lacks is still a clear error
    for extra in (["--cpu-freqs", "1479MHz"], ["--knob", "cpu_freq_khz"]):
        message = one_line_error(*args, *extra, "--out", str(tmp_path / "x"))
        assert "cpu_freq_khz cannot be searched here (the board offers no CPU frequency control)" in message
    assert not (tmp_path / "x" / "trials.csv").exists()


def test_a_full_board_keeps_the_default_space(make_tree, tmp_path):
    doc = invoke("tune", "--board", "sim:jetson-nano", "--workload", "alexnet", "--strategy", "random",
                 "--budget", "2", "--out", str(tmp_path / "r"))
    assert doc["space"]["knobs"] == {"cpu_freq_khz": 15, "gpu_freq_hz": 12, "batch_size": 4}
    assert doc["space_size"] == 720 and doc["space"]["not_searched"] == {} and "note" not in doc["space"]
    bench = invoke("bench", "--board", "sim:jetson-nano", "--workload", "alexnet", "--strategies", "random",
                   "--seeds", "1", "--batch-sizes", "64")
    assert bench["knobs"] == ["cpu_freq_khz", "gpu_freq_hz", "batch_size"] and bench["space_size"] == 180


def runner_for(board, workload="alexnet") -> TrialRunner:
    return TrialRunner(board, workload, RunPolicy(min_repeats=1, max_repeats=1))


def test_plan_space_leaves_out_only_defaults_and_keeps_explicit_knobs_strict():
    runner = runner_for(SimBoard("jetson-nano"))
    knobs, optional = make_knobs(None, None, None, (8, 16, 32, 64, 256), ["concurrency=1,2"])
    assert optional == ("cpu_freq_khz", "gpu_freq_hz", "batch_size")
    space, not_searched = plan_space(runner, knobs, optional)
    # a default batch the workload does not offer (256) is dropped, not an error
    assert space.knob("batch_size").values == (8, 16, 32, 64) and not_searched == {}
    assert space.names == ("cpu_freq_khz", "gpu_freq_hz", "batch_size", "concurrency")
    knobs, optional = make_knobs("8,256", None, None, (8, 16), None)
    with pytest.raises(ConfigError, match="batch_size=256 is not one of"):
        plan_space(runner, knobs, optional)
    with pytest.raises(ConfigError, match="emc_freq_hz cannot be searched here .the board offers no memory clock"):
        plan_space(runner, {"emc_freq_hz": None})
    with pytest.raises(ConfigError, match="nothing to search"):
        plan_space(runner, {"emc_freq_hz": None}, ("emc_freq_hz",))
    knobs, optional = make_knobs(None, None, None, (16,), ["cpu_freq_khz"])
    assert "cpu_freq_khz" not in optional  # --knob cpu_freq_khz asks for it


def test_a_replayed_sweep_offers_what_it_varied_and_pins_the_rest(tmp_path):
    out = tmp_path / "rec"
    invoke("sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", "--out", str(out), "--no-plots",
           "--cpu-freqs", "1479MHz", "--gpu-freqs", "307.2MHz,614.4MHz,921.6MHz", "--batch-sizes", "8,16",
           "--knob", "concurrency=1,2")
    board = ReplayBoard(out)
    assert board.searchable == ("gpu_freq_hz", "batch_size", "concurrency")
    assert board.pinned == {"cpu_freq_khz": 1479000}
    runner = runner_for(board)
    knobs, optional = make_knobs(None, None, None, (8, 16, 32, 64), None)
    space, not_searched = plan_space(runner, knobs, optional)
    assert space.names == ("gpu_freq_hz", "batch_size", "concurrency") and len(space) == 12
    assert not_searched == {"cpu_freq_khz": "pinned at 1479000 in the recording"}
    for config in space:
        assert board.covers(config) and board.expected("alexnet", config).feasible
    # asking for the pinned value is fine (nothing to search); another value is not recorded
    same, notes = plan_space(runner, {"cpu_freq_khz": (1479000,), "gpu_freq_hz": None})
    assert "cpu_freq_khz" not in same.names and "pinned" in notes["cpu_freq_khz"]
    with pytest.raises(ConfigError, match="cpu_freq_khz cannot be searched on this recording: pinned at 1479000"):
        plan_space(runner, {"cpu_freq_khz": (921600,)})
    with pytest.raises(ConfigError, match="emc_freq_hz cannot be searched on this recording: not in the recording"):
        plan_space(runner, {"emc_freq_hz": None})
    # tune on the replay: the recorded DVFS reference (per batch) is found through the pinned CPU
    doc = invoke("tune", "--board", f"replay:{out}", "--workload", "alexnet", "--strategy", "bo", "--budget", "5",
                 "--out", str(tmp_path / "tune"))
    assert doc["space_size"] == 12 and doc["dvfs"] is not None and doc["saving_vs_dvfs"] is not None
    assert doc["space"]["not_searched"] == {"cpu_freq_khz": "pinned at 1479000 in the recording"}


def test_a_replayed_sweep_keeps_its_space_when_nothing_is_pinned(tmp_path):
    out = tmp_path / "rec"
    invoke("sweep", "--board", "sim:jetson-nano", "--workload", "bert_tiny", "--out", str(out), "--no-plots",
           "--cpu-freqs", "921.6MHz,1479MHz", "--gpu-freqs", "614.4MHz,921.6MHz", "--batch-sizes", "16,32")
    bench = invoke("bench", "--board", f"replay:{out}", "--workload", "bert_tiny", "--seeds", "1",
                   "--strategies", "random", "--objective", "weighted:0.5")
    assert bench["space_size"] == 8 and bench["space"]["not_searched"] == {}


SPACES = {
    "gpu only": Space((Knob("gpu_freq_hz", tuple(range(7))),)),
    "batch only": Space((Knob("batch_size", (1, 2, 4, 8)),)),
    "gpu x concurrency": Space((Knob("gpu_freq_hz", tuple(range(11))), Knob("concurrency", tuple(range(1, 14))))),
    "power mode names x batch, incomplete": Space(
        (Knob("power_mode", ("MAXN", "10W", "5W"), ordered=False), Knob("batch_size", (1, 2, 4, 8))),
        (lambda c: not (c["power_mode"] == "5W" and c["batch_size"] == 8),)),
    "emc x cores": Space((Knob("emc_freq_hz", (1, 2, 3, 4)), Knob("cpu_cores", (1, 2, 3, 4)))),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_every_strategy_runs_on_a_space_without_cpu_or_batch(name, space_name):
    if name == "tpe" and importlib.util.find_spec("optuna") is None:
        pytest.skip("tpe needs optuna (pip install 'edgetune[tpe]')")
    space = SPACES[space_name]

    def cost(config: Config) -> float:  # a bowl over every ordered knob, the categorical one as an offset
        total = 1.0
        for knob in space.knobs:
            i = knob.index(config[knob.name])
            total += (i - (len(knob) - 1) * 0.6) ** 2 / len(knob) ** 2 if knob.ordered else 0.1 * i
        return total

    strategy = make_strategy(name, space, seed=1)
    for _ in range(len(space) + 6):
        if strategy.done():
            break
        config = strategy.ask()
        if config is None:
            break
        assert config in space
        strategy.tell(config, cost(config))
    best = strategy.best()
    assert best is not None and best in space
    assert len(set(strategy.order)) >= (1 if name == "ogd" else 2)

"""Governors and `edgetune compare`: baselines, the tuned row, residency, rate-driven service."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from governors.kernel import kernel_governors
from tuner.cli.main import app
from tuner.config import Config
from tuner.errors import ConfigError
from tuner.residency import merge, shares
from tuner.runner import paced
from tuner.sim.board import SimBoard

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

cli = CliRunner()


def invoke(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_compare_on_the_simulated_nano_saves_energy_with_every_kernel_governor_present(tmp_path):
    doc = invoke("compare", "--board", "sim:jetson-nano", "--workload", "alexnet", "--out", str(tmp_path))
    rows = {r["governor"]: r for r in doc["rows"]}
    assert doc["dvfs"] == "schedutil/nvhost_podgov" and doc["simulated"] is True
    board = SimBoard("jetson-nano")
    offered = {k.name: set(k.values) - {"userspace"} for k in board.knobs() if k.name.endswith("governor")}
    assert {name.split("/")[0] for name in rows if "/" in name} == offered["cpu_governor"]
    assert {name.split("/")[1] for name in rows if "/" in name} == offered["gpu_governor"]
    tuned = rows["tuned"]
    assert tuned["saving_vs_dvfs"] >= 0.10  # the reference study: 13.5 %
    assert tuned["config"]["batch_size"] == 16 and "gpu_freq_hz" in tuned["config"]
    assert rows[doc["dvfs"]]["saving_vs_dvfs"] == 0.0
    for r in doc["rows"]:
        assert set(r) >= {"governor", "energy_j", "time_s", "avg_power_w", "saving_vs_dvfs", "latency_cost_vs_dvfs",
                          "residency"}
        for domain in ("cpu", "gpu"):
            assert sum(r["residency"][domain].values()) == pytest.approx(1.0)
    # DVFS on the Nano: the top CPU step most of the time (the study: 89 %)
    assert rows[doc["dvfs"]]["residency"]["cpu"]["1479000"] == pytest.approx(0.89, abs=0.02)
    assert rows["powersave/nvhost_podgov"]["latency_cost_vs_dvfs"] > 0.3
    if HAVE_MATPLOTLIB:
        assert sorted(doc["plots"]) == ["compare.png", "residency.png"]
    else:  # the core install (an extra brings matplotlib): the skip is said, not silent
        assert "matplotlib is not installed" in doc["plots"]
    # a given tuned config replaces the tune
    again = invoke("compare", "--board", "sim:jetson-nano", "--workload", "alexnet", "--no-plots",
                   "--governors", "-/-", "--config", "cpu_freq_khz=921600,gpu_freq_hz=614400000",
                   "--out", str(tmp_path / "given"))
    assert [r["governor"] for r in again["rows"]] == ["schedutil/nvhost_podgov", "tuned"]
    assert again["tune_trials"] == 0 and again["rows"][1]["config"]["cpu_freq_khz"] == 921600


def test_compare_in_live_mode_writes_the_tree_and_puts_every_governor_file_back(make_tree):
    from tuner.boards.jetson import JetsonBoard
    from tuner.sysfs import Sysfs

    root = make_tree("jetson-nano")
    before = JetsonBoard(Sysfs(root)).snapshot()
    doc = invoke("compare", "--root", str(root), "--workload", "resnet18", "--inferences", "32", "--repeats", "1",
                 "--sim-time-scale", "60", "--governors", "-/-,performance/performance,powersave/-",
                 "--config", "cpu_freq_khz=921600,gpu_freq_hz=460800000", "--no-plots", "--online")
    rows = {r["governor"]: r for r in doc["rows"]}
    assert set(rows) == {"schedutil/nvhost_podgov", "performance/performance", "powersave/nvhost_podgov", "tuned",
                         "online"}
    assert all(r["feasible"] and r["energy_j"] > 0 for r in rows.values())
    # residency was sampled from the tree's cur_freq files while the rows ran
    assert rows["tuned"]["residency"]["gpu"] == {"460800000": 1.0}
    assert rows["powersave/nvhost_podgov"]["residency"]["cpu"] == {"102000": 1.0}
    assert JetsonBoard(Sysfs(root)).snapshot() == before


def test_a_rate_the_slow_configs_cannot_meet_makes_them_infeasible_not_recommended(tmp_path):
    doc = invoke("compare", "--board", "sim:jetson-nano", "--workload", "alexnet", "--rate", "30", "--no-plots",
                 "--out", str(tmp_path))
    rows = {r["governor"]: r for r in doc["rows"]}
    assert doc["compared_on"] == "average power at equal service"
    slow = rows["powersave/nvhost_podgov"]
    assert not slow["feasible"] and slow["failure"].startswith("cannot keep up")
    assert slow["saving_vs_dvfs"] is None
    tuned = rows["tuned"]
    assert tuned["feasible"] and tuned["throughput_ips"] == pytest.approx(30.0)
    assert tuned["saving_vs_dvfs"] > 0.05  # less power for the same frames per second
    # a rate no config can serve: the tune has nothing to recommend
    result = cli.invoke(app, ["compare", "--board", "sim:jetson-nano", "--workload", "alexnet", "--rate", "500",
                              "--no-plots", "--out", str(tmp_path / "fast")])
    assert result.exit_code != 0 and "no feasible config" in str(result.exception)


def test_pacing_adds_idle_time_and_rejects_what_cannot_keep_up():
    board = SimBoard("jetson-nano", seed=1)
    m = board.measure("alexnet", Config({"batch_size": 16}), 320)
    slow_rate = 0.5 * m.throughput_ips
    p = paced(m, slow_rate)
    assert p.time_s == pytest.approx(320 / slow_rate)
    assert p.energy_j == pytest.approx(m.energy_j + m.idle_power_w * (p.time_s - m.time_s))
    assert p.avg_power_w < m.avg_power_w
    assert not paced(m, 2 * m.throughput_ips).feasible


def test_governor_selection_is_validated():
    board = SimBoard("jetson-nano")
    names = [g.name for g in kernel_governors(board, "performance/-,-/powersave")]
    assert names == ["performance/nvhost_podgov", "schedutil/powersave"]
    with pytest.raises(ConfigError, match="not offered"):
        kernel_governors(board, "turbo/-")
    with pytest.raises(ConfigError, match="CPU/GPU"):
        kernel_governors(board, "performance")


def test_residency_shares_and_time_weighted_merge():
    from collections import Counter

    s = shares({"cpu": Counter({100: 3, 200: 1})})
    assert s == {"cpu": {"100": 0.75, "200": 0.25}}
    merged = merge([(1.0, {"cpu": {"100": 1.0}}), (3.0, {"cpu": {"200": 1.0}})])
    assert merged == {"cpu": {"100": 0.25, "200": 0.75}}

"""Multi-tenant workloads: concurrent instances (CME), the concurrency probe, placement (DMP)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tuner.config import BATCH_SIZE, CONCURRENCY, PLACEMENT, Config, Knob
from tuner.errors import ConfigError
from workloads.base import Infeasible, RunResult
from workloads.cme import MultiTenant, probe_concurrency

REPO = Path(__file__).resolve().parent.parent


class FakeTenant:
    """A tenant that sleeps per batch and records how many of its kind run at once."""

    live = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self, fail_at: int | None = None, **_: object) -> None:
        self.fail_at = fail_at
        self.batch = 1
        self.device = "cpu"

    def knobs(self) -> list[Knob]:
        return [Knob(BATCH_SIZE, (1, 2, 4)), Knob("device", ("cpu", "cuda"), ordered=False)]

    def setup(self, config: Config) -> None:
        with FakeTenant.lock:
            FakeTenant.live += 1
            if self.fail_at is not None and FakeTenant.live >= self.fail_at:
                FakeTenant.live -= 1
                raise Infeasible("out of memory: injected", memory=True)
        self.batch = int(config.get(BATCH_SIZE, 1))
        self.device = str(config.get("device", "cpu"))

    def run(self, inferences: int) -> RunResult:
        out = RunResult(0)
        with FakeTenant.lock:
            FakeTenant.peak = max(FakeTenant.peak, sum(1 for t in threading.enumerate()
                                                       if t.name.startswith("edgetune-tenant")))
        while out.inferences < inferences:
            n = min(self.batch, inferences - out.inferences)
            time.sleep(0.01)
            out.inferences += n
            out.batch_latencies_s.append(0.01)
        return out

    def teardown(self) -> None:
        with FakeTenant.lock:
            FakeTenant.live -= 1


def test_three_concurrent_mobilenets_complete_exactly_three_times_n():
    pytest.importorskip("torchvision")
    cme = MultiTenant(model="mobilenet_v2")
    assert {k.name for k in cme.knobs()} >= {BATCH_SIZE, CONCURRENCY}
    cme.setup(Config({BATCH_SIZE: 2, CONCURRENCY: 3}))
    try:
        n = 6
        out = cme.run(3 * n)
    finally:
        cme.teardown()
    assert out.inferences == 3 * n
    assert sorted(out.tenants.values()) == [n, n, n] and len(out.tenants) == 3
    assert len(out.batch_latencies_s) == 3 * (n // 2) and all(t > 0 for t in out.batch_latencies_s)


def test_tenants_run_at_the_same_time_and_the_probe_stops_cleanly_at_a_failure():
    FakeTenant.live = FakeTenant.peak = 0
    cme = MultiTenant(model="fake", make=lambda name, **o: FakeTenant(fail_at=4))
    report = probe_concurrency(cme, batch_size=2, inferences_per_tenant=10)
    assert [lv["ok"] for lv in report["levels"]] == [True, True, True, False]
    assert report["max_concurrency"] == 3 and report["levels"][-1]["memory"] is True
    assert "injected" in report["stopped_by"]
    assert report["best_concurrency"] in (1, 2, 3) and report["speedup"] > 1.5  # sleeping tenants overlap
    assert FakeTenant.peak == 3  # three tenant threads at once
    assert FakeTenant.live == 0  # every tenant, the failed level's included, torn down
    assert all(lv["inferences"] == lv["concurrency"] * 10 for lv in report["levels"] if lv["ok"])


def test_placement_is_a_knob_over_each_tenants_processor():
    dmp = MultiTenant(models="a,b", placement=True, make=lambda name, **o: FakeTenant())
    knobs = {k.name: k for k in dmp.knobs()}
    assert knobs[PLACEMENT].values == ("cpu,cpu", "cpu,cuda", "cuda,cpu", "cuda,cuda")
    assert CONCURRENCY not in knobs
    dmp.setup(Config({BATCH_SIZE: 1, PLACEMENT: "cuda,cpu"}))
    try:
        assert [t.device for t in dmp.tenants] == ["cuda", "cpu"]
        out = dmp.run(9)
    finally:
        dmp.teardown()
    assert out.inferences == 9 and out.tenants == {"a#0": 5, "b#1": 4}
    with pytest.raises(ConfigError, match="model=NAME"):
        MultiTenant(make=lambda name, **o: FakeTenant())
    with pytest.raises(ConfigError, match="places a mix"):
        MultiTenant(model="a", placement=True, make=lambda name, **o: FakeTenant())


def test_edgetune_run_cme_reports_per_tenant_counts():
    pytest.importorskip("torchvision")
    out = subprocess.run([sys.executable, "-m", "tuner.cli.entry", "run", "--workload", "cme", "--board", "linux",
                          "-o", "model=mobilenet_v2", "--concurrency", "3", "--batch-size", "2",
                          "--inferences", "12", "--json"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["inferences"] == 12 and sorted(doc["tenants"].values()) == [4, 4, 4]


def test_edgetune_workloads_probe_reports_levels():
    pytest.importorskip("torchvision")
    out = subprocess.run([sys.executable, "-m", "tuner.cli.entry", "workloads", "probe", "--model", "mobilenet_v2",
                          "--max", "2", "--inferences", "2", "--json"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 2] and doc["max_concurrency"] == 2
    assert all(lv["ok"] and lv["inferences"] == 2 * lv["concurrency"] for lv in doc["levels"])

"""Simulated inference workloads in live mode: they run on an emulated tree's clocks.

Each batch reads the tree's current CPU and GPU frequency (as the live
simulator set it from what the real backend wrote), takes the device model's
batch time for it, and sleeps that long (divided by ``time_scale``). While it
runs it publishes its activity so the simulator draws the matching power.
"""

from __future__ import annotations

import time
from pathlib import Path

from tuner.boards.cpufreq import CpuFreq
from tuner.config import BATCH_SIZE, CONCURRENCY, Config, Knob
from tuner.boards.devfreq import find_gpu
from tuner.errors import EdgetuneError
from tuner.sim.live import Activity, emulated_profile, write_activity
from tuner.sim.model import DeviceModel, device_model
from tuner.sysfs import Sysfs
from workloads.base import RunResult


class LiveSimWorkload:
    """A reference workload (alexnet, resnet18, ...) simulated on an emulated tree; a :class:`Workload`."""

    def __init__(self, name: str, root: str | Path, *, batch_size: int = 16, instances: int = 1,
                 time_scale: float = 1.0, model: DeviceModel | None = None) -> None:
        self.root = Path(root)
        self.model = model or device_model(emulated_profile(self.root))
        self.model.workload(name)  # unknown names fail here, with the list of simulated ones
        if time_scale <= 0:
            raise EdgetuneError("time scale must be positive")
        self.name = name
        self.batch_size = batch_size
        self.instances = instances
        self.time_scale = time_scale
        self.fs = Sysfs(self.root)
        self.cpu = CpuFreq(self.fs)
        self.gpu = find_gpu(self.fs)

    def knobs(self) -> list[Knob]:
        return self.model.workload_knobs(self.name)

    def setup(self, config: Config | None = None) -> None:
        config = config or Config()
        self.batch_size = int(config.get(BATCH_SIZE, self.batch_size))
        self.instances = int(config.get(CONCURRENCY, self.instances))
        self.model.check_memory(self.name, self.batch_size, self.instances)
        write_activity(self.root, Activity(self.name, self.batch_size, self.instances, False))

    def clocks(self) -> tuple[int, int]:
        # no cpufreq (a board without CPU frequency control): the CPU runs at its top clock,
        # as the live simulator assumes too
        fc = (self.fs.read_int(self.cpu.policies[0].file("scaling_cur_freq")) if self.cpu.policies
              else self.model.profile.cpu_khz[-1])
        fg = self.fs.read_int(self.gpu.file("cur_freq")) if self.gpu else self.model.profile.gpu_hz[-1]
        return fc, fg

    def run(self, inferences: int) -> RunResult:
        out = RunResult(0)
        start = time.monotonic()
        write_activity(self.root, Activity(self.name, self.batch_size, self.instances, True))
        try:
            per_batch = self.batch_size * self.instances
            while out.inferences < inferences:
                fc, fg = self.clocks()
                t = self.model.point(self.name, fc, fg, self.batch_size, self.instances).batch_s / self.time_scale
                time.sleep(t)
                out.batch_latencies_s.append(t)
                out.inferences += min(per_batch, inferences - out.inferences)
        finally:
            write_activity(self.root, Activity(self.name, self.batch_size, self.instances, False))
        out.wall_s = time.monotonic() - start
        return out

    def teardown(self) -> None:
        write_activity(self.root, Activity())

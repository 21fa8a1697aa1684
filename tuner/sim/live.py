"""Live mode: a simulator that animates an emulated tree like a kernel and a board would.

Each tick it (1) plays the kernel's part for the clocks — the current CPU and
GPU frequency follow the governor inside the [min, max] window the real
backend wrote, load-driven governors spending their time per the emulated
residency — (2) reads what the simulated workload is doing from
``/run/edgetune-sim/activity.json`` in the tree, (3) writes the INA3221 rail
files, GPU load and temperatures from the device model. So the real sysfs
writes, rail sampling, energy integration and the daemon run end to end.

Rail files are rewritten in place with fixed-width records, because readers
keep them open and re-read with ``pread`` (as on sysfs). The split of board
power over the sub-rails is approximate; the input rail carries the model's
total.

``time_scale`` k makes simulated workloads run k times faster than modeled:
power is unchanged, times and energies are 1/k of the modeled ones.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuner.boards.cpufreq import CpuFreq
from tuner.boards.devfreq import find_gpu
from tuner.boards.emc import EMC_CLK
from tuner.boards.ina3221 import discover_rails
from tuner.boards.jetson import EMULATION_MARKER
from tuner.errors import EdgetuneError, HardwareError
from tuner.sim.governors import PINNED, cpu_residency, gpu_residency
from tuner.sim.model import DeviceModel, device_model
from tuner.sim.tree import kernel_freq, replace_file
from tuner.sysfs import Sysfs

ACTIVITY = "/run/edgetune-sim/activity.json"
RECORD = 16  # bytes per in-place record: "<value>" padded with spaces, newline-terminated


def write_record(path: Path, value: int) -> None:
    """Overwrite a sensor file in place (no truncate, no rename) with a fixed-width record."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, f"{value}".ljust(RECORD - 1).encode() + b"\n", 0)
    finally:
        os.close(fd)


@dataclass
class Activity:
    """What the simulated workload is doing, as it tells the live simulator: workload, batch size,
    instances, and whether it is running (the board idles otherwise)."""

    workload: str | None = None
    batch_size: int = 16
    instances: int = 1
    active: bool = False


def read_activity(root: Path) -> Activity:
    """The simulated workload's current activity; idle when there is none or it cannot be read."""
    try:
        data = json.loads((root / ACTIVITY.lstrip("/")).read_text())
        return Activity(data.get("workload"), int(data.get("batch_size", 16)), int(data.get("instances", 1)),
                        bool(data.get("active")))
    except (OSError, ValueError, TypeError):
        return Activity()


def write_activity(root: Path, activity: Activity) -> None:
    """Publish the simulated workload's activity to the live simulator, atomically (temporary file,
    then rename), so the simulator never reads half of it."""
    path = root / ACTIVITY.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(activity.__dict__))
    os.replace(tmp, path)


def emulated_profile(root: Path) -> str:
    """The board profile an emulated tree was made for (from its ``sim create`` marker); a one-line
    error for a tree that is not emulated."""
    try:
        return json.loads((root / EMULATION_MARKER).read_text())["profile"]
    except (OSError, ValueError, KeyError):
        raise EdgetuneError(f"{root} is not an emulated tree (make one with `edgetune sim create`)") from None


class LiveSimulator:
    """Animates an emulated tree on a thread at ``rate_hz``: clocks follow their governors inside the
    written windows, and rails (mW), GPU load and temperatures follow the device model."""

    def __init__(self, root: str | os.PathLike[str], *, rate_hz: float = 20.0, seed: int = 0,
                 model: DeviceModel | None = None, ambient_c: float = 30.0) -> None:
        self.root = Path(root)
        self.model = model or device_model(emulated_profile(self.root))
        self.fs = Sysfs(self.root)
        self.cpu = CpuFreq(self.fs)
        self.gpu = find_gpu(self.fs)
        self.rails = discover_rails(self.fs)
        self.rate_hz = rate_hz
        self.rng = np.random.default_rng(seed)
        self.ambient_c = ambient_c
        self.temp_c = ambient_c + 6.0
        self.power_w = self.model.idle_power()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    # --- the kernel's part ---------------------------------------------------------
    def _freq(self, governor: str, lo: int, hi: int, table: tuple[int, ...], setspeed: int | None,
              kind: str) -> int:
        if governor in PINNED or lo == hi:
            return kernel_freq(governor, lo, hi, setspeed, hi)
        res = (cpu_residency if kind == "cpu" else gpu_residency)(self.model, governor)
        freqs = [f for f in res.shares if lo <= f <= hi] or [min(max(table[-1], lo), hi)]
        weights = np.array([res.shares.get(f, 0.0) for f in freqs]) + 1e-12
        return int(self.rng.choice(freqs, p=weights / weights.sum()))

    def _governor(self, path: str) -> str:
        gov = self.fs.read(path)
        if not gov:  # caught between the backend's truncate and its write: the next tick reads it whole
            raise HardwareError(f"{path} is being written")
        return gov

    def settle_clocks(self) -> tuple[int, int]:
        fs = self.fs
        fc_out = self.model.profile.cpu_khz[-1]
        for i, p in enumerate(self.cpu.policies):
            gov = self._governor(p.file("scaling_governor"))
            lo, hi = fs.read_int(p.file("scaling_min_freq")), fs.read_int(p.file("scaling_max_freq"))
            sp = fs.try_read(p.file("scaling_setspeed"))
            fc = self._freq(gov, lo, hi, p.frequencies_khz, int(sp) if sp and sp.isdigit() else None, "cpu")
            replace_file(fs.path(p.file("scaling_cur_freq")), fc)
            if i == 0:
                fc_out = fc
        fg_out = self.model.profile.gpu_hz[-1]
        if self.gpu is not None:
            g = self.gpu
            gov = self._governor(g.file("governor"))
            lo, hi = fs.read_int(g.file("min_freq")), fs.read_int(g.file("max_freq"))
            fg_out = self._freq(gov, lo, hi, g.frequencies_hz, None, "gpu")
            replace_file(fs.path(g.file("cur_freq")), fg_out)
        return fc_out, fg_out

    def emc_rate(self) -> int | None:
        """The memory clock as the BPMP debugfs shows it (None where the tree has no EMC: top rate)."""
        text = self.fs.try_read(f"{EMC_CLK}/rate")
        return int(text) if text and text.isdigit() and int(text) > 0 else None

    # --- the board's part ----------------------------------------------------------
    def rail_powers(self, total_w: float, cpu_w: float, gpu_w: float, mem_w: float) -> dict[str, float]:
        base = self.model.power.base_w
        has_ddr = any(r.role == "ddr" for r in self.rails)
        by_role = {"total": total_w, "cpu": cpu_w, "gpu": gpu_w, "cpu_gpu_cv": cpu_w + gpu_w,
                   "soc": 0.45 * base + (0.0 if has_ddr else mem_w), "ddr": 0.15 * base + mem_w}
        out = {r.name: by_role.get(r.role, 0.0) for r in self.rails}
        if not any(r.role == "total" for r in self.rails):
            # no input rail: the rails must add up to the board power; "other" rails take the rest
            others = [r.name for r in self.rails if r.role == "other"]
            known = sum(v for k, v in out.items() if k not in others)
            for name in others:
                out[name] = max(0.0, total_w - known) / len(others)
        return out

    def step(self, dt: float) -> None:
        fc, fg = self.settle_clocks()
        act = read_activity(self.root)
        m = self.model
        if act.active and act.workload in m.workloads:
            pt = m.point(act.workload, fc, fg, act.batch_size, act.instances, fe=self.emc_rate())
            total, cpu_w, gpu_w, mem_w, util = pt.power_w, pt.cpu_power_w, pt.gpu_power_w, pt.mem_power_w, pt.gpu_util
        else:
            total = m.idle_power()
            cpu_w = 0.15 * m.cpu_power(fc)
            gpu_w = 0.3 * m.gpu_power(fg, 0.0)
            mem_w = util = 0.0
        # leakage follows die temperature (first-order thermal model, tau ~ 60 s)
        total *= 1.0 + 0.002 * (self.temp_c - 40.0)
        self.power_w = total
        steady = self.ambient_c + 4.0 * total
        self.temp_c = steady + (self.temp_c - steady) * np.exp(-dt / 60.0)
        self._write_rails(self.rail_powers(total, cpu_w, gpu_w, mem_w))
        if self.gpu is not None:
            load = self.fs.path(self.gpu.file("device/load"))
            if load.exists():
                write_record(load, int(round(util * 1000)))
        for zone in self.fs.glob("/sys/devices/virtual/thermal/thermal_zone*"):
            name = (zone / "type").read_text().strip()
            if name != "PMIC-Die":
                write_record(zone / "temp", int(self.temp_c * 1000))
        self.ticks += 1

    def _write_rails(self, powers: dict[str, float]) -> None:
        for r in self.rails:
            mw = max(0.0, powers.get(r.name, 0.0) * 1000.0)
            if r.layout == "iio":
                assert r.power_file is not None
                power = self.fs.path(r.power_file)
                volt_mv = 5000 if r.role == "total" else 4960
                write_record(power, int(round(mw)))
                write_record(power.with_name(power.name.replace("power", "current")), int(round(mw * 1000 / volt_mv)))
                write_record(power.with_name(power.name.replace("power", "voltage")), volt_mv)
            else:
                assert r.voltage_file is not None and r.current_file is not None
                volt_mv = self.fs.read_int(r.voltage_file) or 5000
                current = self.fs.path(r.current_file)
                ma = int(round(mw * 1000 / volt_mv))
                write_record(current, ma)
                if r.chip == "ina238":  # the chip also reports its own product, in µW, for other readers
                    write_record(current.with_name(current.name.replace("curr", "power")), volt_mv * ma)

    # --- running -------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self.step(now - last)
            except (HardwareError, OSError):
                # a knob file caught half-written by the backend (emulated files are
                # not atomic like kernfs attributes): the next tick reads it whole
                pass
            last = now
            self._stop.wait(period)

    def start(self) -> LiveSimulator:
        self.step(0.0)
        self._thread = threading.Thread(target=self._run, name="edgetune-live-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> LiveSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

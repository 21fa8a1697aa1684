"""A board controlled through sysfs: the Jetson and generic Linux boards.

One class drives every sysfs knob (cpufreq, online cores, GPU devfreq, EMC)
so that both boards share validation, write ordering, all-or-nothing apply
and journalled restore; they differ only in which parts and sensors they
discover.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tuner.boards.base import BoardInfo, PowerSource, validate_hardware
from tuner.boards.cpufreq import CpuFreq
from tuner.boards.devfreq import GpuControl
from tuner.boards.emc import EmcControl
from tuner.boards.nvpmodel import SOURCE_STATUS, STATUS, PowerModeReader, PowerModeState
from tuner.boards.thermal import Thermal
from tuner.config import (CPU_CORES, CPU_FREQ, CPU_GOVERNOR, EMC_FREQ, GPU_FREQ, GPU_GOVERNOR, POWER_MODE, Config,
                          Knob)
from tuner.errors import ConfigError
from tuner.sysfs import NVPMODEL_MODE, Sysfs, Write, apply_plan, plan_min_max

#: Knobs whose domains a power mode narrows (tuner.boards.nvpmodel).
MODE_CAPPED = (CPU_FREQ, GPU_FREQ, EMC_FREQ)


class SysfsBoard:
    """The Board over sysfs knobs, shared by the Jetson and Linux boards: validation against the
    device's and the power mode's domains, ordered all-or-nothing writes, journalled restore."""

    info: BoardInfo

    def __init__(self, fs: Sysfs, info: BoardInfo, *, gpu: GpuControl | None = None,
                 emc: EmcControl | None = None, power: PowerSource | None = None,
                 power_modes: PowerModeReader | None = None) -> None:
        self.fs = fs
        self.info = info
        self.cpu = CpuFreq(fs)
        self.gpu = gpu
        self.emc = emc
        self.thermal = Thermal(fs)
        self._power = power
        self._power_modes = power_modes

    # --- knobs -------------------------------------------------------------------
    def power_mode(self) -> PowerModeState | None:
        """The nvpmodel power mode now (read fresh: ``nvpmodel -m`` or jtop may
        switch it under us), or None on a board without one."""
        return self._power_modes.read() if self._power_modes is not None else None

    def knobs(self) -> list[Knob]:
        """The device's domains, narrowed to what the current power mode allows:
        the search space never holds a clock the mode would refuse or clamp."""
        return _limit(self.device_knobs(), self.power_mode())

    def device_knobs(self) -> list[Knob]:
        """Every value the device lists, whatever the power mode."""
        knobs = []
        if self.cpu.frequencies():
            knobs.append(Knob(CPU_FREQ, tuple(self.cpu.frequencies()), "kHz"))
        if self.cpu.governors():
            knobs.append(Knob(CPU_GOVERNOR, tuple(self.cpu.governors()), ordered=False))
        if self.cpu.core_counts():
            knobs.append(Knob(CPU_CORES, tuple(self.cpu.core_counts()), "cores"))
        if self.gpu is not None:
            knobs.append(Knob(GPU_FREQ, self.gpu.gpu.frequencies_hz, "Hz"))
            if self.gpu.gpu.governors:
                knobs.append(Knob(GPU_GOVERNOR, self.gpu.gpu.governors, ordered=False))
        if self.emc is not None and self.emc.frequencies_hz:
            knobs.append(Knob(EMC_FREQ, tuple(self.emc.frequencies_hz), "Hz"))
        state = self.power_mode()
        if state is not None and state.conf.modes:  # mode ids: presets, not an ordered scale
            knobs.append(Knob(POWER_MODE, tuple(sorted(m.id for m in state.conf.modes)), ordered=False))
        return knobs

    def validate(self, config: Config) -> Config:
        """The hardware part of ``config``, every value checked against the
        device's own lists and the power mode's caps; raises before anything is written."""
        return self._validate(config, self.power_mode())[0]

    def _validate(self, config: Config, state: PowerModeState | None) -> tuple[Config, list[Knob]]:
        device = self.device_knobs()
        if state is not None and POWER_MODE in config:
            # the clocks go with the mode the config switches to: its caps, and the firmware's
            # clamp of a clock asked above them (as it clamps after `nvpmodel -m`)
            target = state.conf.mode(int(config[POWER_MODE]))  # type: ignore[arg-type]
            if target is None:
                validate_hardware(config, device, f"this board ({self.info.profile or self.info.kind})")
            state = replace(state, mode=target)
            config = _clamped(config, device, state)
        knobs = _limit(device, state)
        if state is not None:
            full = {k.name: k.values for k in device}
            allowed = {k.name: k.values for k in knobs}
            for name, value in config.hardware().items():
                if name in MODE_CAPPED and value in full.get(name, ()) and value not in allowed.get(name, ()):
                    raise ConfigError(state.refusal(name, int(value), allowed[name]))  # type: ignore[arg-type]
        hw = validate_hardware(config, knobs, f"this board ({self.info.profile or self.info.kind})")
        return hw, knobs

    # --- apply -------------------------------------------------------------------
    def plan(self, config: Config) -> list[Write]:
        now = self.power_mode()
        hw, knobs = self._validate(config, now)
        domain = {k.name: set(k.values) for k in knobs}
        up: list[Write] = []
        down: list[Write] = []
        if POWER_MODE in hw and now is not None and (now.mode is None or int(hw[POWER_MODE]) != now.mode.id):
            up.append((NVPMODEL_MODE, str(hw[POWER_MODE])))  # first: the mode rewrites the clock caps
        if CPU_CORES in hw:
            cores_up, down = self.cpu.plan_cores(int(hw[CPU_CORES]))
            up += cores_up
        writes = list(up)
        cpu_gov = hw.get(CPU_GOVERNOR)
        # A governor without a frequency means "that governor over the full
        # range": a window left pinned by an earlier config is opened again.
        if cpu_gov is not None:
            writes += self.cpu.plan_governor(str(cpu_gov))
            if CPU_FREQ not in hw:
                writes += self._plan_cpu_release(domain.get(CPU_FREQ))
        if CPU_FREQ in hw:
            writes += self.cpu.plan_pin(int(hw[CPU_FREQ]), str(cpu_gov) if cpu_gov else None)
        if self.gpu is not None:
            if GPU_GOVERNOR in hw:
                writes += self.gpu.plan_governor(str(hw[GPU_GOVERNOR]))
                if GPU_FREQ not in hw:
                    writes += self._plan_gpu_release(domain.get(GPU_FREQ))
            if GPU_FREQ in hw:
                writes += self.gpu.plan_pin(int(hw[GPU_FREQ]))
        if self.emc is not None and EMC_FREQ in hw:
            writes += self.emc.plan_pin(int(hw[EMC_FREQ]))
        return writes + down

    def _plan_cpu_release(self, allowed: set | None) -> list[Write]:
        """Open every policy's window to the steps the power mode allows (the full
        table without a mode), so the governor has them all again and never more."""
        writes: list[Write] = []
        for p in self.cpu.policies:
            f = [x for x in p.frequencies_khz if allowed is None or x in allowed]
            if not f:  # no table (intel_pstate): the window was never narrowed by us
                continue
            writes += plan_min_max(self.fs, p.file("scaling_min_freq"), p.file("scaling_max_freq"), f[0], f[-1])
        return writes

    def _plan_gpu_release(self, allowed: set | None) -> list[Write]:
        assert self.gpu is not None
        f = [x for x in self.gpu.gpu.frequencies_hz if allowed is None or x in allowed]
        return plan_min_max(self.fs, self.gpu.gpu.file("min_freq"), self.gpu.gpu.file("max_freq"), f[0], f[-1])

    def apply(self, config: Config) -> None:
        apply_plan(self.fs, self.plan(config))

    def current(self) -> Config:
        values: dict[str, Any] = {}
        if self.cpu.policies:
            values[CPU_FREQ] = self.cpu.cur_freq(self.cpu.policies[0])
            values[CPU_GOVERNOR] = self.cpu.governor(self.cpu.policies[0])
        if self.cpu.hotplug:
            values[CPU_CORES] = self.cpu.online_cores()
        if self.gpu is not None:
            values[GPU_FREQ] = self.gpu.cur_freq()
            values[GPU_GOVERNOR] = self.gpu.governor()
        if self.emc is not None:
            values[EMC_FREQ] = self.emc.cur_freq()
        return Config(values)

    def clocks(self) -> dict[str, int]:
        """Current CPU (first policy, kHz) and GPU (Hz) frequency: what residency sampling reads."""
        out = {}
        if self.cpu.policies:
            out["cpu"] = self.cpu.cur_freq(self.cpu.policies[0])
        if self.gpu is not None:
            out["gpu"] = self.gpu.cur_freq()
        return out

    def knob_files(self) -> list[str]:
        files = self.cpu.knob_files()
        if self.gpu is not None:
            files += self.gpu.knob_files()
        if self.emc is not None:
            files += self.emc.knob_files()
        return files

    def snapshot(self) -> dict[str, str]:
        return {path: value for path in self.knob_files() if (value := self.fs.try_read(path)) is not None}

    def restore(self) -> list[str]:
        return self.fs.restore_journal()

    # --- sensors -----------------------------------------------------------------
    def power_source(self) -> PowerSource | None:
        return self._power

    def temperatures(self) -> dict[str, float]:
        return self.thermal.read()

    def describe(self) -> dict[str, Any]:
        fs = self.fs
        policies = [{
            "name": p.name,
            "cpus": list(p.cpus),
            "frequencies_khz": list(p.frequencies_khz),
            "governors": list(p.governors),
            "governor": fs.try_read(p.file("scaling_governor")),
            "cur_freq_khz": _int_or_none(fs.try_read(p.file("scaling_cur_freq"))),
        } for p in self.cpu.policies]
        gpu = None
        if self.gpu is not None:
            g = self.gpu.gpu
            gpu = {"path": g.path, "frequencies_hz": list(g.frequencies_hz), "governors": list(g.governors),
                   "governor": fs.try_read(g.file("governor")),
                   "cur_freq_hz": _int_or_none(fs.try_read(g.file("cur_freq"))),
                   "load_permille": self.gpu.load_permille()}
        emc = None
        if self.emc is not None:
            emc = {"frequencies_hz": self.emc.frequencies_hz,
                   "cur_freq_hz": _int_or_none(fs.try_read("/sys/kernel/debug/bpmp/debug/clk/emc/rate"))}
        rails = []
        source = self._power
        if source is not None:
            reading = source.read()
            period = getattr(source, "update_period_s", None)  # None: continuous as far as the driver says
            rails = [{"name": ch.name, "role": ch.role, "power_mw": reading.get(ch.name),
                      "in_total": ch.name in getattr(source, "total", ()), "update_period_s": period}
                     for ch in source.channels]
        return {
            "board": {"kind": self.info.kind, "profile": self.info.profile, "model": self.info.model,
                      "l4t": self.info.l4t, "simulated": self.info.simulated, **self.info.extra},
            "cpu": {"policies": policies, "online_cores": self.cpu.online_cores() if self.cpu.hotplug else None},
            "gpu": gpu,
            "emc": emc,
            "power_mode": self.describe_power_mode(),
            "rails": rails,
            "thermal": [{"name": k, "temp_c": v} for k, v in self.thermal.read().items()],
        }

    def describe_power_mode(self) -> dict[str, Any] | None:
        """``probe``'s ``power_mode``: the mode, where it was read, its caps and
        the mode table, plus ``capped`` (per knob: how many of the device's
        values the mode allows, and their range) and ``space_note``."""
        state = self.power_mode()
        if state is None:
            return None
        doc = state.describe()
        device = self.device_knobs()
        capped = {}
        for full, lim in zip(device, _limit(device, state)):
            if full.name in MODE_CAPPED:
                capped[full.name] = {"allowed": len(lim), "of": len(full), "min": lim.values[0],
                                     "max": lim.values[-1], "unit": full.unit}
        doc["capped"] = capped
        doc["space_note"] = _space_note(state, capped)
        return doc

    def space_note(self) -> str | None:
        """One line for ``tune``/``sweep`` output: which power mode narrowed the
        search space and to what, or None where no mode narrows it."""
        doc = self.describe_power_mode()
        return doc["space_note"] if doc else None


def _clamped(config: Config, device: list[Knob], state: PowerModeState) -> Config:
    """``config`` with each clock above ``state``'s caps lowered to the highest step the mode allows."""
    values = config.to_dict()
    for k in device:
        if k.name in MODE_CAPPED and k.name in values:
            allowed = state.allowed(k.name, k.values)  # type: ignore[arg-type]
            if allowed and values[k.name] in k.values and values[k.name] not in allowed:
                values[k.name] = max(v for v in allowed if v <= values[k.name]) if any(
                    v <= values[k.name] for v in allowed) else allowed[0]  # type: ignore[operator]
    return Config(values)


def _limit(knobs: list[Knob], state: PowerModeState | None) -> list[Knob]:
    if state is None or state.caps is None:
        return knobs
    out = []
    for k in knobs:
        values = state.allowed(k.name, k.values) if k.name in MODE_CAPPED else k.values  # type: ignore[arg-type]
        out.append(k if values == k.values else Knob(k.name, values, k.unit, k.ordered))
    return out


def _space_note(state: PowerModeState, capped: dict[str, dict[str, Any]]) -> str | None:
    narrowed = [f"{name} {c['min']}-{c['max']} {c['unit']} ({c['allowed']} of {c['of']} values)"
                for name, c in capped.items() if c["allowed"] < c["of"]]
    if not narrowed or state.mode is None:
        return None
    where = f"read from {STATUS}" if state.source == SOURCE_STATUS else f"the default of {state.conf_path}"
    return f"power mode {state.mode.label} ({where}) limits the search space to " + ", ".join(narrowed)


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


"""``--board sim:<profile>``: an analytic simulated board.

It has the profile's knobs and applies configs to an in-memory state, like a
real board, but instead of sampling rails it computes a trial's Measurement
from the device model, with measurement noise. Fast enough for full sweeps
and strategy benchmarks; every Measurement it returns says ``simulated``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuner.boards.base import BoardInfo, validate_hardware
from tuner.config import (BATCH_SIZE, CONCURRENCY, CPU_CORES, CPU_FREQ, CPU_GOVERNOR, EMC_FREQ, GPU_FREQ,
                          GPU_GOVERNOR, POWER_MODE, Config, Knob)
from tuner.errors import ConfigError
from tuner.measurement import OOM_PREFIX, Measurement
from tuner.sim.governors import (DEFAULT_CPU_GOVERNOR, DEFAULT_GPU_GOVERNOR, Residency, RunEstimate,
                                 cpu_residency, gpu_residency, run_estimate)
from tuner.sim.model import DeviceModel, OutOfMemory, device_model
from tuner.sim.profiles import JETPACK_TO_L4T, get_profile


@dataclass(frozen=True)
class Noise:
    """Repeat-to-repeat measurement noise of the analytic board.

    The default is what the reference study reports for its own practice
    (3,200 inferences per run, clocks pinned, rails at 10 Hz; repeats within a
    few per cent): ~1 % on run time (scheduling, clocks settling) and ~1.5 % on
    average power (INA3221 accuracy and quantisation, rail ripple), so ~1.8 % on
    one repeat's energy. Real boards in the field are noisier: published single
    runs of one setting differ by 5-15 % (tegrastats-rate sampling, governors
    still moving unpinned clocks, thermal state). :meth:`field` gives that
    noise, as ``--noise SIGMA`` does:

    - ``sigma``: relative standard deviation of one repeat's energy *and* of its
      time. Half of each is shared (a slow repeat also costs more energy, as
      when an unpinned clock dips), half independent.
    - ``tails``: Student-t draws with 3 degrees of freedom (scaled to the same
      standard deviation) instead of normal ones: now and then a repeat is far
      off, as when a background job or a thermal event lands in it.
    - ``drift``: a slow walk of the whole surface (ambient and board
      temperature, a governor's state) with a relative standard deviation of
      ``sigma`` and a correlation time of about 20 repeats, plus the thermal
      leakage of a long experiment.
    """

    time_sd: float = 0.01
    power_sd: float = 0.015
    batch_sd: float = 0.03
    drift: bool = False
    energy_sd: float = 0.0  # field noise (sigma); when set, time_sd is sigma too and power follows E/T
    tails: bool = False

    @classmethod
    def none(cls) -> Noise:
        return cls(0.0, 0.0, 0.0, False)

    @classmethod
    def field(cls, sigma: float, *, tails: bool = False, drift: bool = False) -> Noise:
        """``--noise SIGMA``: one repeat's energy and time each vary by ``sigma`` (0 to 0.5)."""
        if not 0.0 <= sigma <= 0.5:
            raise ConfigError(f"--noise takes a relative standard deviation from 0 to 0.5 (e.g. 0.05), not {sigma:g}")
        return cls(time_sd=sigma, power_sd=0.0, batch_sd=max(0.03, sigma), drift=drift, energy_sd=sigma, tails=tails)

    def describe(self) -> dict[str, Any]:
        """What ``summary.json`` and ``--json`` say about the noise a simulated result carries."""
        if self.energy_sd:
            return {"sigma": self.energy_sd, "tails": self.tails, "drift": self.drift}
        return {"time_sd": self.time_sd, "power_sd": self.power_sd, "drift": self.drift, "default": True}


#: Share of the field noise's variance common to a repeat's time and energy.
SHARED = 0.5
#: Correlation of the drift walk from one repeat to the next (a correlation time of ~20 repeats).
DRIFT_PHI = 0.95


class SimBoard:
    """Analytic simulated Jetson. State is in memory; nothing touches a filesystem."""

    computes_measurements = True  # an AnalyticBoard: the runner asks it for each repeat by workload name

    def __init__(self, profile: str, *, seed: int | None = 0, noise: Noise | None = None,
                 model: DeviceModel | None = None) -> None:
        self.profile = get_profile(profile)
        self.model = model or device_model(self.profile.name)
        self.noise = noise if noise is not None else Noise()
        self.rng = np.random.default_rng(seed)
        jp = self.profile.jetpacks[0]
        l4t_major = JETPACK_TO_L4T[jp]
        self.info = BoardInfo("sim", self.profile.name, self.profile.model, f"{l4t_major}.x", True,
                              {"mode": "analytic", "model": self.model.source, "jetpack": jp})
        self.modes = _power_modes(self.profile, jp)
        self._state = self._defaults()
        self._temp_c = 40.0
        self._walk_state = 0.0  # the drift walk, in units of sigma

    def _defaults(self) -> dict[str, Any]:
        """The board as the study ran it: default governors, no clock pinned, the EMC at its top
        rate, no power mode's caps (an uncapped, MAXN-like state)."""
        return {CPU_GOVERNOR: DEFAULT_CPU_GOVERNOR, GPU_GOVERNOR: DEFAULT_GPU_GOVERNOR, CPU_FREQ: None,
                GPU_FREQ: None, CPU_CORES: self.profile.ncpus, EMC_FREQ: None, POWER_MODE: None}

    # --- Board protocol -----------------------------------------------------------
    def knobs(self) -> list[Knob]:
        p = self.profile
        knobs = [
            Knob(CPU_FREQ, p.cpu_khz, "kHz"),
            Knob(CPU_GOVERNOR, p.cpu_governors(p.jetpacks[0]), ordered=False),
            Knob(CPU_CORES, tuple(range(1, p.ncpus + 1)), "cores"),
            Knob(GPU_FREQ, p.gpu_hz, "Hz"),
            Knob(GPU_GOVERNOR, p.gpu_governors, ordered=False),
        ]
        if p.emc_hz:  # boards whose EMC the BPMP debugfs exposes (not the Nano)
            knobs.append(Knob(EMC_FREQ, p.emc_hz, "Hz"))
        if self.modes:  # mode ids: presets, not an ordered scale
            knobs.append(Knob(POWER_MODE, tuple(sorted(self.modes)), ordered=False))
        return knobs

    def apply(self, config: Config) -> None:
        """As on a real board: a frequency pins that clock; a governor without a
        frequency releases the clock to that governor over the full range."""
        hw = validate_hardware(config, self.knobs(), f"{self.profile.name} (simulated)")
        self._state.update(hw.to_dict())
        if CPU_GOVERNOR in hw and CPU_FREQ not in hw:
            self._state[CPU_FREQ] = None
        if GPU_GOVERNOR in hw and GPU_FREQ not in hw:
            self._state[GPU_FREQ] = None

    def workload_knobs(self, workload: str) -> list[Knob]:
        """Batch sizes and concurrency levels a simulated workload accepts (fits in memory or not)."""
        return self.model.workload_knobs(workload)

    def current(self) -> Config:
        cpu_res, gpu_res = self._residencies()
        top_c = max(cpu_res.shares, key=cpu_res.shares.__getitem__)
        top_g = max(gpu_res.shares, key=gpu_res.shares.__getitem__)
        return Config({CPU_FREQ: top_c, GPU_FREQ: top_g, CPU_GOVERNOR: self._state[CPU_GOVERNOR],
                       GPU_GOVERNOR: self._state[GPU_GOVERNOR], CPU_CORES: self._state[CPU_CORES]})

    def snapshot(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._state.items()}

    def restore(self) -> list[str]:
        self._state = self._defaults()
        return []

    def power_source(self) -> None:
        return None  # analytic: measurements are computed, not sampled

    def temperatures(self) -> dict[str, float]:
        return {"GPU-therm": round(self._temp_c, 1), "CPU-therm": round(self._temp_c - 1.0, 1)}

    def describe(self) -> dict[str, Any]:
        p = self.profile
        cpu_gov = self._state[CPU_GOVERNOR]
        policies = [{"name": f"policy{c[0]}", "cpus": list(c), "frequencies_khz": list(p.cpu_khz),
                     "governors": list(p.cpu_governors(p.jetpacks[0])), "governor": cpu_gov}
                    for c in p.cpu_clusters]
        idle = self.model.idle_power()
        return {
            "board": {"kind": "sim", "profile": p.name, "model": p.model, "l4t": self.info.l4t, "simulated": True,
                      "mode": "analytic", "model_source": self.model.source},
            "cpu": {"policies": policies},
            "gpu": {"path": "(analytic)", "frequencies_hz": list(p.gpu_hz), "governors": list(p.gpu_governors),
                    "governor": self._state[GPU_GOVERNOR]},
            "emc": None,
            "rails": [{"name": "VDD_IN" if p.soc != "t210" else "POM_5V_IN", "role": "total",
                       "power_mw": round(idle * 1000), "in_total": True}] if p.has_power_monitor else [],
            "thermal": [{"name": k, "temp_c": v} for k, v in self.temperatures().items()],
        }

    # --- measurement -----------------------------------------------------------------
    def _caps(self) -> Any:
        """The caps of the applied power mode (tuner.boards.nvpmodel.ModeCaps), or None."""
        mode = self.modes.get(self._state.get(POWER_MODE))  # type: ignore[arg-type]
        return None if mode is None else mode.caps

    def _residencies(self) -> tuple[Residency, Residency]:
        """Where the clocks spend their time: pinned, or as the governor moves them; under a
        power mode's caps either way (the firmware clamps a pinned clock above the cap)."""
        s = self._state
        if s[CPU_FREQ] is not None:
            cpu = Residency({int(s[CPU_FREQ]): 1.0}, False)
        else:
            cpu = cpu_residency(self.model, s[CPU_GOVERNOR])
        if s[GPU_FREQ] is not None:
            gpu = Residency({int(s[GPU_FREQ]): 1.0}, False)
        else:
            gpu = gpu_residency(self.model, s[GPU_GOVERNOR])
        caps = self._caps()
        if caps is not None:
            cpu = _capped(cpu, self.profile.cpu_khz, caps.cpu_max_khz)
            gpu = _capped(gpu, self.profile.gpu_hz, caps.gpu_max_hz)
        return cpu, gpu

    def _emc_hz(self) -> int | None:
        """The EMC rate: pinned, else the top rate (its governor's choice under load), under the mode's cap."""
        table = self.profile.emc_hz
        if not table:
            return None
        fe = int(self._state.get(EMC_FREQ) or table[-1])
        caps = self._caps()
        if caps is not None and caps.emc_max_hz is not None:
            fe = max([f for f in table if f <= min(fe, caps.emc_max_hz)] or [table[0]])
        return fe

    def truth(self, workload: str, config: Config, inferences: int) -> RunEstimate:
        """Noiseless result of running ``config`` (the surface strategies are judged on).

        Hardware knobs in ``config`` override the applied state for this call only.
        """
        saved = dict(self._state)
        try:
            self.apply(config)
            batch = int(config.get(BATCH_SIZE, 16))
            instances = int(config.get(CONCURRENCY, 1))
            self.model.check_memory(workload, batch, instances)
            cpu, gpu = self._residencies()
            return run_estimate(self.model, workload, batch, inferences, cpu, gpu, instances, self._emc_hz())
        finally:
            self._state = saved

    def measure(self, workload: str, config: Config, inferences: int = 3200) -> Measurement:
        """One noisy repeat of ``inferences`` inferences under ``config`` on the applied state.

        Out-of-memory batches come back as infeasible measurements, as on a
        board where the workload raises; the board's state is what apply() set.
        """
        return self._measurement(workload, config, inferences, self.noise)

    def expected(self, workload: str, config: Config, inferences: int = 3200) -> Measurement:
        """The noiseless measurement: the true surface that strategy benchmarks judge against."""
        return self._measurement(workload, config, inferences, Noise.none())

    def _measurement(self, workload: str, config: Config, inferences: int, n: Noise) -> Measurement:
        merged = Config({**{k: v for k, v in self._state.items() if v is not None}, **config.to_dict()})
        try:
            est = self.truth(workload, merged, inferences)
        except OutOfMemory as exc:
            return Measurement.infeasible(config, f"{OOM_PREFIX}: {exc}", simulated=True)
        if n.energy_sd:
            time_f, energy_f = self._field_factors(n)
            time_s, power = est.time_s * time_f, est.avg_power_w * energy_f / time_f
        else:
            time_s = est.time_s * (1 + n.time_sd * self.rng.standard_normal()) if n.time_sd else est.time_s
            power = est.avg_power_w * (1 + n.power_sd * self.rng.standard_normal()) if n.power_sd else est.avg_power_w
        if n.drift:
            power *= self._drift(est)
            if n.energy_sd:
                power *= self._walk(n)
        energy = power * time_s
        batch = int(merged.get(BATCH_SIZE, 16))
        n_batches = max(1, math.ceil(inferences / batch))
        lat = est.batch_s * (time_s / est.time_s) * np.ones(min(n_batches, 512))
        if n.batch_sd:
            lat = lat * np.exp(n.batch_sd * self.rng.standard_normal(lat.size))
        p50, p95 = (float(v) for v in np.percentile(lat, [50, 95]))
        scale = energy / est.energy_j
        rails = {"total": energy, "cpu": est.cpu_power_w * est.time_s * scale,
                 "gpu": est.gpu_power_w * est.time_s * scale}
        if not self.profile.has_power_monitor:  # a Nano 2GB measures time, never energy
            energy, rails = math.nan, {}
        return Measurement(
            config=config, simulated=True, energy_j=energy, time_s=time_s, inferences=inferences,
            rail_energy_j=rails, batch_latency_p50_s=p50, batch_latency_p95_s=p95,
            temperatures_c=self.temperatures(),
            residency={"cpu": {str(k): v for k, v in est.cpu_residency.items()},
                       "gpu": {str(k): v for k, v in est.gpu_residency.items()}},
            idle_power_w=self.model.idle_power(),
        )

    def _draw(self, tails: bool) -> float:
        """One standard draw: normal, or Student-t (3 dof) scaled to unit variance."""
        if tails:
            return float(self.rng.standard_t(3)) / math.sqrt(3.0)
        return float(self.rng.standard_normal())

    def _field_factors(self, n: Noise) -> tuple[float, float]:
        """(time, energy) multipliers of one repeat under field noise: a shared and an own part each."""
        shared = math.sqrt(SHARED) * self._draw(n.tails)
        own = math.sqrt(1.0 - SHARED)
        time_f = 1.0 + n.energy_sd * (shared + own * self._draw(n.tails))
        energy_f = 1.0 + n.energy_sd * (shared + own * self._draw(n.tails))
        return max(time_f, 0.2), max(energy_f, 0.2)  # a heavy tail never makes a run free or instant

    def _walk(self, n: Noise) -> float:
        """The slow drift: an AR(1) walk with stationary relative standard deviation ``sigma``."""
        self._walk_state = DRIFT_PHI * self._walk_state + math.sqrt(1 - DRIFT_PHI**2) * self._draw(False)
        return max(1.0 + n.energy_sd * self._walk_state, 0.2)

    def _drift(self, est: RunEstimate) -> float:
        """Heat the die towards its steady state for this power; leakage follows."""
        target = 30.0 + 4.0 * est.avg_power_w
        tau = 120.0
        self._temp_c = target + (self._temp_c - target) * math.exp(-est.time_s / tau)
        leak_share = 0.15
        return 1.0 + leak_share * 0.01 * (self._temp_c - 40.0)


def _power_modes(profile: Any, jetpack: str) -> dict[int, Any]:
    """The profile's nvpmodel modes by id, parsed from the same conf its emulated tree carries."""
    from tuner.boards.nvpmodel import parse_conf
    from tuner.sim.profiles import nvpmodel_conf

    text = nvpmodel_conf(profile, jetpack)
    return {m.id: m for m in parse_conf(text).modes} if text else {}


def _capped(res: Residency, table: tuple[int, ...], cap: int | None) -> Residency:
    """``res`` under a clock cap: time above it is spent at the highest step at or below it."""
    if cap is None:
        return res
    top = max([f for f in table if f <= cap] or [table[0]])
    shares: dict[int, float] = {}
    for f, share in res.shares.items():
        key = f if f <= top else top
        shares[key] = shares.get(key, 0.0) + share
    return Residency(shares, res.dynamic)

"""NVIDIA discrete GPUs through NVML (``nvidia-ml-py``).

Reading power, the energy counter and temperatures is always allowed. Locking
GPU clocks changes a shared machine's behaviour, so it happens only when the
board is built with ``allow_clock_control=True`` (``--allow-clock-control``);
otherwise the GPU frequency knob is not offered. A lock is journalled before
it is set, and undone with ``nvmlDeviceResetGpuLockedClocks``.

The NVML module is injectable so tests run against a fake.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from tuner.boards.base import ENERGY, POWER, BoardInfo, Channel, validate_hardware
from tuner.config import GPU_FREQ, Config, Knob
from tuner.errors import BoardNotFound, HardwareError
from tuner.journal import Journal
from tuner.sampler import update_period


def _load_nvml() -> ModuleType:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        raise BoardNotFound("NVML is not installed: pip install 'edgetune[nvml]'") from None
    return pynvml


class NvmlSource:
    """Board power of one GPU: the energy counter (mJ) where the GPU has one
    (Volta and newer), else instantaneous power (mW)."""

    def __init__(self, nvml: Any, handle: Any, name: str) -> None:
        self.nvml = nvml
        self.handle = handle
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            self.kind = ENERGY
        except Exception:
            self.kind = POWER
        self.channels = (Channel(name, "gpu", self.kind),)
        self.total = (name,)
        self._period: float | None = None

    @property
    def update_period_s(self) -> float:
        """How often the reading changes, measured once by polling: NVML publishes power and energy
        from the driver's periodic samples, not continuously (every 0.100 s on an H200, idle or busy)."""
        if self._period is None:
            self._period = update_period(self.read)
        return self._period

    def read(self) -> dict[str, float]:
        name = self.channels[0].name
        try:
            if self.kind == ENERGY:
                return {name: float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))}
            return {name: float(self.nvml.nvmlDeviceGetPowerUsage(self.handle))}
        except Exception:
            return {}


class NvmlBoard:
    """One NVIDIA GPU through NVML: power always; a graphics-clock lock (knob in Hz, set in MHz) only
    with ``allow_clock_control``, journalled first so restore resets it."""

    def __init__(self, index: int = 0, *, allow_clock_control: bool = False, nvml: Any = None,
                 state_dir: Path | None = None) -> None:
        self.nvml = nvml if nvml is not None else _load_nvml()
        try:
            self.nvml.nvmlInit()
            count = self.nvml.nvmlDeviceGetCount()
        except Exception as exc:
            raise BoardNotFound(f"NVML found no usable driver: {exc}") from None
        if not 0 <= index < count:
            raise BoardNotFound(f"no NVIDIA GPU with index {index} ({count} found)")
        self.index = index
        self.handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        name = self.nvml.nvmlDeviceGetName(self.handle)
        name = name.decode() if isinstance(name, bytes) else str(name)
        self.allow_clock_control = allow_clock_control
        self.info = BoardInfo("nvml", None, name, None, False, {"index": index})
        self.journal = Journal((state_dir or Path("/var/lib/edgetune")) / f"journal-nvml{index}.json")
        self._source = NvmlSource(self.nvml, self.handle, f"GPU{index}")
        self._clocks_mhz: list[int] | None = None

    def _graphics_clocks_mhz(self) -> list[int]:
        if self._clocks_mhz is None:
            try:
                mem = max(self.nvml.nvmlDeviceGetSupportedMemoryClocks(self.handle))
                clocks = self.nvml.nvmlDeviceGetSupportedGraphicsClocks(self.handle, mem)
                self._clocks_mhz = sorted(set(int(c) for c in clocks))
            except Exception:
                self._clocks_mhz = []
        return self._clocks_mhz

    def knobs(self) -> list[Knob]:
        if not self.allow_clock_control or not self._graphics_clocks_mhz():
            return []
        return [Knob(GPU_FREQ, tuple(c * 1_000_000 for c in self._graphics_clocks_mhz()), "Hz")]

    def apply(self, config: Config) -> None:
        hint = "" if self.allow_clock_control else " (clock control is off: pass --allow-clock-control)"
        hw = validate_hardware(config, self.knobs(), f"this NVIDIA GPU{hint}")
        if not hw:
            return
        mhz = int(hw[GPU_FREQ]) // 1_000_000
        self.journal.record(f"nvml:{self.index}:locked_clocks", "reset")
        try:
            self.nvml.nvmlDeviceSetGpuLockedClocks(self.handle, mhz, mhz)
        except Exception as exc:
            raise HardwareError(f"NVML refused to lock GPU clocks at {mhz} MHz: {exc}") from None

    def current(self) -> Config:
        try:
            mhz = self.nvml.nvmlDeviceGetClockInfo(self.handle, self.nvml.NVML_CLOCK_GRAPHICS)
        except Exception:
            return Config()
        return Config({GPU_FREQ: int(mhz) * 1_000_000})

    def snapshot(self) -> dict[str, str]:
        return {f"nvml:{self.index}:graphics_clock_mhz": str(self.current().get(GPU_FREQ, 0) // 1_000_000)}

    def restore(self) -> list[str]:
        def reset(_key: str, _value: str) -> None:
            try:
                self.nvml.nvmlDeviceResetGpuLockedClocks(self.handle)
            except Exception as exc:
                raise HardwareError(f"NVML could not reset locked clocks: {exc}") from None

        return self.journal.restore(reset)

    def power_source(self) -> NvmlSource:
        return self._source

    def temperatures(self) -> dict[str, float]:
        try:
            return {f"GPU{self.index}": float(self.nvml.nvmlDeviceGetTemperature(
                self.handle, self.nvml.NVML_TEMPERATURE_GPU))}
        except Exception:
            return {}

    def describe(self) -> dict[str, Any]:
        reading = self._source.read()
        power_mw = None
        try:
            power_mw = float(self.nvml.nvmlDeviceGetPowerUsage(self.handle))
        except Exception:
            pass
        name = self._source.channels[0].name
        return {
            "board": {"kind": "nvml", "profile": None, "model": self.info.model, "l4t": None, "simulated": False,
                      "clock_control": self.allow_clock_control},
            "cpu": {"policies": []},
            "gpu": {"path": f"nvml:{self.index}",
                    "frequencies_hz": [c * 1_000_000 for c in self._graphics_clocks_mhz()],
                    "governors": [], "governor": None,
                    "cur_freq_hz": self.current().get(GPU_FREQ)},
            "emc": None,
            "rails": [{"name": name, "role": "gpu", "power_mw": power_mw,
                       "energy_mj": reading.get(name) if self._source.kind == ENERGY else None, "in_total": True,
                       "update_period_s": round(self._source.update_period_s, 4)}],
            "thermal": [{"name": k, "temp_c": v} for k, v in self.temperatures().items()],
        }

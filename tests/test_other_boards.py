"""Generic Linux (cpufreq + RAPL + hwmon) and NVML boards, against fakes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tuner.boards.linux import LinuxBoard
from tuner.boards.nvml import NvmlBoard
from tuner.config import Config
from tuner.errors import BoardNotFound, ConfigError
from tuner.sysfs import Sysfs


def put(root: Path, rel: str, text: object, mode: int = 0o444) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{text}\n")
    os.chmod(p, mode)


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    root = tmp_path / "laptop"
    pol = "sys/devices/system/cpu/cpufreq/policy0"
    put(root, f"{pol}/related_cpus", "0 1")
    put(root, f"{pol}/scaling_available_frequencies", "800000 1600000 2400000")
    put(root, f"{pol}/scaling_available_governors", "performance powersave userspace")
    put(root, f"{pol}/scaling_governor", "powersave", 0o644)
    put(root, f"{pol}/scaling_min_freq", 800000, 0o644)
    put(root, f"{pol}/scaling_max_freq", 2400000, 0o644)
    put(root, f"{pol}/scaling_cur_freq", 1600000)
    put(root, "sys/devices/system/cpu/cpu1/online", 1, 0o644)
    (root / "sys/devices/system/cpu/cpu0").mkdir(parents=True, exist_ok=True)
    rapl = "sys/class/powercap/intel-rapl:0"
    put(root, f"{rapl}/name", "package-0")
    put(root, f"{rapl}/energy_uj", 999_000_000)
    put(root, f"{rapl}/max_energy_range_uj", 1_000_000_000)
    put(root, f"{rapl}:0/name", "core")
    put(root, f"{rapl}:0/energy_uj", 5)
    put(root, "sys/class/powercap/intel-rapl:0:1/name", "dram")
    put(root, "sys/class/powercap/intel-rapl:0:1/energy_uj", 0)
    put(root, "sys/class/hwmon/hwmon0/name", "acpi_power")
    put(root, "sys/class/hwmon/hwmon0/power1_input", 12_500_000)  # uW
    put(root, "sys/devices/virtual/thermal/thermal_zone0/type", "x86_pkg_temp")
    put(root, "sys/devices/virtual/thermal/thermal_zone0/temp", 45000)
    return root


def test_linux_board_knobs_power_and_rapl_wrap(laptop):
    board = LinuxBoard(Sysfs(laptop))
    assert [k.name for k in board.knobs()] == ["cpu_freq_khz", "cpu_governor", "cpu_cores"]
    src = board.power_source()
    names = [c.name for c in src.channels]
    assert names == ["rapl:package-0", "rapl:dram", "hwmon:acpi_power:power1"]  # core is inside package
    assert src.total == ("rapl:package-0", "rapl:dram")
    first = src.read()
    assert first["hwmon:acpi_power:power1"] == pytest.approx(12500.0)
    # the package counter wraps: 999 J -> 4 J with a 1000 J range is +5 J, not -995 J
    put(laptop, "sys/class/powercap/intel-rapl:0/energy_uj", 4_000_000)
    second = src.read()
    assert second["rapl:package-0"] - first["rapl:package-0"] == pytest.approx(5000.0)  # mJ
    assert board.temperatures() == {"x86_pkg_temp": 45.0}
    board.apply(Config({"cpu_freq_khz": 1600000, "cpu_cores": 1}))
    assert (laptop / "sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq").read_text().strip() == "1600000"
    assert (laptop / "sys/devices/system/cpu/cpu1/online").read_text().strip() == "0"
    assert board.restore() == []
    assert (laptop / "sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq").read_text().strip() == "2400000"
    doc = board.describe()
    assert doc["gpu"] is None and doc["board"]["kind"] == "linux"


def test_linux_board_without_sensors_says_so(tmp_path):
    root = tmp_path / "bare"
    (root / "sys").mkdir(parents=True)
    board = LinuxBoard(Sysfs(root))
    assert board.knobs() == [] and board.power_source() is None
    doc = board.describe()
    assert doc["rails"] == [] and doc["cpu"]["policies"] == []
    with pytest.raises(ConfigError):
        board.apply(Config({"cpu_freq_khz": 1}))


class FakeNvml:
    NVML_CLOCK_GRAPHICS = 0
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, energy: bool = True) -> None:
        self.locked: tuple[int, int] | None = None
        self.resets = 0
        self.energy_mj = 1000
        self.has_energy = energy

    def nvmlInit(self): pass
    def nvmlDeviceGetCount(self): return 1
    def nvmlDeviceGetHandleByIndex(self, i): return f"h{i}"
    def nvmlDeviceGetName(self, h): return b"NVIDIA H100 80GB HBM3"
    def nvmlDeviceGetPowerUsage(self, h): return 71234
    def nvmlDeviceGetSupportedMemoryClocks(self, h): return [2619, 1593]
    def nvmlDeviceGetSupportedGraphicsClocks(self, h, mem): return [1980, 1500, 1005, 345]
    def nvmlDeviceGetTemperature(self, h, s): return 33
    def nvmlDeviceGetClockInfo(self, h, c): return self.locked[0] if self.locked else 1980

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.has_energy:
            raise RuntimeError("not supported")
        self.energy_mj += 500
        return self.energy_mj

    def nvmlDeviceSetGpuLockedClocks(self, h, lo, hi): self.locked = (lo, hi)

    def nvmlDeviceResetGpuLockedClocks(self, h):
        self.locked = None
        self.resets += 1


def test_nvml_reads_without_clock_control(tmp_path):
    fake = FakeNvml()
    board = NvmlBoard(0, nvml=fake, state_dir=tmp_path)
    assert board.knobs() == []
    with pytest.raises(ConfigError, match="allow-clock-control"):
        board.apply(Config({"gpu_freq_hz": 1500_000_000}))
    assert fake.locked is None
    src = board.power_source()
    assert src.channels[0].kind == "energy_mj"
    a, b = src.read()["GPU0"], src.read()["GPU0"]
    assert b - a == 500
    doc = board.describe()
    assert doc["board"]["model"] == "NVIDIA H100 80GB HBM3" and doc["rails"][0]["power_mw"] == 71234
    assert board.temperatures() == {"GPU0": 33.0}


def test_nvml_clock_lock_is_journalled_and_restored(tmp_path):
    fake = FakeNvml(energy=False)
    board = NvmlBoard(0, nvml=fake, state_dir=tmp_path, allow_clock_control=True)
    assert board.knobs()[0].values == (345_000_000, 1005_000_000, 1500_000_000, 1980_000_000)
    with pytest.raises(ConfigError):
        board.apply(Config({"gpu_freq_hz": 1234_000_000}))
    board.apply(Config({"gpu_freq_hz": 1005_000_000}))
    assert fake.locked == (1005, 1005)
    assert (tmp_path / "journal-nvml0.json").exists()
    assert board.current()["gpu_freq_hz"] == 1005_000_000
    assert board.restore() == [] and fake.locked is None and fake.resets == 1
    assert board.power_source().read() == {"GPU0": 71234.0}


def test_nvml_missing_gpu_index(tmp_path):
    with pytest.raises(BoardNotFound):
        NvmlBoard(3, nvml=FakeNvml(), state_dir=tmp_path)


class SteppedNvml(FakeNvml):
    """NVML whose energy counter moves only every 50 ms, as real ones do every 100 ms."""

    def __init__(self) -> None:
        super().__init__()
        self.t0 = time.monotonic()

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return 1000 + int((time.monotonic() - self.t0) / 0.05) * 5000


def test_nvml_source_measures_how_often_its_counter_moves(tmp_path):
    board = NvmlBoard(0, nvml=SteppedNvml(), state_dir=tmp_path)
    src = board.power_source()
    assert src.update_period_s == pytest.approx(0.05, abs=0.01)  # polled every 2 ms (more on a busy machine)
    assert src.update_period_s is src.update_period_s  # measured once
    doc = board.describe()  # probe shows it, and why windows are long there
    assert doc["rails"][0]["update_period_s"] == pytest.approx(0.05, abs=0.01)
    from rich.console import Console

    from tuner.cli.render import render_probe

    console = Console(record=True, width=120)
    render_probe(doc, console)
    text = console.export_text()
    assert "updates every" in text and f"{doc['rails'][0]['update_period_s'] * 1e3:.0f} ms" in text

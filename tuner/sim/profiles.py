"""Board profiles: the facts an emulated tree and the simulator are built from.

Frequency tables follow Dutt 2023 (Table 2.1) and NVIDIA's nvpmodel files for
the MAXN/default mode; rail names, I2C addresses, thermal zone names and
devfreq paths follow the L4T releases named per profile. On a real board
edgetune always reads the device's own lists; these tables are for emulation.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuner.errors import EdgetuneError


def _steps(start: int, step: int, stop: int, *extra: int) -> tuple[int, ...]:
    return tuple(range(start, stop + 1, step)) + extra


# CPU tables (kHz). Tegra Carmel/A78AE tables step by 76.8 MHz.
NANO_CPU = (102000, 204000, 307200, 403200, 518400, 614400, 710400, 825600, 921600, 1036800,
            1132800, 1224000, 1326000, 1428000, 1479000)
TX2_CPU = _steps(345600, 153600, 2035200)
XAVIER_NX_CPU = _steps(115200, 76800, 1881600, 1907200)
AGX_XAVIER_CPU = _steps(115200, 76800, 2188800, 2265600)
ORIN_NANO_CPU = _steps(115200, 76800, 1497600, 1510400)
ORIN_NX_CPU = _steps(115200, 76800, 1958400, 1984000)
AGX_ORIN_CPU = _steps(115200, 76800, 2188800, 2201600)

# GPU tables (Hz).
NANO_GPU = tuple(76800000 * k for k in range(1, 13))
TX2_GPU = (114750000, 216750000, 318750000, 420750000, 522750000, 624750000, 726750000, 828750000,
           930750000, 1032750000, 1134750000, 1236750000, 1300500000)
XAVIER_NX_GPU = (114750000, 204000000, 306000000, 408000000, 510000000, 599250000, 701250000,
                 752250000, 803250000, 854250000, 905250000, 956250000, 1007250000, 1058250000, 1109250000)
AGX_XAVIER_GPU = (114750000, 216750000, 318750000, 420750000, 522750000, 624750000, 675750000,
                  828750000, 905250000, 1032750000, 1198500000, 1236750000, 1338750000, 1377000000)
ORIN_NANO_GPU = (306000000, 408000000, 510000000, 624750000)
ORIN_NX_GPU = (306000000, 408000000, 510000000, 612000000, 714000000, 816000000, 918000000)
AGX_ORIN_GPU = ORIN_NX_GPU + (1020000000, 1122000000, 1224000000, 1300500000)

CPU_GOVERNORS_L4T32 = ("interactive", "conservative", "ondemand", "userspace", "powersave", "performance",
                       "schedutil")
CPU_GOVERNORS_L4T35 = ("conservative", "ondemand", "userspace", "powersave", "performance", "schedutil")
GPU_GOVERNORS = ("wmark_active", "wmark_simple", "nvhost_podgov", "userspace", "performance",
                 "simple_ondemand", "powersave")

THERMAL_T210 = ("AO-therm", "CPU-therm", "GPU-therm", "PLL-therm", "PMIC-Die", "thermal-fan-est")
THERMAL_T186 = ("BCPU-therm", "MCPU-therm", "GPU-therm", "PLL-therm", "Tboard_tegra", "Tdiode_tegra",
                "PMIC-Die", "thermal-fan-est")
THERMAL_T194 = ("AUX-therm", "CPU-therm", "GPU-therm", "AO-therm", "Tboard_tegra", "Tdiode_tegra",
                "PMIC-Die", "thermal-fan-est")
THERMAL_T234 = ("CPU-therm", "GPU-therm", "CV0-therm", "CV1-therm", "CV2-therm", "SOC0-therm",
                "SOC1-therm", "SOC2-therm", "tj-therm")

RELEASES = {
    "32": "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: {board}, EABI: aarch64, "
          "DATE: Fri Jun  9 04:25:08 UTC 2023",
    "35": "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
          "DATE: Tue Aug  1 19:57:35 UTC 2023",
    "36": "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, "
          "DATE: Fri Jul 19 23:24:25 UTC 2024",
}
JETPACK_TO_L4T = {"4": "32", "5": "35", "6": "36"}


@dataclass(frozen=True)
class GpuNode:
    """Where the GPU's devfreq node sits for one SoC and JetPack release."""

    device: str  # the GPU platform device, parent of devfreq/
    devfreq_name: str  # name under devfreq/ and /sys/class/devfreq/
    of_name: str  # device-tree node name (discovery key)
    dt_node: str  # device-tree directory name under /sys/firmware/devicetree/base


@dataclass(frozen=True)
class BoardProfile:
    name: str
    title: str
    soc: str
    model: str
    compatible: tuple[str, ...]
    l4t_board: str
    jetpacks: tuple[str, ...]  # first is the default
    cpu_clusters: tuple[tuple[int, ...], ...]
    cpu_khz: tuple[int, ...]
    gpu_hz: tuple[int, ...]
    emc_hz: tuple[int, ...]  # empty: no BPMP EMC debugfs (Nano)
    ina_bus: int
    rails: tuple[tuple[str, ...], ...]  # one tuple of 3 labels per INA3221 (address 0x40, 0x41, ...)
    thermal: tuple[str, ...]
    idle_mw: tuple[tuple[str, float], ...]  # idle power per connected rail, for the tree's first values

    @property
    def ncpus(self) -> int:
        return sum(len(c) for c in self.cpu_clusters)

    def gpu_node(self, jetpack: str) -> GpuNode:
        if self.soc == "t210":
            return GpuNode("/sys/devices/gpu.0", "57000000.gpu", "gpu", "gpu@57000000")
        if self.soc == "t186":
            return GpuNode("/sys/devices/17000000.gp10b", "17000000.gp10b", "gp10b", "gp10b@17000000")
        if self.soc == "t194":
            prefix = "/sys/devices/platform" if jetpack == "5" else "/sys/devices"
            return GpuNode(f"{prefix}/17000000.gv11b", "17000000.gv11b", "gv11b", "gv11b@17000000")
        if jetpack == "6":
            return GpuNode("/sys/devices/platform/bus@0/17000000.gpu", "17000000.gpu", "gpu", "gpu@17000000")
        return GpuNode("/sys/devices/17000000.ga10b", "17000000.ga10b", "ga10b", "ga10b@17000000")

    def cpu_governors(self, jetpack: str) -> tuple[str, ...]:
        return CPU_GOVERNORS_L4T32 if jetpack == "4" else CPU_GOVERNORS_L4T35

    @property
    def gpu_governors(self) -> tuple[str, ...]:
        return GPU_GOVERNORS

    def release(self, jetpack: str) -> str:
        return RELEASES[JETPACK_TO_L4T[jetpack]].format(board=self.l4t_board)


PROFILES: dict[str, BoardProfile] = {p.name: p for p in (
    BoardProfile(
        "jetson-nano", "Jetson Nano 4GB", "t210", "NVIDIA Jetson Nano Developer Kit",
        ("nvidia,p3450-0000", "nvidia,jetson-nano", "nvidia,tegra210"), "t210ref", ("4",),
        ((0, 1, 2, 3),), NANO_CPU, NANO_GPU, (), 6,
        (("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"),), THERMAL_T210,
        (("POM_5V_IN", 1180.0), ("POM_5V_GPU", 40.0), ("POM_5V_CPU", 240.0)),
    ),
    BoardProfile(
        "jetson-tx2", "Jetson TX2", "t186", "quill",
        ("nvidia,p2771-0000-500", "nvidia,p2771-0000", "nvidia,tegra186"), "t186ref", ("4",),
        ((0, 3, 4, 5), (1, 2)), TX2_CPU, TX2_GPU,
        (40800000, 204000000, 408000000, 665600000, 800000000, 1062400000, 1331200000, 1600000000, 1866000000),
        0,
        (("VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI"), ("VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR")),
        THERMAL_T186,
        (("VDD_SYS_GPU", 76.0), ("VDD_SYS_SOC", 381.0), ("VDD_4V0_WIFI", 0.0), ("VDD_IN", 1600.0),
         ("VDD_SYS_CPU", 152.0), ("VDD_SYS_DDR", 210.0)),
    ),
    BoardProfile(
        "jetson-xavier-nx", "Jetson Xavier NX", "t194", "NVIDIA Jetson Xavier NX Developer Kit",
        ("nvidia,p3449-0000+p3668-0001", "nvidia,p3668-0001", "nvidia,tegra194"), "t186ref", ("4", "5"),
        ((0, 1), (2, 3), (4, 5)), XAVIER_NX_CPU, XAVIER_NX_GPU,
        (204000000, 665600000, 1065600000, 1331200000, 1600000000, 1866000000), 7,
        (("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),), THERMAL_T194,
        (("VDD_IN", 3400.0), ("VDD_CPU_GPU_CV", 540.0), ("VDD_SOC", 1100.0)),
    ),
    BoardProfile(
        "jetson-agx-xavier", "Jetson AGX Xavier", "t194", "Jetson-AGX",
        ("nvidia,p2972-0000", "nvidia,p2888-0001", "nvidia,tegra194"), "t186ref", ("4", "5"),
        ((0, 1), (2, 3), (4, 5), (6, 7)), AGX_XAVIER_CPU, AGX_XAVIER_GPU,
        (204000000, 665600000, 1065600000, 1331200000, 1600000000, 2133000000), 1,
        (("GPU", "CPU", "SOC"), ("CV", "VDDRQ", "SYS5V")), THERMAL_T194,
        (("GPU", 150.0), ("CPU", 460.0), ("SOC", 1380.0), ("CV", 150.0), ("VDDRQ", 300.0), ("SYS5V", 1700.0)),
    ),
    BoardProfile(
        "jetson-orin-nano", "Jetson Orin Nano 8GB", "t234", "NVIDIA Jetson Orin Nano Developer Kit",
        ("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"), "t186ref", ("5", "6"),
        ((0, 1, 2, 3), (4, 5)), ORIN_NANO_CPU, ORIN_NANO_GPU,
        (204000000, 665600000, 2133000000), 1,
        (("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),), THERMAL_T234,
        (("VDD_IN", 4300.0), ("VDD_CPU_GPU_CV", 600.0), ("VDD_SOC", 1300.0)),
    ),
    BoardProfile(
        "jetson-orin-nx", "Jetson Orin NX 16GB", "t234", "NVIDIA Orin NX Developer Kit",
        ("nvidia,p3509-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234"), "t186ref", ("5", "6"),
        ((0, 1, 2, 3), (4, 5, 6, 7)), ORIN_NX_CPU, ORIN_NX_GPU,
        (204000000, 665600000, 2133000000, 3199000000), 1,
        (("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),), THERMAL_T234,
        (("VDD_IN", 4800.0), ("VDD_CPU_GPU_CV", 700.0), ("VDD_SOC", 1500.0)),
    ),
    BoardProfile(
        "jetson-agx-orin", "Jetson AGX Orin 64GB", "t234", "Jetson AGX Orin Developer Kit",
        ("nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"), "generic", ("6", "5"),
        ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)), AGX_ORIN_CPU, AGX_ORIN_GPU,
        (204000000, 665600000, 2133000000, 3199000000), 1,
        (("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), ("NC", "VDDQ_VDD2_1V8AO", "NC")), THERMAL_T234,
        (("VDD_GPU_SOC", 3200.0), ("VDD_CPU_CV", 800.0), ("VIN_SYS_5V0", 3000.0), ("VDDQ_VDD2_1V8AO", 500.0)),
    ),
)}


def get_profile(name: str) -> BoardProfile:
    key = name[len("sim:"):] if name.startswith("sim:") else name
    try:
        return PROFILES[key]
    except KeyError:
        raise EdgetuneError(f"unknown board profile {name!r}; choose one of {', '.join(PROFILES)}") from None

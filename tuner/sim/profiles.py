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


# --- power modes (nvpmodel) -------------------------------------------------------
#
# Each board's /etc/nvpmodel.conf is a link to its file under /etc/nvpmodel/; the
# names are the ones L4T's first-boot script links (nv.sh / create_nvpmodel_symlink
# in nvidia-l4t-init, R35: p3767-0000 -> nvpmodel_p3767_0000.conf, p3767-0003/0005 ->
# nvpmodel_p3767_0003.conf, p3668 -> nvpmodel_t194_p3668.conf, other t194 ->
# nvpmodel_t194.conf, other t234 -> nvpmodel_p3701_0000.conf; R32: t186 ->
# nvpmodel_t186.conf, jetson-nano -> nvpmodel_t210_jetson-nano.conf, as also in
# meta-tegra's nvpmodel recipe).
#
# The POWER_MODEL sections below carry the CPU_ONLINE, power-gating, CPU/GPU
# MIN_FREQ/MAX_FREQ, GPU_POWER_CONTROL_* and EMC MAX_FREQ lines of NVIDIA's files
# as published (the DLA/PVA/NVENC/SE/CVNAS caps and the over-current limits are
# left out: edgetune neither tunes nor reads them). Sources:
#   Nano   nvpmodel_t210_jetson-nano.conf: the MAXN/5W sections quoted in full by
#          NVIDIA's L4T R32 guide ("Power Management for Jetson Nano", custom modes)
#          and by users' copies (jfey/SmallThings jetson-nano.md); DEFAULT=0.
#   TX2    nvpmodel_t186.conf of L4T R32 (copy in LineageOS/android_device_nvidia_quill,
#          nvpmodel/nvpmodel_t186.conf, 5436 bytes like the R32.6.1 file): MAXN, MAXQ,
#          MAXP_CORE_ALL, MAXP_CORE_ARM, DEFAULT=2. (R28's file also had
#          MAXP_CORE_DENVER and DEFAULT=3; jetsonhacks' TX2 table is that release.)
#   Xavier NX  nvpmodel_t194_p3668.conf (LineageOS/android_device_nvidia_galen, and the
#          JetPack 4.6 / 5.0.2 copies in borongyuan/XavierNXOverclock, which add a
#          MAXN at ID 0 and shift the rest): 15W/10W/20W x 2/4/6 cores and
#          10W_DESKTOP, DEFAULT=5 (MODE_10W_DESKTOP). CPU MIN_FREQ 1190400 in every mode.
#   AGX Xavier nvpmodel_t194.conf (LineageOS/android_device_nvidia_galen): MAXN, 10W,
#          15W, 30W_ALL/6CORE/4CORE/2CORE, 15W_DESKTOP, DEFAULT=7; CPU caps agree with
#          jetsonhacks' AGX Xavier table (2265.6/1200/1200/1200/1450/1780/2100 MHz).
#   Orin Nano 8GB  nvpmodel_p3767_0003.conf (LineageOS/android_device_nvidia_concord):
#          15W (no CPU/GPU cap), 7W, DEFAULT=0 (the JetPack 5/6.0 file; 6.2's
#          *_super.conf adds 25W and MAXN_SUPER).
#   Orin NX 16GB   nvpmodel_p3767_0000.conf (concord): MAXN, 10W, 15W, 25W, DEFAULT=2
#          (Seeed's reComputer J4012 wiki: "by default level 2 - 15W"). Its 25W mode
#          caps the GPU at 408 MHz with all 4 TPCs on (15W: 612 MHz, 2 TPCs), as written.
#   AGX Orin 64GB  nvpmodel_p3701_0000.conf (concord): MAXN, MODE_15W, MODE_30W,
#          MODE_50W, DEFAULT=2.
#
# Caps and the emulated tables: a cap is an upper bound, so the allowed steps are
# those at or below it (tuner.boards.nvpmodel.allowed_values). Caps that fall
# between steps: Nano 5W CPU 918000 -> 825600 kHz, GPU 640 MHz -> 614.4 MHz (a real
# Nano in 5W shows 921600 kHz and 614.4 MHz in `jetson_clocks --show`: its kernel
# rounds the CPU cap up, so the real board allows one CPU step more than edgetune
# offers); TX2 1400000 -> 1267200, 1200000 -> 1113600, 2000000 -> 1881600 kHz,
# GPU 850/1120 MHz -> 828.75/1032.75 MHz; AGX Xavier 1200000 -> 1190400, 1450000 ->
# 1420800, 1780000 -> 1728000, 2100000 -> 2035200 kHz, GPU 520/670/900 MHz ->
# 420.75/624.75/828.75 MHz. The Xavier NX, Orin and EMC caps are steps of the emulated lists.
# A floor keeps the steps at or above it (Xavier NX 1190400, AGX Xavier 1200000 ->
# 1267200, Orin 729600 kHz); where floor and cap leave no step (AGX Xavier 10W/15W/
# 30W_ALL: MIN = MAX = 1200000, between 1190400 and 1267200) the clock is pinned at
# the highest capped step, as cpufreq clamps the policy minimum to its maximum.


@dataclass(frozen=True)
class PowerModes:
    """A board's nvpmodel power-mode table, for its emulated /etc/nvpmodel.conf."""

    file: str  # name under /etc/nvpmodel/
    default: int  # < PM_CONFIG DEFAULT=N >
    cpu_clocks: tuple[tuple[str, int], ...]  # CPU clock PARAM name -> first CPU of its cluster
    models: str  # the POWER_MODEL sections


def _pm(mode_id: int, name: str, online: str, cpu: tuple[tuple[str, str, str], ...], gpu: tuple[str, str],
        emc: str, *, tpc: str | None = None, fbp: str | None = None, first_core: int = 0,
        cpu_first: bool = False, comment: str = "") -> str:
    """One POWER_MODEL section in NVIDIA's line order: T210/T186 files put the CPU
    clocks before GPU_POWER_CONTROL_ENABLE (``cpu_first``), T194/T234 files after
    the power-gating lines. ``online`` is one digit per core from ``first_core``."""
    lines = [comment] if comment else []
    lines.append(f"< POWER_MODEL ID={mode_id} NAME={name} >")
    lines += [f"CPU_ONLINE CORE_{first_core + i} {d}" for i, d in enumerate(online)]
    if fbp is not None:
        lines.append(f"FBP_POWER_GATING FBP_PG_MASK {fbp}")
    if tpc is not None:
        lines.append(f"TPC_POWER_GATING TPC_PG_MASK {tpc}")
    clocks = [f"{p} {arg} {v}" for p, lo, hi in cpu for arg, v in (("MIN_FREQ", lo), ("MAX_FREQ", hi))]
    enable = "GPU_POWER_CONTROL_ENABLE GPU_PWR_CNTL_EN on"
    lines += clocks + [enable] if cpu_first else [enable] + clocks
    lines += [f"GPU MIN_FREQ {gpu[0]}", f"GPU MAX_FREQ {gpu[1]}", "GPU_POWER_CONTROL_DISABLE GPU_PWR_CNTL_DIS auto",
              f"EMC MAX_FREQ {emc}"]
    return "\n".join(lines) + "\n"


_MAXN_NOTE = "# MAXN is the NONE power model to release all constraints"


def _cpus(params: tuple[str, ...], lo: str, hi: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((p, lo, hi) for p in params)


_NX = ("CPU_DENVER_0", "CPU_DENVER_1", "CPU_DENVER_2")
_AGX = _NX + ("CPU_DENVER_3",)
_A78 = ("CPU_A78_0", "CPU_A78_1", "CPU_A78_2")

NANO_MODES = PowerModes("nvpmodel_t210_jetson-nano.conf", 0, (("CPU_A57", 0),), "\n".join((
    _pm(0, "MAXN", "1111", (("CPU_A57", "0", "-1"),), ("0", "-1"), "0", cpu_first=True, comment=_MAXN_NOTE),
    _pm(1, "5W", "1100", (("CPU_A57", "0", "918000"),), ("0", "640000000"), "1600000000", cpu_first=True),
)))
TX2_MODES = PowerModes("nvpmodel_t186.conf", 2, (("CPU_A57", 0), ("CPU_DENVER", 1)), "\n".join((
    _pm(0, "MAXN", "11111", (("CPU_A57", "0", "-1"), ("CPU_DENVER", "0", "-1")), ("0", "-1"), "0",
        first_core=1, cpu_first=True, comment=_MAXN_NOTE),
    _pm(1, "MAXQ", "00111", (("CPU_A57", "0", "1200000"),), ("0", "850000000"), "1331200000",
        first_core=1, cpu_first=True),
    _pm(2, "MAXP_CORE_ALL", "11111", (("CPU_A57", "0", "1400000"), ("CPU_DENVER", "0", "1400000")),
        ("0", "1120000000"), "1600000000", first_core=1, cpu_first=True),
    _pm(3, "MAXP_CORE_ARM", "00111", (("CPU_A57", "0", "2000000"),), ("0", "1120000000"), "1600000000",
        first_core=1, cpu_first=True),
)))
XAVIER_NX_MODES = PowerModes("nvpmodel_t194_p3668.conf", 5, tuple(zip(_NX, (0, 2, 4))), "\n".join((
    _pm(0, "MODE_15W_2CORE", "110000", _cpus(_NX[:1], "1190400", "1907200"), ("0", "1109250000"), "1600000000",
        tpc="1"),
    _pm(1, "MODE_15W_4CORE", "111100", _cpus(_NX[:2], "1190400", "1420800"), ("0", "1109250000"), "1600000000",
        tpc="1"),
    _pm(2, "MODE_15W_6CORE", "111111", _cpus(_NX, "1190400", "1420800"), ("0", "1109250000"), "1600000000",
        tpc="1"),
    _pm(3, "MODE_10W_2CORE", "110000", _cpus(_NX[:1], "1190400", "1497600"), ("0", "803250000"), "1600000000",
        tpc="1"),
    _pm(4, "MODE_10W_4CORE", "111100", _cpus(_NX[:2], "1190400", "1190400"), ("0", "803250000"), "1600000000",
        tpc="1"),
    _pm(5, "MODE_10W_DESKTOP", "111100", _cpus(_NX[:2], "1190400", "1907200"), ("0", "510000000"), "1600000000",
        tpc="1"),
    _pm(6, "MODE_20W_2CORE", "110000", _cpus(_NX[:1], "1190400", "1907200"), ("0", "1109250000"), "1866000000",
        tpc="1"),
    _pm(7, "MODE_20W_4CORE", "111100", _cpus(_NX[:2], "1190400", "1420800"), ("0", "1109250000"), "1866000000",
        tpc="1"),
    _pm(8, "MODE_20W_6CORE", "111111", _cpus(_NX, "1190400", "1420800"), ("0", "1109250000"), "1866000000",
        tpc="1"),
)))
AGX_XAVIER_MODES = PowerModes("nvpmodel_t194.conf", 7, tuple(zip(_AGX, (0, 2, 4, 6))), "\n".join((
    _pm(0, "MAXN", "11111111", _cpus(_AGX, "1200000", "-1"), ("0", "-1"), "0", tpc="0", comment=_MAXN_NOTE),
    _pm(1, "MODE_10W", "11000000", _cpus(_AGX[:1], "1200000", "1200000"), ("0", "520000000"), "1065600000",
        tpc="5"),
    _pm(2, "MODE_15W", "11110000", _cpus(_AGX[:2], "1200000", "1200000"), ("0", "670000000"), "1331200000",
        tpc="0"),
    _pm(3, "MODE_30W_ALL", "11111111", _cpus(_AGX, "1200000", "1200000"), ("0", "900000000"), "1600000000",
        tpc="0"),
    _pm(4, "MODE_30W_6CORE", "11111100", _cpus(_AGX[:3], "1200000", "1450000"), ("0", "900000000"), "1600000000",
        tpc="0"),
    _pm(5, "MODE_30W_4CORE", "11110000", _cpus(_AGX[:2], "1200000", "1780000"), ("0", "900000000"), "1600000000",
        tpc="0"),
    _pm(6, "MODE_30W_2CORE", "11000000", _cpus(_AGX[:1], "1200000", "2100000"), ("0", "900000000"), "1600000000",
        tpc="0"),
    _pm(7, "MODE_15W_DESKTOP", "11110000", _cpus(_AGX[:2], "1200000", "2188800"), ("318750000", "670000000"),
        "1331200000", tpc="0"),
)))
ORIN_NANO_MODES = PowerModes("nvpmodel_p3767_0003.conf", 0, tuple(zip(_A78[:2], (0, 4))), "\n".join((
    _pm(0, "15W", "111111", _cpus(_A78[:2], "729600", "-1"), ("0", "-1"), "0", fbp="2", tpc="240"),
    _pm(1, "7W", "111100", _cpus(_A78[:1], "729600", "960000"), ("0", "408000000"), "2133000000", fbp="2",
        tpc="252"),
)))
ORIN_NX_MODES = PowerModes("nvpmodel_p3767_0000.conf", 2, tuple(zip(_A78[:2], (0, 4))), "\n".join((
    _pm(0, "MAXN", "11111111", _cpus(_A78[:2], "729600", "-1"), ("0", "-1"), "0", fbp="2", tpc="240",
        comment=_MAXN_NOTE),
    _pm(1, "10W", "11110000", _cpus(_A78[:1], "729600", "1190400"), ("0", "612000000"), "2133000000", fbp="2",
        tpc="252"),
    _pm(2, "15W", "11110000", _cpus(_A78[:1], "729600", "1651200"), ("0", "612000000"), "0", fbp="2", tpc="252"),
    _pm(3, "25W", "11111111", _cpus(_A78[:2], "729600", "1497600"), ("0", "408000000"), "0", fbp="2", tpc="240"),
)))
AGX_ORIN_MODES = PowerModes("nvpmodel_p3701_0000.conf", 2, tuple(zip(_A78, (0, 4, 8))), "\n".join((
    _pm(0, "MAXN", "111111111111", _cpus(_A78, "729600", "-1"), ("0", "-1"), "-1", tpc="0", comment=_MAXN_NOTE),
    _pm(1, "MODE_15W", "111100000000", _cpus(_A78[:1], "729600", "1113600"), ("0", "408000000"), "2133000000",
        tpc="248"),
    _pm(2, "MODE_30W", "111111110000", _cpus(_A78[:2], "729600", "1728000"), ("0", "612000000"), "-1", tpc="240"),
    _pm(3, "MODE_50W", "111111111111", _cpus(_A78, "729600", "1497600"), ("0", "816000000"), "-1", tpc="0"),
)))


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
    nvpmodel: PowerModes | None = None  # the power-mode table; None: the board has no nvpmodel

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
        nvpmodel=NANO_MODES,
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
        nvpmodel=TX2_MODES,
    ),
    BoardProfile(
        "jetson-xavier-nx", "Jetson Xavier NX", "t194", "NVIDIA Jetson Xavier NX Developer Kit",
        ("nvidia,p3449-0000+p3668-0001", "nvidia,p3668-0001", "nvidia,tegra194"), "t186ref", ("4", "5"),
        ((0, 1), (2, 3), (4, 5)), XAVIER_NX_CPU, XAVIER_NX_GPU,
        (204000000, 665600000, 1065600000, 1331200000, 1600000000, 1866000000), 7,
        (("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),), THERMAL_T194,
        (("VDD_IN", 3400.0), ("VDD_CPU_GPU_CV", 540.0), ("VDD_SOC", 1100.0)),
        nvpmodel=XAVIER_NX_MODES,
    ),
    BoardProfile(
        "jetson-agx-xavier", "Jetson AGX Xavier", "t194", "Jetson-AGX",
        ("nvidia,p2972-0000", "nvidia,p2888-0001", "nvidia,tegra194"), "t186ref", ("4", "5"),
        ((0, 1), (2, 3), (4, 5), (6, 7)), AGX_XAVIER_CPU, AGX_XAVIER_GPU,
        (204000000, 665600000, 1065600000, 1331200000, 1600000000, 2133000000), 1,
        (("GPU", "CPU", "SOC"), ("CV", "VDDRQ", "SYS5V")), THERMAL_T194,
        (("GPU", 150.0), ("CPU", 460.0), ("SOC", 1380.0), ("CV", 150.0), ("VDDRQ", 300.0), ("SYS5V", 1700.0)),
        nvpmodel=AGX_XAVIER_MODES,
    ),
    BoardProfile(
        "jetson-orin-nano", "Jetson Orin Nano 8GB", "t234", "NVIDIA Jetson Orin Nano Developer Kit",
        ("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"), "t186ref", ("5", "6"),
        ((0, 1, 2, 3), (4, 5)), ORIN_NANO_CPU, ORIN_NANO_GPU,
        (204000000, 665600000, 2133000000), 1,
        (("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),), THERMAL_T234,
        (("VDD_IN", 4300.0), ("VDD_CPU_GPU_CV", 600.0), ("VDD_SOC", 1300.0)),
        nvpmodel=ORIN_NANO_MODES,
    ),
    BoardProfile(
        "jetson-orin-nx", "Jetson Orin NX 16GB", "t234", "NVIDIA Orin NX Developer Kit",
        ("nvidia,p3509-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234"), "t186ref", ("5", "6"),
        ((0, 1, 2, 3), (4, 5, 6, 7)), ORIN_NX_CPU, ORIN_NX_GPU,
        (204000000, 665600000, 2133000000, 3199000000), 1,
        (("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),), THERMAL_T234,
        (("VDD_IN", 4800.0), ("VDD_CPU_GPU_CV", 700.0), ("VDD_SOC", 1500.0)),
        nvpmodel=ORIN_NX_MODES,
    ),
    BoardProfile(
        "jetson-agx-orin", "Jetson AGX Orin 64GB", "t234", "Jetson AGX Orin Developer Kit",
        ("nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"), "generic", ("6", "5"),
        ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)), AGX_ORIN_CPU, AGX_ORIN_GPU,
        (204000000, 665600000, 2133000000, 3199000000), 1,
        (("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), ("NC", "VDDQ_VDD2_1V8AO", "NC")), THERMAL_T234,
        (("VDD_GPU_SOC", 3200.0), ("VDD_CPU_CV", 800.0), ("VIN_SYS_5V0", 3000.0), ("VDDQ_VDD2_1V8AO", 500.0)),
        nvpmodel=AGX_ORIN_MODES,
    ),
)}


def nvpmodel_conf(profile: BoardProfile, jetpack: str) -> str:
    """The text of ``profile``'s /etc/nvpmodel/<file> on ``jetpack``: PARAM
    definitions pointing at the emulated tree's own paths (the GPU's devfreq
    node moved between releases), then the POWER_MODEL sections and the
    mandatory PM_CONFIG, in the layout of NVIDIA's files."""
    pm = profile.nvpmodel
    if pm is None:
        raise EdgetuneError(f"{profile.name} has no nvpmodel power modes")
    node = profile.gpu_node(jetpack)
    gpu = f"{node.device}/devfreq/{node.devfreq_name}"
    banner = "###########################\n#                         #\n# {:<23} #\n#                         #\n" \
             "###########################\n"
    out = [f"#\n# Power modes of the {profile.title} ({pm.file}), emulated by `edgetune sim create`:",
           "# the POWER_MODEL sections follow NVIDIA's file for this board; accelerator caps",
           "# (DLA, PVA, NVENC, ...) are left out.\n#\n", banner.format("PARAM DEFINITIONS"),
           "< PARAM TYPE=FILE NAME=CPU_ONLINE >"]
    out += [f"CORE_{c} /sys/devices/system/cpu/cpu{c}/online" for c in range(profile.ncpus)]
    for name, arg, leaf in (("FBP_POWER_GATING", "FBP_PG_MASK", "fbp_pg_mask"),
                            ("TPC_POWER_GATING", "TPC_PG_MASK", "tpc_pg_mask")):
        if name in pm.models:
            out += ["", f"< PARAM TYPE=FILE NAME={name} >", f"{arg} /sys/devices/gpu.0/{leaf}"]
    out += ["", "< PARAM TYPE=FILE NAME=GPU_POWER_CONTROL_ENABLE >", "GPU_PWR_CNTL_EN /sys/devices/gpu.0/power/control",
            "", "< PARAM TYPE=FILE NAME=GPU_POWER_CONTROL_DISABLE >",
            "GPU_PWR_CNTL_DIS /sys/devices/gpu.0/power/control"]
    for name, cpu in pm.cpu_clocks:
        pol = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
        out += ["", f"< PARAM TYPE=CLOCK NAME={name} >", f"FREQ_TABLE {pol}/scaling_available_frequencies",
                f"MAX_FREQ {pol}/scaling_max_freq", f"MIN_FREQ {pol}/scaling_min_freq"]
    out += ["", "< PARAM TYPE=CLOCK NAME=GPU >", f"FREQ_TABLE {gpu}/available_frequencies",
            f"MAX_FREQ {gpu}/max_freq", f"MIN_FREQ {gpu}/min_freq",
            "", "< PARAM TYPE=CLOCK NAME=EMC >", "MAX_FREQ /sys/kernel/nvpmodel_emc_cap/emc_iso_cap", "",
            banner.format("POWER_MODEL DEFINITIONS"), pm.models,
            "# mandatory section to configure the default power mode", f"< PM_CONFIG DEFAULT={pm.default} >"]
    return "\n".join(out) + "\n"


def get_profile(name: str) -> BoardProfile:
    key = name[len("sim:"):] if name.startswith("sim:") else name
    try:
        return PROFILES[key]
    except KeyError:
        raise EdgetuneError(f"unknown board profile {name!r}; choose one of {', '.join(PROFILES)}") from None

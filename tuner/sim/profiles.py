"""Board profiles: the facts an emulated tree and the simulator are built from.

Frequency tables follow Dutt 2023 (Table 2.1) and NVIDIA's nvpmodel files for
the MAXN/default mode; rail names, I2C addresses, thermal zone names and
devfreq paths follow the L4T releases named per profile. The JetPack 6.2 Super
and JetPack 7 releases (``Release``) and the Jetson AGX Thor follow NVIDIA's
nvpmodel files and public code that reads those boards (jetson-stats above all),
cited beside each table; what no public source gave is marked inferred. On a
real board edgetune always reads the device's own lists; these tables are for
emulation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
# JetPack 6.2 "Super" (and JetPack 7 on Orin): Orin Nano up to 1.7 GHz (NVIDIA's Super
# announcement; 1728000 is on the 76.8 MHz grid, as are the 25W/15W caps 1344000 and
# 1497600 of nvpmodel_p3767_0003_super.conf); Orin NX keeps its 2.0 GHz.
ORIN_NANO_SUPER_CPU = _steps(115200, 76800, 1728000)
# Jetson AGX Thor T5000: 14 Neoverse-V3AE cores, 2601 MHz at the top (MAXN, 120W and 90W)
# and a 1998 MHz cap in 70W (a public Thor KernelBench power characterisation, mode table
# measured with `jetson_clocks` + /sys/class/devfreq/gpu-gpc-0). No public copy of the
# board's scaling_available_frequencies was found: the steps between are evenly spaced
# (100.5 MHz) so that both published clocks are steps. Read the device's own list.
THOR_CPU = tuple(range(2601000 - 24 * 100500, 2601001, 100500))

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
# Super tables: the published Super maxima (Orin Nano 1020 MHz, Orin NX 1173 MHz) and every
# GPU cap of the *_super.conf files (612, 918, 408, 1173 MHz) are steps; the 102 MHz Orin
# grid fills the rest (inferred: no public copy of the Super available_frequencies found).
ORIN_NANO_SUPER_GPU = ORIN_NX_GPU + (1020000000,)
ORIN_NX_SUPER_GPU = ORIN_NX_GPU + (1020000000, 1122000000, 1173000000)
# Thor GPC clock domain: 1575 MHz in MAXN, 1386 MHz cap in 120W, 1530 MHz in 90W/70W (the
# KernelBench characterisation above; jetson_clocks pins gpu-gpc-0 at 1575000000 in MAXN in
# several public Thor benchmark scripts). Lower steps on the Orin 102 MHz grid (inferred).
THOR_GPU = tuple(306000000 + 102000000 * k for k in range(11)) + (1386000000, 1530000000, 1575000000)

CPU_GOVERNORS_L4T32 = ("interactive", "conservative", "ondemand", "userspace", "powersave", "performance",
                       "schedutil")
CPU_GOVERNORS_L4T35 = ("conservative", "ondemand", "userspace", "powersave", "performance", "schedutil")
GPU_GOVERNORS = ("wmark_active", "wmark_simple", "nvhost_podgov", "userspace", "performance",
                 "simple_ondemand", "powersave")
# JetPack 7 (kernel 6.8): 3D scaling is the devfreq governor itself, performance <->
# nvhost_podgov (jetson-stats PR #867 for Orin on L4T R39.2, jtop/core/thor_power.py for
# gpu-gpc-0); the rest are the kernel's generic devfreq governors (inferred).
GPU_GOVERNORS_JP7 = ("nvhost_podgov", "userspace", "performance", "simple_ondemand", "powersave")

THERMAL_T210 = ("AO-therm", "CPU-therm", "GPU-therm", "PLL-therm", "PMIC-Die", "thermal-fan-est")
THERMAL_T186 = ("BCPU-therm", "MCPU-therm", "GPU-therm", "PLL-therm", "Tboard_tegra", "Tdiode_tegra",
                "PMIC-Die", "thermal-fan-est")
THERMAL_T194 = ("AUX-therm", "CPU-therm", "GPU-therm", "AO-therm", "Tboard_tegra", "Tdiode_tegra",
                "PMIC-Die", "thermal-fan-est")
THERMAL_T234 = ("CPU-therm", "GPU-therm", "CV0-therm", "CV1-therm", "CV2-therm", "SOC0-therm",
                "SOC1-therm", "SOC2-therm", "tj-therm")
# Thor: the zones tegrastats reports (cpu, gpu, soc0-2, tj) under the kernel 6.x names
# (`tj-thermal`, `cpu-thermal`, ... as public Jetson monitoring code reads them).
THERMAL_T264 = ("cpu-thermal", "gpu-thermal", "soc0-thermal", "soc1-thermal", "soc2-thermal", "tj-thermal")

RELEASES = {
    "32": "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: {board}, EABI: aarch64, "
          "DATE: Fri Jun  9 04:25:08 UTC 2023",
    "35": "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
          "DATE: Tue Aug  1 19:57:35 UTC 2023",
    "36": "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, "
          "DATE: Fri Jul 19 23:24:25 UTC 2024",
    # JetPack 6.2 (the Super modes), as a JetPack 6.2 Orin NX / Orin Nano prints it.
    "36.4.3": "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
              "DATE: Wed Jan  8 01:49:37 UTC 2025",
    # JetPack 7 on Thor: L4T R38.4 (the release with the four-mode nvpmodel table below). Its
    # GCID and date were not found in public sources, so the line stops at what was
    # ("# R38 (release), REVISION: 4.0, BOARD: generic"; R38.2.0 was GCID 41844464,
    # jetson-stats issue #711).
    "38": "# R38 (release), REVISION: 4.0, BOARD: generic, EABI: aarch64",
    # JetPack 7.2.1 on Orin (sbsa kernel 6.8, Ubuntu 24.04), as printed on a board.
    "39": "# R39 (release), REVISION: 2.1, GCID: 46758480, BOARD: generic, EABI: aarch64, "
          "DATE: Fri Aug 7 05:54:22 AM UTC 2026",
}
JETPACK_TO_L4T = {"4": "32", "5": "35", "6": "36", "7": "38"}


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
#   Orin Nano 8GB, JetPack 6.2 Super  nvpmodel_p3767_0003_super.conf (concord, the 2024
#          file): 15W, 25W, MAXN_SUPER, DEFAULT=1 (25W). Per-core CPU PARAMs
#          (CPU_A78_0..5); the 25W mode caps the CPU lower (1344000) than 15W (1497600),
#          as written. JetPack 7.2.1 adds a 7W mode at ID 3 (public fixtures list it);
#          its caps were not found, so it is not emulated.
#   Orin NX 16GB, JetPack 6.2 Super   nvpmodel_p3767_0000_super.conf (concord):
#          MAXN_SUPER, 10W, 15W, 25W, 40W, DEFAULT=4 (40W: GPU 1173 MHz).
#   AGX Thor T5000 (p3834-0008)  nvpmodel_p3834_0008.conf (the name L4T links, seen in
#          public rootfs build scripts): MAXN, 120W, 90W, 70W with the caps a public
#          Thor KernelBench power characterisation reports (MAXN GPU 1575 / CPU 2601 MHz;
#          120W GPU 1386 / CPU 2601; 90W GPU 1530 / CPU 2601, 12 cores; 70W GPU 1530 /
#          CPU 1998, 12 cores; GPU power-gating mask 64 in MAXN/120W, 15873 in 90W/70W,
#          so those two need a reboot), DEFAULT=1 (120W, as public nvpmodel parsers of
#          Thor confs expect). R38.2 shipped only MAXN and 120W (anduril/jetpack-nixos
#          PR #460). Not published: which two cores 90W/70W take offline (here the
#          last two), the CPU PARAM names (here CPU_V3AE_<core>), MIN_FREQ and EMC caps
#          (here none), so those lines are inferred.
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


_A78_CORES = tuple(f"CPU_A78_{c}" for c in range(8))  # *_super.conf: one PARAM per core
_V3AE = tuple(f"CPU_V3AE_{c}" for c in range(14))
_SUPER_NOTE = "# MAXN_SUPER is the NONE power model to release all constraints"

ORIN_NANO_SUPER_MODES = PowerModes("nvpmodel_p3767_0003_super.conf", 1, tuple(zip(_A78_CORES[:6], range(6))),
                                   "\n".join((
    _pm(0, "15W", "111111", _cpus(_A78_CORES[:6], "729600", "1497600"), ("0", "612000000"), "2133000000",
        fbp="2", tpc="240"),
    _pm(1, "25W", "111111", _cpus(_A78_CORES[:6], "729600", "1344000"), ("0", "918000000"), "3199000000",
        fbp="2", tpc="240"),
    _pm(2, "MAXN_SUPER", "111111", _cpus(_A78_CORES[:6], "729600", "-1"), ("0", "-1"), "-1", fbp="2", tpc="240"),
)))
ORIN_NX_SUPER_MODES = PowerModes("nvpmodel_p3767_0000_super.conf", 4, tuple(zip(_A78_CORES, range(8))), "\n".join((
    _pm(0, "MAXN_SUPER", "11111111", _cpus(_A78_CORES, "729600", "-1"), ("0", "-1"), "-1", fbp="2", tpc="240",
        comment=_SUPER_NOTE),
    _pm(1, "10W", "11110000", _cpus(_A78_CORES[:4], "729600", "1190400"), ("0", "612000000"), "2133000000",
        fbp="2", tpc="252"),
    _pm(2, "15W", "11110000", _cpus(_A78_CORES[:4], "729600", "1420800"), ("0", "612000000"), "-1", fbp="2",
        tpc="252"),
    _pm(3, "25W", "11111111", _cpus(_A78_CORES, "729600", "1497600"), ("0", "408000000"), "-1", fbp="2", tpc="240"),
    _pm(4, "40W", "11111111", _cpus(_A78_CORES, "729600", "1497600"), ("0", "1173000000"), "-1", fbp="2",
        tpc="240"),
)))
THOR_MODES = PowerModes("nvpmodel_p3834_0008.conf", 1, tuple(zip(_V3AE, range(14))), "\n".join((
    _pm(0, "MAXN", "1" * 14, _cpus(_V3AE, "0", "-1"), ("0", "-1"), "0", comment=_MAXN_NOTE),
    _pm(1, "120W", "1" * 14, _cpus(_V3AE, "0", "2601000"), ("0", "1386000000"), "0"),
    _pm(2, "90W", "1" * 12 + "00", _cpus(_V3AE[:12], "0", "2601000"), ("0", "1530000000"), "0"),
    _pm(3, "70W", "1" * 12 + "00", _cpus(_V3AE[:12], "0", "1998000"), ("0", "1530000000"), "0"),
)))


@dataclass(frozen=True)
class GpuNode:
    """Where the GPU's devfreq node sits for one SoC and JetPack release."""

    device: str  # the GPU platform device, parent of devfreq/
    devfreq_name: str  # name under devfreq/ and /sys/class/devfreq/
    of_name: str | None  # device-tree node name (discovery key); None: the node has no of_node
    dt_node: str  # device-tree directory name under /sys/firmware/devicetree/base
    load: bool = True  # the GPU device has a `load` file (per mille)
    scaling_3d: bool = True  # the GPU device has `enable_3d_scaling` (nvgpu before JetPack 7)
    devfreq_dev: bool = False  # the device has a `devfreq_dev` link to its devfreq node (JetPack 7 nvgpu)


@dataclass(frozen=True)
class InputMonitor:
    """A carrier-board input monitor on the INA238 hwmon driver (Jetson AGX Thor).

    The chip reports bus voltage (``in1_input``, mV), current (``curr1_input``, mA)
    and their product (``power1_input``, µW); it measures everything the board draws,
    module and carrier, so its rail is the board total.
    """

    label: str  # the rail name (hwmon ``label``): VIN
    bus: int
    address: int
    idle_mw: float
    bus_mv: int
    chip: str = "ina238"


@dataclass(frozen=True)
class Release:
    """A release of a board beyond its base ``jetpacks``: its own L4T line and, where
    the release changed them, its own tables (the JetPack 6.2 Super modes, JetPack 7)."""

    name: str  # what --jetpack takes: "6.2", "7"
    layout: str  # the sysfs layout it shares: "6" (kernel 5.15) or "7" (kernel 6.8)
    l4t: str  # key of RELEASES
    note: str
    model: str | None = None
    cpu_khz: tuple[int, ...] | None = None
    gpu_hz: tuple[int, ...] | None = None
    emc_hz: tuple[int, ...] | None = None
    nvpmodel: PowerModes | None = None


@dataclass(frozen=True)
class BoardProfile:
    """One board as emulated trees and the simulator know it: identity (model, compatible, L4T),
    clock tables (CPU kHz, GPU and EMC Hz), rails, thermal zones and power modes."""

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
    rails: tuple[tuple[str, ...], ...]  # one tuple of 3 labels per INA3221 (address 0x40, 0x41, ...); () none
    thermal: tuple[str, ...]
    idle_mw: tuple[tuple[str, float], ...]  # idle power per connected rail, for the tree's first values
    nvpmodel: PowerModes | None = None  # the power-mode table; None: the board has no nvpmodel
    input_monitor: InputMonitor | None = None  # carrier-board input monitor (INA238), besides the INA3221s
    releases: tuple[Release, ...] = ()  # releases beyond `jetpacks`, each with its own tables
    model_of: str | None = None  # simulator: share this profile's calibrated model (same SoC and clocks)
    usable_mem_gib: float | None = None  # simulator: memory for models, where it differs from `model_of`'s

    @property
    def ncpus(self) -> int:
        return sum(len(c) for c in self.cpu_clusters)

    @property
    def has_power_monitor(self) -> bool:
        """Whether the board carries any power monitor (the Jetson Nano 2GB has none)."""
        return bool(self.rails) or self.input_monitor is not None

    @property
    def supported(self) -> tuple[str, ...]:
        """Every release `sim create --jetpack` takes: the base ones, then the others."""
        return self.jetpacks + tuple(r.name for r in self.releases)

    def _release(self, jetpack: str) -> Release | None:
        return next((r for r in self.releases if r.name == jetpack), None)

    def layout(self, jetpack: str) -> str:
        """The sysfs layout (JetPack major) of a release: "6.2" shares JetPack 6's."""
        rel = self._release(jetpack)
        return rel.layout if rel is not None else jetpack

    def for_release(self, jetpack: str) -> BoardProfile:
        """This profile with the tables of ``jetpack`` (the same profile for a base release)."""
        if jetpack not in self.supported:
            raise EdgetuneError(f"{self.name} is emulated for JetPack {', '.join(self.supported)}, not {jetpack}")
        rel = self._release(jetpack)
        if rel is None:
            return self
        changes = {k: v for k, v in (("model", rel.model), ("cpu_khz", rel.cpu_khz), ("gpu_hz", rel.gpu_hz),
                                     ("emc_hz", rel.emc_hz), ("nvpmodel", rel.nvpmodel)) if v is not None}
        return replace(self, **changes)

    def gpu_node(self, jetpack: str) -> GpuNode:
        layout = self.layout(jetpack)
        if self.soc == "t210":
            return GpuNode("/sys/devices/gpu.0", "57000000.gpu", "gpu", "gpu@57000000")
        if self.soc == "t186":
            return GpuNode("/sys/devices/17000000.gp10b", "17000000.gp10b", "gp10b", "gp10b@17000000")
        if self.soc == "t194":
            prefix = "/sys/devices/platform" if layout == "5" else "/sys/devices"
            return GpuNode(f"{prefix}/17000000.gv11b", "17000000.gv11b", "gv11b", "gv11b@17000000")
        if self.soc == "t264":
            # Thor: the GPU is on nvidia.ko (OpenRM) and its GPC clock domain is the devfreq
            # node /sys/class/devfreq/gpu-gpc-0 (device gb10b), beside gpu-nvd-0; neither has
            # device/of_node/name nor the nvgpu `load` file (jetson-stats issue #885, L4T
            # R39.2; jtop/core/thor_power.py; jtop/gui/pgpu.py globs
            # /sys/devices/platform/**/gpu-*/devfreq/*). Parent directory inferred.
            return GpuNode("/sys/devices/platform/gpu-gpc-0", "gpu-gpc-0", None, "gb10b", load=False,
                           scaling_3d=False)
        if layout == "7":
            # JetPack 7 on Orin (L4T R39, kernel 6.8, nvgpu kept): /sys/class/devfreq/17000000.gpu
            # without enable_3d_scaling (jetson-stats PR #867); the *_super.conf files' _KNEXT
            # PARAMs name /sys/devices/platform/17000000.gpu/devfreq_dev/ and
            # /sys/devices/platform/gpu.0/.
            return GpuNode("/sys/devices/platform/17000000.gpu", "17000000.gpu", "gpu", "gpu@17000000",
                           scaling_3d=False, devfreq_dev=True)
        if layout == "6":
            return GpuNode("/sys/devices/platform/bus@0/17000000.gpu", "17000000.gpu", "gpu", "gpu@17000000")
        return GpuNode("/sys/devices/17000000.ga10b", "17000000.ga10b", "ga10b", "ga10b@17000000")

    def cpu_governors(self, jetpack: str) -> tuple[str, ...]:
        return CPU_GOVERNORS_L4T32 if self.layout(jetpack) == "4" else CPU_GOVERNORS_L4T35

    @property
    def gpu_governors(self) -> tuple[str, ...]:
        return self.gpu_governors_for(self.jetpacks[0])

    def gpu_governors_for(self, jetpack: str) -> tuple[str, ...]:
        return GPU_GOVERNORS_JP7 if self.layout(jetpack) == "7" else GPU_GOVERNORS

    def release(self, jetpack: str) -> str:
        rel = self._release(jetpack)
        key = rel.l4t if rel is not None else JETPACK_TO_L4T[jetpack]
        return RELEASES[key].format(board=self.l4t_board)


_SUPER_62 = "JetPack 6.2 (L4T R36.4.3) with the Super power modes (the *_super.conf nvpmodel table)"
_JP7_ORIN = ("JetPack 7.2 (L4T R39.2, kernel 6.8, Ubuntu 24.04) on Orin: GPU devfreq node 17000000.gpu "
             "without enable_3d_scaling")


PROFILES: dict[str, BoardProfile] = {p.name: p for p in (
    BoardProfile(
        "jetson-nano", "Jetson Nano 4GB", "t210", "NVIDIA Jetson Nano Developer Kit",
        ("nvidia,p3450-0000", "nvidia,jetson-nano", "nvidia,tegra210"), "t210ref", ("4",),
        ((0, 1, 2, 3),), NANO_CPU, NANO_GPU, (), 6,
        (("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"),), THERMAL_T210,
        (("POM_5V_IN", 1180.0), ("POM_5V_GPU", 40.0), ("POM_5V_CPU", 240.0)),
        nvpmodel=NANO_MODES,
    ),
    # The Nano 2GB (P3448-0003 module on the P3542 carrier) has no INA3221 power monitor
    # (energymon's JetsonPowerRails.md, from the L4T R32.6.1 device trees); the rest is the
    # Nano's: the same T210, clock tables and nvpmodel file. Compatible strings as its
    # device tree lists them (jetson-io's and GPIO libraries' board tables).
    BoardProfile(
        "jetson-nano-2gb", "Jetson Nano 2GB", "t210", "NVIDIA Jetson Nano 2GB Developer Kit",
        ("nvidia,p3542-0000+p3448-0003", "nvidia,jetson-nano-2gb", "nvidia,jetson-nano", "nvidia,tegra210"),
        "t210ref", ("4",), ((0, 1, 2, 3),), NANO_CPU, NANO_GPU, (), 6, (), THERMAL_T210, (),
        nvpmodel=NANO_MODES, model_of="jetson-nano", usable_mem_gib=0.9,
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
        releases=(
            Release("6.2", "6", "36.4.3", _SUPER_62,
                    model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
                    cpu_khz=ORIN_NANO_SUPER_CPU, gpu_hz=ORIN_NANO_SUPER_GPU,
                    emc_hz=(204000000, 665600000, 2133000000, 3199000000), nvpmodel=ORIN_NANO_SUPER_MODES),
            Release("7", "7", "39", _JP7_ORIN + "; the Super tables",
                    model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
                    cpu_khz=ORIN_NANO_SUPER_CPU, gpu_hz=ORIN_NANO_SUPER_GPU,
                    emc_hz=(204000000, 665600000, 2133000000, 3199000000), nvpmodel=ORIN_NANO_SUPER_MODES),
        ),
    ),
    BoardProfile(
        "jetson-orin-nx", "Jetson Orin NX 16GB", "t234", "NVIDIA Orin NX Developer Kit",
        ("nvidia,p3509-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234"), "t186ref", ("5", "6"),
        ((0, 1, 2, 3), (4, 5, 6, 7)), ORIN_NX_CPU, ORIN_NX_GPU,
        (204000000, 665600000, 2133000000, 3199000000), 1,
        (("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),), THERMAL_T234,
        (("VDD_IN", 4800.0), ("VDD_CPU_GPU_CV", 700.0), ("VDD_SOC", 1500.0)),
        nvpmodel=ORIN_NX_MODES,
        releases=(
            Release("6.2", "6", "36.4.3", _SUPER_62, gpu_hz=ORIN_NX_SUPER_GPU, nvpmodel=ORIN_NX_SUPER_MODES),
            Release("7", "7", "39", _JP7_ORIN + "; the Super tables", gpu_hz=ORIN_NX_SUPER_GPU,
                    nvpmodel=ORIN_NX_SUPER_MODES),
        ),
    ),
    BoardProfile(
        "jetson-agx-orin", "Jetson AGX Orin 64GB", "t234", "Jetson AGX Orin Developer Kit",
        ("nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"), "generic", ("6", "5"),
        ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)), AGX_ORIN_CPU, AGX_ORIN_GPU,
        (204000000, 665600000, 2133000000, 3199000000), 1,
        (("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), ("NC", "VDDQ_VDD2_1V8AO", "NC")), THERMAL_T234,
        (("VDD_GPU_SOC", 3200.0), ("VDD_CPU_CV", 800.0), ("VIN_SYS_5V0", 3000.0), ("VDDQ_VDD2_1V8AO", 500.0)),
        nvpmodel=AGX_ORIN_MODES,
        # JetPack 7 keeps the 64GB module's tables here (R39's change for it, beyond the
        # 32GB module's new MAXN_SUPER, was not found in public sources).
        releases=(Release("7", "7", "39", _JP7_ORIN),),
    ),
    # Jetson AGX Thor Developer Kit (T5000 module p3834-0008 on the p4071-0000 carrier; model
    # and compatible as the board reports them in jetson-stats issue #711, L4T R38.2.0,
    # Ubuntu 24.04, kernel 6.8.12-tegra). Module rails on one INA3221 (VDD_GPU,
    # VDD_CPU_SOC_MSS, VIN_SYS_5V0: the rails tegrastats shows on Thor in a public KernelBench
    # power characterisation; the idle VDD_GPU of ~5.5 W is the one jetson-stats'
    # thor_cuda_mem helpers calibrate against) and the carrier-board input VIN on an INA238
    # (jetson-stats PR #900 "add INA238 VIN support": reported as the total system power;
    # NVIDIA's forum: the reference design's INA238 measures the total input, Jetson plus
    # carrier, against a VIN power limit). EMC: BPMP debugfs clk/emc as on Orin, plus the
    # devfreq node /sys/class/devfreq/bwmgr (jetson-stats PR #825; 4266 MHz under
    # jetson_clocks in public Thor benchmark scripts); the lower EMC rates are inferred.
    # I2C bus/addresses of the monitors and the controller path are not published: the
    # Orin ones are reused (INA3221 1-0040) and the INA238 put at 1-0044 (inferred).
    BoardProfile(
        "jetson-agx-thor", "Jetson AGX Thor (T5000)", "t264", "NVIDIA Jetson AGX Thor Developer Kit",
        ("nvidia,p4071-0000+p3834-0008", "nvidia,p3834-0008", "nvidia,tegra264"), "generic", ("7",),
        tuple((c,) for c in range(14)), THOR_CPU, THOR_GPU,
        (204000000, 665600000, 2133000000, 3199000000, 4266000000), 1,
        (("VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"),), THERMAL_T264,
        (("VDD_GPU", 5500.0), ("VDD_CPU_SOC_MSS", 8000.0), ("VIN_SYS_5V0", 6000.0)),
        nvpmodel=THOR_MODES,
        input_monitor=InputMonitor("VIN", 1, 0x44, 24500.0, 20000),
    ),
)}


def nvpmodel_conf(profile: BoardProfile, jetpack: str) -> str:
    """The text of ``profile``'s /etc/nvpmodel/<file> on ``jetpack``: PARAM
    definitions pointing at the emulated tree's own paths (the GPU's devfreq
    node moved between releases), then the POWER_MODEL sections and the
    mandatory PM_CONFIG, in the layout of NVIDIA's files."""
    profile = profile.for_release(jetpack)
    pm = profile.nvpmodel
    if pm is None:
        raise EdgetuneError(f"{profile.name} has no nvpmodel power modes")
    node = profile.gpu_node(jetpack)
    gpu = f"{node.device}/devfreq/{node.devfreq_name}"
    knext = profile.layout(jetpack) == "7"  # the kernel-6.8 paths NVIDIA's files name *_KNEXT
    gpu0 = "/sys/devices/platform/gpu.0" if knext else "/sys/devices/gpu.0"
    # Thor's GPU is a PCI function of nvidia.ko: its runtime PM is there (jtop/core/thor_power.py)
    control = "/sys/bus/pci/devices/0000:01:00.0/power/control" if profile.soc == "t264" else f"{gpu0}/power/control"
    emc = "/sys/kernel/nvpmodel_clk_cap/emc" if knext else "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap"
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
            out += ["", f"< PARAM TYPE=FILE NAME={name} >", f"{arg} {gpu0}/{leaf}"]
    out += ["", "< PARAM TYPE=FILE NAME=GPU_POWER_CONTROL_ENABLE >", f"GPU_PWR_CNTL_EN {control}",
            "", "< PARAM TYPE=FILE NAME=GPU_POWER_CONTROL_DISABLE >", f"GPU_PWR_CNTL_DIS {control}"]
    for name, cpu in pm.cpu_clocks:
        pol = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
        out += ["", f"< PARAM TYPE=CLOCK NAME={name} >", f"FREQ_TABLE {pol}/scaling_available_frequencies",
                f"MAX_FREQ {pol}/scaling_max_freq", f"MIN_FREQ {pol}/scaling_min_freq"]
    out += ["", "< PARAM TYPE=CLOCK NAME=GPU >", f"FREQ_TABLE {gpu}/available_frequencies",
            f"MAX_FREQ {gpu}/max_freq", f"MIN_FREQ {gpu}/min_freq",
            "", "< PARAM TYPE=CLOCK NAME=EMC >", f"MAX_FREQ {emc}", "",
            banner.format("POWER_MODEL DEFINITIONS"), pm.models,
            "# mandatory section to configure the default power mode", f"< PM_CONFIG DEFAULT={pm.default} >"]
    return "\n".join(out) + "\n"


def get_profile(name: str) -> BoardProfile:
    """The profile named ``name`` (``sim:`` prefix optional); a one-line error listing the known
    ones."""
    key = name[len("sim:"):] if name.startswith("sim:") else name
    try:
        return PROFILES[key]
    except KeyError:
        raise EdgetuneError(f"unknown board profile {name!r}; choose one of {', '.join(PROFILES)}") from None

"""``edgetune sim create``: write an emulated Jetson sysfs tree.

The tree reproduces the real board's paths, file names, units, symlinks and
permissions (read-only attributes are mode 0444, knobs 0644), so that the
real Jetson backend runs on it unchanged. Rail and temperature files are
plain files a live simulator updates; :func:`settle` plays the kernel's part
for the derived files (``cur_freq`` follows the governor and the min/max
window), which plain files cannot do on their own.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tuner.boards.jetson import EMULATION_MARKER
from tuner.errors import EdgetuneError
from tuner.sim.profiles import BoardProfile, get_profile

RO = 0o444
RW = 0o644


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, dev_path: str, content: object, mode: int = RO) -> None:
        path = self.root / dev_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o644)
        text = content if isinstance(content, str) else str(content)
        path.write_text(text if text.endswith("\n") or text.endswith("\x00") else text + "\n")
        os.chmod(path, mode)

    def link(self, dev_path: str, target_dev_path: str) -> None:
        """A relative symlink, as sysfs makes them, so the tree stays relocatable."""
        path = self.root / dev_path.lstrip("/")
        target = self.root / target_dev_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir() and not path.is_symlink():  # a tree from an older edgetune held a real directory here
            shutil.rmtree(path)
        elif path.is_symlink() or path.exists():
            path.unlink()
        os.symlink(os.path.relpath(target, path.parent), path)


def create_tree(profile_name: str, root: str | os.PathLike[str], jetpack: str | None = None) -> Path:
    """Write the emulated tree for ``profile_name`` under ``root`` and return it."""
    base = get_profile(profile_name)
    jp = str(jetpack or base.jetpacks[0]).strip()
    profile = base.for_release(jp)  # the tables of that release; refuses one the board was not emulated for
    layout = profile.layout(jp)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise EdgetuneError(f"{root} exists and is not a directory")
    if root.exists() and any(root.iterdir()) and not (root / EMULATION_MARKER).exists():
        raise EdgetuneError(f"{root} is not empty and is not an emulated tree; choose an empty directory")
    root.mkdir(parents=True, exist_ok=True)
    w = _Writer(root)
    _identity(w, profile, jp)
    _cpus(w, profile, jp)
    _gpu(w, profile, jp)
    if profile.emc_hz:
        _emc(w, profile)
    _rails(w, profile, layout)
    _thermal(w, profile)
    _nvpmodel(w, profile, jp)
    (root / EMULATION_MARKER).write_text(json.dumps(
        {"profile": profile.name, "jetpack": jp, "created_by": "edgetune sim create", "simulated": True},
        indent=1) + "\n")
    settle(root)
    return root


def _identity(w: _Writer, p: BoardProfile, jp: str) -> None:
    base = "/sys/firmware/devicetree/base"
    w.file(f"{base}/model", p.model + "\x00")
    w.file(f"{base}/compatible", "\x00".join(p.compatible) + "\x00")
    w.link("/proc/device-tree", base)
    w.file("/etc/nv_tegra_release", p.release(jp))


def _cpus(w: _Writer, p: BoardProfile, jp: str) -> None:
    cpu = "/sys/devices/system/cpu"
    n = p.ncpus
    w.file(f"{cpu}/possible", f"0-{n - 1}")
    w.file(f"{cpu}/present", f"0-{n - 1}")
    w.file(f"{cpu}/online", f"0-{n - 1}")
    governors = p.cpu_governors(jp)
    for cluster in p.cpu_clusters:
        pol = f"{cpu}/cpufreq/policy{cluster[0]}"
        cpus = " ".join(str(c) for c in cluster)
        lo, hi = p.cpu_khz[0], p.cpu_khz[-1]
        w.file(f"{pol}/related_cpus", cpus)
        w.file(f"{pol}/affected_cpus", cpus)
        w.file(f"{pol}/scaling_available_frequencies", " ".join(str(f) for f in p.cpu_khz) + " ")
        w.file(f"{pol}/scaling_available_governors", " ".join(governors) + " ")
        w.file(f"{pol}/scaling_driver", "tegra194" if p.soc != "t210" else "tegra210")  # t264: inferred
        w.file(f"{pol}/cpuinfo_min_freq", lo)
        w.file(f"{pol}/cpuinfo_max_freq", hi)
        w.file(f"{pol}/cpuinfo_transition_latency", 300000)
        w.file(f"{pol}/scaling_governor", "schedutil", RW)
        w.file(f"{pol}/scaling_min_freq", lo, RW)
        w.file(f"{pol}/scaling_max_freq", hi, RW)
        w.file(f"{pol}/scaling_setspeed", "<unsupported>", RW)
        w.file(f"{pol}/scaling_cur_freq", hi)
        w.file(f"{pol}/stats/time_in_state", "".join(f"{f} 0\n" for f in p.cpu_khz))
        w.file(f"{pol}/stats/total_trans", 0)
        for c in cluster:
            w.link(f"{cpu}/cpu{c}/cpufreq", pol)
    for c in range(1, n):  # cpu0 cannot be taken offline and has no online file
        w.file(f"{cpu}/cpu{c}/online", 1, RW)


def _gpu(w: _Writer, p: BoardProfile, jp: str) -> None:
    node = p.gpu_node(jp)
    dev = node.device
    df = f"{dev}/devfreq/{node.devfreq_name}"
    lo, hi = p.gpu_hz[0], p.gpu_hz[-1]
    w.file(f"{df}/available_frequencies", " ".join(str(f) for f in p.gpu_hz))
    w.file(f"{df}/available_governors", " ".join(p.gpu_governors_for(jp)))
    w.file(f"{df}/governor", "nvhost_podgov", RW)
    w.file(f"{df}/min_freq", lo, RW)
    w.file(f"{df}/max_freq", hi, RW)
    w.file(f"{df}/cur_freq", hi)
    w.file(f"{df}/target_freq", hi)
    w.file(f"{df}/polling_interval", 25 if p.soc == "t210" else 0, RW)
    w.file(f"{df}/trans_stat", "")
    w.link(f"{df}/device", dev)
    w.link(f"/sys/class/devfreq/{node.devfreq_name}", df)
    if node.load:
        w.file(f"{dev}/load", 0)
    if node.scaling_3d:  # nvgpu before JetPack 7: the 3D-scaling switch jtop toggles
        w.file(f"{dev}/enable_3d_scaling", 1, RW)
    if node.devfreq_dev:  # JetPack 7 nvgpu: the path NVIDIA's *_KNEXT nvpmodel PARAMs name
        w.link(f"{dev}/devfreq_dev", df)
    if node.of_name is not None:
        dt = f"/sys/firmware/devicetree/base/{node.dt_node}"
        w.file(f"{dt}/name", node.of_name + "\x00")
        w.link(f"{dev}/of_node", dt)
    # A devfreq device that is not the GPU, as real boards have, so discovery
    # has to pick by node name rather than take the first entry.
    if p.soc in ("t194", "t234"):
        vic = "/sys/devices/15340000.vic"
        vdf = f"{vic}/devfreq/15340000.vic"
        w.file(f"{vdf}/available_frequencies", "115200000 230400000 460800000")
        w.file(f"{vdf}/governor", "nvhost_podgov", RW)
        w.link(f"{vdf}/device", vic)
        w.link("/sys/class/devfreq/15340000.vic", vdf)
        w.file("/sys/firmware/devicetree/base/vic@15340000/name", "vic\x00")
        w.link(f"{vic}/of_node", "/sys/firmware/devicetree/base/vic@15340000")
    if p.soc == "t264":
        # Thor's other devfreq nodes: the GPU's NVD clock domain (gpu-nvd-0) and the
        # memory bandwidth manager (bwmgr, the EMC clock; jetson-stats PR #825), neither
        # with an of_node: the GPC domain is told apart by its name.
        nvd = "/sys/devices/platform/gpu-nvd-0"
        ndf = f"{nvd}/devfreq/gpu-nvd-0"
        w.file(f"{ndf}/available_frequencies", "315000000 630000000 945000000 1260000000")
        w.file(f"{ndf}/available_governors", " ".join(p.gpu_governors_for(jp)))
        w.file(f"{ndf}/governor", "nvhost_podgov", RW)
        for leaf, value in (("min_freq", 315000000), ("max_freq", 1260000000)):
            w.file(f"{ndf}/{leaf}", value, RW)
        w.file(f"{ndf}/cur_freq", 315000000)
        w.link(f"{ndf}/device", nvd)
        w.link("/sys/class/devfreq/gpu-nvd-0", ndf)
        if p.emc_hz:
            bw = "/sys/devices/platform/bwmgr"
            bdf = f"{bw}/devfreq/bwmgr"
            w.file(f"{bdf}/name", "bwmgr")
            w.file(f"{bdf}/available_frequencies", " ".join(str(r) for r in p.emc_hz))
            # the PR quotes the governor as "bpmp-bw…", cut off: the full name is inferred
            w.file(f"{bdf}/available_governors", "bpmp-bw-mgr")
            w.file(f"{bdf}/governor", "bpmp-bw-mgr", RW)
            w.file(f"{bdf}/min_freq", p.emc_hz[0], RW)
            w.file(f"{bdf}/max_freq", p.emc_hz[-1], RW)
            w.file(f"{bdf}/cur_freq", p.emc_hz[-1])
            w.link(f"{bdf}/device", bw)
            w.link("/sys/class/devfreq/bwmgr", bdf)


def _emc(w: _Writer, p: BoardProfile) -> None:
    clk = "/sys/kernel/debug/bpmp/debug/clk/emc"
    w.file(f"{clk}/rate", p.emc_hz[-1], RW)
    w.file(f"{clk}/min_rate", p.emc_hz[0], RW)
    w.file(f"{clk}/max_rate", p.emc_hz[-1], RW)
    w.file(f"{clk}/mrq_rate_locked", 0, RW)
    w.file("/sys/kernel/debug/emc/available_rates", " ".join(str(r) for r in p.emc_hz))


# Where each board's INA3221 monitors live. A monitor is ONE device directory,
# <platform root>/<i2c controller>/<bus>-<addr>/, reached through the links
# /sys/bus/i2c/devices/<bus>-<addr> and /sys/bus/i2c/drivers/<driver>/<bus>-<addr>;
# tools use different views (jetson-stats reads /sys/bus/i2c/devices/*/name, most
# scripts the driver path, hwmon tools /sys/class/hwmon), so the tree carries all of them.
# The platform root moved with the kernel: /sys/devices on JetPack 4 (4.9),
# /sys/devices/platform on JetPack 5 (5.10), /sys/devices/platform/bus@0 on JetPack 6
# (upstream device tree). Real paths, as quoted by public code:
#   Nano      /sys/devices/50000000.host1x/546c0000.i2c/i2c-6/6-0040/iio:device0
#             (NVIDIA-AI-IOT/jetcard, jetcard/utils.py)
#   TX2       /sys/devices/3160000.i2c/i2c-0/0-0040/iio:device0, 0-0042/iio:device2 (TX2 power scripts)
#   Xavier NX /sys/devices/c250000.i2c/i2c-7/7-0040/iio:device0 (JetPack 4 scripts and blog posts)
#   AGX Xavier /sys/devices/c240000.i2c/i2c-1/1-0040 (bus 1 as in /sys/bus/i2c/drivers/ina3221x/1-0040)
#   Orin, JetPack 5  /sys/devices/platform/c240000.i2c/i2c-1/1-0040/hwmon/hwmon3 and
#             1-0041/hwmon/hwmon4 on AGX Orin (frc971/971-Robot-Code, frc971/orin/hardware_monitor.cc)
#   Orin, JetPack 6  /sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/hwmon/hwmon1
# Xavier on JetPack 5 is inferred (same controllers under /sys/devices/platform, as its GPU).
# JetPack 7 (kernel 6.8) keeps the upstream device tree's bus@0 (the *_super.conf _KNEXT
# PARAMs name /sys/devices/platform/bus@0/13e00000.host1x/...), so Orin's monitors are
# placed as on JetPack 6 (inferred); Thor's I2C controller address is not published,
# Orin's is reused (inferred).
_I2C_CONTROLLER = {
    ("t210", 6): "50000000.host1x/546c0000.i2c/i2c-6",
    ("t186", 0): "3160000.i2c/i2c-0",
    ("t194", 1): "c240000.i2c/i2c-1",
    ("t194", 7): "c250000.i2c/i2c-7",
    ("t234", 1): "c240000.i2c/i2c-1",
    ("t264", 1): "c240000.i2c/i2c-1",
}
_PLATFORM_ROOT = {"4": "/sys/devices", "5": "/sys/devices/platform", "6": "/sys/devices/platform/bus@0",
                  "7": "/sys/devices/platform/bus@0"}


def _rails(w: _Writer, p: BoardProfile, layout: str) -> None:
    """Every power monitor of the board, each one device directory with all its views.
    A board without monitors (Jetson Nano 2GB) gets none: no i2c client, driver or hwmon."""
    idle = dict(p.idle_mw)
    driver = "ina3221x" if layout == "4" else "ina3221"  # also the i2c client's `name`
    if p.input_monitor is not None:
        _input_monitor(w, p, layout, len(p.rails) + 1)
    if not p.rails:
        return
    controller = f"{_PLATFORM_ROOT[layout]}/{_I2C_CONTROLLER[(p.soc, p.ina_bus)]}"
    for k, labels in enumerate(p.rails):
        addr = f"{p.ina_bus}-{0x40 + k:04x}"
        dev = f"{controller}/{addr}"
        w.file(f"{dev}/name", driver)
        w.link(f"/sys/bus/i2c/devices/{addr}", dev)
        w.link(f"/sys/bus/i2c/drivers/{driver}/{addr}", dev)
        w.link(f"{dev}/driver", f"/sys/bus/i2c/drivers/{driver}")
        if layout == "4":
            _iio_monitor(w, dev, k, labels, idle)
        else:
            _hwmon_monitor(w, dev, k + 1, labels, idle)


def _input_monitor(w: _Writer, p: BoardProfile, layout: str, n: int) -> None:
    """The carrier-board input monitor of a Jetson AGX Thor: an INA238 on the mainline
    hwmon driver (Documentation/hwmon/ina238.rst): ``in1_input`` bus voltage (mV),
    ``curr1_input`` (mA), ``power1_input`` (µW, the chip's own product of the two),
    ``in0_input`` shunt voltage (mV), ``temp1_input`` die temperature (m°C). Its hwmon
    ``label`` (the device-tree label the hwmon core exposes) names the rail: VIN."""
    mon = p.input_monitor
    assert mon is not None
    addr = f"{mon.bus}-{mon.address:04x}"
    controller = f"{_PLATFORM_ROOT[layout]}/{_I2C_CONTROLLER.get((p.soc, mon.bus), f'i2c-{mon.bus}')}"
    dev = f"{controller}/{addr}"
    w.file(f"{dev}/name", mon.chip)
    w.link(f"/sys/bus/i2c/devices/{addr}", dev)
    w.link(f"/sys/bus/i2c/drivers/{mon.chip}/{addr}", dev)
    w.link(f"{dev}/driver", f"/sys/bus/i2c/drivers/{mon.chip}")
    hw = f"{dev}/hwmon/hwmon{n}"
    ma = round(mon.idle_mw * 1000 / mon.bus_mv)
    w.file(f"{hw}/name", mon.chip)
    w.file(f"{hw}/label", mon.label)
    w.file(f"{hw}/in0_input", 2)  # shunt voltage
    w.file(f"{hw}/in1_input", mon.bus_mv)
    w.file(f"{hw}/curr1_input", ma)
    w.file(f"{hw}/power1_input", mon.bus_mv * ma)  # mV x mA = µW
    w.file(f"{hw}/temp1_input", 38000)
    for leaf, value in (("in0_max", 163), ("in1_max", 26000), ("power1_max", 168000000), ("temp1_max", 125000)):
        w.file(f"{hw}/{leaf}", value, RW)
    for leaf in ("in0_max_alarm", "in1_max_alarm", "power1_max_alarm", "temp1_max_alarm"):
        w.file(f"{hw}/{leaf}", 0)
    w.link(f"{hw}/device", dev)
    w.link(f"/sys/class/hwmon/hwmon{n}", hw)


def _iio_monitor(w: _Writer, dev: str, n: int, labels: tuple[str, ...], idle: dict[str, float]) -> None:
    """JetPack 4's downstream iio driver: power in mW per channel, rails named by rail_name_<i>."""
    iio = f"{dev}/iio:device{n}"
    w.file(f"{iio}/name", "ina3221x")
    for i, label in enumerate(labels):
        mw = idle.get(label, 0.0)
        mv = 5000 if label in ("POM_5V_IN", "VDD_IN") else 4960
        w.file(f"{iio}/rail_name_{i}", label)
        w.file(f"{iio}/in_power{i}_input", round(mw))
        w.file(f"{iio}/in_voltage{i}_input", mv)
        w.file(f"{iio}/in_current{i}_input", round(mw * 1000 / mv))
        w.file(f"{iio}/crit_current_limit_{i}", 5000 if i == 0 else 3000, RW)
        w.file(f"{iio}/warn_current_limit_{i}", 4000 if i == 0 else 2500, RW)
    w.link(f"/sys/bus/iio/devices/iio:device{n}", iio)


def _hwmon_monitor(w: _Writer, dev: str, n: int, labels: tuple[str, ...], idle: dict[str, float]) -> None:
    """JetPack 5+'s mainline hwmon driver (Documentation/hwmon/ina3221.rst): mV and mA per
    channel; the alarm files are there because jetson-stats reads them."""
    hw = f"{dev}/hwmon/hwmon{n}"
    w.file(f"{hw}/name", "ina3221")
    for i, label in enumerate(labels, start=1):
        mw = idle.get(label, 0.0)
        mv = 0 if label == "NC" else (5000 if label in ("VDD_IN", "VIN_SYS_5V0") else 4960)
        w.file(f"{hw}/in{i}_label", label)
        w.file(f"{hw}/in{i}_input", mv)
        w.file(f"{hw}/in{i}_enable", 1, RW)
        w.file(f"{hw}/in{i + 3}_input", 0)  # shunt voltage
        w.file(f"{hw}/curr{i}_input", round(mw * 1000 / mv) if mv else 0)
        w.file(f"{hw}/curr{i}_max", 5920 if i == 1 else 3000, RW)
        w.file(f"{hw}/curr{i}_crit", 7000 if i == 1 else 4000, RW)
        w.file(f"{hw}/curr{i}_max_alarm", 0)
        w.file(f"{hw}/curr{i}_crit_alarm", 0)
    w.file(f"{hw}/in7_label", "sum of shunt voltages")
    w.file(f"{hw}/in7_input", 0)
    w.file(f"{hw}/curr4_input", 0)
    w.file(f"{hw}/curr4_crit", 7800, RW)
    w.file(f"{hw}/curr4_crit_alarm", 0)
    w.link(f"{hw}/device", dev)
    w.link(f"/sys/class/hwmon/hwmon{n}", hw)


def _nvpmodel(w: _Writer, p: BoardProfile, jp: str) -> None:
    """The board's power-mode table and the mode it is in, as the nvpmodel tool keeps them.

    /etc/nvpmodel.conf is a relative link to the board's file under /etc/nvpmodel/
    (L4T's first boot links it, absolute, to the file for the module), and
    /var/lib/nvpmodel/status records the mode nvpmodel last set, ``pmode:NNNN``;
    a fresh board is in the conf's PM_CONFIG DEFAULT. Only the record is written:
    the clock files keep their full windows, as on a board where someone widened
    them after nvpmodel.service ran, so a mode switch here (rewrite the status
    file) changes what edgetune allows without rewriting the tree.
    """
    from tuner.sim.profiles import nvpmodel_conf

    if p.nvpmodel is None:
        return
    conf = f"/etc/nvpmodel/{p.nvpmodel.file}"
    w.file(conf, nvpmodel_conf(p, jp), RW)
    w.link("/etc/nvpmodel.conf", conf)
    w.file("/var/lib/nvpmodel/status", f"pmode:{p.nvpmodel.default:04d}", RW)


def _thermal(w: _Writer, p: BoardProfile) -> None:
    for i, name in enumerate(p.thermal):
        zone = f"/sys/devices/virtual/thermal/thermal_zone{i}"
        w.file(f"{zone}/type", name)
        w.file(f"{zone}/temp", 100000 if name == "PMIC-Die" else 36500 + 500 * (i % 4))
        w.file(f"{zone}/mode", "enabled", RW)
        w.link(f"/sys/class/thermal/thermal_zone{i}", zone)


# --- the kernel's part -----------------------------------------------------------

def replace_file(path: Path, value: object) -> None:
    """Replace a read-only derived file atomically (a reader never sees it empty)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{value}\n")
    os.chmod(tmp, RO)
    os.replace(tmp, path)


def kernel_freq(governor: str, lo: int, hi: int, setspeed: int | None, current: int) -> int:
    """The frequency the kernel runs at for a governor inside [lo, hi]; a
    load-driven governor keeps ``current`` unless the window excludes it."""
    if governor == "performance":
        return hi
    if governor == "powersave":
        return lo
    if governor == "userspace" and setspeed is not None:
        return min(max(setspeed, lo), hi)
    return min(max(current, lo), hi)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def settle(root: str | os.PathLike[str]) -> None:
    """Recompute the derived frequency files of an emulated tree, as the kernel would.

    ``scaling_cur_freq`` / ``cur_freq`` follow the governor inside the
    [min, max] window; a load-driven governor keeps its frequency unless the
    window moves past it (the live simulator drives those by load).
    """
    root = Path(root)
    for pol in sorted((root / "sys/devices/system/cpu/cpufreq").glob("policy*")):
        gov = (pol / "scaling_governor").read_text().strip()
        lo, hi = _read_int(pol / "scaling_min_freq"), _read_int(pol / "scaling_max_freq")
        cur = _read_int(pol / "scaling_cur_freq")
        if lo is None or hi is None or cur is None:
            continue
        replace_file(pol / "scaling_cur_freq", kernel_freq(gov, lo, hi, _read_int(pol / "scaling_setspeed"), cur))
    for link in sorted((root / "sys/class/devfreq").glob("*")):
        df = link.resolve()
        if not (df / "cur_freq").exists():
            continue
        gov = (df / "governor").read_text().strip()
        lo, hi, cur = _read_int(df / "min_freq"), _read_int(df / "max_freq"), _read_int(df / "cur_freq")
        if lo is None or hi is None or cur is None:
            continue
        target = kernel_freq(gov, lo, hi, None, cur)
        replace_file(df / "cur_freq", target)
        if (df / "target_freq").exists():
            replace_file(df / "target_freq", target)

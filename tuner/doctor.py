"""``edgetune doctor``: check a board before anything is tuned.

A new Jetson owner's first failures are rarely in the search: the daemon is
not root, debugfs is not mounted, the kernel names the GPU node differently,
the board has no power monitor, or jtop and ``jetson_clocks`` move the clocks
under edgetune. Each check here reads (never writes) one of those facts and,
when it fails, says the command that fixes it. A check is *needed* when
tuning cannot work without it (the exit code says so); the others are advice.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional

from tuner.boards.cpufreq import CpuFreq
from tuner.boards.devfreq import GpuControl, find_gpu
from tuner.boards.emc import EMC_CLK, EmcControl
from tuner.boards.identity import read_identity
from tuner.boards.ina3221 import discover_rails
from tuner.boards.jetson import EMULATION_MARKER
from tuner.boards.nvpmodel import CONF as NVPMODEL_CONF
from tuner.boards.nvpmodel import SOURCE_STATUS, read_conf, read_power_mode
from tuner.boards.nvpmodel import STATUS as NVPMODEL_STATUS
from tuner.errors import EdgetuneError
from tuner.sysfs import Sysfs

#: Units that change clocks or power modes on their own, and what each does.
CLOCK_SERVICES = {
    "jtop.service": "jetson-stats' jtop service can set jetson_clocks, nvpmodel modes and fan profiles",
    "jetson_clocks.service": "jetson_clocks pins every clock at the power mode's maximum",
    "nvpmodel.service": "sets the power mode at boot (once: harmless while edgetune runs)",
}
#: Process names (``/proc/<pid>/comm``) of the same tools while they run.
CLOCK_PROCESSES = ("jtop", "jetson_clocks", "nvpmodel")
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")


@dataclass(frozen=True)
class Check:
    """One finding. ``fix`` is empty when ``ok``; ``needed`` checks decide the exit code."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = True


def run_checks(root: Path, socket: Optional[Path] = None) -> List[Check]:
    """Every check of the board under ``root`` ('/' on a board, or an emulated tree)."""
    fs = Sysfs(root)
    steps: List[Callable[[Sysfs], Check]] = [_board, _privileges, _cpufreq, _gpu, _emc, _rails, _power_mode,
                                             _clock_services, _unit]
    checks = [step(fs) for step in steps]
    checks.append(_socket(socket))
    return checks


def report(checks: List[Check]) -> dict[str, Any]:
    """The ``--json`` document: ``ok`` is false when a needed check failed."""
    return {"ok": all(c.ok for c in checks if c.needed), "checks": [asdict(c) for c in checks]}


def format_report(checks: List[Check]) -> str:
    """One line per check (``ok``, ``FAIL`` for a needed check, ``warn`` for advice), the fix indented below."""
    lines = []
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.needed else "warn")
        lines.append(f"{mark} {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"     fix: {c.fix}")
    failed = [c.name for c in checks if c.needed and not c.ok]
    lines.append("ready to tune" if not failed else f"not ready: {', '.join(failed)} failed")
    return "\n".join(lines) + "\n"


def _emulated(fs: Sysfs) -> bool:
    return (fs.root / EMULATION_MARKER).exists()


def _board(fs: Sysfs) -> Check:
    ident = read_identity(fs)
    if not ident.is_jetson:
        return Check("board", False, f"no Jetson under {fs.root}: no /etc/nv_tegra_release, no nvidia,tegra "
                     "device tree", "run on the Jetson itself, or on an emulated tree: "
                     "`edgetune sim create --board jetson-nano --root DIR`, then --root DIR")
    where = " (emulated tree: simulated)" if _emulated(fs) else ""
    return Check("board", True, f"{ident.model or 'Jetson'}, L4T {ident.l4t or '?'}, "
                 f"JetPack {ident.jetpack or '?'}{where}")


def _knob_files(fs: Sysfs) -> List[str]:
    files = CpuFreq(fs).knob_files()
    gpu = find_gpu(fs)
    if gpu is not None:
        files += GpuControl(fs, gpu).knob_files()
    if EmcControl.present(fs):
        files += EmcControl(fs).knob_files()
    return files


def _privileges(fs: Sysfs) -> Check:
    files = _knob_files(fs)
    if not files:
        return Check("privileges", False, "no knob files found (no cpufreq, GPU devfreq or EMC)",
                     "see the cpufreq and gpu checks")
    emulated = _emulated(fs)
    # On a real board the mode bits say 0644 to everyone; only root (or a granted user) may write.
    readonly = [f for f in files if not fs.writable(f) or (not emulated and not os.access(fs.path(f), os.W_OK))]
    who = "emulated tree" if emulated else ("root" if os.geteuid() == 0 else f"uid {os.geteuid()}")
    if readonly:
        return Check("privileges", False, f"{who}: {len(readonly)} of {len(files)} knob files not writable, "
                     f"e.g. {readonly[0]}", "run edgetune as root (sudo), as the systemd unit does")
    return Check("privileges", True, f"{who}: all {len(files)} knob files writable")


def _cpufreq(fs: Sysfs) -> Check:
    cpu = CpuFreq(fs)
    if not cpu.policies:
        return Check("cpufreq", False, "no cpufreq policies under /sys/devices/system/cpu/cpufreq",
                     "the kernel has no CPU frequency driver loaded (check `ls /sys/devices/system/cpu/cpufreq`); "
                     "without it only the GPU and batch size can be tuned")
    freqs = cpu.frequencies()
    if not freqs:
        return Check("cpufreq", False, f"{len(cpu.policies)} policies but no scaling_available_frequencies",
                     "this cpufreq driver lists no frequencies; edgetune pins only listed steps")
    pinnable = "userspace" in cpu.governors()
    return Check("cpufreq", True, f"{len(cpu.policies)} policies, {len(freqs)} steps "
                 f"{freqs[0] // 1000}-{freqs[-1] // 1000} MHz, governors {' '.join(cpu.governors())}"
                 + ("" if pinnable else " (no userspace governor: pinned with min = max)"))


def _gpu(fs: Sysfs) -> Check:
    gpu = find_gpu(fs)
    if gpu is None:
        return Check("gpu", False, "no GPU devfreq node (looked in /sys/class/devfreq for gp10b, gv11b, ga10b, "
                     "gpu, gb10b, gpu-gpc-0)",
                     "check that the nvgpu driver is loaded (`ls /sys/class/devfreq`); on an emulated tree, "
                     "recreate it with `edgetune sim create`")
    hz = gpu.frequencies_hz
    return Check("gpu", True, f"{gpu.path}: {len(hz)} steps {hz[0] / 1e6:g}-{hz[-1] / 1e6:g} MHz, "
                 f"governors {' '.join(gpu.governors) or '?'}")


def _emc(fs: Sysfs) -> Check:
    if EmcControl.present(fs):
        rates = EmcControl(fs).frequencies_hz
        span = f"{len(rates)} rates" if rates else "no rate list"
        return Check("emc", True, f"{EMC_CLK}: {span}", needed=False)
    debug = fs.path("/sys/kernel/debug")
    try:
        mounted = debug.is_dir() and any(debug.iterdir())
    except PermissionError:  # debugfs is root's (mode 0700): it may well be mounted
        return Check("emc", False, "/sys/kernel/debug is not readable: the memory clock cannot be checked",
                     "run edgetune doctor as root (sudo)", needed=False)
    if not mounted:
        return Check("emc", False, "the memory clock is not reachable: debugfs is not mounted",
                     "sudo mount -t debugfs none /sys/kernel/debug (only needed to tune emc_freq_hz)", needed=False)
    return Check("emc", False, f"debugfs is mounted but has no {EMC_CLK}",
                 "this kernel does not expose the EMC clock; emc_freq_hz cannot be tuned", needed=False)


def _rails(fs: Sysfs) -> Check:
    rails = discover_rails(fs)
    if not rails:
        return Check("rails", False, "no power monitor found (no INA3221 or INA238 in the i2c devices, "
                     "drivers or hwmon): this board cannot measure energy",
                     "boards without a monitor (e.g. the Jetson Nano 2GB) cannot tune energy, edp, ed2p, power "
                     "or weighted: tune with --objective time (an external power meter is not supported yet); "
                     "on a board that should have one, check `cat /sys/bus/i2c/devices/*/name`")
    listed = ", ".join(f"{r.name} ({r.role})" for r in rails)
    total = any(r.role == "total" for r in rails)
    note = "" if total else "; no input rail: the total is the sum of the rails, without carrier-board power"
    return Check("rails", True, f"{len(rails)} rails: {listed}{note}")


def _power_mode(fs: Sysfs) -> Check:
    conf = read_conf(fs)
    if conf is None:
        return Check("power_mode", True, f"no {NVPMODEL_CONF}: no power modes, the clocks' own lists apply",
                     needed=False)
    state = read_power_mode(fs)
    if state is None or state.mode is None:
        return Check("power_mode", False, f"{NVPMODEL_CONF} defines no power mode edgetune can read",
                     "check the file (`sudo nvpmodel -q --verbose`)", needed=False)
    caps = state.caps
    limits = [f"{label} ≤ {value / scale:g} MHz" for label, value, scale in
              (("CPU", caps.cpu_max_khz, 1e3), ("GPU", caps.gpu_max_hz, 1e6), ("EMC", caps.emc_max_hz, 1e6))
              if value is not None]
    if caps.cpu_online is not None:
        limits.append(f"{len(caps.cpu_online)} cores online")
    where = NVPMODEL_STATUS if state.source == SOURCE_STATUS else f"the default of {state.conf_path}"
    detail = f"mode {state.mode.label} (from {where}): {', '.join(limits) or 'no caps'}"
    problems = list(conf.problems) + ([state.note] if state.note else [])
    if problems:
        return Check("power_mode", False, f"{detail}; {problems[0]}",
                     "set a mode the file defines: sudo nvpmodel -m <id> (ids: "
                     + ", ".join(str(m.id) for m in conf.modes) + ")", needed=False)
    if any(_higher(m.caps, caps) for m in conf.modes):
        detail += "; another mode allows higher clocks (sudo nvpmodel -m <id> widens the search space)"
    return Check("power_mode", True, detail, needed=False)


def _higher(a: Any, b: Any) -> bool:
    """True when caps ``a`` let some clock run higher than caps ``b`` do (None: no cap)."""
    inf = float("inf")
    return any((x if x is not None else inf) > (y if y is not None else inf)
               for x, y in ((a.cpu_max_khz, b.cpu_max_khz), (a.gpu_max_hz, b.gpu_max_hz),
                            (a.emc_max_hz, b.emc_max_hz)))


def _running(fs: Sysfs) -> List[str]:
    names = []
    for comm in fs.glob("/proc/[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the process ended while we looked
            continue
        if name in CLOCK_PROCESSES:
            names.append(name)
    return sorted(set(names))


def _enabled_units(fs: Sysfs) -> List[str]:
    found = set()
    for unit in CLOCK_SERVICES:
        if fs.glob(f"/etc/systemd/system/*.wants/{unit}"):
            found.add(unit)
    return sorted(found)


def _clock_services(fs: Sysfs) -> Check:
    enabled = _enabled_units(fs)
    running = _running(fs)
    movers = [u for u in enabled if u != "nvpmodel.service"] + [p for p in running if p != "nvpmodel"]
    seen = ", ".join(enabled + [f"{p} (running)" for p in running]) or "none"
    if movers:
        return Check("clock_services", False, f"enabled or running: {seen}; "
                     + "; ".join(CLOCK_SERVICES.get(u, u) for u in enabled if u != "nvpmodel.service"),
                     "stop them while tuning (`sudo systemctl disable --now jtop`), or keep them: the daemon "
                     "notices outside clock changes and yields (watch.on_external_change)", needed=False)
    return Check("clock_services", True, f"clock-changing services enabled or running: {seen}", needed=False)


def _unit(fs: Sysfs) -> Check:
    for d in UNIT_DIRS:
        if fs.exists(f"{d}/edgetune.service"):
            enabled = bool(fs.glob("/etc/systemd/system/*.wants/edgetune.service"))
            state = "enabled" if enabled else "installed, not enabled"
            return Check("systemd_unit", enabled, f"{d}/edgetune.service {state}",
                         "" if enabled else "sudo systemctl enable --now edgetune", needed=False)
    return Check("systemd_unit", False, "edgetune.service is not installed",
                 "sudo cp systemd/edgetune.service /etc/systemd/system/ && sudo systemctl daemon-reload && "
                 "sudo systemctl enable --now edgetune (see README, 'Daemon')", needed=False)


def _socket(socket: Optional[Path]) -> Check:
    if socket is None:
        return Check("daemon_socket", True, "not checked", needed=False)
    try:
        present = socket.exists()
    except PermissionError:  # /run/edgetune is root:edgetune 0750
        return Check("daemon_socket", False, f"{socket.parent} is not readable by this user",
                     "join the socket's group (sudo usermod -aG edgetune $USER) or use sudo", needed=False)
    if not present:
        return Check("daemon_socket", False, f"{socket} does not exist: the daemon is not running",
                     "sudo systemctl start edgetune (or `edgetune daemon --config FILE`)", needed=False)
    from tuner.daemon.protocol import request

    try:
        doc = request(socket, {"cmd": "status"}, timeout=2.0)["status"]
    except EdgetuneError as exc:
        return Check("daemon_socket", False, f"{socket} does not answer: {exc}",
                     "restart the daemon: sudo systemctl restart edgetune", needed=False)
    states = sorted({str(w.get("state")) for w in doc.get("workloads", []) if isinstance(w, dict)})
    return Check("daemon_socket", True, f"{socket} answers; state {', '.join(states) or '?'}", needed=False)

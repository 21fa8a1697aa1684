"""Jetson power modes (nvpmodel): the mode table, the current mode and its clock caps.

NVIDIA's ``nvpmodel`` tool reads ``/etc/nvpmodel.conf`` (a link to the board's
file under ``/etc/nvpmodel/``), whose ``< POWER_MODEL ID=N NAME=... >``
sections cap the CPU, GPU and EMC clocks and choose the online cores, and
``< PM_CONFIG DEFAULT=N >`` names the mode a fresh board boots in. The mode
last set with ``nvpmodel -m N`` is recorded in ``/var/lib/nvpmodel/status`` as
``pmode:NNNN`` (followed by `` fmode:<fan mode>`` on releases where nvpmodel
also drives the fan), and ``nvpmodel.service`` re-applies it at boot.

edgetune reads both files (never runs ``nvpmodel``: it needs root, and an
emulated tree has no binary) so that its search space holds only the clocks
the current mode allows. A board without the conf (generic Linux, a trimmed
tree) simply has no power-mode information; nothing here raises for that.

Everything goes through :class:`tuner.sysfs.Sysfs`, so the same code reads
``/`` and an emulated tree. Nothing here writes.

Units, from the conf files NVIDIA ships (and its Jetson Linux developer guide:
"CPU frequencies in kHz, GPU and EMC in Hz"): CPU ``MAX_FREQ`` 918000 (Nano
5W), 1420800 (Xavier NX), 1651200 (Orin NX) are kHz; ``GPU MAX_FREQ
640000000`` and ``EMC MAX_FREQ 1600000000`` are Hz. Hand-edited confs and
tools sometimes mix them up, so a value is also judged by its magnitude: a CPU
value of 10^7 or more can only be Hz (10^7 kHz would be 10 GHz), a GPU/EMC
value below 10^7 can only be kHz (under 10 MHz in Hz).

Special values: ``-1`` is INT_MAX ("no cap" for ``MAX_FREQ``; for
``MIN_FREQ`` it pins the clock at the top of the window), ``0`` is "no cap"
for ``MAX_FREQ`` (``EMC MAX_FREQ 0`` in every MAXN mode) and "no floor" for
``MIN_FREQ``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from tuner.sysfs import EMULATION_MARKER, Sysfs

CONF = "/etc/nvpmodel.conf"
STATUS = "/var/lib/nvpmodel/status"

#: Where the current mode was read: the nvpmodel tool's status file, or the
#: conf's ``PM_CONFIG DEFAULT`` (no status file: nvpmodel never switched the
#: mode, or a release/tree without it). Both are what nvpmodel itself uses at boot.
SOURCE_STATUS = "status"
SOURCE_DEFAULT = "default"

INT_MAX = 2147483647  # nvpmodel's reading of -1
_UNIT_EDGE = 10_000_000

_HEADER = re.compile(r"^<\s*([A-Za-z_]+)\s*(.*?)\s*>$")
_ATTR = re.compile(r"([A-Za-z_]+)\s*=\s*([^\s>]+)")
_PMODE = re.compile(r"pmode\s*:\s*(-?\d+)")
_FMODE = re.compile(r"fmode\s*:\s*(\S+)")
_OLD_CPU = re.compile(r"/cpu(\d+)/cpufreq/scaling_(max|min)_freq$")
_OLD_ONLINE = re.compile(r"/cpu(\d+)/online$")

# Knob names (tuner.config) whose domains a mode narrows, and the clock that caps each.
_KNOB_CLOCK = {"cpu_freq_khz": "cpu", "gpu_freq_hz": "gpu", "emc_freq_hz": "emc"}
_UNIT = {"cpu": "kHz", "gpu": "Hz", "emc": "Hz"}


@dataclass(frozen=True)
class ModeCaps:
    """The clock window and online cores one mode sets, in edgetune's units.

    ``None`` means the mode leaves that limit alone. CPU values are the
    tightest over the mode's CPU clusters (edgetune sets every cluster alike).
    """

    cpu_max_khz: Optional[int] = None
    cpu_min_khz: Optional[int] = None
    gpu_max_hz: Optional[int] = None
    gpu_min_hz: Optional[int] = None
    emc_max_hz: Optional[int] = None
    cpu_online: Optional[Tuple[int, ...]] = None  # cores the mode brings online; None: not set

    def window(self, clock: str) -> Tuple[Optional[int], Optional[int]]:
        """(floor, cap) of ``cpu``, ``gpu`` or ``emc``."""
        if clock == "cpu":
            return self.cpu_min_khz, self.cpu_max_khz
        if clock == "gpu":
            return self.gpu_min_hz, self.gpu_max_hz
        return None, self.emc_max_hz

    def to_dict(self) -> Dict[str, Any]:
        return {"cpu_max_khz": self.cpu_max_khz, "cpu_min_khz": self.cpu_min_khz,
                "gpu_max_hz": self.gpu_max_hz, "gpu_min_hz": self.gpu_min_hz,
                "emc_max_hz": self.emc_max_hz,
                "cpu_online": None if self.cpu_online is None else len(self.cpu_online),
                "cpu_online_cores": None if self.cpu_online is None else list(self.cpu_online)}


@dataclass(frozen=True)
class PowerMode:
    """One ``< POWER_MODEL ID=N NAME=... >`` section, its settings as written."""

    id: int
    name: str
    settings: Tuple[Tuple[str, str, str], ...]  # (PARAM, ARG, VALUE) in file order
    caps: ModeCaps = field(default_factory=ModeCaps)

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})"


@dataclass(frozen=True)
class NvpmodelConf:
    """A parsed nvpmodel.conf. ``problems`` lists lines that could not be
    understood (reported by ``doctor``, never fatal: nvpmodel itself skips
    what it does not know)."""

    modes: Tuple[PowerMode, ...]
    default_id: Optional[int]
    params: Dict[str, Dict[str, str]]  # PARAM NAME -> {ARG: path}
    problems: Tuple[str, ...] = ()

    def mode(self, mode_id: Optional[int]) -> Optional[PowerMode]:
        for m in self.modes:
            if m.id == mode_id:
                return m
        return None


@dataclass(frozen=True)
class PowerModeState:
    """The power mode a board is in now, with where that was read and the mode table."""

    conf: NvpmodelConf
    mode: Optional[PowerMode]  # None: neither a status nor a default names a known mode
    source: Optional[str]  # SOURCE_STATUS or SOURCE_DEFAULT
    conf_path: str  # the device path of the conf actually read (the link's target)
    status_id: Optional[int] = None  # what the status file said, even when unusable
    fan_mode: Optional[str] = None
    note: Optional[str] = None  # why the status was not used, if it was not

    @property
    def caps(self) -> Optional[ModeCaps]:
        return self.mode.caps if self.mode is not None else None

    def allowed(self, knob: str, values: Sequence[int]) -> Tuple[int, ...]:
        """The part of a device domain this mode allows (unchanged for other knobs).

        Only the caps narrow it. A mode's ``MIN_FREQ`` is where nvpmodel puts the
        policy's minimum when the mode is set, not a limit: the kernel lets
        ``scaling_min_freq`` go lower (the reference study swept the Xavier NX
        CPU down to 115.2 MHz), and the energy minimum often lies there. A
        ``MAX_FREQ`` is enforced: writes above it fail or are clamped.
        """
        clock = _KNOB_CLOCK.get(knob)
        if clock is None or self.caps is None:
            return tuple(values)
        _floor, cap = self.caps.window(clock)
        return allowed_values(values, None, cap)

    def refusal(self, knob: str, value: int, allowed: Sequence[int] = ()) -> str:
        """One line saying why ``value`` is outside the mode (for an error)."""
        clock = _KNOB_CLOCK[knob]
        _floor, cap = self.caps.window(clock) if self.caps else (None, None)
        unit = _UNIT[clock]
        where = f"power mode {self.mode.label if self.mode else '?'}"
        if cap is not None and value > cap:
            what = f"above the {cap} {unit} cap of {where}"
        else:  # not one of the steps the cap resolves to (MIN_FREQ is no limit: see allowed())
            what = f"outside the clock window of {where}"
        span = f"; it allows {min(allowed)}-{max(allowed)} {unit}" if allowed else ""
        return f"{knob}={value} is {what}{span} (change the mode with `sudo nvpmodel -m <id>`)"

    def describe(self) -> Dict[str, Any]:
        """The ``power_mode`` part of ``probe --json`` (the board adds ``capped``)."""
        m = self.mode
        return {
            "id": None if m is None else m.id,
            "name": None if m is None else m.name,
            "source": self.source,
            "source_path": STATUS if self.source == SOURCE_STATUS else CONF if self.source else None,
            "conf": self.conf_path,
            "default_id": self.conf.default_id,
            "caps": None if m is None else m.caps.to_dict(),
            "modes": [{"id": x.id, "name": x.name} for x in self.conf.modes],
            "fan_mode": self.fan_mode,
            "note": self.note,
        }


def allowed_values(values: Iterable[int], floor: Optional[int], cap: Optional[int]) -> Tuple[int, ...]:
    """Frequencies inside a mode's window.

    A cap is an upper bound: the steps at or below it (``GPU MAX_FREQ
    640000000`` on a Nano allows up to 614.4 MHz; a cap between two steps
    never grants the step above). A floor keeps the steps at or above it.
    Where the window holds no step at all the kernel still runs at one: below
    the lowest step, the lowest; a floor above the highest capped step
    (``MIN_FREQ 1200000`` with ``MAX_FREQ 1200000`` on AGX Xavier, whose table
    has 1190400 and 1267200) pins the clock at that highest capped step, since
    cpufreq clamps the policy minimum to its maximum.
    """
    vals = sorted(values)
    if not vals:
        return ()
    capped = [v for v in vals if cap is None or v <= cap] or [vals[0]]
    windowed = [v for v in capped if floor is None or v >= floor] or [capped[-1]]
    return tuple(windowed)


# --- parsing ---------------------------------------------------------------------

def parse_conf(text: str) -> NvpmodelConf:
    """Parse nvpmodel.conf text: comments, blank lines, odd spacing
    (``<PARAM ...>``, ``MIN_FREQ  0``) and unknown sections are tolerated;
    the raw-path format of L4T R27/R28 (``/sys/.../scaling_max_freq 1200000``
    inside a mode) is read too."""
    params: Dict[str, Dict[str, str]] = {}
    raw_modes: List[Tuple[int, str, List[Tuple[str, str, str]]]] = []
    default_id: Optional[int] = None
    problems: List[str] = []
    section: Optional[str] = None
    current: Optional[Dict[str, str]] = None
    settings: Optional[List[Tuple[str, str, str]]] = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head = _HEADER.match(line)
        if head:
            section = head.group(1).upper()
            attrs = {k.upper(): v for k, v in _ATTR.findall(head.group(2))}
            current, settings = None, None
            if section == "PARAM":
                current = params.setdefault(attrs.get("NAME", f"?{lineno}"), {})
            elif section == "POWER_MODEL":
                try:
                    mode_id = int(attrs["ID"])
                except (KeyError, ValueError):
                    problems.append(f"line {lineno}: POWER_MODEL without a numeric ID: {raw.strip()}")
                    section = None
                    continue
                settings = []
                raw_modes.append((mode_id, attrs.get("NAME", str(mode_id)), settings))
            elif section in ("PM_CONFIG", "PM_STATUS"):  # PM_STATUS: the R27 name of the same section
                if "DEFAULT" in attrs:
                    try:
                        default_id = int(attrs["DEFAULT"])
                    except ValueError:
                        problems.append(f"line {lineno}: PM_CONFIG DEFAULT is not a number: {raw.strip()}")
            continue
        parts = line.split()
        if section == "PARAM" and current is not None:
            if len(parts) >= 2:
                current[parts[0]] = " ".join(parts[1:])
        elif section == "POWER_MODEL" and settings is not None:
            if len(parts) == 3:
                settings.append((parts[0], parts[1], parts[2]))
            elif len(parts) == 2 and parts[0].startswith("/"):
                settings.append(_old_style(parts[0], parts[1]))
            else:
                problems.append(f"line {lineno}: not PARAM ARG VALUE: {raw.strip()}")
        elif section is None:
            problems.append(f"line {lineno}: outside any section: {raw.strip()}")
    modes = []
    seen = set()
    for mode_id, name, sets in raw_modes:
        if mode_id in seen:
            problems.append(f"mode {mode_id} is defined twice; the first definition is used")
            continue
        seen.add(mode_id)
        modes.append(PowerMode(mode_id, name, tuple(sets), _caps(sets, params, problems, mode_id)))
    if default_id is not None and default_id not in seen:
        problems.append(f"PM_CONFIG DEFAULT={default_id} names no POWER_MODEL")
    return NvpmodelConf(tuple(modes), default_id, params, tuple(problems))


def parse_status(text: str) -> Tuple[Optional[int], Optional[str]]:
    """(mode id, fan mode) from ``/var/lib/nvpmodel/status`` (``pmode:0002 fmode:quiet``)."""
    m = _PMODE.search(text)
    f = _FMODE.search(text)
    return (int(m.group(1)) if m else None), (f.group(1) if f else None)


def _old_style(path: str, value: str) -> Tuple[str, str, str]:
    """An R27/R28 raw-path line as the (PARAM, ARG, VALUE) it means today."""
    m = _OLD_CPU.search(path)
    if m:
        return f"CPU_CPU{m.group(1)}", f"{m.group(2).upper()}_FREQ", value
    m = _OLD_ONLINE.search(path)
    if m:
        return "CPU_ONLINE", f"CORE_{m.group(1)}", value
    if "emc" in path:
        return "EMC", "MAX_FREQ", value
    if "devfreq" in path and path.endswith(("max_freq", "min_freq")):
        return "GPU", "MAX_FREQ" if path.endswith("max_freq") else "MIN_FREQ", value
    return path, "", value


def _clock_of(name: str, params: Dict[str, Dict[str, str]]) -> Optional[str]:
    """Which clock a PARAM name caps: from its sysfs path where the conf defines
    it, else from NVIDIA's naming (CPU_A57, CPU_DENVER_n, CPU_A78_n, GPU, EMC)."""
    path = " ".join(params.get(name, {}).values())
    if "/cpufreq/" in path:
        return "cpu"
    if "emc" in path:
        return "emc"
    if "devfreq" in path and any(g in path for g in ("gpu", "gp10b", "gv11b", "ga10b")):
        return "gpu"
    if path:  # a defined PARAM on some other device (DLA, PVA, NVENC, ...)
        return None
    if name.startswith("CPU_") and name != "CPU_ONLINE":
        return "cpu"
    return {"GPU": "gpu", "EMC": "emc"}.get(name)


def _freq(clock: str, value: int) -> int:
    if clock == "cpu":
        return value // 1000 if value >= _UNIT_EDGE else value
    return value * 1000 if value < _UNIT_EDGE else value


def _caps(settings: Sequence[Tuple[str, str, str]], params: Dict[str, Dict[str, str]], problems: List[str],
          mode_id: int) -> ModeCaps:
    caps: Dict[str, List[int]] = {}
    floors: Dict[str, List[int]] = {}
    online: Dict[int, bool] = {}
    for name, arg, value in settings:
        if name == "CPU_ONLINE":
            m = re.match(r"CORE_(\d+)$", arg)
            if m and value in ("0", "1"):
                online[int(m.group(1))] = value == "1"
            continue
        clock = _clock_of(name, params)
        if clock is None or arg not in ("MAX_FREQ", "MIN_FREQ"):
            continue
        try:
            v = int(value)
        except ValueError:
            problems.append(f"mode {mode_id}: {name} {arg} {value} is not a number")
            continue
        if arg == "MAX_FREQ":
            if v > 0:
                caps.setdefault(clock, []).append(_freq(clock, v))
        elif v == -1:
            floors.setdefault(clock, []).append(INT_MAX)
        elif v > 0:
            floors.setdefault(clock, []).append(_freq(clock, v))

    def cap(clock: str) -> Optional[int]:
        return min(caps[clock]) if clock in caps else None

    def floor(clock: str) -> Optional[int]:
        return max(floors[clock]) if clock in floors else None

    cores: Optional[Tuple[int, ...]] = None
    if online:
        # cpu0 cannot be taken offline; files that do not list it (TX2) still run on it
        cores = tuple(sorted(c for c, on in {0: True, **online}.items() if on))
    return ModeCaps(cap("cpu"), floor("cpu"), cap("gpu"), floor("gpu"), cap("emc"), cores)


# --- reading a board ------------------------------------------------------------

def read_conf(fs: Sysfs, path: str = CONF) -> Optional[NvpmodelConf]:
    """The parsed conf at ``path`` under the board's root, or None without one."""
    text = _read_text(fs, path)
    return None if text is None else parse_conf(text)


def read_status(fs: Sysfs, path: str = STATUS) -> Tuple[Optional[int], Optional[str]]:
    """(mode id, fan mode) from the nvpmodel status file; (None, None) without one."""
    text = fs.try_read(path)
    return parse_status(text) if text else (None, None)


def current_mode(fs: Sysfs, conf: NvpmodelConf, conf_path: str = CONF, status_path: str = STATUS
                 ) -> PowerModeState:
    """The mode the board is in: the status file's, else the conf's default.

    A status naming a mode the conf does not define is what nvpmodel meets
    after the conf was replaced; like nvpmodel at boot we fall back to the
    default, and say so in ``note``.
    """
    status_id, fan = read_status(fs, status_path)
    note = None
    if status_id is not None:
        mode = conf.mode(status_id)
        if mode is not None:
            return PowerModeState(conf, mode, SOURCE_STATUS, conf_path, status_id, fan)
        note = f"{status_path} names mode {status_id}, which {conf_path} does not define"
    mode = conf.mode(conf.default_id)
    if mode is None:
        note = note or f"no {status_path} and no usable PM_CONFIG DEFAULT in {conf_path}"
        return PowerModeState(conf, None, None, conf_path, status_id, fan, note)
    return PowerModeState(conf, mode, SOURCE_DEFAULT, conf_path, status_id, fan, note)


def read_power_mode(fs: Sysfs) -> Optional[PowerModeState]:
    """The board's power mode, or None where there is no nvpmodel.conf (or it
    defines no mode): a generic Linux machine, a trimmed tree."""
    return PowerModeReader(fs).read()


class PowerModeReader:
    """Reads the power mode fresh on every call (``nvpmodel -m``, jtop or a
    reboot can change it under a running edgetune), re-parsing the conf only
    when the file changed."""

    def __init__(self, fs: Sysfs, conf_path: str = CONF, status_path: str = STATUS) -> None:
        self.fs = fs
        self.conf_path = conf_path
        self.status_path = status_path
        self._cache: Optional[Tuple[Tuple[str, int, int], NvpmodelConf]] = None

    def read(self) -> Optional[PowerModeState]:
        target = _link_target(self.fs, self.conf_path)
        try:
            st = os.stat(self.fs.path(self.conf_path))
        except OSError:
            return None
        key = (target, st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == key:
            conf = self._cache[1]
        else:
            text = _read_text(self.fs, self.conf_path)
            if text is None:
                return None
            conf = parse_conf(text)
            self._cache = (key, conf)
        if not conf.modes:
            return None
        return current_mode(self.fs, conf, target, self.status_path)


def _read_text(fs: Sysfs, path: str) -> Optional[str]:
    # Sysfs.read strips and reads up to 64 KiB: the largest shipped conf (Xavier NX) is ~21 KB.
    return fs.try_read(path)


def _link_target(fs: Sysfs, path: str) -> str:
    """The device path the conf link points to (``/etc/nvpmodel/nvpmodel_p3767_0000.conf``)."""
    real = os.path.realpath(fs.path(path))
    rel = os.path.relpath(real, os.path.realpath(fs.root))
    if rel == ".." or rel.startswith("../"):  # a link that leaves the root
        return path
    return "/" + rel


# --- setting the mode ------------------------------------------------------------

# The power mode is a knob edgetune sets with ``nvpmodel -m`` and journals like any knob file
# (tuner.sysfs.NVPMODEL_MODE: Sysfs reads and writes it through mode_id and set_mode), so
# restore, the journal and the watch for other programs treat it as they treat the clocks.
NVPMODEL_TIMEOUT_S = 60.0


def mode_id(fs: Sysfs) -> Optional[int]:
    """The current mode's id, or None without a usable nvpmodel.conf."""
    state = read_power_mode(fs)
    return None if state is None or state.mode is None else state.mode.id


def set_mode(fs: Sysfs, mode: int) -> None:
    """Switch the power mode, as ``sudo nvpmodel -m MODE`` does.

    On a board the tool itself runs (it rewrites the clock caps, the online
    cores and its status file); it is never answered interactively, so a mode
    that asks for a reboot (some core-count changes on Orin) is refused in one
    line instead of hanging. On an emulated tree (``edgetune sim create``) the
    tool's record is written: the status file.
    """
    from tuner.errors import HardwareError

    conf = read_conf(fs)
    if conf is None or conf.mode(mode) is None:
        ids = ", ".join(str(m.id) for m in conf.modes) if conf else "none: no /etc/nvpmodel.conf"
        raise HardwareError(f"power mode {mode} is not defined in {CONF} (modes: {ids})")
    if (fs.root / EMULATION_MARKER).exists():
        path = fs.path(STATUS)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"pmode:{mode:04d}\n")
        return
    import shutil
    import subprocess

    tool = shutil.which("nvpmodel")
    if tool is None:
        raise HardwareError("cannot set the power mode: the nvpmodel tool is not installed (JetPack's nvpmodel)")
    try:
        done = subprocess.run([tool, "-m", str(mode)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=NVPMODEL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise HardwareError(f"nvpmodel -m {mode} did not finish in {NVPMODEL_TIMEOUT_S:g} s") from None
    said = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode != 0 or any("reboot" in line.lower() for line in said):
        why = said[-1] if said else f"exit status {done.returncode}"
        raise HardwareError(f"nvpmodel -m {mode} refused: {why}")

"""CPU frequency (cpufreq policies) and online cores, as on any Linux kernel.

Shared by the Jetson and generic Linux boards. Pinning uses min = max (with
``scaling_setspeed`` too under the userspace governor): it works under every
governor and is what nvpmodel and jetson_clocks do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tuner.errors import ConfigError
from tuner.sysfs import Sysfs, Write, plan_min_max

CPU_DIR = "/sys/devices/system/cpu"


def parse_cpu_list(text: str) -> list[int]:
    """Parse kernel CPU lists: ``0-3,6`` or ``0 1 2 3``."""
    cpus: list[int] = []
    for part in text.replace(",", " ").split():
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.extend(range(int(a), int(b) + 1))
        elif part.isdigit():
            cpus.append(int(part))
    return cpus


@dataclass(frozen=True)
class CpuPolicy:
    """One cpufreq policy (CPUs sharing a clock): its directory, CPUs, frequency table (kHz, ascending)
    and governors."""

    name: str
    path: str
    cpus: tuple[int, ...]
    frequencies_khz: tuple[int, ...]
    governors: tuple[str, ...]

    def file(self, leaf: str) -> str:
        return f"{self.path}/{leaf}"


class CpuFreq:
    """The board's cpufreq policies and hot-pluggable cores."""

    def __init__(self, fs: Sysfs) -> None:
        self.fs = fs
        self.policies = self._discover()
        self.hotplug = [int(p.parent.name[3:]) for p in fs.glob(f"{CPU_DIR}/cpu[0-9]*/online")]
        self.ncpus = len(fs.glob(f"{CPU_DIR}/cpu[0-9]*")) or sum(len(p.cpus) for p in self.policies)

    def _discover(self) -> list[CpuPolicy]:
        fs = self.fs
        dirs = fs.glob(f"{CPU_DIR}/cpufreq/policy[0-9]*")
        if not dirs:  # old kernels: per-CPU directories only, possibly symlinked
            seen: set[str] = set()
            dirs = []
            for d in fs.glob(f"{CPU_DIR}/cpu[0-9]*/cpufreq"):
                real = os.path.realpath(d)
                if real not in seen:
                    seen.add(real)
                    dirs.append(d)
        policies = []
        for d in dirs:
            path = fs.rel(d)
            name = d.name if d.name.startswith("policy") else d.parent.name
            cpus = parse_cpu_list(fs.try_read(f"{path}/related_cpus") or fs.try_read(f"{path}/affected_cpus") or "")
            freqs = sorted({int(x) for x in (fs.try_read(f"{path}/scaling_available_frequencies") or "").split()
                            if x.isdigit()})
            govs = tuple((fs.try_read(f"{path}/scaling_available_governors") or "").split())
            policies.append(CpuPolicy(name, path, tuple(cpus), tuple(freqs), govs))
        return policies

    # --- domains -----------------------------------------------------------------
    def frequencies(self) -> list[int]:
        """Frequencies every policy offers (a config sets all clusters alike)."""
        sets = [set(p.frequencies_khz) for p in self.policies if p.frequencies_khz]
        if not sets:
            return []
        return sorted(set.intersection(*sets))

    def governors(self) -> list[str]:
        sets = [set(p.governors) for p in self.policies if p.governors]
        if not sets:
            return []
        first = self.policies[0].governors
        common = set.intersection(*sets)
        return [g for g in first if g in common]

    def core_counts(self) -> list[int]:
        if not self.hotplug:
            return []
        return list(range(self.ncpus - len(self.hotplug), self.ncpus + 1))

    # --- state -------------------------------------------------------------------
    def governor(self, policy: CpuPolicy) -> str:
        return self.fs.read(policy.file("scaling_governor"))

    def cur_freq(self, policy: CpuPolicy) -> int:
        return self.fs.read_int(policy.file("scaling_cur_freq"))

    def online_cores(self) -> int:
        offline = 0
        for cpu in self.hotplug:
            if self.fs.read(f"{CPU_DIR}/cpu{cpu}/online") == "0":
                offline += 1
        return self.ncpus - offline

    def knob_files(self) -> list[str]:
        files = []
        for p in self.policies:
            files += [p.file("scaling_governor"), p.file("scaling_min_freq"), p.file("scaling_max_freq")]
            if self.fs.exists(p.file("scaling_setspeed")):
                files.append(p.file("scaling_setspeed"))
        files += [f"{CPU_DIR}/cpu{c}/online" for c in self.hotplug]
        return files

    # --- plans -------------------------------------------------------------------
    def plan_governor(self, governor: str) -> list[Write]:
        return [(p.file("scaling_governor"), governor) for p in self.policies]

    def plan_release(self) -> list[Write]:
        """Open every policy's window to its full table, so the governor has every step again."""
        writes: list[Write] = []
        for p in self.policies:
            f = p.frequencies_khz
            if not f:  # no table (e.g. intel_pstate): the window was never narrowed by us
                continue
            writes += plan_min_max(self.fs, p.file("scaling_min_freq"), p.file("scaling_max_freq"), f[0], f[-1])
        return writes

    def plan_pin(self, freq_khz: int, governor_after: str | None = None) -> list[Write]:
        writes: list[Write] = []
        for p in self.policies:
            if freq_khz not in p.frequencies_khz:
                raise ConfigError(f"cpu_freq_khz={freq_khz} is not available on {p.name}")
            writes += plan_min_max(self.fs, p.file("scaling_min_freq"), p.file("scaling_max_freq"),
                                   freq_khz, freq_khz)
            gov = governor_after or self.governor(p)
            if gov == "userspace" and self.fs.exists(p.file("scaling_setspeed")):
                writes.append((p.file("scaling_setspeed"), str(freq_khz)))
        return writes

    def plan_cores(self, count: int) -> tuple[list[Write], list[Write]]:
        """(writes that bring cores online, writes that take cores offline).

        The runner brings cores online before setting frequencies and takes
        them offline after, so that no policy loses all its CPUs while it is
        being written.
        """
        if count not in self.core_counts():
            raise ConfigError(f"cpu_cores={count} is not possible; this board allows {self.core_counts()}")
        up: list[Write] = []
        down: list[Write] = []
        always_online = self.ncpus - len(self.hotplug)  # cores without an online file (cpu0)
        for rank, cpu in enumerate(sorted(self.hotplug)):
            online = always_online + rank < count
            (up if online else down).append((f"{CPU_DIR}/cpu{cpu}/online", "1" if online else "0"))
        return up, down

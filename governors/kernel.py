"""The kernel's DVFS governors as baselines, alone or in CPU x GPU pairs.

Each is applied as a config with governors and no frequencies, which the board
applies as "this governor over the full frequency range" (a window left
pinned by an earlier trial is opened again). Applying journals the previous
state; the session restores it when the command ends. ``userspace`` is not a
baseline: it is how a pinned config is held.
"""

from __future__ import annotations

from tuner.config import CPU_GOVERNOR, GPU_GOVERNOR, Config
from tuner.errors import ConfigError
from tuner.runner import dvfs_config

from governors.base import KERNEL, Governor

NOT_BASELINES = ("userspace",)


def governor_name(cpu: str | None, gpu: str | None) -> str:
    """A baseline's row name, ``CPU/GPU`` (e.g. ``schedutil/nvhost_podgov``), ``-`` for a side
    without a governor knob."""
    return f"{cpu or '-'}/{gpu or '-'}"


def default_pair(board) -> tuple[str | None, str | None]:
    """The (CPU, GPU) governors of the board's DVFS reference (:func:`tuner.runner.dvfs_config`),
    None for a side the board cannot set: the pair the other baselines vary one side of."""
    dvfs = dvfs_config(board)
    return dvfs.get(CPU_GOVERNOR), dvfs.get(GPU_GOVERNOR)  # type: ignore[return-value]


def _offered(board) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cpu: tuple[str, ...] = ()
    gpu: tuple[str, ...] = ()
    for knob in board.knobs():
        if knob.name == CPU_GOVERNOR:
            cpu = tuple(str(v) for v in knob.values if v not in NOT_BASELINES)
        elif knob.name == GPU_GOVERNOR:
            gpu = tuple(str(v) for v in knob.values if v not in NOT_BASELINES)
    return cpu, gpu


def governor(cpu: str | None, gpu: str | None) -> Governor:
    """The kernel baseline running ``cpu`` / ``gpu`` over the full frequency range: governors only,
    no frequencies, so the board opens any window an earlier trial pinned."""
    values = {}
    if cpu:
        values[CPU_GOVERNOR] = cpu
    if gpu:
        values[GPU_GOVERNOR] = gpu
    return Governor(governor_name(cpu, gpu), KERNEL, Config(values))


def kernel_governors(board, selection: str | None = None) -> list[Governor]:
    """The baselines to compare: by default the DVFS pair, then every other CPU
    governor with the default GPU one and every other GPU governor with the
    default CPU one. ``selection`` is a comma-separated list of ``CPU/GPU`` pairs
    (``-`` = the board's default for that side), e.g. ``performance/performance,powersave/-``."""
    cpu_default, gpu_default = default_pair(board)
    cpu_offered, gpu_offered = _offered(board)
    if selection is None:
        pairs = [(cpu_default, gpu_default)]
        pairs += [(c, gpu_default) for c in cpu_offered if c != cpu_default]
        pairs += [(cpu_default, g) for g in gpu_offered if g != gpu_default]
    else:
        pairs = []
        for item in (t.strip() for t in selection.split(",") if t.strip()):
            cpu, sep, gpu = item.partition("/")
            if not sep:
                raise ConfigError(f"governor pair {item!r}: write CPU/GPU, e.g. performance/nvhost_podgov "
                                  "(- keeps the board's default for that side)")
            cpu = cpu_default if cpu in ("", "-") else cpu
            gpu = gpu_default if gpu in ("", "-") else gpu
            if cpu is not None and cpu not in cpu_offered:
                raise ConfigError(f"CPU governor {cpu!r} is not offered here; available: {', '.join(cpu_offered)}")
            if gpu is not None and gpu not in gpu_offered:
                raise ConfigError(f"GPU governor {gpu!r} is not offered here; available: {', '.join(gpu_offered)}")
            pairs.append((cpu, gpu))
    seen: list[tuple[str | None, str | None]] = []
    for pair in pairs:
        if pair not in seen:
            seen.append(pair)
    return [governor(c, g) for c, g in seen]

"""The one door to sysfs/debugfs/procfs: read, validated write with read-back, journal.

Every hardware module goes through :class:`Sysfs`, so pointing ``root`` at a
temporary directory makes the whole hardware layer run against an emulated
tree. Paths are written as on the device (``/sys/devices/...``) and resolved
under ``root``.

Writes mimic what the kernel's kernfs does for a file without write
permission: it refuses even for root (``-EACCES``), unlike an ordinary file.
We check the mode bits ourselves so that the same refusal happens on an
emulated tree, where root could otherwise write anything.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Tuple

from tuner.errors import HardwareError
from tuner.journal import Journal, default_journal_path


class Sysfs:
    def __init__(self, root: str | os.PathLike[str] = "/", journal: Journal | None = None) -> None:
        self.root = Path(root)
        self.journal = journal if journal is not None else Journal(default_journal_path(self.root))

    @property
    def emulated(self) -> bool:
        return self.root.resolve() != Path("/")

    def path(self, dev_path: str | os.PathLike[str]) -> Path:
        """Map a device path (``/sys/...``) to its location under ``root``."""
        text = os.fspath(dev_path)
        return self.root / text.lstrip("/")

    def rel(self, path: Path) -> str:
        """Inverse of :meth:`path`: the device path of a location under ``root``."""
        return "/" + str(Path(path).relative_to(self.root))

    def exists(self, dev_path: str | os.PathLike[str]) -> bool:
        return self.path(dev_path).exists()

    def glob(self, pattern: str) -> list[Path]:
        """Sorted matches of a device-path glob, as paths under ``root``."""
        return sorted(self.root.glob(pattern.lstrip("/")), key=_natural_key)

    def read(self, dev_path: str | os.PathLike[str]) -> str:
        """Read a small attribute; strips whitespace and device-tree NULs."""
        try:
            with open(self.path(dev_path), "rb") as fh:
                raw = fh.read(65536)
        except OSError as exc:
            raise HardwareError(f"cannot read {dev_path}: {exc.strerror or exc}") from None
        return raw.decode("utf-8", "replace").replace("\x00", " ").strip()

    def read_int(self, dev_path: str | os.PathLike[str]) -> int:
        text = self.read(dev_path)
        try:
            return int(text.split()[0])
        except (ValueError, IndexError):
            raise HardwareError(f"{dev_path} holds {text!r}, not an integer") from None

    def read_list(self, dev_path: str | os.PathLike[str]) -> list[str]:
        return self.read(dev_path).split()

    def try_read(self, dev_path: str | os.PathLike[str]) -> str | None:
        try:
            return self.read(dev_path)
        except HardwareError:
            return None

    def writable(self, dev_path: str | os.PathLike[str]) -> bool:
        try:
            mode = os.stat(self.path(dev_path)).st_mode
        except OSError:
            return False
        return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def write(self, dev_path: str | os.PathLike[str], value: object, *, verify: bool = True,
              journal: bool = True) -> None:
        """Write ``value``, journalling the original first, then read it back.

        Raises :class:`HardwareError` with one line when the file is missing,
        has no write permission, the kernel refuses the value, or the read-back
        differs. Nothing is written when a precondition fails.
        """
        dev_path = os.fspath(dev_path)
        path = self.path(dev_path)
        text = str(value)
        if not path.is_file():
            raise HardwareError(f"cannot write {dev_path}: no such file")
        if not self.writable(dev_path):
            raise HardwareError(f"cannot write {dev_path}: the file is read-only")
        if journal:
            self.journal.record(dev_path, self.read(dev_path))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, (text + "\n").encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise HardwareError(f"kernel refused {text} for {dev_path}: {exc.strerror or exc}") from None
        if verify:
            back = self.read(dev_path)
            if back != text and not _same_number(back, text):
                raise HardwareError(f"wrote {text} to {dev_path} but it reads back {back!r}")

    def restore_journal(self, only: set[str] | None = None) -> list[str]:
        """Undo journalled writes (all, or those under ``only``); returns failures."""
        return self.journal.restore(lambda rel, val: self.write(rel, val, journal=False), only)


class AttrReader:
    """Hot-path reads of integer attributes (sensor files at 10+ Hz).

    Keeps one open descriptor per file and re-reads it with ``pread`` at
    offset 0: on sysfs (kernfs seq_file) a read from offset 0 regenerates the
    attribute, so this sees fresh values at a fraction of the cost of an
    open/read/close, whose path walk dominates the sampler's CPU time. The
    live simulator updates emulated sensor files in place for the same reason.
    A failing descriptor is reopened on the next read. Errors propagate
    (OSError/ValueError/IndexError) for the sampler to count.
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def read_number(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        try:
            raw = os.pread(fd, 64, 0)
        except OSError:
            self._forget(path)
            raise
        return int(raw.split()[0])

    def _forget(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for path in list(self._fds):
            self._forget(path)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _same_number(a: str, b: str) -> bool:
    try:
        return int(a) == int(b)
    except ValueError:
        return False


def _natural_key(path: Path) -> list[object]:
    """Sort policy10 after policy2, hwmon10 after hwmon2."""
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", str(path))]


Write = Tuple[str, str]


def plan_min_max(fs: Sysfs, min_path: str, max_path: str, lo: int, hi: int) -> list[Write]:
    """Writes that move a [min, max] frequency window to [lo, hi] without ever
    asking the kernel for min > max (which cpufreq and devfreq refuse with
    EINVAL): raise max first when going up, lower min first when going down."""
    cur_max = fs.read_int(max_path)
    writes_up = [(max_path, str(hi)), (min_path, str(lo))]
    if hi > cur_max:
        return writes_up
    return [(min_path, str(lo)), (max_path, str(hi))]


def apply_plan(fs: Sysfs, writes: list[Write]) -> None:
    """Execute writes all-or-nothing (as far as hardware allows).

    Every target is checked to exist and be writable before the first write,
    so bad input changes nothing. If the kernel refuses a write midway, the
    writes already done are undone before the error propagates.
    """
    for path, _ in writes:
        if not fs.path(path).is_file():
            raise HardwareError(f"cannot write {path}: no such file")
        if not fs.writable(path):
            raise HardwareError(f"cannot write {path}: the file is read-only")
    before: dict[str, str] = {}
    for path, _ in writes:
        before.setdefault(path, fs.read(path))
    done: list[str] = []
    try:
        for path, value in writes:
            fs.write(path, value)
            done.append(path)
    except HardwareError:
        pending = [p for p in reversed(dict.fromkeys(done))]
        for _ in range(len(pending) + 1):
            failed = []
            for path in pending:
                try:
                    fs.write(path, before[path])
                except HardwareError:
                    failed.append(path)
            if not failed or len(failed) == len(pending):
                break
            pending = failed
        raise

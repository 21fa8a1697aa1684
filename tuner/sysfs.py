"""The one door to sysfs/debugfs/procfs: read, validated write with read-back, journal.

Every hardware module goes through :class:`Sysfs`, so pointing ``root`` at a
temporary directory makes the whole hardware layer run against an emulated
tree. Paths are written as on the device (``/sys/devices/...``) and resolved
under ``root``.

Writes mimic what the kernel's kernfs does for a file without write
permission: it refuses even for root (``-EACCES``), unlike an ordinary file.
We check the mode bits ourselves so that the same refusal happens on an
emulated tree, where root could otherwise write anything.

Other programs write the same files (``jetson_clocks``, ``nvpmodel``, jtop,
DESIGN §4). :class:`Sysfs` remembers what this process last wrote to each file
(:attr:`Sysfs.written`), so that :meth:`Sysfs.external_changes` can tell a
value it did not write; with :attr:`Sysfs.check_before_write` (the daemon sets
it) :func:`apply_plan` refuses to write over such a value, raising
:class:`ExternalChangeError` before anything is written; and a journal
restore never writes an original back over another program's later write.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from tuner.errors import HardwareError
from tuner.journal import Journal, RestoreReport, default_journal_path, same_value

log = logging.getLogger("edgetune.sysfs")

#: Written by ``edgetune sim create`` at the root of an emulated tree, so that
#: everything read from that tree is labelled simulated.
EMULATION_MARKER = ".edgetune-emulated.json"
#: A knob that is no file: the nvpmodel power mode (tuner.boards.nvpmodel sets and reads it).
NVPMODEL_MODE = "nvpmodel:mode"


@dataclass(frozen=True)
class ExternalChange:
    """A knob file that no longer holds what this process last wrote to it."""

    path: str
    found: str
    written: str

    def __str__(self) -> str:
        return f"{self.path} reads {self.found}, not the {self.written} edgetune wrote"

    def to_dict(self) -> Dict[str, str]:
        return {"path": self.path, "found": self.found, "written": self.written}


class ExternalChangeError(HardwareError):
    """Another program changed knob files edgetune holds; nothing was written over them."""

    def __init__(self, changes: List[ExternalChange]) -> None:
        self.changes = list(changes)
        super().__init__("another program changed what edgetune wrote: " + "; ".join(str(c) for c in changes))


class Sysfs:
    """Reads and journalled, read-back-verified writes of device paths (``/sys/...``) under ``root``,
    so an emulated tree stands in for the device; it remembers what it wrote, to tell another
    program's later write."""

    def __init__(self, root: str | os.PathLike[str] = "/", journal: Journal | None = None) -> None:
        self.root = Path(root)
        self.journal = journal if journal is not None else Journal(default_journal_path(self.root))
        #: device path -> the value this process last wrote there and read back (journalled writes only);
        #: a path leaves it when it is restored or :meth:`forget` is called
        self.written: Dict[str, str] = {}
        #: refuse (in :func:`apply_plan`) to write over a value another program wrote after us
        self.check_before_write = False
        #: what the last :meth:`restore_journal` did (restored, skipped, failed)
        self.last_restore = RestoreReport()

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
        """Whether the path exists; False where a parent is not readable (debugfs as a normal user)."""
        try:
            return self.path(dev_path).exists()
        except OSError:
            return False

    def is_knob(self, dev_path: str | os.PathLike[str]) -> bool:
        """Whether ``dev_path`` is something a value can be written to: a regular file, or the
        power mode where the board has nvpmodel (its conf)."""
        if dev_path == NVPMODEL_MODE:
            return self.path("/etc/nvpmodel.conf").exists()
        return self.path(dev_path).is_file()

    def glob(self, pattern: str) -> list[Path]:
        """Sorted matches of a device-path glob, as paths under ``root``."""
        return sorted(self.root.glob(pattern.lstrip("/")), key=_natural_key)

    def read(self, dev_path: str | os.PathLike[str]) -> str:
        """Read a small attribute; strips whitespace and device-tree NULs."""
        if dev_path == NVPMODEL_MODE:
            from tuner.boards.nvpmodel import mode_id

            current = mode_id(self)
            if current is None:
                raise HardwareError("cannot read the power mode: no usable /etc/nvpmodel.conf")
            return str(current)
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
        if dev_path == NVPMODEL_MODE:  # set by running nvpmodel (root), or emulated
            return self.is_knob(dev_path)
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

        A journalled write first records the value it is about to write (fsynced
        with the original), then, once read back, the value the file holds: the
        journal always knows what edgetune may have left in the file, so that a
        restore can tell another program's later write from ours.
        """
        dev_path = os.fspath(dev_path)
        path = self.path(dev_path)
        text = str(value)
        if not self.is_knob(dev_path):
            raise HardwareError(f"cannot write {dev_path}: no such file")
        if not self.writable(dev_path):
            raise HardwareError(f"cannot write {dev_path}: the file is read-only")
        if journal:
            self.journal.record(dev_path, self.read(dev_path), writing=text)
        try:
            if dev_path == NVPMODEL_MODE:
                from tuner.boards.nvpmodel import set_mode

                set_mode(self, int(text))
                if journal:  # (a restore writes unjournalled, under the journal's lock)
                    self._adopt_mode_switch()
            else:
                self._put(path, (text + "\n").encode())
        except OSError as exc:
            raise HardwareError(f"kernel refused {text} for {dev_path}: {exc.strerror or exc}") from None
        back = text
        if verify:
            back = self.read(dev_path)
            if back != text and not _same_number(back, text):
                raise HardwareError(f"wrote {text} to {dev_path} but it reads back {back!r}")
        if journal:
            self.journal.wrote(dev_path, back)
            self.written[dev_path] = back
            if dev_path.endswith("/scaling_governor"):  # the kernel rewrites setspeed with the governor
                self._adopt(dev_path[: -len("scaling_governor")] + "scaling_setspeed")

    def _put(self, path: Path, data: bytes) -> None:
        """One write of ``data`` to the attribute at ``path``.

        A sysfs attribute takes a write whole, in one call: there is no moment when it
        holds nothing. A regular file in an emulated tree does have one — opened with
        truncation, it is empty until the write lands — and a ``kill -9`` there left
        ``scaling_max_freq`` empty, which the next start took for another program's
        value and would not restore. So an emulated tree gets the same all-or-nothing
        write: a sibling file, renamed over the attribute (same mode)."""
        if not self.emulated:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".edgetune-write")
        tmp = Path(name)
        try:
            try:
                os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))  # the attribute's mode, whatever the umask
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _adopt_mode_switch(self) -> None:
        """nvpmodel, run by edgetune, rewrote clock files edgetune had written: what they hold now is
        edgetune's doing, so the watch must not take it for another program's, nor restore skip it."""
        for path in list(self.written):
            if path != NVPMODEL_MODE:
                self._adopt(path)

    def _adopt(self, path: str) -> None:
        """Take what ``path`` holds now as edgetune's value (a side effect of edgetune's own write)."""
        if path not in self.written:
            return
        now = self.try_read(path)
        if now is not None:
            self.written[path] = now
            self.journal.wrote(path, now)

    def external_changes(self, paths: Optional[Iterable[str]] = None) -> List[ExternalChange]:
        """Files this process wrote (all, or those in ``paths``) that now hold another value.

        Numbers compare as numbers. Only files edgetune wrote are looked at:
        derived files (``cur_freq``) move on their own. A file that cannot be
        read is not evidence of another writer and is left to the next write,
        which reports it.
        """
        changes = []
        for path in list(self.written) if paths is None else paths:
            mine = self.written.get(path)
            if mine is None:
                continue
            found = self.try_read(path)
            if found is not None and not same_value(found, mine):
                changes.append(ExternalChange(path, found, mine))
        return changes

    def forget(self, paths: Iterable[str]) -> None:
        """Stop treating these files as ours until we write them again (another program's value is accepted)."""
        for path in paths:
            self.written.pop(path, None)

    def restore_journal(self, only: set[str] | None = None) -> list[str]:
        """Undo journalled writes (all, or those under ``only``); returns failures.

        A file another program changed after edgetune's last write keeps that
        program's value: it is logged, dropped from the journal and listed in
        :attr:`last_restore` ``.skipped``.
        """
        report = self.journal.restore_report(lambda rel, val: self.write(rel, val, journal=False), only,
                                             read=self.try_read)
        for path in report.restored:
            self.written.pop(path, None)
        for skipped in report.skipped:
            self.written.pop(skipped.path, None)
            log.warning("not restoring %s", skipped)
        self.last_restore = report
        return report.failures


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


def _needed(written: Dict[str, str], writes: List[Write]) -> List[Write]:
    """The writes that change something, given that every file in ``written`` holds its value."""
    holds = dict(written)
    needed = []
    for path, value in writes:
        if path in holds and same_value(holds[path], value):
            continue
        holds[path] = value
        needed.append((path, value))
    return needed


def apply_plan(fs: Sysfs, writes: list[Write]) -> None:
    """Execute writes all-or-nothing (as far as hardware allows).

    Every target is checked to exist and be writable before the first write,
    so bad input changes nothing. If the kernel refuses a write midway, the
    writes already done are undone before the error propagates.

    With ``fs.check_before_write`` (the daemon), a target another program
    changed since this process wrote it raises :class:`ExternalChangeError`,
    also before the first write: edgetune never silently writes over another
    program's setting. A write of the value the file already holds from this
    process is then skipped, so re-applying a held config writes nothing and
    leaves no gap between reading a file back and writing it again.
    """
    for path, _ in writes:
        if not fs.is_knob(path):
            raise HardwareError(f"cannot write {path}: no such file")
        if not fs.writable(path):
            raise HardwareError(f"cannot write {path}: the file is read-only")
    if fs.check_before_write:
        changes = fs.external_changes(dict.fromkeys(path for path, _ in writes))
        if changes:
            raise ExternalChangeError(changes)
        if not any(path == NVPMODEL_MODE for path, _ in writes):  # a mode switch rewrites the clock files
            writes = _needed(fs.written, writes)
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

"""Crash-safe record of every hardware value edgetune changed, and of what it wrote.

Before a write to a knob file, its original value (on the first write) and the
value about to be written are stored in a JSON journal and fsynced. If
edgetune is killed (``kill -9``, power loss, a bug), ``edgetune restore`` or
the next daemon start reads the journal and writes the originals back. A clean
exit restores and deletes the journal.

Other programs (``jetson_clocks``, ``nvpmodel``, jtop, a user's ``echo``) may
change a knob after edgetune wrote it (DESIGN §4). Restoring the original over
their value would undo their change, so a restore writes a file back only
while it still holds what edgetune last wrote (or already its original); a
file that holds anything else is left as it is, reported as *skipped* and
dropped from the journal.

Format, version 2::

    {"version": 2, "pid": 123,
     "entries": [["/sys/.../scaling_max_freq", "1984000"], ...],   # path, original; order of first touch
     "written": {"/sys/.../scaling_max_freq": ["1036800"], ...}}    # what edgetune may have left there

``written`` holds one value after a verified write, and two while a write is
under way (the previous one and the new one): a crash between fsyncing the
journal and writing the file leaves either in the file, and both are
edgetune's. A version-1 journal has no ``written``: every original in it is
written back, as before. A version-1 reader ignores ``written``.

The journal lives under the board root (``<root>/var/lib/edgetune`` by
default), so an emulated tree carries its own journal and a real board uses
``/var/lib/edgetune/journal.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set

from tuner.errors import HardwareError

DEFAULT_STATE_SUBDIR = "var/lib/edgetune"
JOURNAL_NAME = "journal.json"
VERSION = 2
MAX_CANDIDATES = 4  # values kept for a path whose writes keep failing (each failure may or may not have landed)


def default_journal_path(root: Path) -> Path:
    """The journal of the board at ``root`` (``<root>/var/lib/edgetune/journal.json``): an emulated tree
    carries its own."""
    return Path(root) / DEFAULT_STATE_SUBDIR / JOURNAL_NAME


def same_value(a: str, b: str) -> bool:
    """Two readings of a knob file are the same setting: equal text, or equal numbers
    (``"1036800"`` and ``"1036800 "`` or ``"01036800"``)."""
    a, b = a.strip(), b.strip()
    if a == b:
        return True
    try:
        return int(a) == int(b)
    except ValueError:
        return False


@dataclass(frozen=True)
class Skipped:
    """A journalled file another program changed after edgetune's last write: left as it is."""

    path: str
    found: str
    written: str  # what edgetune had written (the last value, if a write was under way)

    def __str__(self) -> str:
        return f"{self.path}: left at {self.found} (another program changed it after edgetune wrote {self.written})"


@dataclass
class RestoreReport:
    """What one restore did: files written back to their original, files left at another program's
    value, and failures (kept in the journal for the next restore)."""

    restored: List[str] = field(default_factory=list)  # paths written back to their original
    skipped: List[Skipped] = field(default_factory=list)  # paths left as another program set them
    failures: List[str] = field(default_factory=list)  # "path: why" for writes that failed (kept in the journal)


@dataclass
class _Doc:
    entries: List[List[str]]
    written: Dict[str, List[str]]


class Journal:
    """Ordered map of root-relative path -> original value, plus what edgetune last
    wrote to each path; persisted (fsynced) whenever it changes.

    Order is the order of first touch; restoring in reverse order undoes paired
    writes (max before min when raising) in a valid order. Several processes may
    share one journal: every change re-reads the file under an exclusive lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_Doc]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_suffix(".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            doc = self._load()
            before = json.dumps([doc.entries, doc.written])
            yield doc
            # the caller mutated doc in place; persist atomically, and only a change (no fsync per re-write)
            if json.dumps([doc.entries, doc.written]) != before:
                self._save(doc)

    def _load(self) -> _Doc:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return _Doc([], {})
        except (OSError, json.JSONDecodeError) as exc:
            raise HardwareError(f"journal {self.path} is unreadable ({exc}); fix or remove it by hand") from None
        if not isinstance(data, dict):
            return _Doc([], {})
        entries = [[str(p), str(v)] for p, v in data.get("entries", [])]
        written = data.get("written") or {}  # absent in version 1
        kept = {p for p, _ in entries}
        return _Doc(entries, {str(p): [str(v) for v in vs] for p, vs in written.items() if p in kept})

    def _save(self, doc: _Doc) -> None:
        if not doc.entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        tmp = self.path.with_suffix(".tmp")
        payload = json.dumps({"version": VERSION, "pid": os.getpid(), "entries": doc.entries,
                              "written": doc.written}, indent=1)
        with open(tmp, "w") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def entries(self) -> list[tuple[str, str]]:
        return [(p, v) for p, v in self._load().entries]

    def written(self) -> dict[str, list[str]]:
        """Per path, the values edgetune may have left in it (empty for a version-1 journal)."""
        return self._load().written

    def __bool__(self) -> bool:
        return bool(self._load().entries)

    def record(self, rel_path: str, original: str, writing: Optional[str] = None) -> None:
        """Remember ``original`` for ``rel_path`` unless an older value is already kept,
        and, before a write, the value about to be written (``writing``)."""
        with self._locked() as doc:
            if not any(p == rel_path for p, _ in doc.entries):
                doc.entries.append([rel_path, original])
            if writing is not None:
                previous = doc.written.get(rel_path, [])
                if not any(same_value(v, writing) for v in previous):
                    doc.written[rel_path] = (previous + [writing])[-MAX_CANDIDATES:]

    def wrote(self, rel_path: str, value: str) -> None:
        """After a verified write: ``value`` is now the only thing edgetune left in ``rel_path``."""
        with self._locked() as doc:
            if rel_path in doc.written or any(p == rel_path for p, _ in doc.entries):
                doc.written[rel_path] = [value]

    def restore(self, write: Callable[[str, str], None], only: Optional[Set[str]] = None,
                read: Optional[Callable[[str], Optional[str]]] = None) -> list[str]:
        """Write every journalled original back; return the paths that failed (see :meth:`restore_report`)."""
        return self.restore_report(write, only, read).failures

    def restore_report(self, write: Callable[[str, str], None], only: Optional[Set[str]] = None,
                       read: Optional[Callable[[str], Optional[str]]] = None) -> RestoreReport:
        """Write the journalled originals back, except over another program's later write.

        With ``read``, a path whose current value is neither what edgetune last
        wrote nor its original is skipped and dropped from the journal: another
        program set it after edgetune, and restoring would undo that. Without
        ``read``, or for a path the journal has no written value for (a
        version-1 journal), the original is written back unconditionally.

        Writes go in reverse order of first touch. A write can be refused only
        because of ordering (a min above the current max, say), so failed writes
        are retried while a pass still makes progress. Restored paths leave the
        journal; failures stay so that a later restore can try again.
        """
        report = RestoreReport()
        with self._locked() as doc:
            pending: list[list[str]] = []
            for rel, value in list(reversed(doc.entries)):
                if only is not None and rel not in only:
                    continue
                ours = doc.written.get(rel)
                found = read(rel) if read is not None and ours else None
                if found is not None and not same_value(found, value) and not any(same_value(found, v) for v in ours):
                    report.skipped.append(Skipped(rel, found, ours[-1]))
                    doc.entries.remove([rel, value])
                    doc.written.pop(rel, None)
                    continue
                pending.append([rel, value])
            errors: dict[str, str] = {}
            while pending:
                failed = []
                for rel, value in pending:
                    try:
                        write(rel, value)
                    except (OSError, HardwareError) as exc:
                        errors[rel] = str(exc)
                        failed.append([rel, value])
                    else:
                        errors.pop(rel, None)
                        doc.entries.remove([rel, value])
                        doc.written.pop(rel, None)
                        report.restored.append(rel)
                if len(failed) == len(pending):
                    break
                pending = failed
            report.failures = [f"{rel}: {msg}" for rel, msg in errors.items()]
        return report

"""Crash-safe record of every hardware value edgetune changed.

Before the first write to a knob file, its original value is appended to a
JSON journal and fsynced. If edgetune is killed (``kill -9``, power loss, a
bug), ``edgetune restore`` or the next daemon start reads the journal and
writes the originals back. A clean exit restores and deletes the journal.

The journal lives under the board root (``<root>/var/lib/edgetune`` by
default), so an emulated tree carries its own journal and a real board uses
``/var/lib/edgetune/journal.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tuner.errors import HardwareError

DEFAULT_STATE_SUBDIR = "var/lib/edgetune"
JOURNAL_NAME = "journal.json"


def default_journal_path(root: Path) -> Path:
    return Path(root) / DEFAULT_STATE_SUBDIR / JOURNAL_NAME


class Journal:
    """Ordered map of root-relative path -> original value, persisted on each change.

    Order is the order of first touch; restoring in reverse order undoes paired
    writes (max before min when raising) in a valid order. Several processes may
    share one journal: every change re-reads the file under an exclusive lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[list[str]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_suffix(".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._load()
            yield entries
            # caller mutated entries in place; persist atomically
            self._save(entries)

    def _load(self) -> list[list[str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, json.JSONDecodeError) as exc:
            raise HardwareError(f"journal {self.path} is unreadable ({exc}); fix or remove it by hand") from None
        entries = data.get("entries", []) if isinstance(data, dict) else []
        return [[str(p), str(v)] for p, v in entries]

    def _save(self, entries: list[list[str]]) -> None:
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        tmp = self.path.with_suffix(".tmp")
        payload = json.dumps({"version": 1, "pid": os.getpid(), "entries": entries}, indent=1)
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
        return [(p, v) for p, v in self._load()]

    def __bool__(self) -> bool:
        return bool(self._load())

    def record(self, rel_path: str, original: str) -> None:
        """Remember ``original`` for ``rel_path`` unless an older value is already kept."""
        with self._locked() as entries:
            if not any(p == rel_path for p, _ in entries):
                entries.append([rel_path, original])

    def restore(self, write: Callable[[str, str], None], only: set[str] | None = None) -> list[str]:
        """Write every journalled original back; return the paths that failed.

        Writes go in reverse order of first touch. A write can be refused only
        because of ordering (a min above the current max, say), so failed writes
        are retried while a pass still makes progress. Restored paths leave the
        journal; failures stay so that a later restore can try again.
        """
        with self._locked() as entries:
            pending = [e for e in reversed(entries) if only is None or e[0] in only]
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
                        entries.remove([rel, value])
                if len(failed) == len(pending):
                    break
                pending = failed
            return [f"{rel}: {msg}" for rel, msg in errors.items()]

"""The client library for applications edgetune tunes from outside (standard library only).

An inference application that edgetune did not write adds three lines::

    from workloads.client import Client         # or `from client import Client`: see below

    client = Client()                           # reads $EDGETUNE_CHANNEL; a no-op without it
    while serving:
        batch = next_batch(client.batch_size(default=8))
        t0 = time.perf_counter(); infer(batch)
        client.report(len(batch), time.perf_counter() - t0)

edgetune (``--workload external``) writes the knob values it wants into
``<channel>/knobs.json`` and listens on ``<channel>/reports.sock`` for the
datagrams :meth:`Client.report` sends. Each report carries the knob
*generation* the application ran with, so edgetune counts only work done at
the config it is measuring. Nothing here blocks or raises when edgetune is not
listening: the application keeps serving, untuned.

This file is deliberately one module of the standard library only, and runs on
Python 3.6 and later (no ``from __future__ import annotations``, no 3.7+ API).
A Jetson Nano on JetPack 4 has only Python 3.6 as its system Python, and
NVIDIA's CUDA PyTorch exists only for that Python; so the application keeps its
Python, copies this one file beside itself (``import client``), and is tuned by
an edgetune daemon that runs on a newer standalone Python.
"""

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union  # noqa: F401 (Tuple: a type comment)

CHANNEL_ENV = "EDGETUNE_CHANNEL"
KNOBS_FILE = "knobs.json"
REPORTS_SOCKET = "reports.sock"
RETRIES, RETRY_S = 20, 0.001  # a full queue delays a report by at most ~20 ms, then drops it


class Client:
    """An application's end of edgetune's channel: read the wanted knobs, report finished work.

    ``channel`` is the directory edgetune made (default: ``$EDGETUNE_CHANNEL``);
    without one, every method is a cheap no-op, so the same application runs
    tuned and untuned.
    """

    def __init__(self, channel: "Union[str, os.PathLike, None]" = None) -> None:
        path = channel if channel is not None else os.environ.get(CHANNEL_ENV)
        self.channel = Path(str(path)) if path else None
        self._knobs = {}  # type: Dict[str, Any]
        self._generation = -1
        self._stamp = None  # type: Optional[Tuple[int, int]]
        self._sock = None  # type: Optional[socket.socket]

    @property
    def enabled(self) -> bool:
        return self.channel is not None

    def knobs(self) -> "Dict[str, Any]":
        """The knob values edgetune wants now (re-read only when the file changed)."""
        if self.channel is None:
            return {}
        path = self.channel / KNOBS_FILE
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                doc = json.loads(path.read_text())
                self._knobs = dict(doc.get("knobs", {}))
                self._generation = int(doc.get("generation", -1))
                self._stamp = stamp
        except (OSError, ValueError):  # not written yet, or being replaced: keep the last values
            pass
        return self._knobs

    def knob(self, name: str, default: Any) -> Any:
        """One wanted knob value, or ``default`` when edgetune sets none."""
        return self.knobs().get(name, default)

    def batch_size(self, default: int) -> int:
        """The batch size edgetune wants (``default`` untuned)."""
        return int(self.knob("batch_size", default))

    def report(self, inferences: int, latency_s: "Optional[float]" = None) -> None:
        """Tell edgetune that ``inferences`` completed (one batch, taking ``latency_s``)."""
        if self.channel is None:
            return
        msg = json.dumps({"g": self._generation, "n": int(inferences), "t": latency_s, "pid": os.getpid()}).encode()
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        for _ in range(RETRIES):
            try:
                self._sock.sendto(msg, str(self.channel / REPORTS_SOCKET))
                return
            except BlockingIOError:  # edgetune's queue is full for a moment
                time.sleep(RETRY_S)
            except OSError:  # edgetune is not listening: serving goes on, untuned
                return

    def close(self) -> None:
        """Close the report socket (reports after this reopen it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

"""An inference process edgetune did not write: started by edgetune, or attached to.

The process uses :mod:`workloads.client`: it reads the knob values edgetune
wants (batch size, or any knob it declares) from ``<channel>/knobs.json`` and
reports every completed batch as a datagram to ``<channel>/reports.sock``.
This side writes the knobs with a new *generation* number at every
``setup``, waits until the process reports work done at that generation (it
switched), and in ``run`` counts the inferences reported from that moment on.
A listener thread drains the socket for the workload's whole life, so reports
are never lost to a full queue between trials.

Started (``command``): edgetune launches it with ``$EDGETUNE_CHANNEL`` set and
stops it (SIGTERM, then SIGKILL) at teardown. On Linux the kernel also sends
it SIGTERM if edgetune dies without a teardown (``kill -9``, an OOM kill), so
a restarted daemon never finds a second copy of the application running.

Attached (``pid`` and ``channel``): the process was started with
``EDGETUNE_CHANNEL=<channel>`` by someone else; edgetune only watches that it
is alive and leaves it running.
This is how the daemon tunes applications it did not write.
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from tuner.config import BATCH_SIZE, Config, Knob
from tuner.errors import ConfigError, EdgetuneError, Infeasible
from workloads.base import RunResult
from workloads.client import CHANNEL_ENV, KNOBS_FILE, REPORTS_SOCKET

DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent():
    """A ``preexec_fn`` that makes the child get SIGTERM when edgetune dies, or None off Linux.

    Why: the application runs in its own session (a Ctrl-C at edgetune's
    terminal must not reach it before edgetune has restored the clocks), so
    nothing else ends it if edgetune is killed with SIGKILL. libc's ``prctl``
    is looked up here, in the parent, so the child between fork and exec only
    makes the call. The kernel ties the signal to the *thread* that started the
    child: edgetune starts applications from its main thread, which lives as
    long as the process.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # edgetune died between fork and prctl: nobody will signal
            os._exit(1)

    return hook


class _Listener:
    """Drains report datagrams into a queue of (generation, inferences, latency, arrival)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(0.2)
        self.events: deque[tuple[int, int, float | None, float]] = deque()
        self.received = 0  # inferences reported over the listener's life (all generations)
        self.malformed = 0
        self.arrived = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="edgetune-reports", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self._take(self.sock.recv(4096))
            except (TimeoutError, OSError):
                continue

    def _take(self, data: bytes) -> None:
        try:
            doc = json.loads(data)
            event = (int(doc["g"]), int(doc["n"]), None if doc.get("t") is None else float(doc["t"]),
                     time.monotonic())
        except (ValueError, KeyError, TypeError):
            self.malformed += 1
            return
        with self.arrived:
            self.events.append(event)
            self.received += event[1]
            self.arrived.notify_all()

    def close(self) -> None:
        """Stop, after taking what is still queued (the last reports of a process that just exited)."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.setblocking(False)
        while True:
            try:
                self._take(self.sock.recv(4096))
            except OSError:
                break
        self.sock.close()


class ExternalWorkload:
    """external: a process you run (--option command=...) or attach to (pid=, channel=), via the client library."""

    name = "external"

    def __init__(self, *, command: str | list[str] | None = None, pid: int | str | None = None,
                 channel: str | None = None, batch_sizes: str | list[int] | None = None,
                 switch_timeout_s: float | str = 30.0, report_timeout_s: float | str = 30.0) -> None:
        if (command is None) == (pid is None):
            raise ConfigError("workload external needs either command=... (edgetune starts it) or pid=... with "
                              "channel=... (attach to a running process)")
        self.command = shlex.split(command) if isinstance(command, str) else list(command or [])
        self.pid = int(pid) if pid is not None else None
        if self.pid is not None and channel is None:
            raise ConfigError("attaching to pid needs channel=DIR: the EDGETUNE_CHANNEL the process was started with")
        if self.command and shutil.which(self.command[0]) is None and not Path(self.command[0]).is_file():
            raise ConfigError(f"command {self.command[0]!r} not found")
        self._own_channel = channel is None
        self.channel = Path(channel) if channel else Path(tempfile.mkdtemp(prefix="edgetune-channel-"))
        self.channel.mkdir(parents=True, exist_ok=True)
        batches = _int_list(batch_sizes) if batch_sizes is not None else DEFAULT_BATCHES
        self.batches = tuple(sorted(set(batches)))
        self.switch_timeout_s = float(switch_timeout_s)
        self.report_timeout_s = float(report_timeout_s)
        self.generation = 0
        self.proc: subprocess.Popen | None = None
        self.listener: _Listener | None = None
        self._reported_before = 0
        self.load_s = 0.0

    def knobs(self) -> list[Knob]:
        return [Knob(BATCH_SIZE, self.batches, "inferences")]

    # --- lifecycle ------------------------------------------------------------------------------
    def setup(self, config: Config) -> None:
        t0 = time.monotonic()
        if self.listener is None:
            sock = self.channel / REPORTS_SOCKET
            if sock.exists():
                sock.unlink()
            self.listener = _Listener(sock)
        self.generation += 1
        self._write_knobs(config)
        if self.command and (self.proc is None or self.proc.poll() is not None):
            env = {**os.environ, CHANNEL_ENV: str(self.channel)}
            try:
                self.proc = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL,
                                             start_new_session=True, preexec_fn=_die_with_parent())
            except OSError as exc:
                raise EdgetuneError(f"cannot start {shlex.join(self.command)}: {exc.strerror or exc}") from None
        self._wait_for_switch(config)
        self.load_s = time.monotonic() - t0

    def run(self, inferences: int) -> RunResult:
        listener = self._require_listener()
        out = RunResult(0)
        with listener.arrived:
            listener.events.clear()  # work reported before now is not part of this measurement
        start = time.monotonic()
        last = start
        while out.inferences < inferences:
            with listener.arrived:
                if not listener.events:
                    listener.arrived.wait(0.2)
                batch = list(listener.events)
                listener.events.clear()
            for g, n, latency, _ in batch:
                if g != self.generation:
                    continue  # a batch started before the switch
                out.inferences += n
                if latency is not None:
                    out.batch_latencies_s.append(latency)
                last = time.monotonic()
            if out.inferences >= inferences:
                break
            self._check_alive()
            if time.monotonic() - last > self.report_timeout_s:
                raise RuntimeError(f"the application reported nothing for {self.report_timeout_s:g} s")
        out.wall_s = time.monotonic() - start
        return out

    def teardown(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self.listener is not None:
            self.listener.close()
            self._reported_before += self.listener.received
            self.listener = None
        if self._own_channel:
            shutil.rmtree(self.channel, ignore_errors=True)

    @property
    def reported(self) -> int:
        """Inferences the process reported to this workload, over its whole life (every generation)."""
        return self._reported_before + (self.listener.received if self.listener else 0)

    # --- internals --------------------------------------------------------------------------------
    def _write_knobs(self, config: Config) -> None:
        doc = {"generation": self.generation, "knobs": config.workload().to_dict()}
        tmp = self.channel / (KNOBS_FILE + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.channel / KNOBS_FILE)  # the client never reads a half-written file

    def _wait_for_switch(self, config: Config) -> None:
        listener = self._require_listener()
        deadline = time.monotonic() + self.switch_timeout_s
        while True:
            with listener.arrived:
                if any(g == self.generation for g, *_ in listener.events):
                    listener.events.clear()
                    return
                listener.events.clear()
                listener.arrived.wait(0.2)
            self._check_alive()
            if time.monotonic() > deadline:
                raise Infeasible(f"the application did not switch to {config.workload().to_json()} within "
                                 f"{self.switch_timeout_s:g} s (does it use workloads.client?)")

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the application exited with status {self.proc.returncode}")
        if self.pid is not None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                raise RuntimeError(f"the attached process {self.pid} is gone") from None
            except PermissionError:
                pass  # alive, owned by someone else

    def _require_listener(self) -> _Listener:
        if self.listener is None:
            raise EdgetuneError("run() before setup()")
        return self.listener


def _int_list(value: str | list[int]) -> list[int]:
    try:
        items = [int(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except ValueError:
        raise ConfigError(f"batch_sizes takes a list of integers like 1,2,4,8, not {value!r}") from None
    if not items or min(items) < 1:
        raise ConfigError("batch_sizes must be positive integers")
    return items


def external(**options: Any) -> ExternalWorkload:
    """external: a process you start (command=...) or attach to (pid=, channel=), reporting via workloads.client."""
    return ExternalWorkload(**options)


external.requires = ()  # type: ignore[attr-defined]

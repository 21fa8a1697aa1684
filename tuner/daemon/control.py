"""The control socket server: a Unix stream socket answering one JSON line per connection.

Access control is the socket file itself: it is created under a umask that
never lets "others" in, then given the configured mode (0660) and group
(``edgetune``), so the kernel refuses anyone outside the group before the
daemon sees a byte. Each connection is served on its own short-lived thread
with a read deadline, so a client that sends garbage, a huge line or nothing
at all costs one thread for at most :data:`READ_TIMEOUT_S` and never stops
the daemon.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict

from tuner.daemon.protocol import MAX_LINE, ProtocolError, decode_request, encode
from tuner.errors import EdgetuneError

log = logging.getLogger("edgetune.daemon")

READ_TIMEOUT_S = 2.0
ACCEPT_POLL_S = 1.0  # how often the accept loop looks at the stop flag (an idle daemon wakes this rarely)
MAX_CLIENTS = 16  # connections served at once; more wait in the listen backlog

Handler = Callable[[Dict[str, Any]], Dict[str, Any]]


class ControlServer:
    """The daemon's control socket: one JSON request line per connection, each on its own thread with
    a read deadline (at most :data:`MAX_CLIENTS` at once); access is the file's mode and group."""

    def __init__(self, path: str | Path, handler: Handler, *, mode: int = 0o660, group: str | None = None) -> None:
        self.path = Path(path)
        self.handler = handler
        self.mode = mode
        self.group = group
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self.requests = 0
        self.bad_requests = 0

    def start(self) -> ControlServer:
        self._claim_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)  # the file never exists with wider access than rw for its owner
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise EdgetuneError(f"cannot create the control socket {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old)
        self._set_access()
        sock.listen(64)
        sock.settimeout(ACCEPT_POLL_S)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="edgetune-control", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # --- internals ----------------------------------------------------------------
    def _claim_path(self) -> None:
        """Make the directory; refuse if a live daemon owns the socket; remove a stale one."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgetuneError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from None
        try:
            st = self.path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise EdgetuneError(f"{self.path} exists and is not a socket; remove it or set daemon.socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # stale: left by a daemon that did not exit cleanly
                return
        raise EdgetuneError(f"another edgetune daemon is listening on {self.path}")

    def _set_access(self) -> None:
        gid = -1
        if self.group:
            try:
                gid = grp.getgrnam(self.group).gr_gid
            except KeyError:
                log.warning("group %r does not exist (see systemd/edgetune.sysusers); the control socket "
                            "is open to its owner only", self.group)
        try:
            if gid != -1:
                os.chown(self.path, -1, gid)
            os.chmod(self.path, self.mode if gid != -1 else self.mode & 0o700)
        except OSError as exc:
            log.warning("cannot set the control socket's group/mode: %s", exc)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # e.g. EMFILE: back off instead of spinning
                continue
            if not self._slots.acquire(timeout=READ_TIMEOUT_S):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="edgetune-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(READ_TIMEOUT_S)
                reply = self._answer(self._read_line(conn))
                with contextlib.suppress(OSError):
                    conn.sendall(encode(reply))
        finally:
            self._slots.release()

    def _read_line(self, conn: socket.socket) -> bytes | None:
        """The request line; None if the client sent more than MAX_LINE without a newline."""
        buf = bytearray()
        deadline = time.monotonic() + READ_TIMEOUT_S
        while b"\n" not in buf:
            if len(buf) > MAX_LINE:
                return None
            try:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(65536)
            except OSError:  # timeout or reset: answer what arrived
                break
            if not chunk:
                break
            buf += chunk
        return bytes(buf.split(b"\n", 1)[0])

    def _answer(self, line: bytes | None) -> dict[str, Any]:
        self.requests += 1
        try:
            if line is None:
                raise ProtocolError(f"request longer than {MAX_LINE} bytes")
            return self.handler(decode_request(line))
        except (ProtocolError, EdgetuneError) as exc:
            self.bad_requests += 1
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug in a handler must not take the daemon down
            self.bad_requests += 1
            log.exception("control request failed")
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}

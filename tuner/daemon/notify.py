"""systemd's notify protocol, spoken directly (no libsystemd binding needed).

With ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``; the daemon sends
``READY=1`` once the board is restored and the control socket listens,
``STATUS=...`` lines that ``systemctl status`` shows, ``WATCHDOG=1`` at half
of ``$WATCHDOG_USEC`` while its service loop makes progress, ``RELOADING=1``
on SIGHUP and ``STOPPING=1`` on the way out. Outside systemd every call is a
no-op. A socket name starting with ``@`` is in the abstract namespace.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("edgetune.daemon")


class Notifier:
    """A client of systemd's notify socket (``$NOTIFY_SOCKET``): a no-op outside systemd, and a failed
    send never blocks or stops the service loop."""

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_s = watchdog_usec / 1e6 if watchdog_usec else None
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls) -> Notifier:
        addr = os.environ.get("NOTIFY_SOCKET") or None
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        watchdog = int(usec) if usec and usec.isdigit() and (not pid or pid == str(os.getpid())) else None
        return cls(addr, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; False (and one warning) if it failed."""
        if self.address is None:
            return False
        addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                # non-blocking: a full notify queue must never stall the service loop
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                                           | socket.SOCK_NONBLOCK)
            self._sock.sendto("\n".join(fields).encode(), addr)
            return True
        except BlockingIOError:
            log.debug("systemd's notify queue is full; dropped %s", fields[0])
            return False
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._warned = True
            return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        self.send("RELOADING=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

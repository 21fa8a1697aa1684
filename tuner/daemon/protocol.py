"""The control socket's protocol: one JSON object per line, each way.

A client connects to the Unix socket, writes one request line and reads one
reply line; the connection then closes. Requests::

    {"cmd": "status"}                         -> {"ok": true, "status": {...}}
    {"cmd": "pause"}                          stop searching and watching; keep the clocks as they are
    {"cmd": "resume"}                         hold the best config (or search if there is none); when
                                              overridden, re-apply the held config and hold it again
    {"cmd": "retune"}                         search again now, warm-started from the best config
    {"cmd": "apply", "config": {knob: value}} hold this config (validated against the space) until resume/retune
    {"cmd": "restore"}                        put back the board's own settings (DVFS) and pause

Every reply has ``"ok"``; a failed request has ``"error"`` (one line). A
command other than ``status`` is carried out by the service loop at its next
check point (after the measurement under way), so its reply says
``"accepted"``. Access is the socket file's permissions (mode 0660, group
``edgetune``): whoever can connect may use every command. ``resume``,
``retune`` and ``apply`` take the clocks back from another program: values it
wrote over edgetune's may then be written over (``overridden`` ends).

Standard library only: ``edgetune status`` imports this and nothing heavy.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tuner.errors import EdgetuneError

DEFAULT_SOCKET = "/run/edgetune/edgetune.sock"
DEFAULT_CONFIG = "/etc/edgetune/edgetune.toml"  # the daemon's settings (here, with the socket: both are cheap)
MAX_LINE = 64 * 1024  # a request longer than this is refused, not buffered
COMMANDS = ("status", "pause", "resume", "retune", "apply", "restore")


class ProtocolError(ValueError):
    """A request the daemon cannot act on; its text is the error reply."""


def decode_request(line: bytes) -> dict[str, Any]:
    """Parse and check one request line; raises :class:`ProtocolError`."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"request longer than {MAX_LINE} bytes")
    try:
        req = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(req, dict):
        raise ProtocolError("a request is a JSON object like {\"cmd\": \"status\"}")
    cmd = req.get("cmd")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown cmd {cmd!r}; one of {', '.join(COMMANDS)}")
    if cmd == "apply" and not (isinstance(req.get("config"), dict) and req["config"]):
        raise ProtocolError("apply needs \"config\": an object of knob -> value")
    return req


def encode(doc: dict[str, Any]) -> bytes:
    """One wire line: compact JSON and a newline; NaN and inf raise (they are not JSON, and clients
    parse strictly), other objects are sent as their text."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False, default=str).encode() + b"\n"


def request(path: str | Path, req: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to the daemon and return its reply (raises EdgetuneError with one line)."""
    path = Path(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(encode(req))
            buf = bytearray()
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > 16 * MAX_LINE:
                    raise EdgetuneError("the daemon's reply is too long")
    except FileNotFoundError:
        raise EdgetuneError(f"no daemon socket at {path}: is `edgetune daemon` running? "
                            "(systemctl status edgetune)") from None
    except ConnectionRefusedError:
        raise EdgetuneError(f"the daemon socket {path} is gone stale (no daemon listening)") from None
    except PermissionError:
        raise EdgetuneError(f"permission denied on {path}: join the socket's group "
                            "(usermod -aG edgetune $USER) or use sudo") from None
    except socket.timeout:
        raise EdgetuneError(f"the daemon at {path} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise EdgetuneError(f"cannot talk to the daemon at {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(bytes(buf))
    except json.JSONDecodeError:
        raise EdgetuneError(f"the daemon at {path} sent a malformed reply") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise EdgetuneError(f"the daemon at {path} sent a malformed reply")
    if not reply["ok"]:
        raise EdgetuneError(f"the daemon refused: {reply.get('error', 'no reason given')}")
    return reply

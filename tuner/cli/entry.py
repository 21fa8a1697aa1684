"""The ``edgetune`` console script.

``edgetune status`` is polled by people and scripts and must answer within
0.3 s (DESIGN §7); Typer alone (it pulls in pydantic) costs ~0.1 s of that on
a Jetson-class CPU. So the plain forms of ``status`` (``--socket``,
``--json``) go straight to the socket client; everything else, including
``status --help`` and any argument this does not know, goes to the Typer app,
which declares the same options and gives the usual usage errors.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tuner.daemon.protocol import DEFAULT_SOCKET


def main() -> None:
    """The console script: the plain ``status`` forms go straight to the socket client (no Typer
    import, to answer within 0.3 s); everything else goes to the Typer app."""
    args = sys.argv[1:]
    if args[:1] == ["status"]:
        parsed = _status_args(args[1:])
        if parsed is not None:
            from tuner.cli.status import show_status
            from tuner.errors import EdgetuneError

            try:
                show_status(*parsed)
            except EdgetuneError as exc:
                sys.stderr.write(f"error: {exc}\n")
                sys.exit(1)
            return
    from tuner.cli.main import main as full_main

    full_main()


def _status_args(args: list[str]) -> tuple[Path, bool] | None:
    """(socket, as_json) for the plain forms; None hands over to Typer."""
    socket, as_json = os.environ.get("EDGETUNE_SOCKET") or DEFAULT_SOCKET, False
    it = iter(args)
    for a in it:
        if a == "--json":
            as_json = True
        elif a == "--socket":
            value = next(it, None)
            if value is None:
                return None
            socket = value
        elif a.startswith("--socket="):
            socket = a.partition("=")[2]
        else:
            return None
    return Path(socket), as_json


if __name__ == "__main__":
    main()

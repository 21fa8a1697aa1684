"""A throwaway PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a temporary data
directory, TCP on loopback only (and its Unix socket in that directory), stopped at teardown.

PostgreSQL refuses to run as root, so under root (CI) the server runs as the ``postgres`` user
(which Debian's package creates), or ``nobody``, through ``runuser``; its directory is handed to
that user. Authentication is ``trust`` on loopback: the server is reachable from this machine only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional


def pg_bin(name: str) -> Optional[str]:
    """A PostgreSQL server binary: on PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian)."""
    found = shutil.which(name)
    if found and name != "psql":
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")])
    return candidates[-1] if candidates else found


def available() -> Optional[str]:
    """Why a server cannot be started here, or None when it can."""
    for name in ("initdb", "pg_ctl"):
        if pg_bin(name) is None:
            return f"no PostgreSQL {name} (Debian: apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses to run as root"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """``start()``, ``create_database(name)`` -> URL, ``stop()``; a port may be chosen before it starts."""

    def __init__(self, port: Optional[int] = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="edgetune-pg-"))
        self.data = self.dir / "data"
        self.user: Optional[str] = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                break
        self.running = False

    def _run(self, args: List[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
        cmd = (["runuser", "-u", self.user, "--"] if self.user else []) + args
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              cwd=str(self.dir))

    def start(self) -> PgServer:
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
        if not self.data.exists():
            out = self._run([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                             "-E", "UTF8", "--no-sync"])
            if out.returncode != 0:
                raise RuntimeError(f"initdb failed: {out.stdout}")
        opts = f"-k {self.dir} -p {self.port} -h 127.0.0.1 -c fsync=off -c max_connections=60"
        out = self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                         "-t", "60", "-o", opts, "start"])
        if out.returncode != 0:
            log = (self.dir / "server.log").read_text() if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {out.stdout}\n{log}")
        self.running = True
        return self

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.running:
            self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop"])
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the PostgreSQL server did not come up")

"""The application side of the external workload, on its own (run under Python 3.6 too).

``workloads/client.py`` is meant to be copied beside an application that runs on
a JetPack's system Python (3.6 on a Nano), so these tests copy it into a folder
of its own and import it from there, with nothing of edgetune importable. They
use only the standard library and pytest, and CI runs them under 3.6 with
``--noconftest`` (the suite's conftest imports edgetune, which needs 3.8+).
"""

import importlib.util
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "workloads" / "client.py"


@pytest.fixture
def client(tmp_path):
    """The client module, loaded from a copy with no package around it."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(str(CLIENT), str(app_dir / "client.py"))
    spec = importlib.util.spec_from_file_location("client", str(app_dir / "client.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert Path(module.__file__).parent == app_dir  # the copy, not the package
    return module


@pytest.fixture
def channel(tmp_path):
    """A channel as edgetune serves it: knobs.json plus a datagram socket for reports."""
    path = tmp_path / "channel"
    path.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path / "reports.sock"))
    sock.settimeout(5.0)
    yield path, sock
    sock.close()


def test_reports_carry_the_generation_and_the_work_done(client, channel, monkeypatch):
    path, sock = channel
    (path / "knobs.json").write_text(json.dumps({"generation": 7, "knobs": {"batch_size": 16, "threads": 2}}))
    monkeypatch.setenv(client.CHANNEL_ENV, str(path))
    c = client.Client()
    assert c.enabled
    assert c.batch_size(default=4) == 16 and c.knob("threads", 1) == 2 and c.knob("absent", "x") == "x"
    c.report(16, 0.125)
    msg = json.loads(sock.recv(4096).decode())
    assert msg == {"g": 7, "n": 16, "t": 0.125, "pid": os.getpid()}
    # a new config is picked up once the file changes (new size), and reports say so
    (path / "knobs.json").write_text(json.dumps({"generation": 8, "knobs": {"batch_size": 4}}) + "  ")
    assert c.batch_size(default=1) == 4
    c.report(4)
    assert json.loads(sock.recv(4096).decode())["g"] == 8
    c.close()


def test_without_edgetune_every_call_is_a_no_op(client, tmp_path, monkeypatch):
    monkeypatch.delenv(client.CHANNEL_ENV, raising=False)
    c = client.Client()
    assert not c.enabled and c.batch_size(default=8) == 8 and c.knobs() == {}
    c.report(8, 0.01)
    lonely = client.Client(str(tmp_path))  # a channel directory nobody serves
    assert lonely.batch_size(default=3) == 3
    lonely.report(3, 0.01)  # nothing listening: no exception, serving goes on
    (tmp_path / "knobs.json").write_text("{not json")  # half-written file: keep the last values
    assert lonely.batch_size(default=3) == 3

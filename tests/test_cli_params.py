"""``KEY=VALUE`` options: ``-o``, ``--set``, ``--config`` and ``--knob`` parse alike (tuner.cli.params).

Each option is driven through the command line; the flow behind it is replaced by a
stub that records what the command handed it, so nothing is measured.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.cli.params import knob_value, knob_values, parse_assignments
from tuner.errors import ConfigError

cli = CliRunner()


class Captured(Exception):
    """Raised by a stub once it has recorded what the command passed it."""


@pytest.fixture
def seen(monkeypatch) -> dict[str, Any]:
    """Stubs for the flows behind the four options; each records its arguments in the returned dict."""
    got: dict[str, Any] = {}

    def search(**kw):
        got.update(kw)
        raise Captured

    def send(socket, req):
        got["request"] = req
        return {"ok": True, "note": "stub"}

    def session_open(**kw):
        got.update(kw)
        raise Captured

    monkeypatch.setattr("tuner.cli.searching.run_search_command", search)
    monkeypatch.setattr("tuner.cli.status.request", send)
    monkeypatch.setattr("tuner.app.Session.open", staticmethod(session_open))
    return got


def sweep(*extra: str) -> list[str]:
    return ["sweep", "--board", "sim:jetson-nano", "--workload", "alexnet", *extra]


def compare(config: str) -> list[str]:
    return ["compare", "--board", "sim:jetson-nano", "--workload", "alexnet", "--config", config]


def control(*sets: str) -> list[str]:
    return ["control", "apply", *[a for s in sets for a in ("--set", s)], "--socket", "/nonexistent"]


def passed(args: list[str]):
    res = cli.invoke(app, args)
    assert res.exit_code in (0, 1) and (res.exit_code == 0 or isinstance(res.exception, Captured)), \
        (res.output, res.exception)
    return res


def refused(args: list[str]) -> str:
    """The one-line message of a command refused before it did anything."""
    res = cli.invoke(app, args)
    assert res.exit_code == 1 and isinstance(res.exception, ConfigError), (res.output, res.exception)
    message = str(res.exception)
    assert "\n" not in message
    return message


def test_workload_options_are_text_split_at_the_first_equals_sign(seen):
    passed(sweep("-o", "command=python3 app.py --level=2", "-o", " model = mobilenet_v2 ", "-o", "max_tokens=64",
                 "--model-file", "m.onnx"))
    assert seen["options"] == {"command": "python3 app.py --level=2", "model": "mobilenet_v2", "max_tokens": "64",
                               "model_file": "m.onnx"}  # the factory types its options


def test_control_apply_sends_typed_knob_values(seen):
    res = passed(control("gpu_freq_hz=614400000", "graph = script", "share=0.5", "placement=cuda,cpu"))
    assert res.exit_code == 0 and "apply: accepted" in res.stdout
    assert seen["request"] == {"cmd": "apply", "config": {"gpu_freq_hz": 614400000, "graph": "script", "share": 0.5,
                                                          "placement": "cuda,cpu"}}


def test_compare_config_values_are_typed_as_set_types_them(seen):
    passed(compare("cpu_freq_khz=921600, gpu_freq_hz=614400000,graph=script,share=0.5"))
    assert json.loads(seen["spec"]["tuned"]) == {"cpu_freq_khz": 921600, "gpu_freq_hz": 614400000, "graph": "script",
                                                 "share": 0.5}  # 0.5 is a number, as --set reads it (was text)
    assert knob_value("-1") == -1 and knob_value("1479MHz") == "1479MHz"


def test_knob_takes_a_bare_name_or_a_list_of_values(seen):
    passed(sweep("--knob", "concurrency=1,2,4", "--knob", "graph", "--knob", "placement=cuda,cpu;cpu,cuda",
                 "--knob", "cpu_freq_khz"))
    knobs = seen["knobs"]
    assert knobs["concurrency"] == (1, 2, 4) and knobs["graph"] is None
    assert knobs["placement"] == ("cuda,cpu", "cpu,cuda")
    assert "cpu_freq_khz" not in seen["optional"]  # asked for by name: its default domain, not optional


# the same malformed items, through each of the four options: one line each, exit 1, nothing run
OPTIONS = {
    "-o": (lambda item: sweep("-o", item), "--option takes KEY=VALUE"),
    "--set": (lambda item: control(item), "--set takes KNOB=VALUE"),
    "--config": (lambda item: compare(item), "--config takes KNOB=VALUE,..."),
    "--knob": (lambda item: sweep("--knob", item), "--knob takes NAME or NAME=v1,v2"),
}


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("item", ["=5", " = 5", "gpu_freq_hz=", "gpu_freq_hz= "])
def test_every_option_refuses_an_empty_key_or_value_alike(seen, option, item):
    args, start = OPTIONS[option]
    message = refused(args(item))
    assert message.startswith(start) and (repr(item) in message or repr(item.strip()) in message)
    assert "request" not in seen and "options" not in seen and "spec" not in seen


@pytest.mark.parametrize("option", ["-o", "--set", "--config"])
def test_a_bare_key_is_refused_where_a_value_is_needed(seen, option):
    args, start = OPTIONS[option]
    assert refused(args("gpu_freq_hz")).startswith(start)


@pytest.mark.parametrize("args,message", [
    (sweep("-o", "model=a", "-o", "model=b"), "--option model is given twice"),
    (control("batch_size=8", "batch_size=16"), "--set batch_size is given twice"),
    (compare("gpu_freq_hz=614400000,gpu_freq_hz=921600000"), "--config gpu_freq_hz is given twice"),
    (sweep("--knob", "concurrency=1,2", "--knob", "concurrency"), "--knob concurrency is given twice"),
    (sweep("--knob", "cpu_freq_khz=1479000"), "cpu_freq_khz has its own option"),
])
def test_a_key_given_twice_or_by_two_options_is_refused_not_guessed(seen, args, message):
    assert refused(args).startswith(message)


def test_the_parser_keeps_the_order_given_and_the_value_typing_chosen():
    assert list(parse_assignments(["b=1", "a=2"], "--x")) == ["b", "a"]
    assert parse_assignments(["a=1", "b=x"], "--x", value=knob_value) == {"a": 1, "b": "x"}
    assert parse_assignments(["a", "b=1"], "--x", "NAME or NAME=V", bare=True) == {"a": None, "b": "1"}
    assert knob_values("8, 16,32", "--k") == (8, 16, 32)
    with pytest.raises(ConfigError, match="empty list"):
        knob_values(";", "--k")
    with pytest.raises(ConfigError, match=r"\(e\.g\. a=1\)$"):
        parse_assignments(["a"], "--x", example="a=1")

"""The LiteRT workload on a .tflite model built here (tests/tflite_builder.py): nothing downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tuner.config import BATCH_SIZE, Config
from tuner.errors import ConfigError
from workloads.litert import THREADS, LiteRTWorkload

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tflite")
from tflite_builder import build_fc_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def model(tmp_path) -> Path:
    return build_fc_model(tmp_path / "fc.tflite", n_in=8, n_out=4)


def test_a_local_tflite_model_runs_at_a_resized_batch_and_computes_the_layer(model):
    wl = LiteRTWorkload(model_file=str(model), delegate="auto")
    assert {k.name for k in wl.knobs()} == {BATCH_SIZE, THREADS}
    wl.setup(Config({BATCH_SIZE: 4, THREADS: 1}))
    try:
        out = wl.run(10)
        it = wl.interpreter
        x = np.ones((4, 8), np.float32)
        it.set_tensor(wl._input["index"], x)
        it.invoke()
        y = it.get_tensor(wl._outputs[0])
    finally:
        wl.teardown()
    assert out.inferences == 10 and len(out.batch_latencies_s) == 3
    assert wl.accelerator == "cpu"  # no EdgeTPU here: auto falls back
    w, b = np.load(model.with_suffix(".weights.npy")), np.load(model.with_suffix(".bias.npy"))
    assert y.shape == (4, 4) and np.allclose(y, x @ w.T + b, atol=1e-5)


# a delegate that fails to load leaves a half-built object whose __del__ complains (LiteRT's, harmless)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_bad_tflite_inputs_are_clear_errors(tmp_path, model):
    with pytest.raises(ConfigError, match="needs --model-file"):
        LiteRTWorkload()
    with pytest.raises(ConfigError, match="does not exist"):
        LiteRTWorkload(model_file=str(tmp_path / "nope.tflite"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(ConfigError, match="cannot load"):
        LiteRTWorkload(model_file=str(junk)).setup(Config({BATCH_SIZE: 1}))
    (tmp_path / "img").mkdir()
    __import__("PIL.Image").Image.new("RGB", (8, 8)).save(tmp_path / "img" / "a.png")
    with pytest.raises(ConfigError, match="NHWC 3-channel"):  # the test model takes vectors, not images
        LiteRTWorkload(model_file=str(model), images=str(tmp_path / "img")).setup(Config({BATCH_SIZE: 1}))
    with pytest.raises(ConfigError, match="EdgeTPU delegate"):
        LiteRTWorkload(model_file=str(model), delegate="edgetpu").setup(Config({BATCH_SIZE: 1}))


def test_edgetune_run_tflite(model):
    out = subprocess.run([sys.executable, "-m", "tuner.cli.entry", "run", "--workload", "tflite", "--board", "linux",
                          "--model-file", str(model), "--batch-size", "2", "--inferences", "8", "--json"],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["inferences"] == 8 and doc["feasible"] and doc["batch_latency_p50_s"] > 0

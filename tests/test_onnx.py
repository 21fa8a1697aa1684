"""The ONNX Runtime workload on .onnx models built here with onnx's helper API: nothing downloaded.

CPU only: the CUDA and TensorRT providers (and the DLAs) are not offered by the
CPU onnxruntime build these tests run on; what they would be given is checked
without running them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tuner.config import BATCH_SIZE, PLACEMENT, Config, Knob
from tuner.errors import ConfigError
from workloads.base import RunResult
from workloads.cme import MultiTenant

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from workloads import onnxrt  # noqa: E402
from workloads.onnxrt import GRAPH_OPT, PROVIDER, THREADS, OnnxWorkload  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORES = os.cpu_count() or 1


# --- models -------------------------------------------------------------------------------------------
def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # loadable by every onnxruntime >= 1.16
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _init(name: str, array: np.ndarray):
    return numpy_helper.from_array(array.astype(np.float32), name)


def image_model(path: Path, *, batch: int | str = "batch", nhwc: bool = False, size: int | str = 16) -> Path:
    """Conv + GlobalAveragePool + Flatten + Gemm: a 5-class image classifier (NCHW, or NHWC via a Transpose)."""
    rng = np.random.default_rng(0)
    nodes = []
    first = "x"
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2]))
        first = "x_nchw"
    nodes += [helper.make_node("Conv", [first, "conv_w", "conv_b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
              helper.make_node("GlobalAveragePool", ["c"], ["p"]),
              helper.make_node("Flatten", ["p"], ["f"], axis=1),
              helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1)]
    shape = [batch, size, size, 3] if nhwc else [batch, 3, size, size]
    graph = helper.make_graph(
        nodes, "image", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 5])],
        [_init("conv_w", rng.normal(size=(4, 3, 3, 3))), _init("conv_b", rng.normal(size=4)),
         _init("fc_w", rng.normal(size=(5, 4))), _init("fc_b", rng.normal(size=5))])
    return _save(graph, path)


def text_model(path: Path, vocab: int = 50) -> Path:
    """int64 input_ids -> Gather embedding (masked by attention_mask) -> ReduceMean -> Gemm; symbolic batch, seq."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Gather", ["embedding", "input_ids"], ["e"]),
             helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["m", "last"], ["m3"]),
             helper.make_node("Mul", ["e", "m3"], ["em"]),
             helper.make_node("ReduceMean", ["em"], ["pooled"], axes=[1], keepdims=0),
             helper.make_node("Gemm", ["pooled", "cls_w", "cls_b"], ["logits"], transB=1)]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
              for n in ("input_ids", "attention_mask")]
    graph = helper.make_graph(
        nodes, "text", inputs, [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [_init("embedding", rng.normal(size=(vocab, 8))), _init("cls_w", rng.normal(size=(3, 8))),
         _init("cls_b", rng.normal(size=3)), numpy_helper.from_array(np.array([2], np.int64), "last")])
    return _save(graph, path)


@pytest.fixture
def image(tmp_path) -> Path:
    return image_model(tmp_path / "image.onnx")


@pytest.fixture
def fixed(tmp_path) -> Path:
    return image_model(tmp_path / "fixed.onnx", batch=1)


@pytest.fixture
def text(tmp_path) -> Path:
    return text_model(tmp_path / "text.onnx")


@pytest.fixture
def image_dir(tmp_path) -> Path:
    from PIL import Image

    d = tmp_path / "images"
    d.mkdir()
    for i, size in enumerate(((40, 30), (20, 50), (64, 64))):
        Image.new("RGB", size, (40 * i, 100, 200)).save(d / f"{i}.png")
    return d


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner.cli.entry", *args], capture_output=True, text=True, cwd=REPO)


# --- the workload ---------------------------------------------------------------------------------------
def test_knobs_come_from_the_model_and_this_onnxruntime_build(image, fixed):
    knobs = {k.name: k for k in OnnxWorkload(model_file=str(image)).knobs()}
    assert set(knobs) == {BATCH_SIZE, PROVIDER, THREADS, GRAPH_OPT}
    assert knobs[BATCH_SIZE].values == onnxrt.BATCHES  # the symbolic batch dimension is the knob
    assert knobs[PROVIDER].values == ("cpu",)  # the CPU build: no CUDA, no TensorRT (nor Azure's, not a processor)
    assert knobs[THREADS].values == tuple(range(1, CORES + 1))
    assert knobs[GRAPH_OPT].values == ("disable", "basic", "extended", "all") and not knobs[GRAPH_OPT].ordered
    assert {k.name: k for k in OnnxWorkload(model_file=str(fixed)).knobs()}[BATCH_SIZE].values == (1,)


def test_an_image_model_runs_exactly_the_inferences_asked_and_computes_the_model(image):
    wl = OnnxWorkload(model_file=str(image))
    wl.setup(Config({BATCH_SIZE: 4, THREADS: 1, GRAPH_OPT: "basic", PROVIDER: "cpu"}))
    try:
        assert wl.providers_used == ["CPUExecutionProvider"] and wl.device == "cpu" and wl.load_s > 0
        out = wl.run(10)  # two batches of 4 and a partial one of 2
        x = wl._static["x"]
        assert x.shape == (4, 3, 16, 16) and x.dtype == np.float32
        y = wl.session.run(None, {"x": x})[0]
    finally:
        wl.teardown()
    assert isinstance(out, RunResult) and out.inferences == 10 and len(out.batch_latencies_s) == 3
    assert all(t > 0 for t in out.batch_latencies_s) and out.wall_s > 0
    # the same graph run without optimisation computes the same logits
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(str(image), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert y.shape == (4, 5) and np.allclose(y, ref, atol=1e-5)
    assert wl.session is None  # torn down


@pytest.mark.parametrize("level", ["disable", "basic", "extended", "all"])
def test_every_graph_optimisation_level_runs(image, level):
    wl = OnnxWorkload(model_file=str(image), threads="1")
    wl.setup(Config({BATCH_SIZE: 2, GRAPH_OPT: level}))
    try:
        assert wl.run(3).inferences == 3
    finally:
        wl.teardown()


def test_a_fixed_batch_model_runs_only_at_its_batch(fixed):
    wl = OnnxWorkload(model_file=str(fixed))
    with pytest.raises(ConfigError, match=r"fixed batch of 1 .*cannot run batch_size=2") as info:
        wl.setup(Config({BATCH_SIZE: 2}))
    assert "\n" not in str(info.value)
    wl.setup(Config({BATCH_SIZE: 1}))
    try:
        out = wl.run(3)
    finally:
        wl.teardown()
    assert out.inferences == 3 and len(out.batch_latencies_s) == 3


def test_a_text_model_gets_token_ids_within_its_vocabulary(text):
    wl = OnnxWorkload(model_file=str(text), seq_len="16")
    assert [s.kind for s in wl.signature.inputs] == ["text", "text"]
    assert wl.vocab_size == 50  # read from the embedding the ids index
    wl.setup(Config({BATCH_SIZE: 2, THREADS: 1}))
    try:
        ids, mask = wl._static["input_ids"], wl._static["attention_mask"]
        assert ids.shape == mask.shape == (2, 16) and ids.dtype == np.int64
        assert ids.min() >= 0 and ids.max() < 50 and (mask == 1).all()
        out = wl.run(5)
    finally:
        wl.teardown()
    assert out.inferences == 5 and len(out.batch_latencies_s) == 3
    assert OnnxWorkload(model_file=str(text), vocab_size=7).vocab_size == 7


@pytest.mark.parametrize("nhwc", [False, True])
def test_images_are_decoded_per_batch_in_the_models_layout(tmp_path, image_dir, nhwc):
    model = image_model(tmp_path / "m.onnx", nhwc=nhwc, size="side")
    wl = OnnxWorkload(model_file=str(model), images=str(image_dir), image_size=32)
    assert wl._image is not None and wl._image.channel_axis == (3 if nhwc else 1)
    wl.setup(Config({BATCH_SIZE: 2}))
    try:
        batch = wl._decode(2)
        assert batch.shape == ((2, 32, 32, 3) if nhwc else (2, 3, 32, 32)) and batch.dtype == np.float32
        assert "x" not in wl._static  # decoded for every batch, not cached
        assert wl.run(5).inferences == 5
    finally:
        wl.teardown()


def test_bad_inputs_are_one_clear_line_each(tmp_path, image, text, image_dir):
    cases = [
        ({}, "needs --model-file"),
        ({"model_file": str(tmp_path / "nope.onnx")}, "does not exist"),
        ({"model_file": str(image), "provider": "npu"}, "provider='npu' is unknown"),
        ({"model_file": str(image), "provider": "cuda"}, "provider=cuda: this onnxruntime build .* offers cpu"),
        ({"model_file": str(image), "graph_opt": "max"}, "graph_opt='max'"),
        ({"model_file": str(image), "threads": "0"}, "threads='0'"),
        ({"model_file": str(text), "images": str(image_dir)}, "--images needs an image input"),
    ]
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    cases.append(({"model_file": str(junk)}, "cannot load .*junk.onnx as an ONNX model"))
    for options, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            OnnxWorkload(**options)
        assert "\n" not in str(info.value), options
    wl = OnnxWorkload(model_file=str(image))
    with pytest.raises(ConfigError, match="provider='tpu' is unknown"):
        wl.setup(Config({BATCH_SIZE: 1, PROVIDER: "tpu"}))
    with pytest.raises(ConfigError, match="device=dla0: image.onnx can be placed on cpu here"):
        wl.setup(Config({BATCH_SIZE: 1, "device": "dla0"}))


def test_cli_errors_are_one_line(tmp_path, image):
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    for args, message in [(("--model-file", str(junk)), "as an ONNX model"),
                          (("--model-file", str(tmp_path / "missing.onnx")), "does not exist"),
                          (("--model-file", str(image), "-o", "provider=warp"), "provider='warp' is unknown")]:
        out = cli("run", "--workload", "onnx", "--board", "linux", "--inferences", "2", *args)
        assert out.returncode == 1, out
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr


# --- placement: the DLAs only through TensorRT --------------------------------------------------------
def test_no_tensorrt_here_so_no_dla_is_offered(image):
    if importlib.util.find_spec("tensorrt") is not None or onnxrt.offered_providers() != ("cpu",):
        pytest.skip("a GPU build of onnxruntime or TensorRT is installed here")
    assert onnxrt.dla_cores() == 0
    assert onnxrt.placements() == ("cpu",)
    dmp = MultiTenant(models=f"onnx:{image},onnx:{image}", placement=True)
    knobs = {k.name: k for k in dmp.knobs()}
    assert knobs[PLACEMENT].values == ("cpu,cpu",)
    assert PROVIDER not in knobs  # the placement decides the provider


def test_a_tensorrt_build_on_a_board_with_two_dlas_offers_them_with_the_dla_options(monkeypatch, image):
    # what a Jetson AGX Orin's onnxruntime-gpu build with TensorRT would say; the sessions are not started here
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(available))
    monkeypatch.setattr(onnxrt, "dla_cores", lambda: 2)
    wl = OnnxWorkload(model_file=str(image))
    assert wl.default_provider == "cuda"
    assert {k.name: k for k in wl.knobs()}[PROVIDER].values == ("cpu", "cuda", "tensorrt")
    assert wl.placements() == ("cpu", "cuda", "dla0", "dla1")
    assert wl._placement("dla1") == ("tensorrt", 1)
    assert wl._providers("tensorrt", 1) == [
        ("TensorrtExecutionProvider", {"trt_dla_enable": True, "trt_dla_core": 1, "trt_fp16_enable": True}),
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert wl._providers("tensorrt", None) == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                               "CPUExecutionProvider"]
    assert wl._providers("cuda", None) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    dmp = MultiTenant(models=f"onnx:{image},onnx:{image}", placement=True)
    values = {k.name: k for k in dmp.knobs()}[PLACEMENT].values
    assert len(values) == 16 and "dla0,dla1" in values and "cpu,cuda" in values
    monkeypatch.setattr(onnxrt, "dla_cores", lambda: 0)  # TensorRT, but a board without DLAs (Orin Nano)
    assert wl.placements() == ("cpu", "cuda")


# --- multi-tenant ----------------------------------------------------------------------------------------
def test_cme_runs_onnx_models_as_tenants(image, text):
    cme = MultiTenant(models=f"onnx:{image},onnx:{text}", seq_len=8)
    knobs = {k.name: k for k in cme.knobs()}
    assert {BATCH_SIZE, PROVIDER, THREADS, GRAPH_OPT} <= set(knobs)
    cme.setup(Config({BATCH_SIZE: 2, THREADS: 1}))
    try:
        out = cme.run(9)
    finally:
        cme.teardown()
    assert out.inferences == 9 and out.tenants == {f"onnx:{image}#0": 5, f"onnx:{text}#1": 4}
    assert len(out.batch_latencies_s) == 3 + 2


def test_cme_concurrent_instances_of_one_onnx_model(image):
    cme = MultiTenant(model=f"onnx:{image}", max_concurrency=3)
    cme.setup(Config({BATCH_SIZE: 2, "concurrency": 3, THREADS: 1}))
    try:
        assert len({id(t.session) for t in cme.tenants}) == 3  # each tenant its own session
        out = cme.run(12)
    finally:
        cme.teardown()
    assert out.inferences == 12 and sorted(out.tenants.values()) == [4, 4, 4]


class TorchLike:
    """A tenant with a device knob (cpu, cuda), as the PyTorch workloads have, and batches up to 4."""

    def __init__(self, **_: object) -> None:
        self.device = "cpu"

    def knobs(self) -> list[Knob]:
        return [Knob(BATCH_SIZE, (1, 2, 4)), Knob("device", ("cpu", "cuda"), ordered=False),
                Knob("graph", ("eager", "script"), ordered=False)]

    def setup(self, config: Config) -> None:
        self.device = str(config.get("device", "cpu"))

    def run(self, inferences: int) -> RunResult:
        return RunResult(inferences, [0.001], 0.001)

    def teardown(self) -> None:
        pass


def test_dmp_mixes_an_onnx_model_with_another_runtime_each_offered_its_own_processors(image):
    from workloads.registry import make_workload

    def make(name: str, **options: object) -> object:
        return TorchLike() if name == "torchlike" else make_workload(name, **options)

    dmp = MultiTenant(models=f"onnx:{image},torchlike", placement=True, make=make)
    knobs = {k.name: k for k in dmp.knobs()}
    assert knobs[BATCH_SIZE].values == (1, 2, 4)  # what both accept
    assert knobs[PLACEMENT].values == ("cpu,cpu", "cpu,cuda")  # the ONNX model: cpu only here
    assert {"graph", THREADS, GRAPH_OPT} <= set(knobs) and PROVIDER not in knobs
    dmp.setup(Config({BATCH_SIZE: 2, PLACEMENT: "cpu,cuda", THREADS: 1}))
    try:
        assert [t.device for t in dmp.tenants] == ["cpu", "cuda"]
        assert dmp.tenants[0].providers_used == ["CPUExecutionProvider"]
        out = dmp.run(6)
    finally:
        dmp.teardown()
    assert out.inferences == 6
    with pytest.raises(ConfigError, match="one processor per model"):
        dmp.setup(Config({BATCH_SIZE: 2, PLACEMENT: "cpu"}))


# --- the command line --------------------------------------------------------------------------------
def test_edgetune_run_onnx_reports_exactly_the_inferences_asked_and_the_session_time(image):
    out = cli("run", "--workload", "onnx", "--board", "linux", "--model-file", str(image), "--batch-size", "2",
              "--inferences", "8", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["inferences"] == 8 and doc["feasible"] and doc["simulated"] is False
    assert doc["batch_latency_p95_s"] >= doc["batch_latency_p50_s"] > 0
    assert doc["load_s"] > 0  # session creation, apart from the measured inference


def test_edgetune_run_a_fixed_batch_model_at_another_batch_is_one_line(fixed):
    out = cli("run", "--workload", "onnx", "--board", "linux", "--model-file", str(fixed), "--batch-size", "2",
              "--inferences", "8")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == ["error: fixed.onnx has a fixed batch of 1 (x: [1, 3, 16, 16]): it "
                                               "cannot run batch_size=2; export it with a dynamic batch dimension"]


def test_edgetune_tune_onnx_threads_on_this_machine_names_its_best(tmp_path, image):
    # no cpufreq, no power sensors here: time is what can be measured
    out = cli("tune", "--board", "linux", "--workload", "onnx", "--model-file", str(image), "--objective", "time",
              "--knob", "threads", "--budget", "4", "--inferences", "64", "--repeats", "1",
              "--out", str(tmp_path / "run"), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    best = doc["best"]["config"]
    assert set(best) == {"batch_size", "threads"}
    assert best["threads"] in range(1, CORES + 1) and best["batch_size"] in (8, 16, 32, 64)
    assert doc["n_trials"] == 4 and doc["n_infeasible"] == 0 and doc["best"]["inferences"] == 64


def test_workloads_list_shows_onnx_and_what_it_needs():
    out = cli("workloads", "list", "--json")
    assert out.returncode == 0, out.stderr
    (onnx_row,) = [w for w in json.loads(out.stdout)["workloads"] if w["name"] == "onnx"]
    assert onnx_row["requires"] == ["onnxruntime"] and onnx_row["available"] and not onnx_row["simulated"]
    assert onnx_row["source"] == "workloads.onnxrt:onnx" and ".onnx" in onnx_row["description"]

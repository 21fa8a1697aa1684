"""Any ``.onnx`` model through ONNX Runtime: the CPU here; CUDA, TensorRT and the DLAs on a Jetson build.

(The module is ``onnxrt``, not ``onnx``, so that it never shadows the ``onnx`` package.)

The model file is the user's (``model_file=``). Its inputs are made from the
model's own input signature, read once per file:

- an image input (rank 4, float or uint8, NCHW or NHWC by where the 1 or 3
  channels are) gets random pixels, or with ``images=DIR`` images decoded,
  resized, centre-cropped and normalised (ImageNet mean/std) on the CPU for
  every batch, as the other vision workloads do; symbolic H and W are
  ``image_size`` (224);
- a text input (an integer input named ``input_ids``, ``attention_mask``,
  ``token_type_ids``, ``position_ids``, or any rank-2 integer input) gets
  token ids below the vocabulary size (``vocab_size=``; else read from the
  embedding the ids index, with the ``onnx`` package; else 100), a mask of
  ones, zero segment ids, positions 0..n-1; a symbolic sequence length is
  ``seq_len`` (128), as is any other symbolic dimension;
- the first dimension is the batch: symbolic, it is the ``batch_size`` knob;
  fixed, the model runs only at that batch, and asking for another is a
  one-line error.

Knobs: ``batch_size``; ``provider`` (``cpu``, ``cuda``, ``tensorrt``: those
this onnxruntime build offers); ``threads`` (the session's intra-op threads,
which the CPU provider computes on); ``graph_opt`` (ONNX Runtime's graph
optimisation level: ``disable``, ``basic``, ``extended``, ``all``). Options of
the same names set them when they are not searched (``edgetune run``). Session
creation — graph optimisation, and a TensorRT engine build — is timed as
``load_s``, apart from the measured inference.

Placement (``dmp``): a config's ``device`` (``cpu``, ``cuda``, ``dla0``,
``dla1``) overrides the provider. ``dla0``/``dla1`` are offered only where the
``tensorrt`` module is importable, this build has the TensorRT execution
provider and TensorRT counts DLA cores on the board; they run the model on the
TensorRT provider with ``trt_dla_enable`` and ``trt_dla_core`` (FP16, as the
DLA requires), with the GPU and the CPU as fallback for the layers the DLA
cannot run.

onnxruntime is imported inside functions only, so listing workloads stays fast.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuner.config import BATCH_SIZE, Config, Knob
from tuner.errors import ConfigError, EdgetuneError, Infeasible
from workloads.base import RunResult, timed_batches
from workloads.inputs import ImageCycle, existing_file

PROVIDER = "provider"
THREADS = "threads"
GRAPH_OPT = "graph_opt"
DEVICE = "device"  # set per tenant by dmp's placement
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
GRAPH_OPTS = ("disable", "basic", "extended", "all")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
DEFAULT_VOCAB = 100
SEQ_LEN = 128
IMAGE_SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
          "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
          "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
          "tensor(bool)": np.bool_}
INSTALL = "pip install 'edgetune[onnx]' (on a Jetson, NVIDIA's onnxruntime-gpu wheel: see README)"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise EdgetuneError(f"the onnx workload needs ONNX Runtime: {INSTALL}") from None
    onnxruntime.set_default_logger_severity(3)  # errors only: its warnings are not the user's business here
    return onnxruntime


def _message(exc: BaseException) -> str:
    """ONNX Runtime's error as one line, without its ``[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :`` prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", text)


def _is_memory(text: str) -> bool:
    text = text.lower()
    return "out of memory" in text or "failed to allocate" in text or "bad_alloc" in text


def offered_providers() -> tuple[str, ...]:
    """The execution providers this onnxruntime build offers, by short name (cpu, cuda, tensorrt)."""
    available = set(_ort().get_available_providers())
    return tuple(short for short, ep in PROVIDERS.items() if ep in available)


def provider_name(value: object) -> str:
    """``value`` (``cuda`` or ``CUDAExecutionProvider``, any case) as an offered short name; else one line."""
    text = str(value).strip()
    offered = offered_providers()
    for short, ep in PROVIDERS.items():
        if text.lower() in (short, ep.lower()):
            if short not in offered:
                raise ConfigError(f"provider={short}: this onnxruntime build ({_ort().__version__}) offers "
                                  f"{', '.join(offered)}; CUDA and TensorRT need onnxruntime-gpu or NVIDIA's "
                                  "Jetson wheel (see README)")
            return short
    raise ConfigError(f"provider={text!r} is unknown: use one of {', '.join(offered)} (what this onnxruntime offers)")


@functools.lru_cache(maxsize=None)
def dla_cores() -> int:
    """DLA cores TensorRT counts on this board; 0 where TensorRT is not importable (or says none)."""
    if importlib.util.find_spec("tensorrt") is None:
        return 0
    try:
        import tensorrt

        builder = tensorrt.Builder(tensorrt.Logger(tensorrt.Logger.ERROR))
        return int(builder.num_DLA_cores)
    except Exception:
        return 0


def placements() -> tuple[str, ...]:
    """The processors a tenant can be placed on (dmp): cpu; cuda; dla0/dla1 through TensorRT where present."""
    offered = offered_providers()
    out = ["cpu"]
    if "cuda" in offered:
        out.append("cuda")
    if "tensorrt" in offered:
        out.extend(f"dla{i}" for i in range(min(dla_cores(), 2)))
    return tuple(out)


# --- the model's input signature ------------------------------------------------------------------
@dataclass(frozen=True)
class InputSpec:
    """One model input as its ONNX signature gives it: name, shape (None for a symbolic dimension),
    dtype, and the kind (image, text, tensor) that decides how its data is made."""

    name: str
    shape: tuple  # ints, or None/str for symbolic dimensions
    dtype: Any
    kind: str  # image, text or tensor
    channel_axis: int = 1  # images: 1 (NCHW) or 3 (NHWC)

    def fixed(self, axis: int) -> int | None:
        d = self.shape[axis]
        return d if isinstance(d, int) and d > 0 else None


@dataclass(frozen=True)
class Signature:
    """A model's inputs, and the batch size where the file fixes it (None: symbolic, so the batch
    size is a knob)."""

    inputs: tuple[InputSpec, ...]
    fixed_batch: int | None  # None: a symbolic batch dimension (the batch knob)

    def describe(self) -> str:
        return "; ".join(f"{s.name}: [{', '.join(str(d) if d is not None else '?' for d in s.shape)}]"
                         for s in self.inputs)


_SIGNATURES: dict[tuple, Signature] = {}


def read_signature(path: Path) -> Signature:
    """The inputs of the model at ``path`` (cached per file version); a one-line error if it is not ONNX."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key in _SIGNATURES:
        return _SIGNATURES[key]
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(f"cannot load {path} as an ONNX model: {_message(exc)}") from None
    specs = []
    for arg in session.get_inputs():
        dtype = DTYPES.get(arg.type)
        if dtype is None:
            raise ConfigError(f"{path.name}: input {arg.name!r} is {arg.type}; edgetune makes inputs of "
                              f"{', '.join(t[7:-1] for t in DTYPES)} only")
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in (arg.shape or ()))
        specs.append(_classify(arg.name, shape, np.dtype(dtype)))
    del session
    batches = [s.fixed(0) for s in specs if s.shape]
    fixed = next((b for b in batches if b is not None), None)
    if specs and not any(s.shape for s in specs):
        fixed = 1  # scalars only: no batch dimension at all
    sig = Signature(tuple(specs), fixed)
    _SIGNATURES[key] = sig
    return sig


def _classify(name: str, shape: tuple, dtype: np.dtype) -> InputSpec:
    integer = np.issubdtype(dtype, np.integer)
    if len(shape) == 4 and (np.issubdtype(dtype, np.floating) or dtype == np.uint8):
        axis = 1
        if shape[1] not in (1, 3) and shape[3] in (1, 3):
            axis = 3  # NHWC
        return InputSpec(name, shape, dtype, "image", axis)
    if integer and (name.lower() in TEXT_INPUTS or len(shape) == 2):
        return InputSpec(name, shape, dtype, "text")
    return InputSpec(name, shape, dtype, "tensor")


def embedding_rows(path: Path, names: list[str]) -> int | None:
    """Rows of the embedding table the token ids index (a Gather on an initializer), with ``onnx``; else None."""
    if importlib.util.find_spec("onnx") is None:
        return None
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    graph = model.graph
    tables = {t.name: list(t.dims) for t in graph.initializer}
    sources = set(names)
    for node in graph.node:  # ids are often cast (int64 -> int32) before the lookup
        if node.op_type == "Cast" and node.input and node.input[0] in sources:
            sources.update(node.output)
    rows = [tables[n.input[0]][0] for n in graph.node
            if n.op_type == "Gather" and len(n.input) == 2 and n.input[1] in sources and n.input[0] in tables
            and tables[n.input[0]]]
    return min(rows) if rows else None


# --- the workload ------------------------------------------------------------------------------------
class OnnxWorkload:
    """The user's ``.onnx`` model under ONNX Runtime, inputs made from its own signature; knobs batch
    size, provider, threads and graph optimisation, and cpu/cuda/DLA placement for dmp."""

    name = "onnx"
    runtime = "onnxruntime"  # not torch: cme gives it no CUDA stream of PyTorch's

    def __init__(self, *, model_file: str | None = None, images: str | None = None,
                 provider: str | None = None, threads: int | str | None = None, graph_opt: str | None = None,
                 seq_len: int | str = SEQ_LEN, image_size: int | str = IMAGE_SIZE,
                 vocab_size: int | str | None = None, trt_cache: str | None = None, seed: int | str = 0) -> None:
        path = existing_file(model_file, "model file")
        if path is None:
            raise ConfigError("workload onnx needs --model-file PATH (a .onnx model)")
        self.model_file = path
        self.signature = read_signature(path)
        self.default_provider = provider_name(provider) if provider is not None else \
            ("cuda" if "cuda" in offered_providers() else "cpu")
        self.default_threads = _positive(threads, THREADS) if threads is not None else None
        self.default_graph_opt = _graph_opt(graph_opt if graph_opt is not None else "all")
        self.seq_len = _positive(seq_len, "seq_len")
        self.image_size = _positive(image_size, "image_size")
        self.trt_cache = trt_cache
        self.seed = int(seed)
        self.images = ImageCycle(images) if images else None
        self._image: InputSpec | None = None
        if self.images is not None:
            self._image = next((s for s in self.signature.inputs if s.kind == "image"
                                and s.shape[s.channel_axis] in (None, 3)), None)
            if self._image is None:
                raise ConfigError(f"--images needs an image input (NCHW or NHWC, 3 channels); {path.name} takes "
                                  f"{self.signature.describe()}")
        text = [s.name for s in self.signature.inputs if s.kind == "text"]
        self.vocab_size = _positive(vocab_size, "vocab_size") if vocab_size is not None else \
            ((embedding_rows(path, text) or DEFAULT_VOCAB) if text else DEFAULT_VOCAB)
        self.session: Any = None
        self.batch_size = 1
        self.provider = self.default_provider
        self.device = "cpu"
        self.providers_used: list[str] = []
        self.load_s = 0.0
        self._static: dict[str, np.ndarray] = {}

    # --- knobs ---------------------------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        fixed = self.signature.fixed_batch
        cores = os.cpu_count() or 1
        return [Knob(BATCH_SIZE, (fixed,) if fixed is not None else BATCHES, "inferences"),
                Knob(PROVIDER, offered_providers(), ordered=False),
                Knob(THREADS, tuple(range(1, cores + 1)), "threads"),
                Knob(GRAPH_OPT, GRAPH_OPTS, ordered=False)]

    def placements(self) -> tuple[str, ...]:
        """Where dmp may place this model: cpu, cuda, and dla0/dla1 through TensorRT where present."""
        return placements()

    # --- lifecycle ---------------------------------------------------------------------------------
    def setup(self, config: Config) -> None:
        ort = _ort()
        self.teardown()
        batch = int(config.get(BATCH_SIZE, 1))
        fixed = self.signature.fixed_batch
        if fixed is not None and batch != fixed:
            raise ConfigError(f"{self.model_file.name} has a fixed batch of {fixed} ({self.signature.describe()}): "
                              f"it cannot run batch_size={batch}; export it with a dynamic batch dimension")
        if batch < 1:
            raise ConfigError(f"batch_size={batch}: at least 1")
        dla: int | None = None
        if DEVICE in config:
            provider, dla = self._placement(str(config[DEVICE]))
        else:
            provider = provider_name(config.get(PROVIDER, self.default_provider))
        threads = config.get(THREADS, self.default_threads)
        level = _graph_opt(config.get(GRAPH_OPT, self.default_graph_opt))
        so = ort.SessionOptions()
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
        if threads is not None:
            so.intra_op_num_threads = _positive(threads, THREADS)
        so.log_severity_level = 3
        self.batch_size, self.provider = batch, provider
        self.device = "cpu" if provider == "cpu" else (f"dla{dla}" if dla is not None else "cuda")
        where = f"{self.model_file.name} on {self.device} ({provider})"
        t0 = time.perf_counter()
        try:
            session = ort.InferenceSession(str(self.model_file), so, providers=self._providers(provider, dla))
        except Exception as exc:
            msg = _message(exc)
            raise Infeasible(f"{where}: cannot create the session: {msg}", memory=_is_memory(msg)) from None
        self.providers_used = list(session.get_providers())
        if PROVIDERS[provider] not in self.providers_used:  # onnxruntime falls back to the CPU silently
            raise Infeasible(f"{where}: the {PROVIDERS[provider]} did not start (onnxruntime runs "
                             f"{', '.join(self.providers_used)}); check its libraries (CUDA, cuDNN, TensorRT)")
        self.session = session
        self._static = {s.name: self._synthetic(s, batch) for s in self.signature.inputs if s is not self._image}
        self.load_s = time.perf_counter() - t0

    def _placement(self, device: str) -> tuple[str, int | None]:
        offered = placements()
        if device not in offered:
            raise ConfigError(f"device={device}: {self.model_file.name} can be placed on {', '.join(offered)} here")
        if device.startswith("dla"):
            return "tensorrt", int(device[3:])
        return device, None

    def _providers(self, provider: str, dla: int | None) -> list[Any]:
        offered = offered_providers()
        if provider == "cpu":
            return ["CPUExecutionProvider"]
        chain: list[Any] = []
        if provider == "tensorrt":
            options: dict[str, Any] = {}
            if dla is not None:
                options.update(trt_dla_enable=True, trt_dla_core=dla, trt_fp16_enable=True)
            if self.trt_cache:
                options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(self.trt_cache))
            chain.append((PROVIDERS["tensorrt"], options) if options else PROVIDERS["tensorrt"])
        if "cuda" in offered:
            chain.append(PROVIDERS["cuda"])
        chain.append("CPUExecutionProvider")
        return chain

    # --- inputs --------------------------------------------------------------------------------------
    def _shape(self, spec: InputSpec, n: int) -> tuple[int, ...]:
        dims = []
        for axis, d in enumerate(spec.shape):
            if axis == 0:
                dims.append(n)
            elif d is not None:
                dims.append(d)
            elif spec.kind == "image":
                dims.append(3 if axis == spec.channel_axis else self.image_size)
            else:
                dims.append(self.seq_len)
        return tuple(dims)

    def _synthetic(self, spec: InputSpec, n: int) -> np.ndarray:
        shape = self._shape(spec, n)
        rng = np.random.default_rng(self.seed)
        name = spec.name.lower()
        if spec.kind == "text":
            if name == "attention_mask":
                return np.ones(shape, spec.dtype)
            if name == "token_type_ids":
                return np.zeros(shape, spec.dtype)
            if name == "position_ids":
                return np.broadcast_to(np.arange(shape[-1], dtype=spec.dtype), shape).copy()
            return rng.integers(0, self.vocab_size, size=shape).astype(spec.dtype)
        if np.issubdtype(spec.dtype, np.floating):
            return rng.random(shape, dtype=np.float32).astype(spec.dtype)
        if spec.dtype == np.uint8:
            return rng.integers(0, 256, size=shape).astype(np.uint8)
        return np.zeros(shape, spec.dtype)

    def _decode(self, n: int) -> np.ndarray:
        """``n`` images resized, centre-cropped and (float inputs) normalised on the CPU, in the input's layout."""
        spec = self._image
        assert spec is not None and self.images is not None
        shape = self._shape(spec, n)
        h, w = (shape[2], shape[3]) if spec.channel_axis == 1 else (shape[1], shape[2])
        out = np.empty((n, h, w, 3), np.float32 if spec.dtype != np.uint8 else np.uint8)
        for i in range(n):
            img = self.images.next_rgb()
            scale = max(w, h) * 256 / 224 / min(img.size)
            img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))))
            left, top = (img.width - w) // 2, (img.height - h) // 2
            pixels = np.asarray(img.crop((left, top, left + w, top + h)))
            out[i] = pixels if spec.dtype == np.uint8 else (pixels.astype(np.float32) / 255.0 - MEAN) / STD
        if spec.channel_axis == 1:
            out = out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out, dtype=spec.dtype)

    # --- running -------------------------------------------------------------------------------------
    def run(self, inferences: int) -> RunResult:
        session = self.session
        if session is None:
            raise EdgetuneError("run() before setup()")
        dynamic = self.signature.fixed_batch is None

        def one_batch(n: int) -> None:
            m = n if dynamic else self.batch_size  # a fixed graph runs a partial batch full, counting n
            feeds = {k: (v[:m] if v.ndim else v) for k, v in self._static.items()}
            if self._image is not None:
                feeds[self._image.name] = self._decode(m)
            session.run(None, feeds)  # outputs come back as host arrays: the result leaves the runtime

        try:
            return timed_batches(inferences, self.batch_size, one_batch)
        except Exception as exc:
            if isinstance(exc, EdgetuneError) or not _is_memory(str(exc)):
                raise
            raise Infeasible(f"{self.model_file.name} batch {self.batch_size} on {self.device}: {_message(exc)}",
                             memory=True) from None

    def teardown(self) -> None:
        self.session = None
        self._static = {}


def _positive(value: object, what: str) -> int:
    try:
        n = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(f"{what}={value!r}: a whole number, at least 1") from None
    if n < 1:
        raise ConfigError(f"{what}={value!r}: a whole number, at least 1")
    return n


def _graph_opt(value: object) -> str:
    text = str(value).strip().lower()
    if text not in GRAPH_OPTS:
        raise ConfigError(f"graph_opt={value!r}: use {', '.join(GRAPH_OPTS)}")
    return text


def onnx(**options: Any) -> OnnxWorkload:
    """onnx: any .onnx model (--model-file) on ONNX Runtime: CPU, and CUDA/TensorRT/DLA on a Jetson build."""
    return OnnxWorkload(**options)


onnx.requires = ("onnxruntime",)  # type: ignore[attr-defined]
onnx.extra = "onnx"  # type: ignore[attr-defined]

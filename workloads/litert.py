"""Any ``.tflite`` model through LiteRT (``ai-edge-litert``, or the older ``tflite-runtime``).

The model file is the user's (``model_file=``). Inputs are synthetic, drawn
in the input tensor's dtype and range (float, or the quantised uint8/int8 of
EdgeTPU models), or for an image model (NHWC, 3 channels) a directory of
images resized on the CPU per batch. Knobs:

- ``batch_size``: the input's batch dimension is resized to it (LiteRT
  supports this for most graphs; one that cannot be resized is infeasible at
  that batch, not an error);
- ``threads``: the interpreter's CPU threads — on a Jetson's CPU, how many
  cores the work spreads over is itself an energy knob.

``delegate``: ``auto`` (the EdgeTPU delegate, ``libedgetpu.so.1``, when it
loads; otherwise the CPU), ``edgetpu`` (required), or ``none``.
"""

from __future__ import annotations

import ctypes.util
import os
import time
from typing import Any

import numpy as np

from tuner.config import BATCH_SIZE, Config, Knob
from tuner.errors import ConfigError, EdgetuneError, Infeasible
from workloads.base import RunResult, timed_batches
from workloads.inputs import ImageCycle, existing_file

THREADS = "threads"
BATCHES = (1, 2, 4, 8, 16, 32, 64)
EDGETPU_LIBRARY = "libedgetpu.so.1"


def _runtime() -> tuple[Any, Any]:
    """(Interpreter, load_delegate) from ai-edge-litert, else tflite-runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter, load_delegate
        except ImportError:
            raise EdgetuneError("the tflite workload needs LiteRT: pip install 'edgetune[tflite]'") from None
    return Interpreter, load_delegate


class LiteRTWorkload:
    """The user's ``.tflite`` model under LiteRT, on the EdgeTPU delegate where asked for or found,
    else the CPU; the knobs are batch size and interpreter threads."""

    name = "tflite"

    def __init__(self, *, model_file: str | None = None, delegate: str = "auto", images: str | None = None,
                 seed: int = 0) -> None:
        path = existing_file(model_file, "model file")
        if path is None:
            raise ConfigError("workload tflite needs --model-file PATH (a .tflite model)")
        self.model_file = path
        if delegate not in ("auto", "edgetpu", "none"):
            raise ConfigError(f"delegate={delegate!r}: use auto, edgetpu or none")
        self.delegate = delegate
        self.images = ImageCycle(images) if images else None
        self.seed = seed
        self.interpreter: Any = None
        self.batch_size = 1
        self.load_s = 0.0
        self.accelerator = "cpu"

    def knobs(self) -> list[Knob]:
        cores = os.cpu_count() or 1
        return [Knob(BATCH_SIZE, BATCHES, "inferences"), Knob(THREADS, tuple(range(1, cores + 1)), "threads")]

    def setup(self, config: Config) -> None:
        Interpreter, load_delegate = _runtime()
        self.batch_size = int(config.get(BATCH_SIZE, 1))
        threads = int(config.get(THREADS, os.cpu_count() or 1))
        t0 = time.perf_counter()
        delegates = self._delegates(load_delegate)
        try:
            it = Interpreter(model_path=str(self.model_file), num_threads=threads, experimental_delegates=delegates)
        except ValueError as exc:
            raise ConfigError(f"cannot load {self.model_file}: {exc}") from None
        inp = it.get_input_details()[0]
        shape = list(inp["shape"])
        if shape and shape[0] != self.batch_size:
            shape[0] = self.batch_size
            try:
                it.resize_tensor_input(inp["index"], shape)
            except (ValueError, RuntimeError) as exc:
                raise Infeasible(f"{self.model_file.name} cannot take batch {self.batch_size}: {exc}") from None
        try:
            it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise Infeasible(f"{self.model_file.name} at batch {self.batch_size}: {exc}",
                             memory="memory" in str(exc).lower()) from None
        self.interpreter = it
        self._input = it.get_input_details()[0]
        if self.images is not None and (len(self._input["shape"]) != 4 or self._input["shape"][3] != 3):
            raise ConfigError(f"images need an NHWC 3-channel input; this model's is {list(self._input['shape'])}")
        self._outputs = [d["index"] for d in it.get_output_details()]
        self._static = self._synthetic(self.batch_size) if self.images is None else None
        self.load_s = time.perf_counter() - t0

    def _delegates(self, load_delegate: Any) -> list[Any]:
        self.accelerator = "cpu"
        if self.delegate == "none":
            return []
        if self.delegate == "auto" and ctypes.util.find_library("edgetpu") is None:
            return []  # no EdgeTPU runtime installed: do not even try (a failed load leaves noise behind)
        try:
            d = load_delegate(EDGETPU_LIBRARY)
        except (ValueError, OSError) as exc:
            if self.delegate == "edgetpu":
                raise ConfigError(f"the EdgeTPU delegate ({EDGETPU_LIBRARY}) does not load: {exc}") from None
            self.accelerator = "cpu"
            return []
        self.accelerator = "edgetpu"
        return [d]

    def _synthetic(self, n: int) -> np.ndarray:
        shape, dtype = (n, *self._input["shape"][1:]), self._input["dtype"]
        rng = np.random.default_rng(self.seed)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        return rng.random(shape, dtype=np.float32).astype(dtype)

    def _decode(self, n: int) -> np.ndarray:
        """``n`` images resized to the input's H×W on the CPU, in the input's dtype."""
        _, h, w, _ = self._input["shape"]
        dtype = self._input["dtype"]
        out = np.empty((n, h, w, 3), dtype=dtype)
        for i in range(n):
            pixels = np.asarray(self.images.next_rgb().resize((w, h)))
            out[i] = pixels if np.issubdtype(dtype, np.integer) else pixels.astype(np.float32) / 255.0
        return out

    def run(self, inferences: int) -> RunResult:
        it = self.interpreter
        if it is None:
            raise EdgetuneError("run() before setup()")

        def one_batch(n: int) -> None:
            # the graph's batch is fixed at setup: a last, partial batch runs full and counts n
            batch = self._static if self.images is None else self._decode(self.batch_size)
            it.set_tensor(self._input["index"], batch)
            it.invoke()
            for index in self._outputs:
                it.get_tensor(index)  # a copy: the result leaves the interpreter, as a consumer takes it

        return timed_batches(inferences, self.batch_size, one_batch)

    def teardown(self) -> None:
        self.interpreter = None
        self._static = None


def tflite(**options: Any) -> LiteRTWorkload:
    """tflite: any .tflite model (--model-file) on LiteRT, with the EdgeTPU delegate when present."""
    return LiteRTWorkload(**options)


tflite.requires = ("ai_edge_litert",)  # type: ignore[attr-defined]
tflite.extra = "tflite"  # type: ignore[attr-defined]

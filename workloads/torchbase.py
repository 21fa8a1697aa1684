"""What every PyTorch workload shares: knobs, loading, graph mode, the timed batch loop.

A subclass says how to build its model (``_build``), how to make the inputs of
one batch (``_batch``: synthetic tensors, or real inputs pre-processed on the
CPU per batch as a deployment does) and what to do with the outputs
(``_consume``: at least bring the result off the device; detection decodes
and runs NMS there). This class does the rest, the same way for all:

- knobs ``batch_size``, ``graph`` (``eager``, or ``script``: a traced static
  graph — it costs more to load and can save energy per inference, so load
  time is reported separately as ``load_s``) and ``device`` (``cpu``, and
  ``cuda`` where present);
- out of memory, at load or while running, is :class:`Infeasible` with
  ``memory=True``, so the search prunes larger batches instead of crashing.

torch is imported inside methods only, so listing workloads stays fast.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from tuner.config import BATCH_SIZE, Config, Knob
from tuner.errors import ConfigError, EdgetuneError, Infeasible
from workloads.base import RunResult, timed_batches

GRAPH = "graph"
DEVICE = "device"
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)


def torch_module(extra: str = "vision") -> Any:
    """torch, imported only when a workload needs it (listing stays fast); missing, a one-line error
    naming the pip extra to install."""
    try:
        import torch
    except ImportError:
        raise EdgetuneError(f"this workload needs PyTorch: pip install 'edgetune[{extra}]'") from None
    return torch


class TorchWorkload:
    """The base of the PyTorch workloads: knobs, loading and optional tracing, the timed batch loop,
    and out of memory as a memory Infeasible; subclasses build the model and its inputs."""

    extra = "vision"  # the pip extra that installs what this workload needs

    def __init__(self, name: str, *, device: str | None = None, seed: int = 0) -> None:
        self.name = name
        self.default_device = device
        self.seed = seed
        self.model: Any = None
        self.exported = False  # set by _build when it loads a torch.export program
        self.batch_size = 1
        self.device = "cpu"
        self.load_s = 0.0

    # --- subclass hooks -------------------------------------------------------------------------
    def _build(self, torch: Any) -> Any:
        raise NotImplementedError

    def _prepare(self, torch: Any) -> None:
        """After the model is on its device, before tracing: e.g. make synthetic inputs."""

    def _batch(self, torch: Any, n: int) -> Any:
        """The model inputs for ``n`` inferences (a tensor or a tuple of tensors)."""
        raise NotImplementedError

    def _consume(self, torch: Any, output: Any, n: int) -> None:
        """Take the result as a consumer would (off the device, post-processed)."""
        first = output[0] if isinstance(output, (tuple, list)) else output
        first.argmax(dim=-1).cpu()

    # --- the Workload protocol --------------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        torch = torch_module(self.extra)
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
        return [Knob(BATCH_SIZE, BATCHES, "inferences"), Knob(GRAPH, ("eager", "script"), ordered=False),
                Knob(DEVICE, devices, ordered=False)]

    def setup(self, config: Config) -> None:
        torch = torch_module(self.extra)
        self.batch_size = int(config.get(BATCH_SIZE, 1))
        self.device = str(config.get(DEVICE, self.default_device or ("cuda" if torch.cuda.is_available() else "cpu")))
        graph = str(config.get(GRAPH, "eager"))
        if graph not in ("eager", "script"):
            raise ConfigError(f"graph={graph} is not eager or script")
        t0 = time.perf_counter()
        with self._memory_is_infeasible():
            torch.manual_seed(self.seed)
            model = self._build(torch)
            if not self.exported:  # a torch.export program is already an inference graph (and refuses .eval())
                model = model.eval()
            model = model.to(self.device)
            self._prepare(torch)
            static = self.exported or isinstance(model, torch.jit.ScriptModule)
            if graph == "script" and not static:
                example = self._batch(torch, self.batch_size)
                with torch.inference_mode(), warnings.catch_warnings():
                    # TorchScript is deprecated in favour of torch.export, but it is what
                    # JetPack's PyTorch builds ship and run; the trace is the static graph
                    warnings.simplefilter("ignore")
                    model = torch.jit.trace(model, example if isinstance(example, tuple) else (example,),
                                            strict=False)
            self.model = model
            self._sync(torch)
        self.load_s = time.perf_counter() - t0

    def run(self, inferences: int) -> RunResult:
        if self.model is None:
            raise EdgetuneError("run() before setup()")
        torch = torch_module(self.extra)

        def one_batch(n: int) -> None:
            inputs = self._batch(torch, n)
            output = self.model(*inputs) if isinstance(inputs, tuple) else self.model(inputs)
            self._consume(torch, output, n)
            self._sync(torch)

        with self._memory_is_infeasible(), torch.inference_mode():
            return timed_batches(inferences, self.batch_size, one_batch)

    def teardown(self) -> None:
        self.model = None
        torch = torch_module(self.extra)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- helpers ------------------------------------------------------------------------------------
    def _sync(self, torch: Any) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def _memory_is_infeasible(self) -> Any:
        return _OutOfMemory(self)


class _OutOfMemory:
    """Turn an out-of-memory RuntimeError into a memory Infeasible (a result, not a crash)."""

    def __init__(self, workload: TorchWorkload) -> None:
        self.workload = workload

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
            w = self.workload
            raise Infeasible(f"{w.name} batch {w.batch_size} on {w.device}: {exc}", memory=True) from None
        return False

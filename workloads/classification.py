"""Image classification with PyTorch: AlexNet, ResNet-18, MobileNet-V2, or the user's model.

Models are built from their torchvision architectures with random weights
(nothing is downloaded), or loaded from a weights file the user gives; a
user model comes as a TorchScript file. Inputs are either synthetic tensors
(the default: measures the model alone) or a directory of images decoded and
preprocessed on the CPU for every batch, as a deployed pipeline does — which
is what makes classification CPU-sensitive on a Jetson.

Knobs: ``batch_size``; ``graph`` (``eager`` or ``script``: a traced static
graph costs more to load and can save energy per inference; load time is
reported separately); ``device`` (``cpu``, and ``cuda`` where present).

This module imports torch only inside the workload, so listing workloads stays fast.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from tuner.config import BATCH_SIZE, Config, Knob
from tuner.errors import ConfigError, EdgetuneError
from workloads.base import Infeasible, RunResult

GRAPH = "graph"
DEVICE = "device"
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")


def _torch():
    try:
        import torch
    except ImportError:
        raise EdgetuneError("this workload needs PyTorch: pip install 'edgetune[vision]'") from None
    return torch


class TorchClassifier:
    def __init__(self, name: str, arch: str | None, *, weights: str | None = None, model_file: str | None = None,
                 images: str | None = None, input_size: int = 224, device: str | None = None, seed: int = 0) -> None:
        self.name = name
        self.arch = arch
        self.weights = Path(weights) if weights else None
        self.model_file = Path(model_file) if model_file else None
        self.images = Path(images) if images else None
        for path, what in ((self.weights, "weights file"), (self.model_file, "model file")):
            if path is not None and not path.is_file():
                raise ConfigError(f"{what} {path} does not exist")
        if self.images is not None:
            if not self.images.is_dir():
                raise ConfigError(f"image directory {self.images} does not exist")
            self._files = sorted(p for p in self.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise ConfigError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {self.images}")
        self.input_size = input_size
        self.default_device = device
        self.seed = seed
        self.model: Any = None
        self.batch_size = 1
        self.device = "cpu"
        self.load_s = 0.0
        self._next_image = 0

    def knobs(self) -> list[Knob]:
        torch = _torch()
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
        return [Knob(BATCH_SIZE, BATCHES, "inferences"), Knob(GRAPH, ("eager", "script"), ordered=False),
                Knob(DEVICE, devices, ordered=False)]

    # --- lifecycle ---------------------------------------------------------------------
    def setup(self, config: Config) -> None:
        torch = _torch()
        self.batch_size = int(config.get(BATCH_SIZE, 1))
        self.device = str(config.get(DEVICE, self.default_device or ("cuda" if torch.cuda.is_available() else "cpu")))
        graph = str(config.get(GRAPH, "eager"))
        if graph not in ("eager", "script"):
            raise ConfigError(f"graph={graph} is not eager or script")
        t0 = time.perf_counter()
        try:
            torch.manual_seed(self.seed)
            model = self._build(torch).eval().to(self.device)
            self._static = self._synthetic(torch) if self.images is None else None
            if graph == "script" and not isinstance(model, torch.jit.ScriptModule):
                with torch.inference_mode(), warnings.catch_warnings():
                    # TorchScript is deprecated in favour of torch.export, but it is what
                    # JetPack's PyTorch builds ship and run; the trace is the static graph
                    warnings.simplefilter("ignore", FutureWarning)
                    model = torch.jit.trace(model, self._batch(torch))
            self.model = model
            self._sync(torch)
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise Infeasible(f"{self.name} batch {self.batch_size} on {self.device}: {exc}", memory=True) from None
            raise
        self.load_s = time.perf_counter() - t0

    def _build(self, torch):
        if self.model_file is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # deprecated, still what JetPack runs
                    return torch.jit.load(str(self.model_file), map_location="cpu")
            except Exception as exc:
                raise ConfigError(f"cannot load TorchScript model {self.model_file}: {exc}") from None
        import torchvision

        model = getattr(torchvision.models, self.arch)(weights=None)
        if self.weights is not None:
            try:
                state = torch.load(str(self.weights), map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except Exception as exc:
                raise ConfigError(f"cannot load weights {self.weights} into {self.arch}: {exc}") from None
        return model

    def _synthetic(self, torch):
        g = torch.Generator().manual_seed(self.seed)
        return torch.rand(self.batch_size, 3, self.input_size, self.input_size, generator=g).to(self.device)

    def _batch(self, torch, n: int | None = None):
        n = n or self.batch_size
        if self.images is None:
            return self._static[:n]
        return self._decode(torch, n).to(self.device)

    def _decode(self, torch, n: int):
        """Decode and preprocess ``n`` images on the CPU (resize, centre crop, normalise)."""
        from PIL import Image

        mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        out = []
        for _ in range(n):
            path = self._files[self._next_image % len(self._files)]
            self._next_image += 1
            with Image.open(path) as img:
                img = img.convert("RGB")
                scale = (self.input_size * 256 // 224) / min(img.size)
                img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
                left = (img.width - self.input_size) // 2
                top = (img.height - self.input_size) // 2
                img = img.crop((left, top, left + self.input_size, top + self.input_size))
                data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            x = data.view(self.input_size, self.input_size, 3).permute(2, 0, 1).float() / 255.0
            out.append((x - mean) / std)
        return torch.stack(out)

    def _sync(self, torch) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def run(self, inferences: int) -> RunResult:
        if self.model is None:
            raise EdgetuneError("run() before setup()")
        torch = _torch()
        out = RunResult(0)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                while out.inferences < inferences:
                    n = min(self.batch_size, inferences - out.inferences)
                    t0 = time.perf_counter()
                    logits = self.model(self._batch(torch, n))
                    logits.argmax(dim=1).cpu()  # the result leaves the device, as a consumer needs it
                    self._sync(torch)
                    out.batch_latencies_s.append(time.perf_counter() - t0)
                    out.inferences += n
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise Infeasible(f"{self.name} batch {self.batch_size} on {self.device}: {exc}", memory=True) from None
            raise
        out.wall_s = time.perf_counter() - start
        return out

    def teardown(self) -> None:
        self.model = None
        self._static = None
        torch = _torch()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _factory(name: str, arch: str):
    def make(**options: Any) -> TorchClassifier:
        return TorchClassifier(name, arch, **options)

    make.__doc__ = f"{name}: torchvision {arch} classification (random weights unless --weights; 224x224)"
    make.requires = ("torch", "torchvision")  # type: ignore[attr-defined]
    make.extra = "vision"  # type: ignore[attr-defined]
    return make


alexnet = _factory("alexnet", "alexnet")
resnet18 = _factory("resnet18", "resnet18")
mobilenet_v2 = _factory("mobilenet_v2", "mobilenet_v2")


def torchscript(**options: Any) -> TorchClassifier:
    """torchscript: any image classifier as a TorchScript file (--model-file), 3x224x224 inputs."""
    if "model_file" not in options:
        raise ConfigError("workload torchscript needs --model-file PATH (a torch.jit.save'd model)")
    return TorchClassifier("torchscript", None, **options)


torchscript.requires = ("torch",)  # type: ignore[attr-defined]
torchscript.extra = "vision"  # type: ignore[attr-defined]

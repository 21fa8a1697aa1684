"""Image classification with PyTorch: AlexNet, ResNet-18, MobileNet-V2, or the user's model.

Models are built from their torchvision architectures with random weights
(nothing is downloaded), or loaded from a weights file the user gives; a
user model comes as a TorchScript file or a ``torch.export`` program (``.pt2``,
exported with a dynamic batch dimension to take every batch size). Inputs are either synthetic tensors
(the default: measures the model alone) or a directory of images decoded and
preprocessed on the CPU for every batch, as a deployed pipeline does — which
is what makes classification CPU-sensitive on a Jetson.

Knobs: ``batch_size``; ``graph`` (``eager`` or ``script``: a traced static
graph costs more to load and can save energy per inference; load time is
reported separately); ``device`` (``cpu``, and ``cuda`` where present).

This module imports torch only inside the workload, so listing workloads stays fast.
"""

from __future__ import annotations

import warnings
from typing import Any

from tuner.errors import ConfigError
from workloads.inputs import ImageCycle, existing_file
from workloads.torchbase import TorchWorkload

class TorchClassifier(TorchWorkload):
    """A torchvision classifier (random or given weights) or the user's TorchScript / ``.pt2`` model,
    fed synthetic inputs or images decoded and preprocessed on the CPU per batch."""

    def __init__(self, name: str, arch: str | None, *, weights: str | None = None, model_file: str | None = None,
                 images: str | None = None, input_size: int = 224, device: str | None = None, seed: int = 0) -> None:
        super().__init__(name, device=device, seed=seed)
        self.arch = arch
        self.weights = existing_file(weights, "weights file")
        self.model_file = existing_file(model_file, "model file")
        self.images = ImageCycle(images) if images else None
        self.input_size = input_size
        self._static: Any = None

    def _build(self, torch):
        if self.model_file is not None:
            return self._load_program(torch)
        import torchvision

        model = getattr(torchvision.models, self.arch)(weights=None)
        if self.weights is not None:
            try:
                state = torch.load(str(self.weights), map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except Exception as exc:
                raise ConfigError(f"cannot load weights {self.weights} into {self.arch}: {exc}") from None
        return model

    def _load_program(self, torch):
        """A user model: a torch.export program (``.pt2``) or a TorchScript file."""
        try:
            if self.model_file.suffix == ".pt2":
                self.exported = True
                return torch.export.load(str(self.model_file)).module()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # deprecated, still what JetPack runs
                return torch.jit.load(str(self.model_file), map_location="cpu")
        except Exception as exc:
            raise ConfigError(f"cannot load model {self.model_file} (TorchScript, or torch.export .pt2): "
                              f"{exc}") from None

    def _prepare(self, torch) -> None:
        if self.images is None:
            g = torch.Generator().manual_seed(self.seed)
            self._static = torch.rand(self.batch_size, 3, self.input_size, self.input_size,
                                      generator=g).to(self.device)

    def _batch(self, torch, n: int):
        if self.images is None:
            return self._static[:n]
        return self._decode(torch, n).to(self.device)

    def _decode(self, torch, n: int):
        """Decode and preprocess ``n`` images on the CPU (resize, centre crop, normalise)."""
        mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        out = []
        for _ in range(n):
            img = self.images.next_rgb()
            scale = (self.input_size * 256 // 224) / min(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
            left = (img.width - self.input_size) // 2
            top = (img.height - self.input_size) // 2
            img = img.crop((left, top, left + self.input_size, top + self.input_size))
            data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            x = data.view(self.input_size, self.input_size, 3).permute(2, 0, 1).float() / 255.0
            out.append((x - mean) / std)
        return torch.stack(out)

    def teardown(self) -> None:
        self._static = None
        super().teardown()


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
    """torchscript: any image classifier as a TorchScript or torch.export (.pt2) file (--model-file), 3x224x224."""
    if "model_file" not in options:
        raise ConfigError("workload torchscript needs --model-file PATH (torch.jit.save'd, or torch.export.save'd "
                          ".pt2)")
    return TorchClassifier("torchscript", None, **options)


torchscript.requires = ("torch",)  # type: ignore[attr-defined]
torchscript.extra = "vision"  # type: ignore[attr-defined]

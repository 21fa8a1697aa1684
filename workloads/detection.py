"""Object detection: YOLOv4-Tiny as a PyTorch model built from a darknet ``.cfg``.

:func:`parse_cfg` reads darknet's INI-like format and :class:`Darknet` builds
the layers it lists (convolutional with batch norm and leaky ReLU, route with
groups, maxpool, upsample, shortcut, yolo), so the user's own ``.cfg`` and
``.weights`` load as they are; the bundled ``cfg/yolov4-tiny.cfg`` is the
default, with random weights. Input is 416×416: synthetic, or a directory of
images letterboxed on the CPU.

Detection is CPU-sensitive on a Jetson because of what follows the network:
the raw YOLO maps come off the device and are decoded (sigmoid, grid offsets,
anchors), thresholded and reduced by non-maximum suppression on the CPU for
every batch — here as in a deployment, so the CPU clock matters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tuner.errors import ConfigError
from workloads.inputs import ImageCycle, existing_file
from workloads.torchbase import TorchWorkload

BUNDLED_CFG = Path(__file__).with_name("cfg") / "yolov4-tiny.cfg"
CONF_THRESHOLD = 0.25
NMS_IOU = 0.45
MAX_CANDIDATES = 1000  # per image, before NMS (what deployments cap it at)


def parse_cfg(text: str, source: str = "cfg") -> list[dict[str, str]]:
    """Sections of a darknet cfg in order, each ``{"type": name, key: value}``."""
    sections: list[dict[str, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"{source}:{n}: malformed section header {raw.strip()!r}")
            sections.append({"type": line[1:-1].strip()})
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
        else:
            raise ConfigError(f"{source}:{n}: expected [section] or key=value, got {raw.strip()!r}")
    if not sections or sections[0]["type"] not in ("net", "network"):
        raise ConfigError(f"{source}: a darknet cfg starts with [net]")
    return sections


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.replace(" ", "").split(",") if v]


def build_darknet(sections: list[dict[str, str]], torch: Any) -> Any:
    """The network of ``sections`` as a torch Module returning the YOLO heads' raw maps."""
    nn = torch.nn

    class Route(nn.Module):
        def __init__(self, layers: list[int], groups: int, group_id: int) -> None:
            super().__init__()
            self.layers, self.groups, self.group_id = layers, groups, group_id

    class Shortcut(nn.Module):
        def __init__(self, source: int) -> None:
            super().__init__()
            self.source = source

    class Yolo(nn.Module):
        def __init__(self, anchors: list[tuple[int, int]], classes: int, scale_xy: float) -> None:
            super().__init__()
            self.anchors, self.classes, self.scale_xy = anchors, classes, scale_xy

    class Darknet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            net = sections[0]
            self.width, self.height = int(net.get("width", 416)), int(net.get("height", 416))
            channels = [int(net.get("channels", 3))]
            self.layers = nn.ModuleList()
            self.heads: list[Any] = []
            for i, s in enumerate(sections[1:]):
                kind, prev = s["type"], channels[-1]
                if kind == "convolutional":
                    filters, size, stride = int(s["filters"]), int(s["size"]), int(s.get("stride", 1))
                    bn = int(s.get("batch_normalize", 0)) == 1
                    pad = (size - 1) // 2 if int(s.get("pad", 0)) else 0
                    parts: list[Any] = [nn.Conv2d(prev, filters, size, stride, pad, bias=not bn)]
                    if bn:
                        parts.append(nn.BatchNorm2d(filters, momentum=0.01, eps=1e-5))
                    act = s.get("activation", "linear")
                    if act == "leaky":
                        parts.append(nn.LeakyReLU(0.1))
                    elif act == "mish":
                        parts.append(nn.Mish())
                    elif act == "relu":
                        parts.append(nn.ReLU())
                    elif act != "linear":
                        raise ConfigError(f"layer {i}: activation {act!r} is not supported")
                    self.layers.append(nn.Sequential(*parts))
                    channels.append(filters)
                elif kind == "route":
                    layers = [v if v >= 0 else i + v for v in _ints(s["layers"])]
                    if any(not 0 <= v < i for v in layers):
                        raise ConfigError(f"layer {i}: route to a layer that does not precede it")
                    groups, gid = int(s.get("groups", 1)), int(s.get("group_id", 0))
                    self.layers.append(Route(layers, groups, gid))
                    channels.append(sum(channels[v + 1] for v in layers) // groups)
                elif kind == "maxpool":
                    size, stride = int(s.get("size", 2)), int(s.get("stride", 2))
                    if stride == 1:  # darknet keeps the size: pad right/bottom
                        self.layers.append(nn.Sequential(nn.ZeroPad2d((0, size - 1, 0, size - 1)),
                                                         nn.MaxPool2d(size, 1)))
                    else:
                        self.layers.append(nn.MaxPool2d(size, stride))
                    channels.append(prev)
                elif kind == "upsample":
                    self.layers.append(nn.Upsample(scale_factor=int(s.get("stride", 2)), mode="nearest"))
                    channels.append(prev)
                elif kind == "shortcut":
                    self.layers.append(Shortcut(i + int(s["from"])))
                    channels.append(prev)
                elif kind == "yolo":
                    a = _ints(s["anchors"])
                    pairs = list(zip(a[::2], a[1::2]))
                    mask = _ints(s.get("mask", ",".join(str(k) for k in range(len(pairs)))))
                    head = Yolo([pairs[m] for m in mask], int(s.get("classes", 80)), float(s.get("scale_x_y", 1)))
                    self.layers.append(head)
                    self.heads.append(head)
                    channels.append(prev)
                else:
                    raise ConfigError(f"layer {i}: darknet layer [{kind}] is not supported")

        def forward(self, x: Any) -> list[Any]:
            outputs: list[Any] = []
            heads = []
            for layer in self.layers:
                if isinstance(layer, Route):
                    parts = [outputs[v] for v in layer.layers]
                    if layer.groups > 1:
                        parts = [p.chunk(layer.groups, dim=1)[layer.group_id] for p in parts]
                    x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
                elif isinstance(layer, Shortcut):
                    x = x + outputs[layer.source]
                elif isinstance(layer, Yolo):
                    heads.append(x)
                else:
                    x = layer(x)
                outputs.append(x)
            return heads

    return Darknet()


def load_darknet_weights(model: Any, path: Path, torch: Any) -> None:
    """Darknet ``.weights``: a header, then per conv layer (bn beta, gamma, mean, var | bias) and kernel."""
    with open(path, "rb") as fh:
        major, minor, _revision = np.fromfile(fh, dtype=np.int32, count=3)
        np.fromfile(fh, dtype=np.int64 if major * 10 + minor >= 2 else np.int32, count=1)  # images seen
        data = np.fromfile(fh, dtype=np.float32)
    pos = 0

    def take(tensor: Any) -> None:
        nonlocal pos
        n = tensor.numel()
        if pos + n > data.size:
            raise ConfigError(f"{path} ends early: it does not match this cfg")
        tensor.data.copy_(torch.from_numpy(data[pos:pos + n].copy()).view_as(tensor))
        pos += n

    for layer in model.layers:
        if not isinstance(layer, torch.nn.Sequential) or not isinstance(layer[0], torch.nn.Conv2d):
            continue
        conv = layer[0]
        if len(layer) > 1 and isinstance(layer[1], torch.nn.BatchNorm2d):
            bn = layer[1]
            for t in (bn.bias, bn.weight, bn.running_mean, bn.running_var):
                take(t)
        else:
            take(conv.bias)
        take(conv.weight)
    if pos != data.size:
        raise ConfigError(f"{path} has {data.size - pos} values more than this cfg needs")


def decode(torch: Any, maps: list[Any], heads: list[Any], width: int, height: int) -> list[Any]:
    """YOLO maps (on the CPU) -> per image a (k, 6) tensor: x1, y1, x2, y2, score, class, after NMS."""
    from torchvision.ops import batched_nms

    per_head = []
    for m, head in zip(maps, heads):
        b, _, h, w = m.shape
        na, nc = len(head.anchors), head.classes
        p = m.view(b, na, 5 + nc, h, w).permute(0, 1, 3, 4, 2).float()
        gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        s = head.scale_xy
        cx = ((p[..., 0].sigmoid() * s - (s - 1) / 2) + gx) / w * width
        cy = ((p[..., 1].sigmoid() * s - (s - 1) / 2) + gy) / h * height
        anchors = torch.tensor(head.anchors, dtype=torch.float32).view(1, na, 1, 1, 2)
        wh = p[..., 2:4].clamp(max=10).exp() * anchors
        score, cls = (p[..., 5:].sigmoid() * p[..., 4:5].sigmoid()).max(dim=-1)
        boxes = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)
        per_head.append((boxes.view(b, -1, 4), score.view(b, -1), cls.view(b, -1)))
    boxes = torch.cat([h[0] for h in per_head], 1)
    scores = torch.cat([h[1] for h in per_head], 1)
    classes = torch.cat([h[2] for h in per_head], 1)
    out = []
    for i in range(boxes.shape[0]):
        keep = scores[i] > CONF_THRESHOLD
        bx, sc, cl = boxes[i][keep], scores[i][keep], classes[i][keep]
        if sc.numel() > MAX_CANDIDATES:
            top = sc.topk(MAX_CANDIDATES).indices
            bx, sc, cl = bx[top], sc[top], cl[top]
        kept = batched_nms(bx, sc, cl, NMS_IOU)
        out.append(torch.cat([bx[kept], sc[kept, None], cl[kept, None].float()], 1))
    return out


class YoloDetector(TorchWorkload):
    """YOLOv4-Tiny (or any darknet ``.cfg``), its outputs decoded and reduced by NMS on the CPU every
    batch as in a deployment, so the CPU clock matters."""

    def __init__(self, name: str = "yolov4_tiny", *, cfg: str | None = None, weights: str | None = None,
                 images: str | None = None, device: str | None = None, seed: int = 0) -> None:
        super().__init__(name, device=device, seed=seed)
        self.cfg_path = existing_file(cfg, "darknet cfg") or BUNDLED_CFG
        self.sections = parse_cfg(self.cfg_path.read_text(), str(self.cfg_path))
        self.weights = existing_file(weights, "darknet weights file")
        self.images = ImageCycle(images) if images else None
        net = self.sections[0]
        self.width, self.height = int(net.get("width", 416)), int(net.get("height", 416))
        self._static: Any = None
        self._heads: list[Any] = []
        self.detections: list[Any] = []  # the last batch's, for inspection

    def _build(self, torch):
        model = build_darknet(self.sections, torch)
        if self.weights is not None:
            load_darknet_weights(model, self.weights, torch)
        self._heads = list(model.heads)  # anchors and classes for decoding (a traced graph has no attributes)
        return model

    def _prepare(self, torch) -> None:
        if self.images is None:
            g = torch.Generator().manual_seed(self.seed)
            self._static = torch.rand(self.batch_size, 3, self.height, self.width, generator=g).to(self.device)

    def _batch(self, torch, n: int):
        if self.images is None:
            return self._static[:n]
        return self._letterbox(torch, n).to(self.device)

    def _letterbox(self, torch, n: int):
        """Decode ``n`` images on the CPU, scale to fit, pad grey to the network size."""
        from PIL import Image

        out = []
        for _ in range(n):
            img = self.images.next_rgb()
            scale = min(self.width / img.width, self.height / img.height)
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            canvas = Image.new("RGB", (self.width, self.height), (128, 128, 128))
            canvas.paste(img.resize(size), ((self.width - size[0]) // 2, (self.height - size[1]) // 2))
            data = torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8)
            out.append(data.view(self.height, self.width, 3).permute(2, 0, 1).float() / 255.0)
        return torch.stack(out)

    def _consume(self, torch, output, n: int) -> None:
        maps = [m.cpu() for m in output]  # post-processing runs on the CPU, as deployed
        self.detections = decode(torch, maps, self._heads, self.width, self.height)

    def teardown(self) -> None:
        self._static = None
        super().teardown()


def yolov4_tiny(**options: Any) -> YoloDetector:
    """yolov4_tiny: YOLOv4-Tiny detection from a darknet cfg (bundled; cfg=, weights= for yours), 416x416."""
    return YoloDetector("yolov4_tiny", **options)


yolov4_tiny.requires = ("torch", "torchvision")  # type: ignore[attr-defined]
yolov4_tiny.extra = "vision"  # type: ignore[attr-defined]

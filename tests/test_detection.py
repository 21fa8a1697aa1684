"""YOLOv4-Tiny from a darknet cfg: parsing, the network's shape, weights, CPU-side decode and NMS."""

from __future__ import annotations

import numpy as np
import pytest

from tuner.config import BATCH_SIZE, Config
from tuner.errors import ConfigError
from workloads.detection import BUNDLED_CFG, YoloDetector, build_darknet, load_darknet_weights, parse_cfg

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")


def test_the_bundled_cfg_builds_yolov4_tiny():
    sections = parse_cfg(BUNDLED_CFG.read_text())
    assert sections[0]["type"] == "net" and len(sections) == 39  # [net] + 38 layers
    model = build_darknet(sections, torch)
    assert sum(p.numel() for p in model.parameters()) == 6_056_606  # YOLOv4-Tiny, 80 classes
    with torch.inference_mode():
        maps = model(torch.zeros(1, 3, 416, 416))
    assert [tuple(m.shape) for m in maps] == [(1, 255, 13, 13), (1, 255, 26, 26)]
    assert [h.anchors for h in model.heads] == [[(81, 82), (135, 169), (344, 319)], [(23, 27), (37, 58), (81, 82)]]


def test_darknet_weights_load_in_order_and_a_mismatch_is_an_error(tmp_path):
    cfg = "[net]\nwidth=32\nheight=32\n[convolutional]\nbatch_normalize=1\nfilters=2\nsize=3\npad=1\n" \
          "activation=leaky\n[convolutional]\nfilters=3\nsize=1\nactivation=linear\n"
    model = build_darknet(parse_cfg(cfg), torch)
    values = np.arange(4 * 2 + 2 * 3 * 9 + 3 + 3 * 2, dtype=np.float32)
    path = tmp_path / "tiny.weights"
    with open(path, "wb") as fh:
        np.array([0, 2, 0], dtype=np.int32).tofile(fh)
        np.array([0], dtype=np.int64).tofile(fh)
        values.tofile(fh)
    load_darknet_weights(model, path, torch)
    bn = model.layers[0][1]
    assert bn.bias.tolist() == [0, 1] and bn.weight.tolist() == [2, 3] and bn.running_var.tolist() == [6, 7]
    assert model.layers[0][0].weight.flatten()[0].item() == 8
    assert model.layers[1][0].bias.tolist() == [62, 63, 64]  # a conv without batch norm: bias first
    with open(path, "ab") as fh:
        np.array([1.0], dtype=np.float32).tofile(fh)
    with pytest.raises(ConfigError, match="1 values more"):
        load_darknet_weights(model, path, torch)


def test_bad_cfgs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="starts with \\[net\\]"):
        parse_cfg("[convolutional]\nfilters=1\n")
    with pytest.raises(ConfigError, match="cfg:2: expected"):
        parse_cfg("[net]\nthis is not a key\n")
    with pytest.raises(ConfigError, match="not supported"):
        build_darknet(parse_cfg("[net]\n[gru]\n"), torch)
    with pytest.raises(ConfigError, match="does not exist"):
        YoloDetector(cfg=str(tmp_path / "missing.cfg"))


@pytest.mark.parametrize("graph", ["eager", "script"])
def test_yolov4_tiny_runs_exactly_the_inferences_and_decodes_on_the_cpu(graph, tmp_path):
    from PIL import Image

    Image.new("RGB", (640, 480), (200, 30, 30)).save(tmp_path / "a.jpg")
    wl = YoloDetector(images=str(tmp_path) if graph == "eager" else None)
    wl.setup(Config({BATCH_SIZE: 2, "graph": graph}))
    try:
        out = wl.run(3)
    finally:
        wl.teardown()
    assert out.inferences == 3 and len(out.batch_latencies_s) == 2
    assert len(wl.detections) == 1  # the last, partial batch: one image
    d = wl.detections[0]
    assert d.shape[1] == 6 and d.device.type == "cpu"
    if len(d):
        assert (d[:, 4] > 0.25).all() and (d[:, 5] < 80).all()

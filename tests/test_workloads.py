"""Real workloads: discovery through entry points, classification on this CPU, `edgetune run`."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from tuner.cli.main import app
from tuner.config import Config
from workloads.registry import list_workloads, make_workload

torch = pytest.importorskip("torch")
cli = CliRunner()


def invoke(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_workloads_list_names_the_real_and_the_simulated_ones():
    doc = invoke("workloads", "list")
    real = {w["name"] for w in doc["workloads"] if not w["simulated"]}
    sim = {w["name"] for w in doc["workloads"] if w["simulated"]}
    assert {"alexnet", "resnet18", "mobilenet_v2", "yolov4_tiny", "bert_tiny", "distilbert", "tflite", "cme", "dmp",
            "external", "torchscript"} <= real
    assert sim == {"alexnet", "resnet18", "mobilenet_v2", "yolov4_tiny", "bert_tiny", "distilbert"}
    assert all(w["requires"] == ["torch", "torchvision"] for w in doc["workloads"] if w["name"] == "resnet18"
               and not w["simulated"])


@pytest.mark.parametrize("workload, extra", [("mobilenet_v2", ()), ("yolov4_tiny", ()),
                                             ("bert_tiny", ("-o", "max_tokens=64"))])
def test_run_on_this_cpu_does_exactly_the_work_asked(workload, extra):
    doc = invoke("run", "--workload", workload, "--batch-size", "2", "--inferences", "8", *extra)
    assert doc["inferences"] == 8 and doc["feasible"] and doc["simulated"] is False
    assert doc["time_s"] > 0 and doc["batch_latency_p95_s"] >= doc["batch_latency_p50_s"] > 0
    assert doc["load_s"] > 0


def test_a_partial_last_batch_and_a_static_graph(tmp_path):
    wl = make_workload("resnet18", seed=1)
    wl.setup(Config({"batch_size": 4, "graph": "script"}))
    result = wl.run(6)  # one full batch and one of 2
    assert result.inferences == 6 and len(result.batch_latencies_s) == 2
    assert isinstance(wl.model, torch.jit.ScriptModule)
    wl.teardown()


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # TorchScript files are what JetPack users have
def test_user_torchscript_model_weights_file_and_image_directory(tmp_path):
    from PIL import Image

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 5))
    model_file = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(net), str(model_file))
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.new("RGB", (40 + 10 * i, 30), (i * 60, 100, 200)).save(images / f"{i}.png")
    doc = invoke("run", "--workload", "torchscript", "--model-file", str(model_file), "--images", str(images),
                 "--batch-size", "2", "--inferences", "5")
    assert doc["inferences"] == 5 and doc["feasible"]

    program = tmp_path / "tiny.pt2"  # the same model as a torch.export program, any batch size
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(net.eval(), (torch.rand(2, 3, 224, 224),), dynamic_shapes=({0: batch},)),
                      str(program))
    doc = invoke("run", "--workload", "torchscript", "--model-file", str(program), "--batch-size", "4",
                 "--inferences", "6", "--graph", "script")
    assert doc["inferences"] == 6 and doc["feasible"]

    import torchvision

    weights = tmp_path / "mnv2.pt"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), weights)
    wl = make_workload("mobilenet_v2", weights=str(weights))
    wl.setup(Config({"batch_size": 1}))
    assert wl.run(1).inferences == 1
    result = cli.invoke(app, ["run", "--workload", "resnet18", "--weights", str(weights), "--inferences", "1"])
    assert result.exit_code != 0 and "cannot load weights" in str(result.exception)


def test_bad_workload_input_is_one_clear_error(tmp_path):
    from tuner.errors import EdgetuneError

    with pytest.raises(EdgetuneError, match="no workload"):
        make_workload("vgg99")
    with pytest.raises(EdgetuneError, match="does not exist"):
        make_workload("alexnet", weights=str(tmp_path / "missing.pt"))
    with pytest.raises(EdgetuneError, match="model-file"):
        make_workload("torchscript")


def test_a_third_party_package_registers_a_workload_through_the_entry_point(tmp_path, monkeypatch):
    pkg = tmp_path / "site"
    (pkg / "countwl").mkdir(parents=True)
    (pkg / "countwl" / "__init__.py").write_text(textwrap.dedent('''
        from tuner.config import Knob
        from workloads.base import RunResult

        class Counter:
            name = "counter"
            def knobs(self):
                return [Knob("batch_size", (1, 2, 4))]
            def setup(self, config):
                self.batch = int(config.get("batch_size", 1))
            def run(self, inferences):
                return RunResult(inferences, [0.001] * -(-inferences // self.batch))
            def teardown(self):
                pass

        def make(**options):
            """counter: counts inferences, for tests"""
            return Counter()
    '''))
    dist = pkg / "countwl-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: countwl\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[edgetune.workloads]\ncounter = countwl:make\n")
    monkeypatch.syspath_prepend(str(pkg))
    names = {w.name: w for w in list_workloads()}
    assert names["counter"].description == "counter: counts inferences, for tests"
    doc = invoke("run", "--workload", "counter", "--batch-size", "4", "--inferences", "10")
    assert doc["inferences"] == 10 and doc["feasible"]
    sys.modules.pop("countwl", None)

#!/usr/bin/env bash
# The real-GPU check: what edgetune reads and measures on an NVIDIA GPU through NVML.
#
# It reads power and the energy counter only. It never changes clocks, power limits,
# persistence or MIG: no --allow-clock-control and no --gpu-freq anywhere, and
# nvidia-smi's view of the clocks and limits is saved before and after to show it.
#
#   benchmarks/nvml_check.sh OUT_DIR MODEL.onnx
#
# MODEL.onnx: any image model with a dynamic batch dimension, e.g. torchvision's
# mobilenet_v2 exported with torch.onnx.export(..., dynamic_axes={"input": {0: "batch"}}).
# Writes one JSON file (and its stderr) per step under OUT_DIR, and OUT_DIR/summary.json.
# EDGETUNE_CHECK_DEVICE=cpu runs the PyTorch steps on the CPU, EDGETUNE_CHECK_INFERENCES=N
# shortens every run (default 3200) and EDGETUNE_CHECK_BATCHES=4,16 narrows the sweep: a dry
# run on a machine without a GPU, with a stand-in pynvml module on PYTHONPATH.
set -u
out=${1:?usage: nvml_check.sh OUT_DIR MODEL.onnx}
onnx_model=${2:?usage: nvml_check.sh OUT_DIR MODEL.onnx}
dev=${EDGETUNE_CHECK_DEVICE:-cuda}
n=${EDGETUNE_CHECK_INFERENCES:-3200}
mkdir -p "$out"
export EDGETUNE_STATE_DIR="$out/state"

# step NAME SECONDS COMMAND...: stdout to NAME.json, stderr to NAME.err; a step that hangs is cut off.
step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.json" 2>"$out/$name.err"
    local rc=$?
    echo "   rc=$rc after $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || tail -n 3 "$out/$name.err"
}

smi() {
    command -v nvidia-smi >/dev/null || { echo "no nvidia-smi" >"$out/$1.csv"; return; }
    nvidia-smi --format=csv --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.applications.graphics,power.limit,persistence_mode,mig.mode.current,temperature.gpu >"$out/$1.csv" 2>&1
}

smi smi_before
step env 60 python3 - <<'EOF'
import json, platform, sys
info = {"python": platform.python_version()}
try:
    import torch
    info.update(torch=torch.__version__, cuda_available=torch.cuda.is_available(),
                cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
except ImportError as exc:
    info["torch"] = str(exc)
try:
    import onnxruntime as ort
    info.update(onnxruntime=ort.__version__, ort_providers=ort.get_available_providers())
except ImportError as exc:
    info["onnxruntime"] = str(exc)
json.dump(info, sys.stdout, indent=1)
EOF
step probe 120 edgetune probe --board nvml --json
# How often NVML's energy counter and power reading change, idle and under load (the runner's
# minimum window is 25 of these updates).
step update_period 120 python3 - "$dev" <<'PY'
import json, sys, threading, time
import pynvml
from tuner.sampler import update_period
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
energy = lambda: {"mj": pynvml.nvmlDeviceGetTotalEnergyConsumption(h)}  # noqa: E731
power = lambda: {"mw": pynvml.nvmlDeviceGetPowerUsage(h)}  # noqa: E731
out = {"idle": {"energy_s": update_period(energy, max_s=2.0), "power_s": update_period(power, max_s=2.0)}}
if sys.argv[1] == "cuda":
    import torch
    stop = threading.Event()
    def load():
        a = torch.randn(4096, 4096, device="cuda")
        while not stop.is_set():
            a = (a @ a).clamp_(-1, 1)
            torch.cuda.synchronize()
    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(0.5)
    out["loaded"] = {"energy_s": update_period(energy, max_s=2.0), "power_s": update_period(power, max_s=2.0)}
    stop.set()
    worker.join()
json.dump(out, sys.stdout)
PY
step run_resnet18 240 edgetune run --board nvml --workload resnet18 --device "$dev" --batch-size 16 \
    --inferences "$n" --json
step run_onnx_cpu 240 edgetune run --board nvml --workload onnx --model-file "$onnx_model" -o provider=cpu \
    --batch-size 16 --inferences "$((n / 10))" --json
step run_onnx_cuda 240 edgetune run --board nvml --workload onnx --model-file "$onnx_model" -o provider=cuda \
    --batch-size 16 --inferences "$n" --json
step run_onnx_tensorrt 240 edgetune run --board nvml --workload onnx --model-file "$onnx_model" \
    -o provider=tensorrt --batch-size 16 --inferences "$n" --json
# The energy-per-inference curve over batch size: a real measured surface, three repeats each.
step sweep_resnet18 300 edgetune sweep --board nvml --workload resnet18 -o device="$dev" \
    --batch-sizes "${EDGETUNE_CHECK_BATCHES:-1,4,16,64,128}" --inferences "$n" --repeats 3 --no-plots --out "$out/sweep" --json
smi smi_after

python3 - "$out" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {}
for path in sorted(out.glob("*.json")):
    if path.name == "summary.json":
        continue
    try:
        data = json.loads(path.read_text())
    except ValueError:
        err = (out / (path.stem + ".err")).read_text().strip().splitlines()
        summary[path.stem] = {"error": err[-1] if err else "no output"}
        continue
    if path.stem.startswith("run_"):
        data = {k: data.get(k) for k in ("config", "simulated", "inferences", "time_s", "energy_j", "avg_power_w",
                                          "energy_per_inference_j", "throughput_ips", "batch_latency_p95_s",
                                          "load_s", "feasible", "failure")}
    elif path.stem.startswith("sweep"):
        data = {"simulated": data.get("simulated"), "best": data.get("best"),
                "per_batch": {b: v.get("best") for b, v in (data.get("per_batch") or {}).items()}}
    summary[path.stem] = data
for name in ("smi_before", "smi_after"):
    summary[name] = (out / f"{name}.csv").read_text().strip().splitlines()
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
EOF

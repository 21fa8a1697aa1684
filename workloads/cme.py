"""Multi-tenant inference: concurrent model execution (CME) and dynamic model placement (DMP).

A tenant is any registered workload (``mobilenet_v2``, ``resnet18``, a
third-party one, ...), one instance per tenant with its own copy of the model;
``NAME:PATH`` is workload NAME on the model file PATH (``onnx:det.onnx``, an
ONNX model on ONNX Runtime, which releases the GIL inside its runs too).
Tenants run at once on **threads** of this process: PyTorch releases the GIL
inside its operators, so threads overlap their inference as processes would,
while sharing one CUDA context (each process would add its own, hundreds of
MB on a 4 GB Nano, and memory is what limits concurrency there — Subedi et
al.); on CUDA, PyTorch gives each thread its own stream when asked
(``streams=true``), so their kernels can overlap on the GPU.

CME: ``model=NAME`` with the ``concurrency`` knob (N instances of one model),
or ``models=a,b,c`` (a fixed mix). ``run(n)`` splits ``n`` inferences over
the tenants as evenly as it can and reports the total, the per-tenant counts
and every batch latency. :func:`probe_concurrency` raises the concurrency
until a level fails (out of memory, a crash) and reports the largest level
that works and the one with the highest throughput (Subedi et al. §IV-A).

DMP: ``models=a,b`` with ``placement=true`` adds the ``placement`` knob —
which processor each tenant runs on (``cpu``, ``cuda`` where present; for an
ONNX tenant also ``dla0``/``dla1`` where TensorRT is importable and the board
has DLAs), e.g. ``cuda,cpu`` — so the search places models as it sets clocks.
Each tenant is offered the processors it can run on; the placement decides an
ONNX tenant's execution provider, so dmp does not search ``provider``.

A mix's knobs are those of its models together; a knob several models have
(``batch_size``) keeps the values they all accept.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tuner.config import BATCH_SIZE, CONCURRENCY, PLACEMENT, Config, Knob
from tuner.errors import ConfigError, EdgetuneError, Infeasible
from workloads.base import RunResult

MAX_CONCURRENCY = 8
DEVICE = "device"
PROVIDER = "provider"  # an ONNX tenant's execution provider: decided by the placement in dmp


class MultiTenant:
    """cme / dmp: several workload instances running at once on threads."""

    def __init__(self, *, model: str | None = None, models: str | list[str] | None = None,
                 max_concurrency: int | str = MAX_CONCURRENCY, placement: bool | str = False,
                 streams: bool | str = False, make: Any = None, **tenant_options: Any) -> None:
        if (model is None) == (models is None):
            raise ConfigError("cme needs model=NAME (N instances, the concurrency knob) or models=a,b,... (a mix)")
        from workloads.registry import make_workload

        self._make = make or make_workload
        self.model = model
        self.models = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models or [])
        if models is not None and not all(self.models):
            raise ConfigError(f"models={models!r}: empty model name")
        self.max_concurrency = int(max_concurrency)
        if self.max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1")
        self.placement = _flag(placement)
        if self.placement and self.model is not None:
            raise ConfigError("placement (dmp) places a mix: give models=a,b,...")
        self.streams = _flag(streams)
        self.tenant_options = tenant_options
        self.name = "dmp" if self.placement else "cme"
        self.tenants: list[Any] = []
        self._names: list[str] = []
        # one instance per distinct model, made now (a bad name or file is an error here, not mid-search):
        # it answers for its model's knobs and becomes that model's first tenant
        self._probes: dict[str, Any] = {}
        for spec in [self.model] if self.model is not None else self.models:
            if spec not in self._probes:
                self._probes[spec] = self._new(spec)
        self.load_s = 0.0

    def _new(self, spec: str) -> Any:
        """A tenant for ``spec``: a workload name, or ``NAME:PATH`` (that workload on the model file PATH)."""
        name, sep, path = spec.partition(":")
        if sep and name and path:
            return self._make(name, **{**self.tenant_options, "model_file": path})
        return self._make(spec, **self.tenant_options)

    # --- knobs ----------------------------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        merged: dict[str, Knob] = {}
        for spec, probe in self._probes.items():
            for k in probe.knobs():
                if k.name not in merged:
                    merged[k.name] = k
                    continue
                first = merged[k.name]
                common = tuple(v for v in first.values if v in k.values)
                if not common:
                    raise ConfigError(f"the models share no value of {k.name} ({spec} takes "
                                      f"{', '.join(map(str, k.values))})")
                merged[k.name] = Knob(k.name, common, first.unit, first.ordered)
        dropped = {CONCURRENCY, DEVICE, PROVIDER} if self.placement else {CONCURRENCY, DEVICE}
        out = [k for k in merged.values() if k.name not in dropped]
        if self.model is not None:
            out.append(Knob(CONCURRENCY, tuple(range(1, self.max_concurrency + 1)), "instances"))
        if self.placement:
            each = [self._devices(self._probes[spec]) for spec in self.models]
            combos = (",".join(c) for c in itertools.product(*each))
            out.append(Knob(PLACEMENT, tuple(combos), ordered=False))
        return out

    @staticmethod
    def _devices(tenant: Any) -> tuple[str, ...]:
        """The processors ``tenant`` can be placed on: its own answer, else its device knob, else the CPU."""
        if hasattr(tenant, "placements"):
            return tuple(tenant.placements())
        inner = {k.name: k for k in tenant.knobs()}
        return tuple(str(v) for v in inner[DEVICE].values) if DEVICE in inner else ("cpu",)

    def tenant_names(self, config: Config) -> list[str]:
        if self.model is not None:
            return [self.model] * int(config.get(CONCURRENCY, 1))
        return list(self.models)

    # --- lifecycle ------------------------------------------------------------------------------
    def setup(self, config: Config) -> None:
        t0 = time.perf_counter()
        self.teardown()
        names = self.tenant_names(config)
        devices = str(config[PLACEMENT]).split(",") if PLACEMENT in config else [None] * len(names)
        if len(devices) != len(names):
            raise ConfigError(f"placement={config[PLACEMENT]}: one processor per model ({len(names)}: "
                              f"{', '.join(names)})")
        inner = config.workload().to_dict()
        inner.pop(CONCURRENCY, None)
        inner.pop(PLACEMENT, None)
        reused: set[str] = set()
        try:
            for i, (name, device) in enumerate(zip(names, devices)):
                if name in self._probes and name not in reused:
                    tenant = self._probes[name]
                    reused.add(name)
                else:
                    tenant = self._new(name)
                tenant_config = dict(inner)
                if device is not None:
                    tenant_config[DEVICE] = device
                tenant.setup(Config(tenant_config))  # raises Infeasible when this one does not fit
                self.tenants.append(tenant)
                self._names.append(f"{name}#{i}")
        except BaseException:
            self.teardown()
            raise
        self.load_s = time.perf_counter() - t0

    def run(self, inferences: int) -> RunResult:
        if not self.tenants:
            raise EdgetuneError("run() before setup()")
        k = len(self.tenants)
        shares = [inferences // k + (1 if i < inferences % k else 0) for i in range(k)]
        results: list[RunResult | None] = [None] * k
        errors: list[BaseException | None] = [None] * k
        start = threading.Barrier(k + 1)

        def work(i: int) -> None:
            try:
                start.wait()
                with _stream(self.streams, self.tenants[i]):
                    results[i] = self.tenants[i].run(shares[i]) if shares[i] else RunResult(0)
            except BaseException as exc:  # reported below, on the caller's thread
                errors[i] = exc

        threads = [threading.Thread(target=work, args=(i,), name=f"edgetune-tenant-{i}") for i in range(k)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        start.wait()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        for exc in errors:
            if exc is not None:
                raise exc
        out = TenantResult(0, wall_s=wall)
        for name, r in zip(self._names, results):
            assert r is not None
            out.inferences += r.inferences
            out.batch_latencies_s += r.batch_latencies_s
            out.tenants[name] = r.inferences
        return out

    def teardown(self) -> None:
        for tenant in self.tenants:
            try:
                tenant.teardown()
            except Exception:
                pass
        self.tenants, self._names = [], []


@dataclass
class TenantResult(RunResult):
    """A run's result with the inferences each tenant completed."""

    tenants: dict[str, int] = field(default_factory=dict)


class _stream:
    """Run a tenant on its own CUDA stream (when asked and on CUDA); otherwise nothing."""

    def __init__(self, enabled: bool, tenant: Any) -> None:
        self.ctx = None
        # PyTorch's streams; a tenant of another runtime (ONNX Runtime) manages its own
        if enabled and getattr(tenant, "device", "cpu") == "cuda" and getattr(tenant, "runtime", "torch") == "torch":
            import torch

            self.ctx = torch.cuda.stream(torch.cuda.Stream())

    def __enter__(self) -> None:
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


def probe_concurrency(workload: MultiTenant, *, batch_size: int | None = None, inferences_per_tenant: int = 32,
                      max_level: int | None = None) -> dict[str, Any]:
    """Raise the concurrency from 1 until a level fails; the largest level that runs and the fastest.

    A failing level (out of memory, a crash) ends the probe cleanly: its
    tenants are torn down and the levels before it stand.
    """
    if workload.model is None:
        raise ConfigError("the concurrency probe needs model=NAME (instances of one model)")
    levels = []
    top = min(max_level or workload.max_concurrency, workload.max_concurrency)
    for c in range(1, top + 1):
        values: dict[str, Any] = {CONCURRENCY: c}
        if batch_size is not None:
            values[BATCH_SIZE] = batch_size
        try:
            workload.setup(Config(values))
            result = workload.run(c * inferences_per_tenant)
        except Exception as exc:  # Infeasible or a crash: this level is the limit
            workload.teardown()
            memory = isinstance(exc, Infeasible) and exc.memory
            levels.append({"concurrency": c, "ok": False, "failure": f"{type(exc).__name__}: {exc}",
                           "memory": memory})
            break
        levels.append({"concurrency": c, "ok": True, "throughput_ips": result.inferences / result.wall_s,
                       "inferences": result.inferences})
    workload.teardown()
    ok = [lv for lv in levels if lv["ok"]]
    best = max(ok, key=lambda lv: lv["throughput_ips"]) if ok else None
    return {"model": workload.model, "batch_size": batch_size, "levels": levels,
            "max_concurrency": ok[-1]["concurrency"] if ok else 0,
            "best_concurrency": best["concurrency"] if best else None,
            "speedup": (best["throughput_ips"] / ok[0]["throughput_ips"]) if best else None,
            "stopped_by": levels[-1]["failure"] if levels and not levels[-1]["ok"] else None}


def _flag(value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"expected true or false, not {value!r}")


def cme(**options: Any) -> MultiTenant:
    """cme: N concurrent instances of one model (model=, the concurrency knob) or a mix (models=a,b)."""
    return MultiTenant(**options)


def dmp(**options: Any) -> MultiTenant:
    """dmp: a mix of models (models=a,b) with the processor of each as the placement knob."""
    return MultiTenant(placement=True, **options)


cme.requires = ()  # type: ignore[attr-defined]
dmp.requires = ()  # type: ignore[attr-defined]

"""The daemon's configuration file (TOML), validated with pydantic.

Every section forbids unknown keys, so a typo is an error instead of a
silently ignored setting. :func:`load_settings` turns every problem into one
:class:`~tuner.errors.ConfigError` line that names the file, the key and what
is wrong — the daemon refuses to start (or, on SIGHUP, keeps the old
settings) rather than guess. See ``systemd/edgetune.toml`` for a commented
example.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuner.daemon.protocol import DEFAULT_SOCKET
from tuner.errors import ConfigError, EdgetuneError
from tuner.units import parse_duration, parse_freq

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

EXTERNAL_CHANGE_ACTIONS = ("yield", "reassert")


def _check(parse: Any, *args: Any) -> None:
    """Run a parser inside a validator: its one-line error becomes the key's error."""
    try:
        parse(*args)
    except EdgetuneError as exc:
        raise ValueError(str(exc)) from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoardSettings(_Section):
    """``[board]``: which board (a spec as ``--board``) under which root, and the live simulator's pace."""

    spec: str = Field("auto", description="auto, jetson, linux, nvml[:INDEX], sim:PROFILE or replay:DIR")
    root: Path = Path("/")
    live_sim: bool = True  # an emulated tree (edgetune sim create) is animated in-process
    time_scale: float = Field(1.0, gt=0)  # live simulated workloads run this many times faster


class ObjectiveSettings(_Section):
    """``[objective]``: what the search minimises and the constraints a held config must keep."""

    kind: str = "energy"  # energy | time | weighted:W | edp | ed2p | power
    latency_slo: Optional[str] = None  # p95 batch latency, e.g. "50ms"
    min_throughput: Optional[float] = Field(None, gt=0)  # inferences per second
    power_cap_w: Optional[float] = Field(None, gt=0)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from tuner.objective import Objective

        _check(Objective.parse, v)
        return v

    @field_validator("latency_slo")
    @classmethod
    def _slo(cls, v: str | None) -> str | None:
        if v is not None:
            _check(parse_duration, v)
        return v

    def objective(self) -> Any:
        from tuner.objective import Constraints, Objective

        slo = parse_duration(self.latency_slo) if self.latency_slo else None
        return Objective.parse(self.kind, Constraints(slo, self.min_throughput, self.power_cap_w))


class SearchSettings(_Section):
    """``[search]``: strategy, budget, the work per trial and which knob values are searched."""

    strategy: str = "bo"  # economical (early stop, racing): see tuner.search.search; ogd runs online too
    budget: str = "10%"  # a trial count ("40") or a share of the space ("10%")
    seed: int = 0
    inferences: int = Field(3200, ge=1)  # per repeat while exploring
    repeats: int = Field(2, ge=1)  # until they agree; a config clearly worse than the best gets one (racing)
    max_repeats: int = Field(4, ge=1)
    # stop before the budget once no config has a fair chance of beating the best by more than
    # this share (tuner.search.search); 0 spends the budget and repeats every config
    stop_improvement: float = Field(0.01, ge=0, lt=1)
    timeout: Optional[str] = None  # a repeat that runs longer is infeasible
    cpu_freqs: Optional[List[str]] = None  # narrow the searched steps; default: every device step
    gpu_freqs: Optional[List[str]] = None
    batch_sizes: Optional[List[int]] = None  # default: the workload's own domain
    # more workload knobs to search: name -> values ([] = the knob's whole domain), e.g. concurrency = [1, 2, 4]
    workload_knobs: Dict[str, List[Union[int, float, str]]] = Field(default_factory=dict)

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        from tuner.strategies import STRATEGIES

        if v not in STRATEGIES:
            raise ValueError(f"unknown strategy {v!r}; choose from {', '.join(STRATEGIES)}")
        return v

    @field_validator("budget")
    @classmethod
    def _budget(cls, v: str) -> str:
        from tuner.search import parse_budget

        _check(parse_budget, v, 100)
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str | None) -> str | None:
        if v is not None:
            _check(parse_duration, v)
        return v

    @field_validator("cpu_freqs", "gpu_freqs")
    @classmethod
    def _freqs(cls, v: list[str] | None) -> list[str] | None:
        for text in v or ():
            _check(parse_freq, str(text), "Hz")
        return v

    @field_validator("workload_knobs")
    @classmethod
    def _workload_knobs(cls, v: dict[str, list]) -> dict[str, list]:
        for name in v:
            if name in ("cpu_freq_khz", "gpu_freq_hz", "batch_size"):
                raise ValueError(f"{name} has its own key (cpu_freqs, gpu_freqs, batch_sizes)")
        return v

    @model_validator(mode="after")
    def _repeats(self) -> SearchSettings:
        if self.max_repeats < self.repeats:
            raise ValueError(f"max_repeats ({self.max_repeats}) is below repeats ({self.repeats})")
        return self

    def knobs(self) -> dict[str, tuple | None]:
        """The searched knobs and their values (None: the device's or workload's whole domain);
        unnamed batch sizes are the default ones, as for ``tune`` (:data:`tuner.config.DEFAULT_BATCH_SIZES`)."""
        from tuner.config import BATCH_SIZE, CPU_FREQ, DEFAULT_BATCH_SIZES, GPU_FREQ

        return {
            CPU_FREQ: tuple(parse_freq(str(t), "kHz") for t in self.cpu_freqs) if self.cpu_freqs else None,
            GPU_FREQ: tuple(parse_freq(str(t), "Hz") for t in self.gpu_freqs) if self.gpu_freqs else None,
            BATCH_SIZE: tuple(self.batch_sizes) if self.batch_sizes else DEFAULT_BATCH_SIZES,
            **{name: tuple(values) or None for name, values in self.workload_knobs.items()},
        }

    def optional(self) -> tuple[str, ...]:
        """The knobs of :meth:`knobs` that are defaults, not named: searched where the board and
        workload offer them, left out (and said so) where not (:func:`tuner.search.plan_space`)."""
        from tuner.config import BATCH_SIZE, CPU_FREQ, GPU_FREQ

        return tuple(name for name, given in ((CPU_FREQ, self.cpu_freqs), (GPU_FREQ, self.gpu_freqs),
                                              (BATCH_SIZE, self.batch_sizes)) if not given)


class WatchSettings(_Section):
    """How the held config is watched, and when the daemon searches again."""

    window_inferences: int = Field(400, ge=1)  # work per watch window while holding
    interval_s: float = Field(0.0, ge=0)  # pause between windows (an analytic board has no real time)
    drift_tolerance: float = Field(0.15, gt=0, lt=1)  # relative change of throughput or power
    drift_windows: int = Field(3, ge=1)  # consecutive windows off the signature before a re-search
    slo_windows: int = Field(3, ge=1)  # consecutive windows missing a constraint before a re-search
    temp_limit_c: float = Field(85.0, gt=0)  # above it: the safe config, at once
    temp_hysteresis_c: float = Field(5.0, ge=0)
    # another program (jetson_clocks, nvpmodel, jtop, echo) changed a knob edgetune holds:
    # "yield" = stop writing until `edgetune control resume`/`retune`; "reassert" = log, count, re-apply
    on_external_change: str = "yield"

    @field_validator("on_external_change")
    @classmethod
    def _on_external_change(cls, v: str) -> str:
        if v not in EXTERNAL_CHANGE_ACTIONS:
            raise ValueError(f"unknown action {v!r}; choose from {', '.join(EXTERNAL_CHANGE_ACTIONS)}")
        return v


class WorkloadSettings(_Section):
    """One ``[[workloads]]`` entry: the workload to tune, its options, and a rate if it is rate-driven."""

    name: str  # a registered workload (edgetune workloads list: external, cme, ...) or a simulated one
    rate: Optional[float] = Field(None, gt=0)  # rate-driven: inferences per second it must keep up with
    options: Dict[str, Any] = Field(default_factory=dict)  # passed to the workload (weights, images, device)


class DaemonSettings(_Section):
    """``[daemon]``: state directory, control socket and its permissions, sampling, the fleet store."""

    state_dir: Optional[Path] = None  # default: /var/lib/edgetune (or the emulated tree's own)
    socket: Path = Path(DEFAULT_SOCKET)
    socket_group: Optional[str] = "edgetune"
    socket_mode: str = "0660"
    sample_rate_hz: float = Field(10.0, gt=0, le=1000)
    # the fleet's shared store (README "Fleet"): postgresql://USER@HOST/DB or sqlite:///PATH. The daemon keeps
    # its own record in state_dir either way and copies it there; a search starts from identical boards' trials
    store: Optional[str] = None
    store_sync_s: float = Field(30.0, gt=0)  # how often the record is copied (and an unreachable store retried)

    @field_validator("store")
    @classmethod
    def _store(cls, v: str | None) -> str | None:
        if v is not None:
            from tuner.store import store_url

            _check(store_url, v)
        return v

    @field_validator("socket_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        try:
            mode = int(v, 8)
        except ValueError:
            raise ValueError(f"socket_mode must be octal like \"0660\", not {v!r}") from None
        if mode & 0o007:
            raise ValueError("socket_mode must give others no access (the socket's group is the access list)")
        return v


def parse_listen(text: str) -> Tuple[str, int]:
    """``host:port`` for the metrics endpoint: ``127.0.0.1:9642``, ``[::1]:9642``, ``0.0.0.0:9642``, or a
    port alone (``9642``, ``:9642``), which listens on loopback. Port 0 takes any free port."""
    t = str(text).strip()
    host, sep, port = t.rpartition(":")
    if not sep:
        host, port = "", t
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, like \"[::1]:9642\", not {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen is host:port, like \"127.0.0.1:9642\", not {text!r}")
    return host or "127.0.0.1", int(port)


class MetricsSettings(_Section):
    """Prometheus metrics (tuner.metrics): an HTTP endpoint, a node_exporter textfile, or both; off by default."""

    listen: Optional[str] = None  # "127.0.0.1:9642" (loopback), "[::1]:9642", "0.0.0.0:9642" (every interface)
    textfile: Optional[Path] = None  # e.g. /var/lib/node_exporter/textfile_collector/edgetune.prom

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str | None) -> str | None:
        if v is not None:
            parse_listen(v)
        return v

    @field_validator("textfile")
    @classmethod
    def _textfile(cls, v: Path | None) -> Path | None:
        if v is not None and (v.suffix != ".prom" or not v.is_absolute()):
            raise ValueError(f"textfile must be an absolute path ending in .prom (node_exporter reads only "
                             f"*.prom), not {str(v)!r}")
        return v

    @property
    def enabled(self) -> bool:
        return self.listen is not None or self.textfile is not None

    def address(self) -> tuple[str, int] | None:
        return parse_listen(self.listen) if self.listen is not None else None


class Settings(_Section):
    """The whole validated config file; every section forbids unknown keys."""

    daemon: DaemonSettings = DaemonSettings()
    board: BoardSettings = BoardSettings()
    objective: ObjectiveSettings = ObjectiveSettings()
    search: SearchSettings = SearchSettings()
    watch: WatchSettings = WatchSettings()
    metrics: MetricsSettings = MetricsSettings()
    workloads: List[WorkloadSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_tuned_workload(self) -> Settings:
        # The clocks are one board-wide setting: two workloads tuned separately
        # would fight over them. Several tenants tuned together are one CME
        # workload, not several entries here.
        if len(self.workloads) > 1:
            raise ValueError("one [[workloads]] entry per board (the clocks are shared); tune several models "
                             "together as one: name = \"cme\", options = { models = \"a,b\" }")
        return self

    def state_path(self) -> Path:
        if self.daemon.state_dir is not None:
            return self.daemon.state_dir
        from tuner.app import state_dir

        return state_dir(self.board.root)


def load_settings(path: str | Path) -> Settings:
    """Read and validate the config file; one-line errors that name file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (see systemd/edgetune.toml for an example)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_settings(data, str(path))


def parse_settings(data: dict[str, Any], source: str = "<config>") -> Settings:
    """Validate a parsed config document; the first problem becomes one ConfigError line naming the key."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = re.sub(r"^Value error, ", "", str(err["msg"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {key}: {msg}{more}") from None

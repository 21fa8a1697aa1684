"""The trial runner: the Measure flow (DESIGN §3) for one config.

apply the hardware part to the board → set the workload up for the workload
part → warm up → run a fixed amount of work while the sampler records the
rails → integrate → repeat until the repeats agree (or a repeat limit).

On an :class:`~tuner.boards.base.AnalyticBoard` (simulated or replayed) the
repeat is computed by the board instead of sampled; everything around it —
repeats, failures, the Trial record — is the same code.

Failures of the config itself (out of memory, a workload that raises, a run
over the timeout) come back as infeasible trials. Errors of the caller (a
value not in the device's list) and of the hardware (a refused write)
propagate: they are not properties of the config.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from tuner.boards.base import AnalyticBoard, Board
from tuner.config import BATCH_SIZE, CPU_GOVERNOR, GPU_GOVERNOR, Config, Knob
from tuner.errors import ConfigError, EdgetuneError, HardwareError, Infeasible
from tuner.measurement import OOM_PREFIX, Measurement, Trial, percentile
from tuner.residency import ResidencySampler
from tuner.sampler import DEFAULT_RATE_HZ, Sampler
from workloads.base import RunResult, Workload

DEFAULT_INFERENCES = 3200  # per repeat, as in the reference study
CANNOT_KEEP_UP = "cannot keep up"
MAX_MISSED_SHARE = 0.01  # rate-driven: more than 1 % of batches late is not keeping up


@dataclass(frozen=True)
class RunPolicy:
    """How much work one repeat is, and when repeats are enough.

    ``max_spread`` is (max−min)/mean of the repeats' energy: with ~1.5 %
    sensor noise, three repeats normally land within 5 %; a run that does not
    (a background job, a thermal transient) gets more repeats, up to
    ``max_repeats``. ``timeout_s`` marks a repeat that ran longer infeasible
    (it is not pre-empted: a workload cannot be killed mid-batch safely).

    ``min_window_updates``: on a sensor that changes only every so often (a power
    source's ``update_period_s``: NVML's counter), a window of ``inferences`` that
    lasts fewer updates than this runs a whole multiple of them instead, the same
    multiple for every repeat of a config. A counter read at the window's ends is up
    to one period stale at each, so a window of N periods is off by up to 1/N: 3,200
    inferences of ResNet-18 at batch 128 took 0.16 s on an H200, whose NVML counter
    updates every 0.1 s, and repeats at batch 16-128 spread 20-36 % (0.02-1.2 % with
    this minimum). The objective is per inference, so the multiple changes no
    comparison. 0 runs exactly ``inferences`` (``edgetune run``).
    """

    inferences: int = DEFAULT_INFERENCES
    warmup_inferences: int | None = None  # default: two batches
    min_repeats: int = 3
    max_repeats: int = 6
    max_spread: float = 0.05
    timeout_s: float | None = None
    settle_s: float = 0.2
    sample_rate_hz: float = DEFAULT_RATE_HZ
    rate_ips: float | None = None  # rate-driven: inferences per second the application asks for
    min_window_updates: int = 25

    def __post_init__(self) -> None:
        if self.inferences < 1:
            raise ConfigError("inferences per repeat must be at least 1")
        if not 1 <= self.min_repeats <= self.max_repeats:
            raise ConfigError(f"repeats must satisfy 1 <= min ({self.min_repeats}) <= max ({self.max_repeats})")
        if self.max_spread <= 0:
            raise ConfigError("the repeat spread limit must be positive")
        if self.rate_ips is not None and not self.rate_ips > 0:
            raise ConfigError("the target rate must be positive")
        if self.min_window_updates < 0:
            raise ConfigError("the window's minimum number of sensor updates cannot be negative")


def dvfs_config(board: Board, workload_part: Config | None = None) -> Config:
    """The board's default: the kernel's default governors over the full range.

    This is the reference every saving is quoted against. The default pair is
    what the board runs out of the box (schedutil / nvhost_podgov on L4T);
    where a board offers neither, its first listed governor.
    """
    values: dict[str, object] = dict(workload_part or {})
    for knob in board.knobs():
        if knob.name == CPU_GOVERNOR:
            values[CPU_GOVERNOR] = _default_governor(knob, ("schedutil", "interactive", "ondemand"))
        elif knob.name == GPU_GOVERNOR:
            values[GPU_GOVERNOR] = _default_governor(knob, ("nvhost_podgov", "simple_ondemand", "wmark_active"))
    return Config(values)  # type: ignore[arg-type]


def _default_governor(knob: Knob, preferred: tuple[str, ...]) -> str:
    for name in preferred:
        if name in knob.values:
            return name
    return str(knob.values[0])


class TrialRunner:
    """Measures configs of one workload on one board: the repeats, the racing rule and the
    failures around one repeat, which the board's :class:`Source` takes."""

    def __init__(self, board: Board | AnalyticBoard, workload: Workload | str,
                 policy: RunPolicy | None = None) -> None:
        self.board = board
        self.workload = workload
        self.policy = policy or RunPolicy()
        self.source = source_for(board, workload, self)
        self.measured = 0  # repeats run (for progress and overhead accounting)

    @property
    def simulated(self) -> bool:
        """Whether the board's numbers are simulated (an analytic or emulated board)."""
        return bool(self.board.info.simulated)

    @property
    def analytic(self) -> bool:
        """Whether each repeat is computed (a simulated or replayed board), not sampled."""
        return self.source.computed

    def workload_knobs(self) -> list[Knob]:
        """The workload's own knobs (batch size, concurrency, ...) on this board."""
        return self.source.knobs()

    def measure(self, config: Config, enough: Callable[[list[Measurement]], bool] | None = None) -> Trial:
        """Measure ``config`` with the policy's repeats; never raises for the config's own failures.

        ``enough`` (a search's racing rule, :func:`tuner.search.race`) is asked after
        every repeat: True ends the trial before the policy's minimum, because what was
        measured already settles what the search needs to know (the config cannot beat
        the incumbent). Without it, repeats run until ``min_repeats`` agree."""
        try:
            self.source.prepare(config)
        except Infeasible as exc:
            m = Measurement.infeasible(config, _reason(exc), simulated=self.simulated)
            return Trial(config, m, [m])
        repeats: list[Measurement] = []
        while True:
            m = self._once(config)
            repeats.append(m)
            self.measured += 1
            if not m.feasible or len(repeats) >= self.policy.max_repeats:
                break
            if enough is not None and enough(repeats):
                break
            if len(repeats) >= self.policy.min_repeats and _spread(repeats) <= self.policy.max_spread:
                break
        return Trial(config, Measurement.combine(repeats), repeats)

    def teardown(self) -> None:
        """Release what the workload holds (a loaded model); the board is the caller's to restore."""
        self.source.teardown()

    def _once(self, config: Config) -> Measurement:
        """One repeat; the workload's own failures (out of memory, a crash) become an infeasible
        measurement, the caller's and the hardware's errors propagate."""
        try:
            return self.source.once(config)
        except (ConfigError, HardwareError):
            raise
        except Infeasible as exc:
            return Measurement.infeasible(config, _reason(exc), simulated=self.simulated)
        except Exception as exc:  # the workload's own crash is a property of this config
            if self.source.computed:
                raise  # a computed repeat has no workload to crash: this is a bug, not a config
            return Measurement.infeasible(config, f"workload crashed: {type(exc).__name__}: {exc}",
                                          simulated=self.simulated)


class Source:
    """Where one repeat's measurement comes from: set a config up, measure it once, let go.

    :class:`Computed` for a board that computes measurements (simulated, replayed),
    :class:`Sampled` for a board whose rails are sampled while a workload object
    runs (a Jetson, an emulated tree, a plain Linux machine)."""

    computed = False

    def knobs(self) -> list[Knob]:
        """The workload's knobs."""
        raise NotImplementedError

    def prepare(self, config: Config) -> None:
        """Apply ``config`` (hardware and workload parts); Infeasible if it cannot run."""
        raise NotImplementedError

    def once(self, config: Config) -> Measurement:
        """One repeat of the policy's work at ``config`` (already prepared)."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release the workload."""


def source_for(board: Board | AnalyticBoard, workload: Workload | str, runner: TrialRunner) -> Source:
    """The source for this pairing, from what the board and the workload say they are: a board
    that computes its measurements (``computes_measurements``) runs workloads by name, any
    other board a workload object (one that runs); the other pairings are a clear error."""
    named = not callable(getattr(workload, "run", None))  # a workload name, not a Workload
    if getattr(board, "computes_measurements", False):
        if not named:
            raise EdgetuneError("a simulated or replayed board runs workloads by name")
        return Computed(board, workload, runner)  # type: ignore[arg-type]
    if named:
        raise EdgetuneError(f"workload {workload!r} needs a workload object on a real board")
    return Sampled(board, workload, runner)  # type: ignore[arg-type]


class Computed(Source):
    """A simulated or replayed board: each repeat is the board's computed measurement
    (paced to the application's rate when the policy has one)."""

    computed = True

    def __init__(self, board: AnalyticBoard, workload: str, runner: TrialRunner) -> None:
        self.board, self.workload, self.runner = board, workload, runner

    def knobs(self) -> list[Knob]:
        """The board's model of the named workload's knobs."""
        return self.board.workload_knobs(self.workload)

    def prepare(self, config: Config) -> None:
        """Apply ``config`` to the board's state (a simulated board checks its values)."""
        self.board.apply(config)  # type: ignore[attr-defined]

    def once(self, config: Config) -> Measurement:
        """The board's measurement of one repeat."""
        p = self.runner.policy
        m = self.board.measure(self.workload, config, p.inferences)
        return paced(m, p.rate_ips) if p.rate_ips else m


class Sampled(Source):
    """A board with rails to sample and a workload object to run: apply, set the workload
    up when its part of the config changes, settle, warm up, run under the sampler."""

    def __init__(self, board: Board, workload: Workload, runner: TrialRunner) -> None:
        self.board, self.workload, self.runner = board, workload, runner
        self._workload_config: Config | None = None
        # work per repeat in policy.inferences, for a coarse sensor: per config and policy (the
        # daemon swaps its search policy for a shorter watch window on the same runner)
        self._multiples: dict[tuple[Config, RunPolicy], int] = {}

    def knobs(self) -> list[Knob]:
        """The workload object's own knobs."""
        return self.workload.knobs()

    def prepare(self, config: Config) -> None:
        """Apply the hardware part; reload the workload only when its part changes; settle."""
        self.board.apply(config)
        wl = config.workload()
        if wl != self._workload_config:
            self._workload_config = None
            self.workload.setup(wl)
            self._workload_config = wl
        if self.runner.policy.settle_s > 0:
            time.sleep(self.runner.policy.settle_s)  # let the clocks and the rails settle on the new config

    def teardown(self) -> None:
        """Tear the workload down if it is set up."""
        if self._workload_config is not None:
            self.workload.teardown()
            self._workload_config = None

    def once(self, config: Config) -> Measurement:
        """Warm up, then run the policy's work while the sampler records the rails."""
        p = self.runner.policy
        simulated = self.runner.simulated
        source = self.board.power_source()
        sampler = Sampler(source, p.sample_rate_hz).start() if source is not None else None
        clocks = getattr(self.board, "clocks", None)
        residency = ResidencySampler(clocks, p.sample_rate_hz) if clocks is not None else None
        batch = int(config.get(BATCH_SIZE, 1))
        period = getattr(source, "update_period_s", None)
        misses = 0
        try:
            warmup = p.warmup_inferences
            if warmup is None:
                warmup = 2 * batch
            if sampler:
                sampler.mark("warmup")
            if warmup > 0:
                self.workload.run(warmup)
            if period:
                # the counter's value at the window's start must already hold loaded power
                rate = self._warm_for(period, batch)
                multiple = self._multiples.setdefault((config, p), self._multiple(p, period, rate))
            else:
                multiple = 1
            work = p.inferences * multiple
            if residency:
                residency.start()
            t0 = sampler.mark("inference") if sampler else time.monotonic()
            if p.rate_ips:
                result, misses = self._paced_run(work, batch, p.rate_ips)
            else:
                result = self.workload.run(work)
            t1 = time.monotonic()
        finally:
            trace = sampler.stop() if sampler else None
            shares = residency.stop() if residency else {}
        elapsed = t1 - t0
        if p.timeout_s is not None and elapsed / multiple > p.timeout_s:
            return Measurement.infeasible(config, f"timeout: the run took {elapsed / multiple:.1f} s > "
                                          f"{p.timeout_s:g} s", simulated=simulated)
        if misses > MAX_MISSED_SHARE * max(1, math.ceil(work / batch)):
            return Measurement.infeasible(config, f"{CANNOT_KEEP_UP}: {misses} batches missed their deadline at "
                                          f"{p.rate_ips:g}/s", simulated=simulated)
        energy, rails = math.nan, {}
        if trace is not None:
            report = trace.energy(t0, t1)
            energy, rails = report.total_j, report.rails_j
        lat = result.batch_latencies_s
        return Measurement(
            config=config, simulated=simulated, energy_j=energy, time_s=elapsed,
            inferences=result.inferences, rail_energy_j=rails,
            batch_latency_p50_s=percentile(lat, 50), batch_latency_p95_s=percentile(lat, 95),
            temperatures_c=self.board.temperatures(), residency=shares,
            tenants=dict(getattr(result, "tenants", {})),
        )

    def _warm_for(self, seconds: float, batch: int) -> float:
        """Keep running batches until ``seconds`` have passed; the inferences per second they ran."""
        done, start = 0, time.monotonic()
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= seconds:
                return done / elapsed if done else math.nan
            done += self.workload.run(batch).inferences

    @staticmethod
    def _multiple(policy: RunPolicy, period: float, rate: float) -> int:
        """How many times ``policy.inferences`` one repeat runs so that its window spans at least
        ``policy.min_window_updates`` updates of a sensor that changes every ``period`` s."""
        per_work = policy.inferences / (policy.rate_ips or rate)  # seconds of one policy.inferences
        if not policy.min_window_updates or not per_work > 0:
            return 1
        return max(1, math.ceil(policy.min_window_updates * period / per_work))

    def _paced_run(self, inferences: int, batch: int, rate: float) -> tuple[RunResult, int]:
        """Run at the application's rate: one batch per ``batch / rate`` seconds, idle
        in between; a batch that ends after the next one was due missed its deadline."""
        period = batch / rate
        out = RunResult(0)
        misses = 0
        start = time.monotonic()
        k = 0
        while out.inferences < inferences:
            due = start + k * period
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            part = self.workload.run(min(batch, inferences - out.inferences))
            out.inferences += part.inferences
            out.batch_latencies_s += part.batch_latencies_s
            k += 1
            if time.monotonic() > start + k * period + 1e-3:
                misses += 1
        # the window ends when the last frame's period does: idle time after it is part of the service
        end = start + k * period
        if time.monotonic() < end:
            time.sleep(end - time.monotonic())
        out.wall_s = time.monotonic() - start
        return out, misses


def paced(m: Measurement, rate: float) -> Measurement:
    """A fixed-work measurement turned into the same work served at ``rate`` per second.

    The board runs flat out for ``m.time_s`` and idles (at ``m.idle_power_w``)
    for the rest of the ``inferences / rate`` seconds — how a rate-driven
    application that finishes each frame early behaves. A config slower than
    the rate cannot keep up: infeasible. Used for computed (simulated,
    replayed) measurements; a real board is paced for real by the runner.
    """
    if not m.feasible:
        return m
    if m.throughput_ips < rate:
        return replace(m, feasible=False, failure=f"{CANNOT_KEEP_UP}: {m.throughput_ips:.1f}/s < {rate:g}/s")
    wall = m.inferences / rate
    idle = m.idle_power_w if math.isfinite(m.idle_power_w) else 0.0
    extra = idle * (wall - m.time_s)
    rails = dict(m.rail_energy_j)
    if "total" in rails:
        rails["total"] += extra
    return replace(m, energy_j=m.energy_j + extra, time_s=wall, rail_energy_j=rails)


def _reason(exc: Infeasible) -> str:
    text = str(exc)
    if exc.memory and not text.startswith(OOM_PREFIX):
        return f"{OOM_PREFIX}: {text}"
    return text


def _spread(repeats: list[Measurement]) -> float:
    values = [m.energy_j for m in repeats]
    if any(math.isnan(v) for v in values):  # no energy sensor: judge by time
        values = [m.time_s for m in repeats]
    mean = sum(values) / len(values)
    return (max(values) - min(values)) / mean if mean > 0 else 0.0

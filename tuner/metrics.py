"""Prometheus metrics of the daemon (DESIGN §9): an HTTP endpoint and a node_exporter textfile.

Imported by the daemon only when ``[metrics]`` is on, so a daemon without it
never loads ``prometheus_client``. Nothing here measures anything: a scrape
turns the status snapshot the daemon already publishes after every trial,
window and command (:meth:`tuner.daemon.service.Daemon._publish`) into metric
families, so a scrape costs a dict copy and some formatting, and never touches
the board or waits for the service loop.

Every sample carries the labels ``board``, ``model`` (the board's model) and
``workload``, and ``simulated="true"`` on a simulated board. The registry is
the daemon's own (:class:`prometheus_client.CollectorRegistry`), not the
library's global default, so the exporter serves exactly these families.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tuner.boards.thermal import PLACEHOLDER_ZONES  # zones that read a constant, not a temperature
from tuner.daemon.states import EXPLORING, HOLDING, STATES  # one edgetune_state series per state

log = logging.getLogger("edgetune.metrics")

#: the states in which the daemon runs the workload, so the latest power reading is the board's now
MEASURING = (EXPLORING, HOLDING)

Snapshot = Callable[[], Dict[str, Any]]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class StatusCollector:
    """A custom collector: the daemon's status snapshot, read at scrape time."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        doc = self._snapshot() or {}
        board = doc.get("board") or {}
        names = ["board", "model", "workload"]
        if doc.get("simulated"):
            names.append("simulated")

        def labels(workload: str, *extra: str) -> List[str]:
            base = [str(board.get("name") or ""), str(board.get("model") or ""), workload]
            return base + (["true"] if doc.get("simulated") else []) + list(extra)

        def gauge(name: str, text: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=names + list(extra))

        def counter(name: str, text: str, *extra: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, text, labels=names + list(extra))

        power = gauge("edgetune_power_watts", "Board power of the latest trial or watch window, per rail "
                      "(rail=\"total\" is the board input); only while exploring or holding", "rail")
        energy = counter("edgetune_energy_joules", "Energy measured in watch windows and search trials "
                         "since the daemon started")
        inferences = counter("edgetune_inferences", "Inferences measured in watch windows and search trials "
                             "since the daemon started")
        epi = gauge("edgetune_energy_per_inference_joules", "Energy per inference of the last watch window")
        saving = gauge("edgetune_saving_ratio", "Energy-per-inference saving of the best config against the "
                       "DVFS reference (0.2 = 20 % less)")
        state = gauge("edgetune_state", "1 for the daemon's current state, 0 for the others", "state")
        trials = counter("edgetune_trials", "Search trials measured since the daemon started (DVFS references "
                         "included)")
        explored = counter("edgetune_exploration_joules", "Energy of the search trials measured since the daemon "
                           "started")
        knob = gauge("edgetune_knob_value", "Numeric knob values of the held config (while holding)", "knob")
        knob_info = gauge("edgetune_knob_info", "Non-numeric knob values of the held config (while holding), "
                          "as a label", "knob", "value")
        temp = gauge("edgetune_temperature_celsius", "Temperature per thermal zone", "zone")
        errors = counter("edgetune_errors", "Errors counted by kind (each is logged; none stops the daemon)",
                         "kind")

        for w in doc.get("workloads") or ():
            wl = str(w.get("name") or "")
            m = w.get("measured") or {}
            if w.get("state") in MEASURING:
                if _finite(m.get("power_w")):
                    power.add_metric(labels(wl, "total"), m["power_w"])
                for rail, watts in sorted((m.get("rails_w") or {}).items()):
                    if rail != "total" and _finite(watts):
                        power.add_metric(labels(wl, rail), watts)
            energy.add_metric(labels(wl), float(m.get("energy_j") or 0.0))
            inferences.add_metric(labels(wl), float(m.get("inferences") or 0))
            trials.add_metric(labels(wl), float(m.get("trials") or 0))
            explored.add_metric(labels(wl), float(m.get("exploration_j") or 0.0))
            mj = (w.get("last_window") or {}).get("energy_per_inference_mj")
            if _finite(mj):
                epi.add_metric(labels(wl), mj / 1e3)
            if _finite(w.get("saving_vs_dvfs")):
                saving.add_metric(labels(wl), w["saving_vs_dvfs"])
            for s in STATES:
                state.add_metric(labels(wl, s), 1.0 if w.get("state") == s else 0.0)
            if w.get("state") == HOLDING:
                for name, value in sorted((w.get("applied") or {}).items()):
                    if _finite(value):
                        knob.add_metric(labels(wl, name), value)
                    elif isinstance(value, str):
                        knob_info.add_metric(labels(wl, name, value), 1.0)
            for zone, celsius in sorted((doc.get("temperatures_c") or {}).items()):
                if zone not in PLACEHOLDER_ZONES and _finite(celsius):
                    temp.add_metric(labels(wl, zone), celsius)
            for kind, count in sorted((doc.get("errors") or {}).items()):
                errors.add_metric(labels(wl, kind), float(count))
        yield from (power, energy, inferences, epi, saving, state, trials, explored, knob, knob_info, temp, errors)


def write_textfile(path: Path, registry: CollectorRegistry) -> None:
    """The registry in the text format at ``path``, replaced atomically.

    What ``prometheus_client.write_to_textfile`` does (a temporary file beside
    it, then a rename), except that the file is 0644 whatever the umask: the
    unit's ``UMask=0007`` would otherwise hide it from node_exporter's user.
    The temporary name does not end in ``.prom``, so node_exporter never reads
    a half-written file.
    """
    data = generate_latest(registry)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:  # owns fd from here: closed whatever fails below
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Exporter:
    """The daemon's registry, served over HTTP and/or written to a textfile.

    ``start`` binds the HTTP server (its own daemon threads, one per scrape);
    ``changed`` (after every published snapshot) and ``tick`` (every turn of
    the service loop) write the textfile at most every ``min_interval_s``, so a
    fast loop does not rewrite it hundreds of times a second and a change is
    on disk within about a second; ``stop`` shuts the server and removes the
    textfile (a stopped daemon has restored the board: its last numbers would
    be wrong, and an absent series is how Prometheus says so).
    """

    def __init__(self, snapshot: Snapshot, *, address: Optional[Tuple[str, int]] = None,
                 textfile: Optional[Path] = None, min_interval_s: float = 1.0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatusCollector(snapshot))
        self.address = address
        self.textfile = Path(textfile) if textfile is not None else None
        self.min_interval_s = min_interval_s
        self.url: Optional[str] = None
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self._written_at: Optional[float] = None
        self._dirty = True

    def start(self) -> Exporter:
        if self.address is not None:
            host, port = self.address
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
            bound = self._server.server_address[1]
            self.url = f"http://{f'[{host}]' if ':' in host else host}:{bound}/metrics"
        return self

    def changed(self, now: float) -> None:
        """The snapshot changed: write the textfile if the last write is old enough (else at a later tick)."""
        self._dirty = True
        self.tick(now)

    def tick(self, now: float) -> None:
        """Write the textfile if it is behind the snapshot and the last write is old enough; raises OSError."""
        if self.textfile is None or not self._dirty:
            return
        if self._written_at is not None and now - self._written_at < self.min_interval_s:
            return
        self._written_at = now
        write_textfile(self.textfile, self.registry)
        self._dirty = False

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
        if self.textfile is not None:
            try:
                self.textfile.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove the metrics textfile %s: %s", self.textfile, exc)

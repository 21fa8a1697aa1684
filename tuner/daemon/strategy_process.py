"""The daemon's search strategy, run in a child process so the daemon never loads its model.

A strategy's libraries stay in a process once imported: Bayesian
optimisation loads scikit-optimize, scikit-learn and SciPy (about 90 MB
resident), which a daemon holding a config for weeks would carry for
nothing. So the daemon asks and tells through :class:`RemoteStrategy`, a
stand-in with the :class:`~tuner.strategies.base.Strategy` interface whose
model lives in a fresh interpreter (started like multiprocessing's ``spawn``,
without its resource-tracker process) for the length of one search, and
exits when the search ends.

Only the model moves. The daemon keeps the board, the workload, the sampler,
the store and the journal: the child never opens a sysfs file, so the daemon
stays the one process that writes knobs. Calls are synchronous, one request
and one reply over a pipe, so the child computes only between measurements
(as the strategy did in-process) and is idle while a trial runs; the same
seed and the same told costs give the same asks (floats cross the pipe
exactly). A child that dies (killed, out of memory) or cannot start raises
:class:`StrategyProcessError` in the daemon at the next call; an error the
strategy raises (a :class:`~tuner.errors.ConfigError`, a bug) is raised again
in the daemon as it was, with the child's traceback logged for a bug.

Configs are sent as their items and rebuilt on the other side: a
:class:`~tuner.config.Config` caches its hash, and string hashes differ
between interpreters.
"""

from __future__ import annotations

import copyreg
import io
import logging
import os
import pickle
import signal
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable, FrozenSet

from tuner.config import Config, Space
from tuner.errors import EdgetuneError

log = logging.getLogger("edgetune.daemon")

#: Attributes that never change in a strategy's life: read from the child once (the racing rule reads
#: ``lattice`` between repeats; it holds every config of the space).
STATIC_ATTRIBUTES = ("lattice",)
CLOSE_WAIT_S = 2.0  # how long an idle child may take to exit after its pipe closes, before it is killed
#: Variables the child must not inherit: it is not the service systemd watches.
PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")


class StrategyProcessError(EdgetuneError):
    """The search strategy's child process could not start, or exited (killed, out of memory) mid-search."""


class Within:
    """A space constraint the child can receive: the configs the daemon's own constraints allowed.

    A recorded board's space is constrained by a method of the board (the grid
    it recorded), which must not travel to the child; the set of allowed
    configs gives the same space, in the same order.
    """

    def __init__(self, configs: FrozenSet[Config]) -> None:
        self.configs = configs

    def __call__(self, config: Config) -> bool:
        """Whether the daemon's space allows ``config``."""
        return config in self.configs


def portable_space(space: Space) -> Space:
    """``space`` with its constraints replaced by the set of configs they allow (see :class:`Within`)."""
    if not space.constraints:
        return space
    return Space(space.knobs, (Within(frozenset(space)),))


def _reduce_config(config: Config) -> tuple[Callable[..., Config], tuple[dict[str, Any]]]:
    return Config, (config.to_dict(),)


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` for the other process, every Config as its items (rebuilt there, hash included)."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, Config: _reduce_config}
    pickler.dump(obj)
    return buf.getvalue()


class RemoteStrategy:
    """A strategy whose model runs in a child process for one search (module docstring).

    Made like :func:`tuner.strategies.make_strategy` (the name, the space, the
    seed and the start config); returns once the child has made the strategy,
    and raises what making it raised. Use it as a context manager, or call
    :meth:`close`: the child exits then. Attributes other than the
    Strategy interface are read from the child's strategy when asked for.
    """

    def __init__(self, name: str, space: Space, *, seed: int = 0, start: Config | None = None) -> None:
        self.name = name
        self.space = space
        self._busy = False
        self._closed = False
        self._static: dict[str, Any] = {}
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        code = (f"import sys; sys.path[:] = {list(sys.path)!r}; "
                f"from tuner.daemon.strategy_process import child_main; sys.exit(child_main({req_r}, {rep_w}))")
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        try:
            self._proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(req_r, rep_w),
                                          stdin=subprocess.DEVNULL, env=env)
        except OSError as exc:
            for fd in (req_r, req_w, rep_r, rep_w):
                os.close(fd)
            raise StrategyProcessError(f"cannot start the {name} search strategy's process: "
                                       f"{exc.strerror or exc}") from None
        os.close(req_r)
        os.close(rep_w)
        self._out = Connection(req_w, readable=False)
        self._in = Connection(rep_r, writable=False)
        try:
            self._request(("make", name, portable_space(space), seed, start))
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid

    # --- the Strategy interface ---------------------------------------------------------------
    def ask(self) -> Config | None:
        """The next config to measure (None when the strategy has finished)."""
        return self._request(("call", "ask", (), {}))

    def tell(self, config: Config, cost: float, measurement: Any = None) -> None:
        """Tell the strategy what ``config`` cost (and its measurement: repeats, failures)."""
        self._request(("call", "tell", (config, cost, measurement), {}))

    def best(self) -> Config | None:
        """The strategy's recommendation so far."""
        return self._request(("call", "best", (), {}))

    def done(self) -> bool:
        """Whether the strategy has nothing more to ask."""
        return bool(self._request(("call", "done", (), {})))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._static:
            return self._static[name]
        value = self._request(("get", name))
        if isinstance(value, _Method):
            return lambda *args, **kwargs: self._request(("call", name, args, kwargs))
        if isinstance(value, _Missing):
            raise AttributeError(f"{type(self).__name__} ({self.name}) has no attribute {name!r}")
        if name in STATIC_ATTRIBUTES:
            self._static[name] = value
        return value

    # --- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """End the child: at once if it is computing (a signal cut the call short), else when its pipe closes."""
        if self._closed:
            return
        self._closed = True
        for conn in (self._out, self._in):
            try:
                conn.close()
            except OSError:
                pass
        if self._busy:
            self._proc.kill()
        try:
            self._proc.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> RemoteStrategy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------
    def _request(self, msg: tuple) -> Any:
        if self._closed:
            raise StrategyProcessError(f"the {self.name} search strategy's process was closed")
        self._busy = True
        try:
            self._out.send_bytes(dumps(msg))
            data = self._in.recv_bytes()
        except (EOFError, OSError):
            raise self._died() from None
        self._busy = False
        kind, value = pickle.loads(data)
        if kind == "ok":
            return value
        if kind == "method":
            return _Method()
        if kind == "missing":
            return _Missing()
        raise self._error(value)

    def _died(self) -> StrategyProcessError:
        try:
            code = self._proc.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        if code < 0:
            sig = signal.Signals(-code).name
            how = f"was killed by {sig}" + (" (out of memory?)" if sig == "SIGKILL" else "")
        else:
            how = f"exited with status {code}"
        self._busy = False
        self.close()
        return StrategyProcessError(f"the {self.name} search strategy's process {how} mid-search")

    def _error(self, doc: dict[str, Any]) -> BaseException:
        exc = None
        if doc.get("pickled") is not None:
            try:
                exc = pickle.loads(doc["pickled"])
            except Exception:  # an exception type the daemon cannot rebuild
                exc = None
        if not isinstance(exc, EdgetuneError):  # a bug: where it happened is in the child
            log.error("the %s search strategy failed in its process:\n%s", self.name, doc["traceback"].rstrip())
        if isinstance(exc, Exception):
            return exc
        return StrategyProcessError(f"the {self.name} search strategy failed: {doc['type']}: {doc['message']}")


class _Method:
    """Marks an attribute of the child's strategy that is a method (called through the pipe)."""


class _Missing:
    """Marks an attribute the child's strategy does not have."""


def _error_doc(exc: BaseException) -> dict[str, Any]:
    try:
        pickled = dumps(exc)
    except Exception:
        pickled = None
    return {"type": type(exc).__name__, "message": str(exc), "pickled": pickled,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def child_main(req_fd: int, rep_fd: int) -> int:
    """The child's loop: make the strategy, then answer calls until the pipe closes or ``close`` arrives."""
    # Ctrl-C and systemd's stop (SIGTERM to the whole control group) are the daemon's to handle:
    # it ends this process through the pipe, after restoring the board
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    inbox = Connection(req_fd, writable=False)
    outbox = Connection(rep_fd, readable=False)
    strategy: Any = None
    while True:
        try:
            msg = pickle.loads(inbox.recv_bytes())
        except (EOFError, OSError):
            return 0
        op = msg[0]
        if op == "close":
            return 0
        try:
            if op == "make":
                from tuner.strategies import make_strategy

                _, name, space, seed, start = msg
                strategy = make_strategy(name, space, seed=seed, start=start)
                reply: tuple = ("ok", None)
            elif op == "call":
                _, name, args, kwargs = msg
                reply = ("ok", getattr(strategy, name)(*args, **kwargs))
            elif op == "get":
                value = getattr(strategy, msg[1], _Missing)
                if value is _Missing:
                    reply = ("missing", None)
                else:
                    reply = ("method", None) if callable(value) else ("ok", value)
            else:
                raise ValueError(f"unknown request {op!r}")
            data = dumps(reply)
        except Exception as exc:
            data = dumps(("error", _error_doc(exc)))
        try:
            outbox.send_bytes(data)
        except OSError:  # the daemon closed the pipe
            return 0

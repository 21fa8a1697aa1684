"""The daemon's states, the events that move it between them, and its persisted workload state.

The daemon is a small state machine (DESIGN §3). Its states:

- ``exploring``: searching (the Search flow), writing each trial's config;
- ``holding``: holding the best (or an applied) config, measuring it in windows;
- ``paused``: writing nothing (by request, after a restore, or when the board
  refused the config or nothing feasible was found);
- ``safe``: above the temperature limit, holding the coolest clocks until the
  board has cooled by the hysteresis;
- ``overridden``: another program changed a knob file edgetune wrote, and
  edgetune yields (writes nothing) until ``resume`` or ``retune``.

Every change of state is one of the events below, and :data:`TRANSITIONS` is
the whole table: for each event, the states it may fire in and where it leads.
``safe`` and ``overridden`` interrupt another state and remember it
(``resume_state``); :data:`BACK` returns there. :func:`step` is pure (no
board, no store): the daemon (:meth:`tuner.daemon.service.Daemon._go`) looks
the event up here, then runs the event's action (apply a config, a new search
epoch, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from tuner.config import Config

EXPLORING, HOLDING, PAUSED, SAFE, OVERRIDDEN = "exploring", "holding", "paused", "safe", "overridden"
STATES = (EXPLORING, HOLDING, PAUSED, SAFE, OVERRIDDEN)

# --- events --------------------------------------------------------------------------------------
SEARCH = "search"  # a new search epoch: drift, repeated constraint misses, `retune`
CONTINUE = "continue"  # search on in the current epoch: `resume` with nothing known to hold
HOLD = "hold"  # hold a config: a search's best, `apply`, `resume`, a reassertion
PAUSE = "pause"  # `pause`: stop tuning and keep the clocks (while safe: pause once cooled)
RELEASE = "release"  # stop writing at once: `restore`, nothing feasible found, a config the board refuses
HOT = "hot"  # above the temperature limit: the safe config
OUTSIDE = "outside"  # another program changed a knob edgetune wrote, and edgetune yields
BACK = "back"  # leave safe or overridden for the state they interrupted (cooled, undone, `resume`)
EVENTS = (SEARCH, CONTINUE, HOLD, PAUSE, RELEASE, HOT, OUTSIDE, BACK)

#: ``resume_state`` after a transition: unchanged, or the state being left (safe and overridden remember it)
KEEP, LEFT = "keep", "left"
#: A transition's target meaning "the remembered state" (``resume_state``)
RESUME = "resume"

#: event -> {state it may fire in: (target state, what resume_state becomes)}.
TRANSITIONS: Dict[str, Dict[str, Tuple[str, str]]] = {
    # while safe, a command (retune, apply, resume, pause) waits for the board to cool: what it
    # asks for becomes where safe goes back to, and the coolest clocks stay until then
    SEARCH: {**{s: (EXPLORING, KEEP) for s in STATES if s != SAFE}, SAFE: (SAFE, EXPLORING)},
    CONTINUE: {**{s: (EXPLORING, KEEP) for s in STATES if s != SAFE}, SAFE: (SAFE, EXPLORING)},
    HOLD: {**{s: (HOLDING, KEEP) for s in STATES if s != SAFE}, SAFE: (SAFE, HOLDING)},
    PAUSE: {**{s: (PAUSED, KEEP) for s in (EXPLORING, HOLDING, PAUSED, OVERRIDDEN)}, SAFE: (SAFE, PAUSED)},
    RELEASE: {s: (PAUSED, KEEP) for s in STATES},
    # overridden: another program owns the clocks now, and the kernel's own thermal limits still apply
    HOT: {s: (SAFE, LEFT) for s in (EXPLORING, HOLDING, PAUSED)},
    # only where edgetune writes knobs; safe already remembers the state it interrupted
    OUTSIDE: {EXPLORING: (OVERRIDDEN, LEFT), HOLDING: (OVERRIDDEN, LEFT), SAFE: (OVERRIDDEN, KEEP)},
    BACK: {SAFE: (RESUME, KEEP), OVERRIDDEN: (RESUME, KEEP)},
}

#: States in which edgetune writes knobs, so reads them back (where another program's change is news).
WATCHED = tuple(TRANSITIONS[OUTSIDE])


class TransitionError(RuntimeError):
    """An event fired in a state the table does not allow it in: a bug in the daemon, not a user error."""


def allows(state: str, event: str) -> bool:
    """Whether ``event`` may fire in ``state``."""
    return state in TRANSITIONS[event]


def step(state: str, resume_state: str, event: str, *, holdable: bool = True) -> Tuple[str, str]:
    """The (state, resume_state) that ``event`` leads to from (``state``, ``resume_state``).

    ``holdable`` says whether there is a config to hold: going back to
    ``holding`` without one means searching instead (``exploring``).
    """
    try:
        target, resume = TRANSITIONS[event][state]
    except KeyError:
        raise TransitionError(f"no transition from {state} on {event}") from None
    if target == RESUME:
        target = resume_state
    if target == HOLDING and not holdable:
        target = EXPLORING
    if resume == LEFT:
        resume_state = state
    elif resume != KEEP:
        resume_state = resume
    return target, resume_state


@dataclass
class WorkloadState:
    """What the daemon knows about its workload; persisted in the store (see :meth:`to_store`).

    Energies are joules per inference; ``payback_s`` is seconds. Only the
    daemon's loop changes it, and its ``state`` only through the table above.
    """

    name: str
    state: str = EXPLORING
    epoch: int = 0
    reason: str = "first start"
    best: Optional[Config] = None
    best_epi_j: Optional[float] = None
    best_repeats: int = 0
    dvfs_epi_j: Optional[float] = None
    applied: Optional[Config] = None
    manual: bool = False
    searches: int = 0
    trials_used: int = 0
    resume_state: str = HOLDING  # where SAFE and OVERRIDDEN go back to
    windows: int = 0
    last_window: Dict[str, Any] = field(default_factory=dict)
    external_changes: int = 0  # times another program was found to have changed knob files edgetune wrote
    exploration: Optional[Dict[str, Any]] = None  # the last search's cost (tuner.cost), and when it pays back
    payback_s: Optional[float] = None
    last_external: Optional[Dict[str, Any]] = None  # the last such finding: when, which files, what was done
    fleet: Optional[Dict[str, Any]] = None  # what the last search's fleet warm start did (tuner.search.Prior)
    waiting: Optional[str] = None  # while safe: the reason of a command carried out once cooled (not stored)

    def to_store(self, spec_key: str) -> Dict[str, Any]:
        """The document the store keeps (safe is stored as the state it interrupted: heat does not last)."""
        state = self.resume_state if self.state == SAFE else self.state
        return {"spec_key": spec_key, "state": state, "epoch": self.epoch, "reason": self.reason,
                "best": self.best.to_dict() if self.best else None, "best_epi_j": self.best_epi_j,
                "best_repeats": self.best_repeats, "dvfs_epi_j": self.dvfs_epi_j,
                "applied": self.applied.to_dict() if self.applied else None, "manual": self.manual,
                "searches": self.searches, "resume_state": self.resume_state,
                "external_changes": self.external_changes, "last_external": self.last_external,
                "exploration": self.exploration, "payback_s": self.payback_s, "fleet": self.fleet}

    @classmethod
    def from_store(cls, name: str, doc: Dict[str, Any]) -> WorkloadState:
        """The state a restart resumes from the stored document."""
        # overridden survives a restart: the other program's setting stands until someone says resume
        reason = doc.get("reason", "") if doc["state"] == OVERRIDDEN else "resumed after a restart"
        ws = cls(name, state=doc["state"], epoch=int(doc["epoch"]), reason=reason,
                 best=Config(doc["best"]) if doc.get("best") else None, best_epi_j=doc.get("best_epi_j"),
                 best_repeats=int(doc.get("best_repeats") or 0), dvfs_epi_j=doc.get("dvfs_epi_j"),
                 applied=Config(doc["applied"]) if doc.get("applied") else None,
                 manual=bool(doc.get("manual")), searches=int(doc.get("searches") or 0),
                 resume_state=doc.get("resume_state") or HOLDING,
                 external_changes=int(doc.get("external_changes") or 0), last_external=doc.get("last_external"),
                 exploration=doc.get("exploration"), payback_s=doc.get("payback_s"), fleet=doc.get("fleet"))
        if ws.state == HOLDING and ws.applied is None:
            ws.state = EXPLORING if ws.best is None else HOLDING
            ws.applied = ws.best
        return ws

"""Full sweep: every config once, in an order that is kind to a real board.

Workload knobs (batch size, concurrency) vary slowest, ascending, so the model
is reloaded only when they change and an out-of-memory batch prunes the larger
ones before they are tried. Within one workload setting the GPU steps down
from its maximum and the CPU walks a serpentine, so consecutive trials differ
by one clock step (small transitions, a smooth thermal history). Resumable
through the store like every strategy: the order is deterministic.

After the map, the few leaders are measured once more before a best is
declared: the lowest of hundreds of noisy means is biased low (the winner's
curse), and a second trial of each contender removes most of that bias.
"""

from __future__ import annotations

from tuner.config import CPU_FREQ, HARDWARE_KNOBS, Config
from tuner.strategies.base import Strategy


class Sweep(Strategy):
    """Every config once in a hardware-friendly order, then its leaders again: the full map."""

    name = "sweep"
    summary = "every config once, then its leaders again (the topology map other strategies are judged against)"
    confirm = 5  # leaders re-measured at the end

    def __init__(self, space, *, seed: int = 0, start: Config | None = None) -> None:
        super().__init__(space, seed=seed, start=start)
        self._queue = sorted(range(len(self.lattice)), key=self._key)
        self._next = 0
        self._confirm: list[int] | None = None

    def _key(self, row: int) -> tuple[int, ...]:
        names = self.space.names
        idx = self.lattice.index[row]
        workload = [int(idx[i]) for i, n in enumerate(names) if n not in HARDWARE_KNOBS]
        hw = [i for i, n in enumerate(names) if n in HARDWARE_KNOBS]
        inner = [i for i in hw if names[i] == CPU_FREQ] or hw[-1:]
        outer = [i for i in hw if i not in inner]
        outer_key = [-int(idx[i]) for i in outer]
        # serpentine: odd rows (counted from the top outer step) walk the inner knob back up
        down = sum(int(self.lattice.sizes[i]) - 1 - int(idx[i]) for i in outer) % 2 == 0
        inner_key = [(-int(idx[i]) if down else int(idx[i])) for i in inner]
        return tuple(workload + outer_key + inner_key)

    def ask(self) -> Config | None:
        while self._next < len(self._queue):
            row = self._queue[self._next]
            self._next += 1
            if self.allowed[row]:
                return self.lattice.configs[row]
        if self._confirm is None:
            means = self.mean_costs()
            finite = [r for r in sorted(means, key=means.__getitem__) if means[r] < float("inf")]
            self._confirm = finite[: self.confirm]
        return self.lattice.configs[self._confirm.pop(0)] if self._confirm else None

    def done(self) -> bool:
        mapped = not any(self.allowed[r] for r in self._queue[self._next:])
        return mapped and self._confirm is not None and not self._confirm

"""Strategies: the ask/tell contract, memory pruning, and that each one finds a bowl's bottom.

The tests assert outcomes a user sees — how soon a search reaches the band around the
optimum, what its trials cost on the way, that it never re-measures without cause,
that it keeps to its trust region, what it asks first on surfaces shaped as the
published measurements — not the exact sequence of configs a strategy asks today nor
its private state, so that a better strategy passes them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.config import Config, Knob, Space
from tuner.measurement import OOM_PREFIX, Measurement
from tuner.strategies import STRATEGIES, make_strategy
from tuner.strategies.sweep import Sweep

SPACE = Space((Knob("cpu_freq_khz", tuple(range(100, 1600, 100))), Knob("gpu_freq_hz", tuple(range(10, 130, 10))),
               Knob("batch_size", (8, 16, 32, 64))))


def surface(config: Config) -> float:
    """A smooth energy bowl: best at cpu 700, gpu 60, batch 32; ~3x from best to worst."""
    c = (config["cpu_freq_khz"] - 700) / 1400
    g = (config["gpu_freq_hz"] - 60) / 110
    b = math.log2(config["batch_size"] / 32) / 2
    return math.exp(0.4 * c * c + 1.2 * g * g + 0.3 * b * b + 0.2 * c * g)


def oom(config: Config) -> bool:
    return config["batch_size"] >= 64


def drive(name: str, space: Space, budget: int, seed: int, trial) -> tuple[object, list[Config]]:
    """Ask and tell strategy ``name`` for up to ``budget`` trials; ``trial(config)`` gives the cost
    and the measurement told (on ``SPACE`` the largest batch runs out of memory instead)."""
    strategy = make_strategy(name, space, seed=seed)
    asked = []
    for _ in range(budget):
        config = strategy.ask()
        if config is None:
            break
        asked.append(config)
        if space is SPACE and oom(config):
            m = Measurement.infeasible(config, f"{OOM_PREFIX}: batch too large", simulated=True)
            strategy.tell(config, math.inf, m)
        else:
            strategy.tell(config, *trial(config))
    return strategy, asked


def run(name: str, budget: int, seed: int = 0, noise: float = 0.01) -> tuple[object, list[Config]]:
    rng = np.random.default_rng(100 + seed)
    return drive(name, SPACE, budget, seed, lambda c: (surface(c) * (1 + noise * rng.standard_normal()), None))


OPT = min(surface(c) for c in SPACE if not oom(c))


@pytest.mark.parametrize("name,seeds", [("bo", 2), ("thompson", 1), ("ogd", 5)])
def test_model_and_descent_strategies_reach_the_bottom_with_a_tenth_of_the_space(name, seeds):
    for seed in range(seeds):
        strategy, asked = run(name, budget=60, seed=seed)
        best = strategy.best()
        assert surface(best) <= OPT * 1.03, (name, seed, best)
        # after the first memory failure at batch 64, batch 64 is never asked again
        first = next((i for i, c in enumerate(asked) if oom(c)), None)
        if first is not None:
            assert not any(oom(c) for c in asked[first + 1:])


def test_random_baseline_never_repeats_and_covers_the_space():
    strategy, asked = run("random", budget=1000)
    assert len(asked) == len(set(asked))
    # memory pruning removes batch 64 after its first failure: the rest is everything else
    assert {c for c in asked if not oom(c)} == {c for c in SPACE if not oom(c)}
    assert strategy.done()


def test_sweep_walks_one_clock_step_at_a_time_then_confirms_its_leaders():
    strategy, asked = run("sweep", budget=10_000)
    feasible = [c for c in SPACE if not oom(c)]
    mapped = asked[: len(asked) - Sweep.confirm]
    assert set(mapped) >= set(feasible) and strategy.done()
    assert mapped[0] == Config({"cpu_freq_khz": 1500, "gpu_freq_hz": 120, "batch_size": 8})  # from the top
    for a, b in zip(mapped, mapped[1:]):
        if a["batch_size"] == b["batch_size"]:
            steps = sum(abs(SPACE.knob(k).index(a[k]) - SPACE.knob(k).index(b[k]))
                        for k in ("cpu_freq_khz", "gpu_freq_hz"))
            assert steps == 1, (a, b)
    confirmed = asked[len(asked) - Sweep.confirm:]
    assert len(set(confirmed)) == Sweep.confirm and all(asked.count(c) == 2 for c in confirmed)
    assert surface(strategy.best()) <= OPT * 1.02


def test_online_descent_starts_at_the_maximum_and_moves_down():
    strategy, asked = run("ogd", budget=30, noise=0.0)
    assert asked[0] == Config({"cpu_freq_khz": 1500, "gpu_freq_hz": 120, "batch_size": 64})
    assert asked[1]["batch_size"] < 64  # the start did not fit: the nearest smaller batch
    costs = [surface(c) for c in asked if not oom(c)]
    assert min(costs) < 0.7 * costs[0]
    # told where the workload runs now, it starts there (online use)
    started = make_strategy("ogd", SPACE, start=Config({"batch_size": 16}))
    assert started.ask()["batch_size"] == 16


def first_within(asked: list[Config], band: float) -> int | None:
    """The index of the first trial within ``band`` of the optimum (1.02: the 2 % band)."""
    return next((i for i, c in enumerate(asked) if not oom(c) and surface(c) <= band * OPT), None)


def test_online_descent_from_the_top_reaches_the_band_in_a_few_trials_that_cost_little():
    """Online, every trial is real work at that config, so what the trials cost matters as
    much as where they end. From the top corner (73 % over the optimum) and a memory
    failure, the descent is within 5 % of the optimum by its 6th trial and within 2 % by
    its 8th, and its first ten trials average within 20 % of the optimum: the GPU probe
    goes straight to the published guess, is refined one clock at a time from there
    rather than jumping on to the wall, and the batch waits while the clocks move (a
    descent without any one of these misses at least one of the three)."""
    for seed in range(2):
        _, asked = run("ogd", budget=12, seed=seed, noise=0.0 if seed == 0 else 0.01)
        assert first_within(asked, 1.05) is not None and first_within(asked, 1.05) <= 5, (seed, asked)
        assert first_within(asked, 1.02) is not None and first_within(asked, 1.02) <= 7, (seed, asked)
        first_ten = [surface(c) for c in asked[:11] if not oom(c)]
        assert np.mean(first_ten) <= 1.20 * OPT, (seed, np.mean(first_ten) / OPT)


def test_online_descent_moves_the_batch_only_after_the_clocks_have_moved():
    """A batch that starts at its largest fit (the prior's choice) is left alone until the
    clocks have made a combined move: near the top clocks, a smaller batch wins by noise
    about as often as not, and a descent that followed it would refine the wrong batch.
    It is probed soon after, though. Started at a small batch (online, where the workload
    runs now), the batch is probed in the first round."""
    _, asked = run("ogd", budget=16, noise=0.0)
    largest_fit = asked[1]["batch_size"]  # asked[0], at batch 64, did not fit
    assert largest_fit == 32
    first_other = next(i for i, c in enumerate(asked) if i > 0 and c["batch_size"] != largest_fit)
    top = asked[0]
    assert any(c["cpu_freq_khz"] < top["cpu_freq_khz"] and c["gpu_freq_hz"] < top["gpu_freq_hz"]
               for c in asked[1:first_other]), asked[:first_other + 1]
    strategy = make_strategy("ogd", SPACE, start=Config({"batch_size": 16}))
    asked = []
    for _ in range(4):
        config = strategy.ask()
        asked.append(config)
        strategy.tell(config, surface(config))
    assert asked[0]["batch_size"] == 16 and any(c["batch_size"] != 16 for c in asked[1:4])


def test_prior_guess_is_the_gpu_60_percent_up_and_everything_else_at_its_top():
    from tuner.strategies.prior import batch_trend, likely_best

    assert likely_best(SPACE) == (14, 7, 3)
    space = Space((Knob("gpu_freq_hz", (1, 2, 3, 4, 5, 6, 7)), Knob("placement", ("gpu", "cpu"), ordered=False),
                   Knob("concurrency", (1, 2, 3))))
    assert likely_best(space) == (4, 0, 2)
    # the published minima: Nano 614.4 MHz of 12 clocks, Xavier NX 803.25 of 15, Orin NX 714 of 7
    assert [likely_best(Space((Knob("gpu_freq_hz", tuple(range(n))),)))[0] for n in (12, 15, 7)] == [7, 8, 4]
    # the batch trend: batch 64 costs 40 % less than batch 8 (the study's Nano AlexNet figure)
    trend = batch_trend(Knob("batch_size", (8, 16, 32, 64)))
    assert trend[-1] == 0 and trend == sorted(trend, reverse=True)
    assert math.exp(-trend[0]) == pytest.approx(0.6, abs=0.01)


def published(config: Config) -> float:
    """A surface shaped as the published Jetson measurements: the GPU's minimum 60 % up its
    list (80 here), the CPU best at its top clock, energy falling with the batch size."""
    g = SPACE.knob("gpu_freq_hz").index(config["gpu_freq_hz"])
    c = SPACE.knob("cpu_freq_khz").index(config["cpu_freq_khz"])
    return (1 + 6.7 / config["batch_size"]) * (1 + 0.5 * ((g - 7) / 11) ** 2) * (1 + 0.1 * (14 - c) / 14)


def fastest(config: Config) -> float:
    """Time per inference: falls with every clock and with the batch size (the top corner wins)."""
    return (1 + 6.7 / config["batch_size"]) * (0.3 * 1500 / config["cpu_freq_khz"] + 0.7 * 120 / config["gpu_freq_hz"])


@pytest.mark.parametrize("name", ["bo", "thompson"])
def test_model_based_first_trials_are_the_best_bets_and_a_memory_failure_costs_one(name):
    """On a surface shaped as the published measurements, the first trial that fits is its
    optimum; the memory failure before it costs one trial (the same bet at the largest
    batch that fits, and batch 64 never again). On the time objective, whose best is the
    top corner, the optimum is among the first three trials. Restarted from a known
    config (the daemon after drift), that config comes first."""
    for f in (published, fastest):
        best = min((c for c in SPACE if not oom(c)), key=f)
        strategy = make_strategy(name, SPACE, seed=0)
        asked = []
        for _ in range(3):
            config = strategy.ask()
            asked.append(config)
            if oom(config):
                strategy.tell(config, math.inf, Measurement.infeasible(config, f"{OOM_PREFIX}: batch", simulated=True))
            else:
                strategy.tell(config, f(config))
        assert sum(oom(c) for c in asked) <= 1, (f.__name__, asked)
        fitting = [c for c in asked if not oom(c)]
        if f is published:
            assert fitting[0] == best, (name, asked)
        else:
            assert best in asked, (name, asked)
    held = Config({"cpu_freq_khz": 700, "gpu_freq_hz": 60, "batch_size": 16})
    assert make_strategy(name, SPACE, start=held).ask() == held


@pytest.mark.parametrize("name", ["bo", "thompson"])
def test_model_based_strategies_keep_to_their_trust_region(name):
    """After the initial design, every trial lies in the box around the incumbent (the
    measured config with the lowest posterior mean), unless the box holds nothing left to
    measure: the corners of the space, which a GP is least sure of, are walls of the
    energy basin, and a trial there is spent learning that a wall is a wall."""
    strategy = make_strategy(name, SPACE, seed=0)
    rng = np.random.default_rng(100)
    asked: list[Config] = []
    confined = smaller = 0
    for _ in range(24):
        config = strategy.ask()
        if strategy.incumbent is not None:  # set by the first ask after the design
            allowed = np.flatnonzero(strategy.allowed)
            box = {strategy.lattice.configs[r] for r in strategy.region.inside(allowed, strategy.incumbent)}
            if not box <= set(asked):
                assert config in box, (name, len(asked), config, strategy.lattice.configs[strategy.incumbent])
                confined += 1
                smaller += len(box) < allowed.size
        asked.append(config)
        if oom(config):
            strategy.tell(config, math.inf, Measurement.infeasible(config, f"{OOM_PREFIX}: batch", simulated=True))
        else:
            strategy.tell(config, surface(config) * (1 + 0.01 * rng.standard_normal()))
    assert confined >= 15 and smaller >= 10, (confined, smaller)  # the box was in force, and narrower than the space


def test_best_is_the_lowest_mean_not_the_luckiest_reading():
    strategy = make_strategy("random", SPACE)
    a, b = list(SPACE)[:2]
    strategy.tell(a, 1.00)
    strategy.tell(b, 0.95)  # one lucky reading...
    strategy.tell(b, 1.10)  # ...that did not hold up
    assert strategy.best() == a


def test_tpe_peer_runs_when_optuna_is_installed():
    pytest.importorskip("optuna")
    strategy, asked = run("tpe", budget=40)
    assert len(asked) == 40 and surface(strategy.best()) < 1.3 * OPT


def test_registry_names_every_strategy_and_rejects_unknown_ones():
    assert set(STRATEGIES) == {"sweep", "random", "thompson", "ogd", "bo", "tpe"}
    from tuner.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown strategy"):
        make_strategy("annealing", SPACE)


@pytest.mark.parametrize("name", ["bo", "thompson"])
def test_asking_for_the_best_between_trials_does_not_change_the_search(name):
    """bench and the daemon read best() after every trial, tune only at the end: the same
    seed must measure the same configs either way."""

    def asks(peek: bool) -> list[Config]:
        rng = np.random.default_rng(7)
        strategy = make_strategy(name, SPACE, seed=0)
        asked = []
        for _ in range(20):
            config = strategy.ask()
            asked.append(config)
            strategy.tell(config, surface(config) * (1 + 0.01 * rng.standard_normal()))
            if peek:
                strategy.best()
        return asked

    assert asks(peek=True) == asks(peek=False)


def test_online_descent_answers_every_ask_and_holds_the_best_once_everything_is_measured():
    """The daemon asks ogd for its next config forever: the search must never spin without
    answering. On a space of 27 configs asked 300 times, every ask returns promptly; once
    everything is measured it holds — measures the best config again — rather than wandering."""
    import signal

    tiny = Space((Knob("cpu_freq_khz", (500, 1000, 1500)), Knob("gpu_freq_hz", (40, 80, 120)),
                  Knob("batch_size", (16, 32, 64))))

    def hung(signum, frame):
        raise TimeoutError("ogd's ask() did not return")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        strategy = make_strategy("ogd", tiny)
        asked = []
        for _ in range(300):
            config = strategy.ask()
            assert config is not None
            asked.append(config)
            strategy.tell(config, surface(config))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert set(asked) == set(tiny)
    optimum = min(tiny, key=surface)
    assert strategy.best() == optimum and asked[-100:].count(optimum) >= 90


def test_surrogate_expects_small_batches_to_cost_more_until_the_data_weigh_the_trend():
    """What the GP predicts for clocks it has not measured (the top corner; every measurement
    here is at CPU <= 700 MHz, GPU <= 60 MHz): before a small batch is measured, batch 8 at
    least the published batch effect over batch 32; once batches 8 and 32 are measured,
    what they show — no effect where the batch does not matter, and most of a 2.5x effect
    where it matters more than the study's 40 %."""
    from tuner.strategies.base import Lattice
    from tuner.strategies.prior import batch_trend
    from tuner.strategies.surrogate import GPSurrogate

    lattice = Lattice(SPACE)
    near = [r for r, c in enumerate(lattice.configs) if c["cpu_freq_khz"] <= 700 and c["gpu_freq_hz"] <= 60]

    def effect_far(batches, batch_effect, seed):
        """log(batch 8 / batch 32) at the top clocks, as a GP fitted to 24 configs near the
        bottom at ``batches`` predicts it, on a bowl whose batch 8 costs 1 + ``batch_effect``."""
        rng = np.random.default_rng(seed)
        gp = GPSurrogate(lattice, seed=0)
        rows = rng.choice([r for r in near if lattice.configs[r]["batch_size"] in batches], 24, replace=False)
        costs = {}
        for r in rows:
            c = lattice.configs[r]
            flat = surface(Config({**c.to_dict(), "batch_size": 32}))
            effect = 1 + batch_effect * (32 / c["batch_size"] - 1) / 3  # 1 + batch_effect at batch 8
            costs[int(r)] = [flat * effect * (1 + 0.005 * rng.standard_normal())]
        assert gp.fit(costs, np.ones(len(lattice), dtype=bool))
        top8, top32 = (lattice.row(Config({"cpu_freq_khz": 1500, "gpu_freq_hz": 120, "batch_size": b}))
                       for b in (8, 32))
        mean8, mean32 = gp.mean(np.array([top8, top32]))
        return mean8 - mean32

    trend = batch_trend(SPACE.knob("batch_size"))
    published = trend[0] - trend[2]  # log(1 + 6.7/8) - log(1 + 6.7/32) = 0.42
    seeds = range(3, 7)
    # measured at batch 32 only: the published effect (a model without it: 0.02-0.10)
    assert all(effect_far((32,), 0.0, seed) > 0.8 * published for seed in seeds)
    # measured at batches 8 and 32 where the batch does not matter: weighed out (the prior's
    # weight kept: 0.14-0.19)
    assert all(abs(effect_far((8, 32), 0.0, seed)) < 0.1 for seed in seeds)
    # where batch 8 costs 2.5x batch 32, most of that carries to the clocks never measured
    # (the prior's weight kept: 0.70 on average)
    assert np.mean([effect_far((8, 32), 1.5, seed) for seed in seeds]) > 0.8 * math.log(2.5)


# --- noise: field noise, replayed recordings, plateaus (issue 17) ----------------------------


def measure(config: Config, value: float, sigma: float, rng: np.random.Generator) -> Measurement:
    """One trial as the runner makes it: repeats (relative SD ``sigma``) until three agree
    within 5 %, up to six; the measurement carries their count and spread."""
    repeats: list[float] = []
    while True:
        repeats.append(value * (1 + sigma * rng.standard_normal()))
        mean = float(np.mean(repeats))
        if len(repeats) >= 6 or (len(repeats) >= 3 and (max(repeats) - min(repeats)) / mean <= 0.05):
            break
    return Measurement(config=config, simulated=True, energy_j=mean, time_s=1.0, inferences=1,
                       repeats=len(repeats), energy_spread=(max(repeats) - min(repeats)) / mean)


def search_noisy(name: str, space: Space, f, sigma: float, budget: int, seed: int = 0):
    """Run strategy ``name`` for ``budget`` trials on ``f`` with runner-like trials; returns it and what it asked."""
    rng = np.random.default_rng(500 + seed)

    def trial(config: Config) -> tuple[float, Measurement]:
        m = measure(config, f(config), sigma, rng)
        return m.energy_j, m

    return drive(name, space, budget, seed, trial)


def test_the_noise_estimate_follows_the_repeats_and_the_remeasurements():
    from tuner.strategies.noise import TrialNoise

    rng = np.random.default_rng(1)
    configs = list(SPACE)
    for sigma in (0.05, 0.10):
        noise = TrialNoise()
        for i in range(40):
            m = measure(configs[i], 1.0, sigma, rng)
            noise.add(i, m.energy_j, m)
        # the mean of (mostly) six repeats: sigma / sqrt(6), within the estimate's spread
        assert 0.7 * sigma / math.sqrt(6) < noise.trial_sd(6) < 1.4 * sigma / math.sqrt(6), sigma
    replay = TrialNoise()  # a recording of single runs: every repeat returns the same number
    for i in range(20):
        replay.add(i, 1.0 + 0.1 * i, Measurement(config=configs[i], simulated=False, energy_j=1.0, repeats=3,
                                                 energy_spread=0.0))
    assert replay.trial_sd(3) < 0.004
    # ... and says so at once, while the variance estimate is still near the prior's 1.8 %
    assert replay.exact
    replay.add(0, 1.0, Measurement(config=configs[0], simulated=False, energy_j=1.0, repeats=3, energy_spread=0.0))
    assert replay.exact  # the same config again: the same number
    replay.add(0, 1.01, Measurement(config=configs[0], simulated=False, energy_j=1.01, repeats=3, energy_spread=0.0))
    assert not replay.exact  # it read differently: noise after all
    field = TrialNoise()
    m = measure(configs[0], 1.0, 0.05, rng)
    field.add(0, m.energy_j, m)
    assert not field.exact  # a physical measurement's repeats differ
    single = Measurement(config=configs[30], simulated=False, energy_j=1.2, repeats=1)
    replay.exact = True  # (as it was) ...
    replay.add(30, 1.2, single)
    assert replay.exact  # ... a single repeat after repeats agreed (racing cut it short) says nothing
    windows = TrialNoise()
    windows.add(1, 1.2, single)
    assert not windows.exact  # one repeat a trial from the start (online windows) never rules noise out
    online = TrialNoise()  # single-repeat windows: only re-measured configs tell
    for i in range(200):
        online.add(i % 20, 1.0 + 0.05 * rng.standard_normal(), None)
    assert 0.035 < online.trial_sd(1) < 0.065


@pytest.mark.parametrize("name,seeds", [("bo", 2), ("thompson", 1)])
def test_model_based_strategies_recommend_within_the_band_under_field_noise(name, seeds):
    """5 % per repeat (a trial is ~2 % off): after 60 trials the recommendation is within
    3 % of the optimum — not the luckiest single reading."""
    for seed in range(seeds):
        strategy, _ = search_noisy(name, SPACE, surface, 0.05, 60, seed)
        assert surface(strategy.best()) <= OPT * 1.03, (name, seed, strategy.best())


@pytest.mark.parametrize("name", ["bo", "thompson", "ogd"])
def test_a_config_is_measured_again_only_with_cause(name):
    """Where repeats agree (a replayed recording of single runs), measuring a config again
    returns the same number: nothing is measured twice. On a quiet board (the study's
    1.8 % per repeat) Thompson sampling and descent measure leaders and close calls
    again; under field noise (10 % per repeat) only descent does — one more trial would
    not settle a leader, and Thompson sampling's model pools its neighbours instead. BO
    leaves that to its posterior mean, and never measures a config twice while others
    are unmeasured."""
    _, asked = search_noisy(name, SPACE, surface, 0.0, 30)
    assert len(asked) == len(set(asked)), name
    _, asked = search_noisy(name, SPACE, surface, 0.018, 40)
    assert (len(asked) > len(set(asked))) == (name != "bo"), name
    _, asked = search_noisy(name, SPACE, surface, 0.10, 40)
    assert (len(asked) > len(set(asked))) == (name == "ogd"), name


# 15 CPU clocks x 12 GPU clocks, no batch: a space without the prior's batch knob
CLOCKS = Space((Knob("cpu_freq_khz", tuple(range(100, 1600, 100))), Knob("gpu_freq_hz", tuple(range(10, 130, 10)))))


def rough(config: Config) -> float:
    """Along the GPU clock: a single-step local minimum at the prior's guess (index 7), 6 %
    above the best point (index 3), a ridge between them — as real surfaces measured once
    per setting have; the CPU clock barely matters."""
    g = CLOCKS.knob("gpu_freq_hz").index(config["gpu_freq_hz"])
    c = CLOCKS.knob("cpu_freq_khz").index(config["cpu_freq_khz"])
    gpu = (1.5, 1.2, 1.05, 1.0, 1.05, 1.12, 1.1, 1.06, 1.1, 1.15, 1.2, 1.3)[g]
    return gpu * (1 + 0.002 * abs(c - 9))


def plateau(config: Config) -> float:
    """Flat (within noise) except a basin 25 % deep around CPU index 3, GPU index 2: far
    from the top corner where descent starts, with nothing to follow to it."""
    g = CLOCKS.knob("gpu_freq_hz").index(config["gpu_freq_hz"])
    c = CLOCKS.knob("cpu_freq_khz").index(config["cpu_freq_khz"])
    return 1.0 - 0.25 * math.exp(-((g - 2) ** 2 + (c - 3) ** 2) / 8.0)


def test_descent_leaves_a_local_minimum_of_a_rough_surface():
    best = min(rough(c) for c in CLOCKS)
    for seed in range(3):
        strategy, _ = search_noisy("ogd", CLOCKS, rough, 0.0, 40, seed)
        assert rough(strategy.best()) <= best * 1.02, seed


def test_descent_does_not_stall_on_a_noisy_plateau():
    best = min(plateau(c) for c in CLOCKS)
    found = [plateau(search_noisy("ogd", CLOCKS, plateau, 0.05, 100, seed)[0].best()) <= best * 1.05
             for seed in range(10)]
    assert sum(found) >= 7, found  # the descent of before: 1 in 20


@pytest.mark.parametrize("name", ["bo", "thompson", "ogd"])
def test_a_lucky_reading_counts_as_far_as_the_repeats_say(name):
    """40 configs measured once; one that costs 10 % more than the best of them reads 3 %
    below it. Under field noise (10 % per repeat, as its repeats' spread shows, so 4 % per
    trial) that is a 2.6-sigma reading, about what the luckiest of 40 draws: the
    recommendation stays with the configs its neighbours vouch for. Where repeats agree (a
    replayed recording of single runs) the same reading is the truth of a rough surface,
    and it is the recommendation."""
    rng = np.random.default_rng(11)
    configs = [c for c in SPACE if c["batch_size"] == 32]
    picked = [configs[int(i)] for i in rng.choice(len(configs), 40, replace=False)]
    floor = min(surface(c) for c in picked)
    lucky = min((c for c in picked if surface(c) >= 1.1 * floor), key=surface)
    for spread, sigma in ((0.25, 0.10), (0.0, 0.0)):
        strategy = make_strategy(name, SPACE)
        for c in picked:
            value = 0.97 * floor if c == lucky else surface(c) * (1 + sigma / math.sqrt(6) * rng.standard_normal())
            m = Measurement(config=c, simulated=True, energy_j=value, time_s=1.0, inferences=1, repeats=6,
                            energy_spread=spread)
            strategy.tell(c, value, m)
        best = strategy.best()
        if sigma:
            assert best != lucky and surface(best) < surface(lucky), (name, best)
        else:
            assert best == lucky, (name, best)


def test_descent_measures_again_a_config_that_reads_better_than_its_recommendation():
    """The recommendation ranks by estimate plus one standard error, so a config met once
    that reads 1 % better than one measured three times is passed over. Under field noise
    (its one trial in doubt by 4 %), descent measures it again before anything new
    (simulated Orin NX x ResNet-18 at noise 0.10, seed 7: a config 2.1 % above the optimum,
    met once, was never measured again and the recommendation ended 5.7 % above); once it has its
    trials and still reads better, it is the recommendation and the descent goes on. On a
    quiet board (a trial in doubt by 1.4 %, less than the 2 % band) a trial would settle
    nothing that matters, and where repeats agree exactly the reading is the truth: the
    descent goes on at once."""
    often, once = list(CLOCKS)[40], list(CLOCKS)[100]
    cases = ((0.25, (1.04, 0.97, 0.99), 0.99), (0.09, (1.015, 0.985, 1.0), 0.995), (0.0, (1.0, 1.0, 1.0), 0.99))
    for spread, values, reading in cases:
        strategy = make_strategy("ogd", CLOCKS)
        for value in values:
            strategy.tell(often, value, Measurement(config=often, simulated=True, energy_j=value, time_s=1.0,
                                                    inferences=1, repeats=6, energy_spread=spread))
        m = Measurement(config=once, simulated=True, energy_j=reading, time_s=1.0, inferences=1, repeats=6,
                        energy_spread=spread)
        strategy.tell(once, reading, m)
        if not spread:
            assert strategy.best() == once
        else:
            assert strategy.best() == often  # one reading does not outrank three
        if spread != 0.25:
            assert strategy.ask() not in (often, once), spread
            continue
        assert strategy.ask() == once
        for _ in range(2):
            strategy.tell(once, reading, m)
        assert strategy.best() == once
        assert strategy.ask() not in (often, once)  # its three trials are in: the descent goes on


def test_thompson_never_measures_twice_where_every_repeat_agrees_exactly():
    """A replayed recording of single runs returns the same number every time: from its very
    first trials (before the noise estimate has fallen from the study's 1.8 %), Thompson
    sampling spends no trial of a short budget measuring a config again."""
    for seed in range(12):
        _, asked = search_noisy("thompson", CLOCKS, rough, 0.0, 15, seed)
        assert len(asked) == len(set(asked)), seed


PRESETS = Space((Knob("power_mode", tuple(range(9)), ordered=False), Knob("concurrency", tuple(range(1, 19)))))


def presets(config: Config) -> float:
    """Nine power modes whose level has nothing to do with their ids (the best is mode 3, the
    worst mode 5, modes 2 and 4 beside it are middling); within a mode, energy per
    inference falls with the concurrency and flattens from about 12."""
    level = (1.4, 1.25, 1.3, 1.0, 1.12, 1.6, 1.35, 1.3, 1.08)[config["power_mode"]]
    return level * (1 + 1.5 / config["concurrency"])


@pytest.mark.parametrize("name", ["bo", "thompson", "ogd"])
def test_every_strategy_compares_the_presets_of_an_unordered_knob(name):
    """An unordered knob has no steps: the descent tries every other value of it at its
    start and at each minimum (before, it found another mode only by a random restart and
    recommended one 12-30 % off here), and the model-based strategies treat its values as
    unrelated. With a tenth of the space, each recommends the best mode."""
    best = min(presets(c) for c in PRESETS)
    for seed in range(3):
        strategy, _ = search_noisy(name, PRESETS, presets, 0.0, math.ceil(0.1 * len(PRESETS)), seed)
        assert strategy.best()["power_mode"] == 3, (name, seed, strategy.best())
        assert presets(strategy.best()) <= best * 1.05, (name, seed)


LUCKY = Space((Knob("gpu_freq_hz", tuple(range(300, 1020, 60))), Knob("concurrency", tuple(range(1, 17)))))


def recording(seed: int) -> dict:
    """A surface recorded once per setting: a smooth bowl over GPU clock x concurrency, each
    value times its own run's luck (8 %, frozen: measured again, it reads the same)."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in LUCKY:
        g = LUCKY.knob("gpu_freq_hz").index(c["gpu_freq_hz"])
        out[c] = (1 + 0.6 * ((g - 7) / 11) ** 2) * (1 + 1.5 / c["concurrency"]) * math.exp(rng.normal(0, 0.08))
    return out


def searched(name: str, values: dict, budget: int, seed: int = 0, stop: bool = False) -> tuple[object, float]:
    """A search of a recording for up to ``budget`` trials (with ``stop``, economical: it stops
    once converged at 1 %): the strategy and its regret."""
    rng = np.random.default_rng(seed)
    strategy = make_strategy(name, LUCKY, seed=seed)
    for _ in range(budget):
        config = strategy.ask()
        m = measure(config, values[config], 0.0, rng)  # a replay: every repeat reads the same
        strategy.tell(config, m.energy_j, m)
        if stop and strategy.converged(0.01):
            break
    return strategy, values[strategy.best()] / min(values.values()) - 1


def economical(name: str, values: dict, budget: int) -> tuple[int, float]:
    """An economical search of a recording: (trials, regret)."""
    strategy, regret = searched(name, values, budget, stop=True)
    return len(strategy.order), regret


@pytest.mark.parametrize("name", ["bo", "thompson"])
def test_an_economical_search_of_a_recording_counts_the_luck_of_unmeasured_settings(name, monkeypatch):
    """On a recording of one run per setting (every repeat agrees), an unmeasured setting
    holds its own run's luck, which the GP's roughness prior hides for its first few dozen
    trials. The stop rule counts it (``RUN_LUCK_SD``), so an economical search keeps looking
    where a setting could still beat the best found: over eight recordings it measures more
    and ends no worse, and nearer the recording's best where it mattered (without it, every
    search stopped at the first moment the rule allows)."""
    from tuner.strategies import surrogate

    budget = math.ceil(0.1 * len(LUCKY))
    counted = [economical(name, recording(seed), budget) for seed in range(8)]
    monkeypatch.setattr(surrogate, "RUN_LUCK_SD", 0.0)
    ignored = [economical(name, recording(seed), budget) for seed in range(8)]
    assert sum(n for n, _ in counted) > sum(n for n, _ in ignored), (counted, ignored)
    assert sum(r for _, r in counted) < sum(r for _, r in ignored), (counted, ignored)


@pytest.mark.parametrize("name", ["bo", "thompson"])
def test_a_search_of_a_recording_sweeps_the_basin_it_found(name, monkeypatch):
    """On a recording of one run per setting, once the incumbent has stood for a few asks the
    search measures the basin's unmeasured settings in the smooth model's order
    (``ModelBased.sweep_basin``): every setting measured from then on is a new one, and over
    sixteen recordings, with a tenth of the space, it ends nearer the recording's best than
    the same search that never switches (summed regret, BO 0.53 against 0.67, Thompson
    sampling 0.44 against 0.55). Under field noise it never switches."""
    from tuner.strategies.surrogate import ModelBased

    budget = math.ceil(0.1 * len(LUCKY))
    swept = [searched(name, recording(seed), budget, seed) for seed in range(16)]
    assert all(s.sweeping for s, _ in swept), name
    assert all(len(s.order) == len(set(s.order)) for s, _ in swept), name
    monkeypatch.setattr(ModelBased, "SWEEP_AFTER", 10**6)
    unswept = [searched(name, recording(seed), budget, seed) for seed in range(16)]
    assert sum(r for _, r in swept) < sum(r for _, r in unswept), ([r for _, r in swept], [r for _, r in unswept])
    strategy, _ = search_noisy(name, CLOCKS, rough, 0.05, 30)
    assert not strategy.sweeping


def test_descent_sweeps_a_recording_once_settled(monkeypatch):
    """On a recording of one run per setting, a settled descent measures the unmeasured
    settings in the order its smooth fit ranks them (``OnlineDescent._sweep``) instead of
    restarting at random: over sixteen recordings, with a fifth of the space, it ends
    nearer the recording's best (summed regret 0.08 against 0.46 for the restarts; with a
    tenth, most searches have not settled yet and the two are even, 0.57 against 0.50).
    Under field noise it never sweeps."""
    from tuner.strategies.descent import OnlineDescent

    budget = math.ceil(0.2 * len(LUCKY))
    swept = [searched("ogd", recording(seed), budget, seed) for seed in range(16)]
    assert all(s.settled and s.restarts == 0 for s, _ in swept)
    assert all(len(s.order) == len(set(s.order)) for s, _ in swept)
    monkeypatch.setattr(OnlineDescent, "_sweep", lambda self: iter(()))
    restarted = [searched("ogd", recording(seed), budget, seed) for seed in range(16)]
    assert all(s.restarts > 0 for s, _ in restarted)
    assert sum(r for _, r in swept) < 0.5 * sum(r for _, r in restarted), \
        ([r for _, r in swept], [r for _, r in restarted])

    def never(self):
        raise AssertionError("swept under measurement noise")

    monkeypatch.setattr(OnlineDescent, "_sweep", never)
    strategy, _ = search_noisy("ogd", CLOCKS, rough, 0.05, 60)
    assert strategy.settled


def test_descent_of_a_recording_answers_every_ask_and_holds_the_best_once_swept():
    """Under the daemon a descent is asked forever: on a recording its sweep measures every
    setting once, and then it holds the recording's best rather than stop answering."""
    values = recording(0)
    strategy = make_strategy("ogd", LUCKY)
    rng = np.random.default_rng(0)
    for _ in range(len(LUCKY) + 50):
        config = strategy.ask()
        assert config is not None
        m = measure(config, values[config], 0.0, rng)
        strategy.tell(config, m.energy_j, m)
    assert len(set(strategy.order)) == len(LUCKY)
    assert strategy.order[-50:] == [strategy.lattice.row(strategy.best())] * 50
    assert values[strategy.best()] == min(values.values())


def test_an_economical_descent_of_a_recording_sweeps_while_an_unmeasured_setting_could_be_luckier(monkeypatch):
    """An economical descent stops once settled; on a recording of one run per setting it
    first sweeps while an unmeasured setting, its trend plus its run's luck
    (``RUN_LUCK_SD``), has a fair chance of beating the recommendation, as the model-based
    strategies' stop rule counts it. Over eight recordings, with a fifth of the space, it
    measures more and ends nearer the recording's best (summed regret 0.21 against 0.27)."""
    from tuner.strategies.descent import OnlineDescent

    budget = math.ceil(0.2 * len(LUCKY))
    counted = [economical("ogd", recording(seed), budget) for seed in range(8)]
    monkeypatch.setattr(OnlineDescent, "_chance_of_luck", lambda self, improvement: 0.0)
    ignored = [economical("ogd", recording(seed), budget) for seed in range(8)]
    assert all(n < budget for n, _ in counted), counted  # it still stops before the budget
    assert sum(n for n, _ in counted) > sum(n for n, _ in ignored), (counted, ignored)
    assert sum(r for _, r in counted) < sum(r for _, r in ignored), (counted, ignored)


CAPS = {0: 400, 1: 600, 2: 800, 3: 1000}  # each power mode allows its own four GPU clocks
CAPPED = Space((Knob("power_mode", (0, 1, 2, 3), ordered=False), Knob("gpu_freq_hz", tuple(range(100, 1100, 100)))),
               (lambda c: CAPS[c["power_mode"]] - 400 < c["gpu_freq_hz"] <= CAPS[c["power_mode"]],))


def capped(config: Config) -> float:
    """The lowest mode is best; within a mode, 150 MHz below its cap."""
    level = {0: 1.0, 1: 1.3, 2: 1.4, 3: 1.5}[config["power_mode"]]
    return level * (1 + ((config["gpu_freq_hz"] - CAPS[config["power_mode"]] + 150) / 300) ** 2)


def test_descent_crosses_presets_that_cap_the_clocks_and_leaves_a_failed_start():
    """A recording of power modes that each cap the GPU clock (an incomplete grid): the
    descent's steps land on holes, and a mode's alternatives are not at the same clock.
    Before, it measured its starting config again for the whole budget (a knob whose every
    step lands on a hole never shrank its step) and never compared the modes. And a position
    that failed (an SLO, a crash) gives way to any measured config that did not."""
    best = min(capped(c) for c in CAPPED)
    for seed in range(3):
        strategy, asked = search_noisy("ogd", CAPPED, capped, 0.0, 8, seed)
        assert len(set(asked)) >= 6 and capped(strategy.best()) == best, (seed, asked)
    rng = np.random.default_rng(0)
    strategy = make_strategy("ogd", CAPPED)
    for _ in range(8):
        config = strategy.ask()
        if config["power_mode"] == 3:  # the start (the top clocks) fails
            strategy.tell(config, math.inf, Measurement.infeasible(config, "slo: p95 over the limit", simulated=True))
        else:
            m = measure(config, capped(config), 0.0, rng)
            strategy.tell(config, m.energy_j, m)
    assert strategy.best()["power_mode"] != 3 and strategy.position is not None
    assert strategy.lattice.configs[strategy.position]["power_mode"] != 3


def rough_presets(seed: int):
    """:func:`presets` measured once per setting, as a recording is: each setting's reading off
    by a frozen 8 % (lognormal), so that one reading of a mode says little about it."""
    rng = np.random.default_rng(seed)
    luck = {c: float(np.exp(rng.normal(0.0, 0.08))) for c in PRESETS}
    return lambda config: presets(config) * luck[config]


@pytest.mark.parametrize("name", ["bo", "thompson"])
def test_model_based_designs_try_every_value_of_an_unordered_knob(name):
    """The GP has nothing to interpolate across an unordered knob, so a mode it never measured
    stays a guess and its trust region rarely reaches it: the initial design tries each mode
    (at the prior's guess of the rest). On a rough recording of nine modes, with a tenth of the
    space, both then end within 5 % of the recorded best on every seed; before, BO missed on 5
    of these 10 seeds and Thompson sampling on 8 (7-23 % off)."""
    f = rough_presets(7)
    best = min(f(c) for c in PRESETS)
    for seed in range(10):
        strategy, _ = search_noisy(name, PRESETS, f, 0.0, math.ceil(0.1 * len(PRESETS)), seed)
        assert f(strategy.best()) <= best * 1.05, (name, seed, strategy.best())

"""Steps per second of the two-player dm_control games against the plain dm_control task (issue 11).

Every variant replays the same pre-sampled protagonist actions with zero adversary force from the same seed, so
all simulate the same trajectory (checked: equal reward sums); only the Python machinery differs. Variants:

- ``plain``: dm_control's own ``Environment.step`` (``suite.load``, or for pendulum/quadruped the official task
  built by :func:`envs.adversarial.dmc.build_dm_control_env`), returning its ``TimeStep`` with an ``OrderedDict``;
- ``game``: ``AdversarialMujocoEnv.step(pro, zeros)`` (flattened observation, force written every step);
- ``protagonist view``: ``ProtagonistView(opponent=None)``, what a learning protagonist steps.

Episodes are reset every ``--horizon`` steps in every variant. The variants run interleaved in one process, in
blocks of ``--steps`` steps, in an order that reverses every round (a fixed order biased the ratios by several
percent under load), and the ratio is the median over rounds of (variant steps/s) / (plain steps/s in the same
round), per second of this process's CPU time (``time.process_time``), so other jobs on a shared machine skew it
little.

Usage:
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_dmc_overhead.py --envs dmc_walker_walk \
        dmc_cartpole_swingup --steps 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from envs.adversarial import AdversarialMujocoEnv, ProtagonistView
from envs.adversarial.dmc import build_dm_control_env, import_dm_control
from envs.adversarial.dmc_specs import DMC_TASKS

Stepper = Callable[[np.ndarray], float]


def variants(name: str, horizon: int) -> dict[str, tuple[Callable[[int], object], Stepper]]:
    domain, task = DMC_TASKS[name]
    inf = float("inf")
    if domain in ("pendulum", "quadruped"):
        plain = build_dm_control_env(domain, task)
    else:
        suite, _ = import_dm_control()
        plain = suite.load(domain, task, task_kwargs={"time_limit": inf})

    def plain_reset(seed: int) -> object:
        plain.task._random = np.random.RandomState(seed)
        return plain.reset()

    def plain_step(action: np.ndarray) -> float:
        return float(plain.step(action).reward)

    game = AdversarialMujocoEnv(name, max_episode_steps=horizon)
    zero = np.zeros(game.adversary_action_space.shape, dtype=np.float32)

    def game_step(action: np.ndarray) -> float:
        return float(game.step(action, zero)[1])

    view = ProtagonistView(name, opponent=None, max_episode_steps=horizon)

    def view_step(action: np.ndarray) -> float:
        return float(view.step(action)[1])

    return {
        "plain": (plain_reset, plain_step),
        "game": (lambda seed: game.reset(seed=seed), game_step),
        "protagonist view": (lambda seed: view.reset(seed=seed), view_step),
    }


def run_block(reset: Callable[[int], object], step: Stepper, actions: np.ndarray, horizon: int) -> tuple[float, float]:
    """CPU seconds and reward sum of stepping through ``actions``, resetting every ``horizon`` steps."""
    total = 0.0
    start = time.process_time()
    for t, action in enumerate(actions):
        if t % horizon == 0:
            reset(t // horizon)
        total += step(action)
    return time.process_time() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["dmc_walker_walk", "dmc_cartpole_swingup"])
    parser.add_argument("--steps", type=int, default=5000, help="steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=500)
    args = parser.parse_args()
    print("| env | plain dm_control steps/CPU-s | game / plain | protagonist view / plain |\n|---|---|---|---|")
    for name in args.envs:
        runs = variants(name, args.horizon)
        game = AdversarialMujocoEnv(name)
        space = game.protagonist_action_space
        actions = np.random.default_rng(0).uniform(space.low, space.high, (args.steps, *space.shape)).astype(np.float32)
        rates: dict[str, list[float]] = {k: [] for k in runs}
        for r in range(args.rounds):
            sums = {}
            order = list(runs.items())
            for key, (reset, step) in order if r % 2 == 0 else order[::-1]:  # alternate the order against drift
                seconds, sums[key] = run_block(reset, step, actions, args.horizon)
                rates[key].append(args.steps / seconds)
            assert len({round(v, 9) for v in sums.values()}) == 1, f"trajectories differ: {sums}"
        ratios = {k: statistics.median(v / p for v, p in zip(rates[k], rates["plain"], strict=True)) for k in runs}
        print(
            f"| {name} | {statistics.median(rates['plain']):.0f} | {ratios['game']:.3f} | {ratios['protagonist view']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

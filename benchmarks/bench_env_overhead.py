"""Steps per second of the two-player machinery against the plain gymnasium MuJoCo task (issue 2).

Every variant replays the same pre-sampled protagonist actions with zero adversary force, so all of them
simulate the same trajectory (checked: equal reward sums and reset counts); only the Python machinery
around ``MjData`` differs. Variants:

- ``plain``: ``gymnasium.make("<Task>-v5")`` (with its default wrappers, as users get it);
- ``game``: ``AdversarialMujocoEnv.step(pro, zeros)``;
- ``protagonist view``: ``ProtagonistView(opponent=None)`` (zero adversary);
- ``adversary view``: ``AdversaryView`` taking zero actions, its opponent replaying the protagonist actions;
- ``plain, zero actions`` and ``adversary view, zero protagonist``: the same pair with a zero protagonist
  (``AdversaryView(opponent=None)``), a different trajectory, so it gets its own baseline.

The variants run interleaved in one process, in blocks of ``--block`` steps each, and the ratio is the
median over rounds of (variant steps/s) / (baseline steps/s in the same round). Steps per second are per
second of this process's CPU time (``time.process_time``; everything here is single-threaded), so that other
jobs on a shared machine slow the wall clock without skewing the ratio much.

Usage:
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_env_overhead.py --steps 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from envs.adversarial import ADVERSARIAL_ENVS, AdversarialMujocoEnv, AdversaryView, ProtagonistView

Stepper = Callable[[int], tuple[float, bool]]


@dataclass
class Variant:
    name: str
    baseline: str
    build: Callable[[], tuple[Callable[[int | None], object], Stepper]]


def make_variants(name: str, actions: np.ndarray) -> list[Variant]:
    gym_id = ADVERSARIAL_ENVS[name].gym_id
    zero_pro = np.zeros(actions.shape[1], dtype=np.float32)

    def plain(zero: bool) -> Callable[[], tuple[Callable[[int | None], object], Stepper]]:
        def build() -> tuple[Callable[[int | None], object], Stepper]:
            env = gym.make(gym_id)

            def step(t: int) -> tuple[float, bool]:
                _, r, term, trunc, _ = env.step(zero_pro if zero else actions[t])
                return float(r), term or trunc

            return (lambda seed: env.reset(seed=seed)), step

        return build

    def game() -> tuple[Callable[[int | None], object], Stepper]:
        env = AdversarialMujocoEnv(name)
        zero_adv = np.zeros(env.adversary_action_space.shape, dtype=np.float32)

        def step(t: int) -> tuple[float, bool]:
            _, r, term, trunc, _ = env.step(actions[t], zero_adv)
            return float(r), term or trunc

        return (lambda seed: env.reset(seed=seed)), step

    def protagonist_view() -> tuple[Callable[[int | None], object], Stepper]:
        env = ProtagonistView(name, opponent=None)

        def step(t: int) -> tuple[float, bool]:
            _, r, term, trunc, _ = env.step(actions[t])
            return float(r), term or trunc

        return (lambda seed: env.reset(seed=seed)), step

    def adversary_view(zero: bool) -> Callable[[], tuple[Callable[[int | None], object], Stepper]]:
        def build() -> tuple[Callable[[int | None], object], Stepper]:
            clock = [0]

            def replay(obs: np.ndarray, np_random: np.random.Generator) -> np.ndarray:
                return actions[clock[0]]

            env = AdversaryView(name, opponent=None if zero else replay)
            zero_adv = np.zeros(env.action_space.shape, dtype=np.float32)

            def step(t: int) -> tuple[float, bool]:
                clock[0] = t
                _, r, term, trunc, _ = env.step(zero_adv)
                return -float(r), term or trunc  # the protagonist's reward, to compare with the baseline

            return (lambda seed: env.reset(seed=seed)), step

        return build

    return [
        Variant("plain", "plain", plain(zero=False)),
        Variant("game", "plain", game),
        Variant("protagonist view", "plain", protagonist_view),
        Variant("adversary view", "plain", adversary_view(zero=False)),
        Variant("plain, zero actions", "plain, zero actions", plain(zero=True)),
        Variant("adversary view, zero protagonist", "plain, zero actions", adversary_view(zero=True)),
    ]


def run_round(variants: list[Variant], steps: int, block: int, seed: int) -> dict[str, tuple[float, float, int]]:
    """Run every variant for ``steps`` steps (resets on episode end), interleaved in blocks of ``block`` steps.

    Returns:
        Per variant: (steps per CPU second, reward sum, resets).
    """
    built = {v.name: v.build() for v in variants}
    cpu = dict.fromkeys(built, 0.0)
    total = dict.fromkeys(built, 0.0)
    resets = dict.fromkeys(built, 0)
    for reset, _ in built.values():
        reset(seed)
    for first in range(0, steps, block):
        last = min(first + block, steps)
        for name, (reset, step) in built.items():
            acc, n_resets = 0.0, 0
            start = time.process_time()
            for t in range(first, last):
                r, done = step(t)
                acc += r
                if done:
                    reset(None)
                    n_resets += 1
            cpu[name] += time.process_time() - start
            total[name] += acc
            resets[name] += n_resets
    return {name: (steps / cpu[name], total[name], resets[name]) for name in built}


def bench_env(name: str, steps: int, rounds: int, block: int, seed: int) -> list[dict[str, object]]:
    space = gym.make(ADVERSARIAL_ENVS[name].gym_id).action_space
    rng = np.random.default_rng(seed)
    actions = rng.uniform(space.low, space.high, size=(steps, *space.shape)).astype(np.float32)
    variants = make_variants(name, actions)
    sps: dict[str, list[float]] = {v.name: [] for v in variants}
    checks: dict[str, tuple[float, int]] = {}
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]  # alternate the order against drift
        for vname, (rate, total, resets) in run_round(order, steps, block, seed).items():
            sps[vname].append(rate)
            checks[vname] = (total, resets)
    rows = []
    for v in variants:
        ratios = [a / b for a, b in zip(sps[v.name], sps[v.baseline], strict=True)]
        same = np.isclose(checks[v.name][0], checks[v.baseline][0], rtol=1e-9) and checks[v.name][1] == checks[v.baseline][1]
        rows.append(
            {
                "env": name,
                "variant": v.name,
                "baseline": v.baseline,
                "sps": statistics.median(sps[v.name]),
                "ratio": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "resets": checks[v.name][1],
                "same": bool(same),
            }
        )
    return rows


def markdown(rows: list[dict[str, object]], target: float) -> str:
    lines = [
        "| env | variant | steps/s (median) | ratio vs baseline (median, min-max) | baseline | resets | same trajectory "
        f"| >= {target} |",
        "|---|---|---:|---:|---|---:|:-:|:-:|",
    ]
    for row in rows:
        ok = "—" if row["variant"] == row["baseline"] else ("yes" if float(row["ratio"]) >= target else "**no**")  # type: ignore[arg-type]
        ratio = f"{row['ratio']:.3f} ({row['ratio_min']:.3f}-{row['ratio_max']:.3f})"
        lines.append(
            f"| {row['env']} | {row['variant']} | {row['sps']:,.0f} | {ratio} "
            f"| {row['baseline']} | {row['resets']} | {'yes' if row['same'] else 'NO'} | {ok} |"
        )
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def profile(name: str, variant_name: str, steps: int, seed: int) -> None:
    space = gym.make(ADVERSARIAL_ENVS[name].gym_id).action_space
    actions = np.random.default_rng(seed).uniform(space.low, space.high, size=(steps, *space.shape)).astype(np.float32)
    (variant,) = [v for v in make_variants(name, actions) if v.name == variant_name]
    prof = cProfile.Profile()
    prof.runcall(run_round, [variant], steps, steps, seed)
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["Hopper", "HalfCheetah", "Walker2d"])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=250, help="steps per variant before switching to the next one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.9, help="minimum steps/s ratio vs the plain env (issue 2)")
    parser.add_argument("--profile", default=None, help="cProfile one variant (e.g. 'game') on the first env instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.profile:
        profile(args.envs[0], args.profile, args.steps, args.seed)
        return
    rows = []
    for name in args.envs:
        rows += bench_env(name, args.steps, args.rounds, args.block, args.seed)
        print(f"{name}: done", flush=True)
    setup = f"{args.steps} steps per variant in blocks of {args.block}, x {args.rounds} rounds"
    print(f"\n{setup}; CPU: {cpu_model()} ({os.cpu_count()} cores); python {platform.python_version()}\n")
    print(markdown(rows, args.target))


if __name__ == "__main__":
    main()

"""Wall time of the robustness grid against the ideal parallel bound, measured in the same run.

The bound is ``(cells x episodes x steps) / (plain env steps per second x cores)``: the grid's actual env steps
(episodes end early when the robot falls) divided by the throughput of the same evaluation loop (policy + env,
``envs.adversarial.episodes.run_episodes``) in one process on the nominal model, times the number of workers. The grid is
run through ``rl.robustness.evaluate.evaluate_run`` (process pool, policies loaded once per worker, start-up included).
The raw env throughput (zero actions, no policy) is printed too, for scale. Target: grid wall time within 1.3x of
the bound.

    python benchmarks/bench_robustness_grid.py --run runs/bench_qarl_comparison/InvertedPendulum/InvertedPendulum__sac__s0
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch as th

from rl.robustness.evaluate import evaluate_run
from rl.robustness.tasks import Task, episode_seeds
from rl.robustness.workers import Evaluator


def serial_rate(run: str, horizon: int | None, min_steps: int) -> tuple[float, float, float]:
    """Env steps per second of the evaluation loop (policy + env; wall and CPU time) and of the bare env."""
    ev = Evaluator(run, horizon)
    ev(Task("nominal", 0, 0, 1.0, 1.0, (12345,)))  # warm-up (first forward pass), not timed
    steps, seconds, cpu, k = 0, 0.0, 0.0, 0
    while steps < min_steps:
        seeds = tuple(int(s) for s in episode_seeds(10_000 + k, "nominal", 0, 0, 1))
        result = ev(Task("nominal", 0, 0, 1.0, 1.0, seeds))
        seconds += result.seconds
        cpu += result.cpu_seconds
        steps += sum(result.lengths)
        k += 1
    game, zero = ev.game, np.zeros(ev.game.protagonist_action_space.shape)
    push = np.zeros(ev.game.adversary_action_space.shape)
    game.reset(seed=0)
    start, raw = time.perf_counter(), 0
    while raw < min_steps:
        _, _, terminated, truncated, _ = game.step(zero, push)
        raw += 1
        if terminated or truncated:
            game.reset()
    return steps / seconds, raw / (time.perf_counter() - start), steps / cpu


def _burn(seconds: float) -> float:
    start, cpu, x = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - start < seconds:
        x += 1
    return time.process_time() - cpu


def available_cores(workers: int, seconds: float = 3.0) -> float:
    """How many cores ``workers`` busy-looping processes actually get right now (CPU seconds / wall seconds)."""
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers) as pool:
        return sum(pool.map(_burn, [seconds] * workers, chunksize=1)) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a trained train_qarl run directory")
    parser.add_argument("--grid-size", type=int, default=11)
    parser.add_argument("--episodes", type=int, default=1, help="episodes per cell")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--control", action="store_true", help="also run the grid with 1 worker (overhead without parallelism)"
    )
    parser.add_argument("--horizon", type=int, default=None)
    parser.add_argument("--min-steps", type=int, default=5000, help="steps of the serial throughput measurement")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    th.set_num_threads(1)
    print(f"run {args.run}; {args.grid_size}x{args.grid_size} cells x {args.episodes} episode(s); {args.workers} workers")
    print(f"load average at start: {os.getloadavg()}")
    ratios = []
    for r in range(args.rounds):
        rate, raw, cpu_rate = serial_rate(args.run, args.horizon, args.min_steps)
        cores = available_cores(args.workers)
        for workers in [1, args.workers] if args.control else [args.workers]:
            start = time.perf_counter()
            result = evaluate_run(
                args.run,
                grid_size=args.grid_size,
                episodes_per_cell=args.episodes,
                eval_episodes=1,
                workers=workers,
                horizon=args.horizon,
                progress=False,
            )
            wall = time.perf_counter() - start
            grid_steps = result.env_steps_evaluated
            bound = grid_steps / (rate * workers)
            if workers == args.workers:
                ratios.append(wall / bound)
            print(
                f"round {r}, {workers} worker(s): serial loop {rate:.0f} steps/s (bare env {raw:.0f}); grid {grid_steps} "
                f"steps in {wall:.2f} s (in-pool {result.seconds:.2f} s); bound {bound:.2f} s; wall/bound {wall / bound:.2f}\n"
                f"    CPU time per step: serial {1e3 / cpu_rate:.3f} ms, "
                f"grid workers {1e3 * result.cpu_seconds / grid_steps:.3f} ms; "
                f"CPU the grid got: {result.cpu_seconds / result.seconds:.2f} cores of {workers}"
            )
            if workers == args.workers:
                effective = grid_steps / (rate * min(cores, workers))
                print(
                    f"    {workers} busy-loop processes got {cores:.2f} cores just before; bound with the cores available "
                    f"{effective:.2f} s; wall/bound {wall / effective:.2f}"
                )
    print(f"median wall/bound over {args.rounds} rounds: {float(np.median(ratios)):.2f} (target <= 1.3)")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()

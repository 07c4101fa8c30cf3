"""QARL's training throughput (env steps per second) against plain SB3 SAC, same env and update-to-data ratio.

Both learn on Hopper-v5 (``--env Hopper``; or any env name, e.g. ``--env dmc_walker_walk`` for the paper's
two-player DeepMind Control walker, whose plain SAC baseline is :class:`envs.adversarial.dmc.DMControlGymEnv`)
(horizon 500) with one gradient step per 3 env steps, the same networks and batch, one
torch thread, from the same learning-starts point. QARL counts the env steps of both phases (each player learns
in its own phase, so the update-to-data ratio is the same); its evaluation episodes are switched off here (they
cost env steps without updates and are not counted). Rounds alternate QARL and SAC so that load from other
processes hits both alike; the median of the rounds is reported. Rates are given per CPU-second of this process
(``time.process_time``; one torch thread), which the load of other processes on a shared machine barely changes,
and per wall-clock second.

    python benchmarks/bench_qarl_throughput.py --steps 6000 --rounds 3
    python benchmarks/bench_qarl_throughput.py --env dmc_walker_walk --steps 6000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch as th
from hydra import compose, initialize_config_dir
from stable_baselines3 import SAC

from envs.adversarial.dmc import DMControlGymEnv
from envs.adversarial.specs import get_env_spec
from envs.common.runs import RunDir
from rl.qarl.config import register_configs
from rl.qarl.trainer import QARLTrainer

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def common(args: argparse.Namespace) -> dict:
    return {"net_arch": [args.hidden] * args.layers, "batch_size": args.batch, "learning_starts": args.learning_starts}


def run_sac(args: argparse.Namespace) -> tuple[float, float]:
    spec = get_env_spec(args.env)
    if spec.family == "dm_control":
        env: gym.Env = DMControlGymEnv(spec.name, max_episode_steps=500)
    else:
        env = gym.make(spec.gym_id, max_episode_steps=500)
    c = common(args)
    model = SAC(
        "MlpPolicy",
        env,
        policy_kwargs={"net_arch": c["net_arch"]},
        batch_size=c["batch_size"],
        learning_starts=c["learning_starts"],
        train_freq=(3, "step"),
        gradient_steps=1,
        ent_coef="auto_0.005",
        seed=0,
        verbose=0,
        device="cpu",
    )
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(args.steps)
    return args.steps / (time.process_time() - cpu), args.steps / (time.perf_counter() - wall)


def run_qarl(args: argparse.Namespace) -> tuple[float, float]:
    register_configs()
    c = common(args)
    overrides = [
        f"env={args.env}",
        "algo=qarl",
        "budget.horizon=500",
        "budget.eval_every=1000000",
        "budget.checkpoint_every=1000000",
        f"sac.net_arch=[{','.join(map(str, c['net_arch']))}]",
        f"sac.batch_size={c['batch_size']}",
        # each player fills its own buffer: same start of learning per player as SAC's
        f"sac.learning_starts={c['learning_starts'] // 2}",
        f"sac.actor_learning_starts={c['learning_starts'] // 2}",
        "progress=false",
    ]
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("train_qarl", overrides=overrides)
    trainer = QARLTrainer(cfg, RunDir(Path(tempfile.mkdtemp())), th.device("cpu"))
    wall, cpu = time.perf_counter(), time.process_time()
    while trainer.state.env_steps < args.steps:
        trainer.iteration()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    trainer.close()
    return trainer.state.env_steps / cpu, trainer.state.env_steps / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper", help="env name (configs/env), e.g. Hopper or dmc_walker_walk")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    th.set_num_threads(1)
    qarl, sac = [], []
    for r in range(args.rounds):
        qarl.append(run_qarl(args))
        sac.append(run_sac(args))
        print(
            f"round {r}: QARL {qarl[-1][0]:.1f} steps/CPU-s ({qarl[-1][1]:.1f}/s wall), "
            f"SAC {sac[-1][0]:.1f} steps/CPU-s ({sac[-1][1]:.1f}/s wall), CPU ratio {qarl[-1][0] / sac[-1][0]:.3f}",
            flush=True,
        )
    print("| method | env steps per CPU-second (median) | env steps per wall second (median) |\n|---|---|---|")
    for name, rates in (("plain SB3 SAC", sac), ("QARL (both players)", qarl)):
        print(f"| {name} | {statistics.median(r[0] for r in rates):.1f} | {statistics.median(r[1] for r in rates):.1f} |")
    for i, unit in ((0, "CPU-second"), (1, "wall second")):
        ratios = sorted(q[i] / s[i] for q, s in zip(qarl, sac, strict=True))
        rounded = [round(x, 3) for x in ratios]
        print(f"ratio QARL/SAC per {unit} (median of rounds): {statistics.median(ratios):.3f}  (rounds: {rounded})")


if __name__ == "__main__":
    main()

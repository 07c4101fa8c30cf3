"""SAC update speed (issue 22): SB3's update against the project's engines, side by side in one run.

Three measurements, each interleaving the modes in rounds so that the load of other processes hits them alike
(ratios survive a shared machine's noise; absolute numbers do not):

1. **ms per update** of ``agent.train(n)`` on a filled replay buffer (synthetic data of the walker's shapes: 24
   observations + QARL's context, 6 actions): plain SB3 ``SAC``, the project's reference engine (SB3's update in
   :class:`rl.qarl.sac.QARLSAC`), the fast engine eager fp32, compiled fp32, compiled bf16; at the paper's 3x256 /
   batch 256 and at 2x64 / batch 64. Rates are per CPU-second of this process (one torch thread), which other
   processes' load changes least, and per wall second.
2. **env step + one update** of the project's training loop (``train_qarl``'s trainer, ``algo=sac`` on dm_control
   walker-walk, ``sac.train_freq=1``: every env step trains once), per engine, against SB3's plain update of part 1.
3. **QARL env steps/s** at the paper's settings on walker-walk (3x256, batch 256, one update per 3 steps, both
   players), per engine, as ratios to the reference engine; the official MushroomRL code runs beside ours in
   ``benchmarks/bench_qarl_vs_official.py`` (its own venv).

Then where the time of one paper-size update goes (torch.profiler, per engine): matrix products, fused or eager
elementwise kernels, optimiser steps, sampling and the rest (Python, dispatch), and the env's share of the loop.

    OMP_NUM_THREADS=1 python benchmarks/bench_sac_update.py              # CPU, ~3-5 minutes on a loaded 2-core VM
    python benchmarks/bench_sac_update.py --device cuda                  # on a GPU (benchmarks/gpu_check.sh)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from omegaconf import open_dict
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure

from rl.qarl.sac import QARLSAC
from rl.qarl.update_mode import bf16_matrix_units, train_update_mode

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")
OBS, ACT = 25, 6  # walker-walk: 24 observations + QARL's context entry, 6 actuators
ENGINES: dict[str, dict[str, Any]] = {
    "reference": {"sac_engine": "reference"},
    "fast eager fp32": {"sac_engine": "fast"},
    "fast compiled fp32": {"sac_engine": "fast", "sac_compile": True},
    "fast compiled bf16": {"sac_engine": "fast", "sac_compile": True, "sac_precision": "bf16"},
}
OVERRIDES = {
    "reference": ["sac.engine=reference"],
    "fast eager fp32": ["sac.engine=fast", "sac.compile=false", "sac.precision=fp32"],
    "fast compiled fp32": ["sac.engine=fast", "sac.compile=true", "sac.precision=fp32"],
    "fast compiled bf16": ["sac.engine=fast", "sac.compile=true", "sac.precision=bf16"],
}


class Synthetic(gym.Env):
    """Only the spaces matter: the buffer is filled directly."""

    observation_space = spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    action_space = spaces.Box(-1, 1, (ACT,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        return np.zeros(OBS, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(OBS, np.float32), 0.0, False, False, {}


def synthetic_agent(name: str, arch: list[int], batch: int, device: str) -> Any:
    common = dict(
        policy_kwargs={"net_arch": arch}, learning_starts=0, batch_size=batch, buffer_size=20_000, seed=0,
        ent_coef="auto_0.005", device=device, verbose=0,
    )  # fmt: skip
    if name == "SB3 SAC":
        model: Any = SAC("MlpPolicy", Synthetic(), **common)
    else:
        model = QARLSAC("MlpPolicy", Synthetic(), **common, **ENGINES[name])
    buffer, n, rng = model.replay_buffer, 10_000, np.random.default_rng(0)
    buffer.observations[:n] = rng.standard_normal((n, 1, OBS))
    buffer.next_observations[:n] = rng.standard_normal((n, 1, OBS))
    buffer.actions[:n] = rng.uniform(-1, 1, (n, 1, ACT))
    buffer.rewards[:n] = rng.standard_normal((n, 1))
    buffer.pos = n
    model.set_logger(configure(None, [""]))
    return model


def sync(device: str) -> None:
    if device == "cuda":
        th.cuda.synchronize()


def part_updates(arch: list[int], batch: int, n: int, rounds: int, device: str) -> dict[str, tuple[float, float]]:
    """Median ms per update (CPU, wall) per engine, and the first call's seconds (compile)."""
    names = ["SB3 SAC", *ENGINES]
    agents = {name: synthetic_agent(name, arch, batch, device) for name in names}
    for name, agent in agents.items():
        start = time.perf_counter()
        agent.train(3, batch)
        sync(device)
        print(f"  {name}: first calls {time.perf_counter() - start:.1f} s (compiles where compiled)", flush=True)
    cpu: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            c, w = time.process_time(), time.perf_counter()
            agents[name].train(n, batch)
            sync(device)
            cpu[name].append((time.process_time() - c) / n * 1e3)
            wall[name].append((time.perf_counter() - w) / n * 1e3)
    for agent in agents.values():
        if isinstance(agent, QARLSAC):
            agent.flush_training_stats()
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in names}


def trainer(algo: str, engine: str, train_freq: int, horizon: int, device: str, arch: str, batch: int) -> Any:
    from hydra import compose, initialize_config_dir

    from envs.common.runs import RunDir
    from rl.qarl.config import register_configs
    from rl.qarl.trainer import QARLTrainer

    register_configs()
    overrides = [
        "env=dmc_walker_walk", f"algo={algo}", "budget=paper", f"budget.horizon={horizon}", "budget.episodes_per_phase=1",
        f"sac.net_arch={arch}", f"sac.batch_size={batch}", f"sac.train_freq={train_freq}", "sac.learning_starts=100",
        "sac.actor_learning_starts=100", "progress=false", *OVERRIDES[engine],
    ]  # fmt: skip
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("train_qarl", overrides=overrides)
    return QARLTrainer(cfg, RunDir(Path(tempfile.mkdtemp())), th.device(device))


def part_loop(algo: str, train_freq: int, horizon: int, rounds: int, device: str) -> dict[str, tuple[float, float]]:
    """Env steps per CPU-second and per wall second of the trainer's iterations (after one warm-up iteration)."""
    trainers = {name: trainer(algo, name, train_freq, horizon, device, "[256,256,256]", 256) for name in ENGINES}
    for name, t in trainers.items():
        start = time.perf_counter()
        t.iteration()  # warm-up: learning starts, compiles
        print(f"  {name}: warm-up iteration {time.perf_counter() - start:.1f} s", flush=True)
    cpu: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        names = list(trainers)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = trainers[name]
            steps, c, w = t.state.env_steps, time.process_time(), time.perf_counter()
            t.iteration()
            sync(device)
            done = t.state.env_steps - steps
            cpu[name].append(done / (time.process_time() - c))
            wall[name].append(done / (time.perf_counter() - w))
    for t in trainers.values():
        t.close()
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in trainers}


def env_step_ms(steps: int = 500) -> float:
    """ms per env step of the two-player walker-walk (protagonist view, zero adversary, random actions)."""
    from envs.adversarial.demo import make_game
    from envs.adversarial.views import PlayerView

    view = PlayerView(make_game({"name": "dmc_walker_walk", "max_episode_steps": 500}), player="protagonist")
    view.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, *view.action_space.shape)).astype(np.float32)
    c = time.process_time()
    for a in actions:
        _, _, terminated, truncated, _ = view.step(a)
        if terminated or truncated:
            view.reset()
    return (time.process_time() - c) / steps * 1e3


def breakdown(arch: list[int], batch: int, n: int, device: str) -> None:
    """Where the time of one update goes, per engine: shares of the profiled wall time (torch.profiler self times).

    ``framework`` is the self time of non-ATen events (dynamo's guards, the autograd engine, optimiser wrappers),
    ``Python`` what no event covers (the engines' own Python). The profiler slows small ops down, so the shares, not
    the absolute numbers, are the result.
    """
    from torch.profiler import ProfilerActivity, profile

    groups = {
        "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul"),
        "optimizer": ("aten::_fused_adam_", "aten::_foreach", "aten::lerp", "aten::addcmul", "aten::addcdiv"),
        "sampling": ("aten::index_select", "aten::normal_", "aten::randn"),
    }
    columns = ("matmul", "elementwise", "optimizer", "sampling", "framework", "Python")
    if device == "cuda":
        print("| engine | wall ms per update | GPU busy ms (kernel time) | busy share |\n|---|---|---|---|")
    else:
        print("| engine | ms per update (profiled) | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
    for name in ["SB3 SAC", *ENGINES]:
        agent = synthetic_agent(name, arch, batch, device)
        agent.train(3, batch)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        w = time.perf_counter()
        with profile(activities=activities) as prof:
            agent.train(n, batch)
            sync(device)
        wall = (time.perf_counter() - w) / n * 1e3
        events = prof.key_averages()
        if device == "cuda":  # launch-bound or compute-bound: the GPU's busy time against the wall time
            busy = sum(getattr(e, "self_device_time_total", 0.0) for e in events) / 1e3 / n
            print(f"| {name} | {wall:.2f} | {busy:.2f} | {busy / wall:.0%} |", flush=True)
            continue
        shares: dict[str, float] = defaultdict(float)
        for event in events:
            key, ms = event.key, event.self_cpu_time_total / 1e3 / n
            if key.startswith("## Call CompiledFxGraph"):
                shares["elementwise"] += ms  # inductor's fused kernels
            elif key.startswith("aten::"):
                shares[next((g for g, prefixes in groups.items() if key.startswith(prefixes)), "elementwise")] += ms
            else:
                shares["framework"] += ms
        shares["Python"] = max(0.0, wall - sum(shares.values()))
        cells = " | ".join(f"{shares[c] / wall:.0%}" for c in columns)
        print(f"| {name} | {wall:.2f} | {cells} |", flush=True)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit}{' (+local changes)' if dirty else ''}; "
        f"{model}, {os.cpu_count()} CPUs, bf16 matrix units: {bf16_matrix_units(th.device('cpu'))}; "
        f"torch {th.__version__}, numpy {np.__version__}, Python {platform.python_version()}; "
        f"torch threads {th.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=250, help="episode length of parts 2 and 3 (1+1 episodes/iteration)")
    parser.add_argument("--skip-loop", action="store_true", help="only part 1 and the breakdown")
    args = parser.parse_args()
    th.set_num_threads(1)
    print(f"machine: {machine()}\n", flush=True)
    updates = {}
    for arch, batch, n in (([256, 256, 256], 256, 20), ([64, 64], 64, 60)):
        label = f"{len(arch)}x{arch[0]}, batch {batch}"
        print(f"part 1: ms per update, {label}", flush=True)
        updates[label] = part_updates(arch, batch, n, args.rounds, args.device)
    print("\n| shape | engine | ms/update (CPU) | ms/update (wall) | SB3 / engine (CPU) |\n|---|---|---|---|---|")
    for label, rows in updates.items():
        base = rows["SB3 SAC"][0]
        for name, (c, w) in rows.items():
            print(f"| {label} | {name} | {c:.2f} | {w:.2f} | {base / c:.2f}x |")
    sb3_ms = updates["3x256, batch 256"]["SB3 SAC"][0]
    print("\nwhere the time goes (3x256, batch 256; shares of the profiled wall time, torch.profiler self times):", flush=True)
    breakdown([256, 256, 256], 256, 10, args.device)
    if args.skip_loop:
        return
    paper = trainer("qarl", "fast eager fp32", 3, 500, args.device, "[256,256,256]", 256)
    with open_dict(paper.cfg):  # what the defaults resolve to for a paper-budget QARL run here
        paper.cfg.sac.learning_starts, paper.cfg.sac.actor_learning_starts = 3000, 5000
        paper.cfg.budget.episodes_per_phase = 5
        paper.cfg.sac.compile = paper.cfg.sac.precision = "auto"
    print("\ndefaults for a paper-budget QARL run on walker-walk here:")
    print(" ", train_update_mode(paper.cfg, paper.protagonist_env, True, th.device(args.device)).describe())
    paper.close()
    print("\npart 2: trainer loop, algo=sac on walker-walk, one update per env step", flush=True)
    loop = part_loop("sac", 1, args.horizon, max(2, args.rounds // 2), args.device)
    env_ms = env_step_ms()
    print(f"\nenv step alone (two-player walker-walk view, random actions): {env_ms:.2f} ms CPU")
    print("| engine | ms per env step + update (CPU) | (wall) | / SB3's plain update (CPU) | goal <= 0.5 |")
    print("|---|---|---|---|---|")
    for name, (c, w) in loop.items():
        ratio = 1e3 / c / sb3_ms
        print(f"| {name} | {1e3 / c:.2f} | {1e3 / w:.2f} | {ratio:.2f} | {'met' if ratio <= 0.5 else 'missed'} |")
    print("\npart 3: QARL at the paper's settings on walker-walk (both players, one update per 3 env steps)", flush=True)
    qarl = part_loop("qarl", 3, args.horizon, max(2, args.rounds // 2), args.device)
    base = qarl["reference"][0]
    print("| engine | env steps/s (CPU) | (wall) | vs reference |")
    print("|---|---|---|---|")
    for name, (c, w) in qarl.items():
        print(f"| {name} | {c:.1f} | {w:.1f} | {c / base:.2f}x |")
    print("(vs the official code: benchmarks/bench_qarl_vs_official.py)")


if __name__ == "__main__":
    main()

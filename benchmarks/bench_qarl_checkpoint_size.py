"""Disk cost of a QARL checkpoint per env: the full resume state (``resume.pt``) and the policies-only part.

The resume state grows with the replay buffers (only their filled rows are saved). For each env this writes the
checkpoint of a ``qarl`` trainer with the paper's networks (3x256) twice, with both buffers holding 1000 and 3000
rows of random data, and extrapolates the measured bytes per row to the paper budget: 200 iterations x 5 episodes x
500 steps = 500k rows per player (an upper bound: episodes that terminate early add fewer rows).

    python benchmarks/bench_qarl_checkpoint_size.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch as th
from hydra import compose, initialize_config_dir

from envs.common.runs import prepare_run_dir
from rl.qarl.config import register_configs
from rl.qarl.trainer import QARLTrainer

ENVS = ("InvertedPendulum", "Hopper", "Walker2d", "HalfCheetah", "Swimmer", "Ant", "Humanoid")
PAPER_ROWS = 200 * 5 * 500
CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def tiny_cfg(run_dir: Path, *overrides: str):
    """The paper's config with a small buffer allocation and a short horizon."""
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("train_qarl", overrides=["budget.horizon=20", "progress=false", f"run_dir={run_dir}", *overrides])


def fill(buffer, rows: int, rng: np.random.Generator) -> None:
    """Put ``rows`` rows of random data in a replay buffer."""
    for name in ("observations", "next_observations", "actions", "rewards"):
        array = getattr(buffer, name)
        array[:rows] = rng.standard_normal(array[:rows].shape).astype(array.dtype)
    buffer.pos, buffer.full = rows, False


def checkpoint_bytes(env: str, rows: int, tmp: Path) -> tuple[int, int, int]:
    """(resume.pt bytes, policies bytes, observation size) of a checkpoint with ``rows`` rows in each buffer."""
    overrides = ["sac.net_arch=[256,256,256]", "sac.buffer_size=4000", f"env={env}"]
    if env in ("Swimmer", "Humanoid"):
        overrides.append("curriculum.random_return=0")
    cfg = tiny_cfg(tmp / f"{env}_{rows}", *overrides)
    trainer = QARLTrainer(cfg, prepare_run_dir(cfg), th.device("cpu"))
    rng = np.random.default_rng(0)
    for agent in trainer.agents().values():
        fill(agent.replay_buffer, rows, rng)
    folder = trainer.save()
    trainer.close()
    policies = sum(p.stat().st_size for p in folder.glob("*.zip"))
    obs_dim = int(trainer.protagonist.observation_space.shape[0])
    return (folder / "resume.pt").stat().st_size, policies, obs_dim


def main() -> None:
    """Print one markdown row per env."""
    print("| env | obs dim | resume.pt per 1k rows (MB) | resume.pt at 500k rows per player (GB) | policies (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for env in ENVS if len(sys.argv) < 2 else sys.argv[1:]:
            small, policies, obs_dim = checkpoint_bytes(env, 1000, tmp)
            large, _, _ = checkpoint_bytes(env, 3000, tmp)
            per_row = (large - small) / 2000
            fixed = small - 1000 * per_row
            total = fixed + PAPER_ROWS * per_row
            print(f"| {env} | {obs_dim} | {per_row * 1000 / 1e6:.3f} | {total / 1e9:.2f} | {policies / 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""The environment demo: random (or zero) protagonist against random (or zero) adversary."""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.policies import as_policy
from envs.common import log_config, make_writer, prepare_run_dir, seed_everything


def make_game(env_cfg: DictConfig | dict[str, Any]) -> AdversarialMujocoEnv:
    """Build the two-player game from an ``EnvConfig`` node (``None`` fields take the env defaults)."""
    return AdversarialMujocoEnv(
        env_cfg["name"],
        bodies=env_cfg.get("bodies"),
        axes=env_cfg.get("axes"),
        force_bound=env_cfg.get("force_bound"),
        max_episode_steps=env_cfg.get("max_episode_steps"),
    )


def play(cfg: DictConfig) -> dict[str, float]:
    """Play ``cfg.episodes`` episodes and log both players' returns to TensorBoard.

    Returns:
        The mean protagonist return and the mean episode length.
    """
    run = prepare_run_dir(cfg)
    seed_everything(cfg.seed)
    game = make_game(cfg.env)
    pro = as_policy(cfg.protagonist, game.protagonist_action_space)
    adv = as_policy(cfg.adversary, game.adversary_action_space)
    writer = make_writer(run.root)
    log_config(writer, cfg)
    returns, lengths, total_steps = [], [], 0
    for episode in tqdm(range(cfg.episodes), desc=f"{game.spec_defaults.name} episodes", unit="ep"):
        obs, _ = game.reset(seed=cfg.seed + episode)
        ep_return, ep_len, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = game.step(pro(obs, game.np_random), adv(obs, game.np_random))
            ep_return += float(reward)
            ep_len += 1
            done = terminated or truncated
        total_steps += ep_len
        returns.append(ep_return)
        lengths.append(ep_len)
        writer.add_scalar("rollout/protagonist_return", ep_return, total_steps)
        writer.add_scalar("rollout/adversary_return", -ep_return, total_steps)
        writer.add_scalar("rollout/episode_length", ep_len, total_steps)
    writer.close()
    game.close()
    result = {"mean_return": float(np.mean(returns)), "mean_length": float(np.mean(lengths))}
    print(f"mean protagonist return {result['mean_return']:.2f} over {cfg.episodes} episodes")
    print(f"TensorBoard logs: tensorboard --logdir {run.tensorboard}")
    return result

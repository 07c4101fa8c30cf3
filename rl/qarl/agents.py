"""How a QARL run builds its players: the view each one acts in, and its SB3 agent class and settings.

Shared by the trainer and by the weights-only loader (:func:`rl.qarl.checkpoint.load_policies` with
``weights_only=True``), which rebuilds a run's agents from its ``config.yaml`` and puts the network parameters of
the saved ``.zip`` files in (:func:`load_weights`) without reading the pickled objects that SB3 stores there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.views import PlayerView
from rl.qarl.modes import Mode, protagonist_class, protagonist_kwargs
from rl.qarl.sac import QARLSAC, PerSampleTemperatureSAC


def player_view(game: AdversarialMujocoEnv, mode: Mode, player: str) -> PlayerView:
    """``player``'s view of ``game``: its observation gets the episode's context unless the mode has none."""
    bounds = (0.0, game.force_bound) if mode.context == "force" else (0.0, float("inf"))
    return PlayerView(game, player=player, append_context=mode.context != "none", context_bounds=bounds)


def agent_spec(cfg: Any, mode: Mode, player: str) -> tuple[type[QARLSAC], dict[str, Any]]:
    """The SB3 class of ``player``'s agent and its constructor keywords (all but policy, env and device)."""
    sac = cfg.sac
    per_sample = mode.per_sample_temperature and (player == "adversary" or mode.homogeneous)
    cls: type[QARLSAC] = PerSampleTemperatureSAC if per_sample else QARLSAC
    extra = {}
    if player == "protagonist" and mode.action_adversary != "none":
        cls, extra = protagonist_class(mode), protagonist_kwargs(cfg.algo, mode)
    # learned temperatures start at 0.005 for both players, as every SAC agent of the official code (auto_0.005)
    init = sac.protagonist_ent_coef_init if player == "protagonist" else sac.get("adversary_ent_coef_init", 0.005)
    ent_coef: str | float = 1.0 if per_sample else f"auto_{init}"
    kwargs = {
        "learning_rate": float(sac.critic_lr),
        "actor_lr": float(sac.actor_lr),
        "critic_lr": float(sac.critic_lr),
        "ent_coef_lr": float(sac.ent_coef_lr),
        "buffer_size": int(sac.buffer_size),
        "learning_starts": int(sac.learning_starts),
        "actor_learning_starts": int(sac.actor_learning_starts),
        "warmup": str(sac.get("warmup", "random")),  # runs saved before the option existed acted at random
        "batch_size": int(sac.batch_size),
        "tau": float(sac.tau),
        "gamma": float(sac.gamma),
        "train_freq": (int(sac.train_freq), "step"),
        "gradient_steps": int(sac.gradient_steps),
        "ent_coef": ent_coef,
        "policy_kwargs": {"net_arch": list(sac.net_arch)},
        "log_prefix": "train" if player == "protagonist" else "adversary",
        "seed": int(cfg.seed) + (0 if player == "protagonist" else 1),
        "verbose": 0,
    }
    return cls, kwargs | extra


class SpacesOnly(gym.Env):
    """An env that only has spaces: what building an agent to hold saved weights needs (it cannot be stepped)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space


def load_weights(
    cls: type[BaseAlgorithm],
    path: str | Path,
    observation_space: gym.Space,
    action_space: gym.Space,
    device: str | th.device = "cpu",
    **kwargs: Any,
) -> Any:
    """A fresh ``cls("MlpPolicy", ...)`` agent holding the network parameters of the SB3 file ``path``.

    Only the ``*.pth`` members of the zip are read, with ``torch.load(weights_only=True)`` (SB3's
    ``set_parameters``); its ``data`` member, whose cloudpickled objects run code when unpickled, is never read.
    The agent is built from the given spaces and ``kwargs`` (its replay buffer holds one row), so its networks
    must match the file's: the run's config says how they were built.

    Raises:
        ValueError: the file's parameters do not fit the agent built (named), or the file is not an SB3 zip.
    """
    kwargs = {"verbose": 0, **kwargs, "buffer_size": 1}
    agent = cls("MlpPolicy", SpacesOnly(observation_space, action_space), device=device, **kwargs)
    try:
        agent.set_parameters(str(path), exact_match=True, device=device)
    except (RuntimeError, ValueError, KeyError) as e:
        raise ValueError(
            f"{str(path)!r}: its parameters do not fit the {cls.__name__} that the run's config builds "
            f"(observation {observation_space}, action {action_space}, {kwargs.get('policy_kwargs')}): {e}"
        ) from e
    return agent

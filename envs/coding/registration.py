"""Registration of the Markov coding games under gymnasium's ``rldyn`` namespace."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from envs.coding.env import MarkovCodingGameEnv

CODING_ENVS: dict[str, dict[str, Any]] = {
    # the MEC-B authors' grid world, 512 uniform messages (Fig. 4), log tau = -5
    "rldyn/CodingGridWorld-v0": {"mdp": "gridworld", "n_messages": 512, "log_temperature": -5.0},
    # Sokota et al.'s CodeGrid, 4 x 4, horizon 8, |M| = 64
    "rldyn/CodeGrid-v0": {"mdp": "codegrid", "n_messages": 64, "log_temperature": -2.0},
    # the referential (stateless) game: 6 steps, 4 actions, 512 messages
    "rldyn/ReferentialGame-v0": {"mdp": "stateless", "n_messages": 512, "log_temperature": 0.0},
}
"""Registered ids and their default keyword arguments (override them in ``gymnasium.make``)."""


def make_coding_env(**kwargs: Any) -> MarkovCodingGameEnv:
    """Entry point of every registered coding game (all keywords go to :class:`MarkovCodingGameEnv`)."""
    return MarkovCodingGameEnv(**kwargs)


def register_coding_envs() -> list[str]:
    """Register the coding games (idempotent); returns the ids."""
    for env_id, kwargs in CODING_ENVS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="envs.coding.registration:make_coding_env",
                kwargs=dict(kwargs),
                max_episode_steps=None,  # the game ends itself (terminal states, horizon, MDP max_steps)
            )
    return list(CODING_ENVS)


register_coding_envs()  # importing this module registers the games (``envs/__init__.py`` imports it)

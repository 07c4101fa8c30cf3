"""Registration of the two-player games under gymnasium's ``rldyn`` namespace."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.specs import ADVERSARIAL_ENVS
from envs.adversarial.views import PLAYERS, PlayerView
from envs.common.registry import check_choice


def make_adversarial_env(env: str = "Hopper", view: str | None = None, **kwargs: Any) -> gym.Env:
    """Build a game (``view=None``) or one player's view (``view="protagonist"|"adversary"``).

    Keywords of :class:`PlayerView` (``opponent``, ``append_context``, ...) go to the view; the rest
    to :class:`AdversarialMujocoEnv`.
    """
    if view is None:
        return AdversarialMujocoEnv(env, **kwargs)
    check_choice(view, PLAYERS, "view")
    view_keys = ("opponent", "append_context", "context", "context_bounds")
    view_kwargs = {k: kwargs.pop(k) for k in view_keys if k in kwargs}
    return PlayerView(AdversarialMujocoEnv(env, **kwargs), player=view, **view_kwargs)


def register_adversarial_envs() -> list[str]:
    """Register every env of the registry and return the ids.

    Ids: ``rldyn/Adversarial<Name>-v5`` (gymnasium family) and ``rldyn/AdversarialDMC<Domain><Task>-v1``
    (dm_control family, e.g. ``rldyn/AdversarialDMCWalkerWalk-v1``).
    """
    ids = []
    for spec in ADVERSARIAL_ENVS.values():
        if spec.env_id not in gym.registry:
            gym.register(
                id=spec.env_id,
                entry_point="envs.adversarial.registration:make_adversarial_env",
                kwargs={"env": spec.name},
                max_episode_steps=None,  # the game truncates itself (max_episode_steps argument)
            )
        ids.append(spec.env_id)
    return ids

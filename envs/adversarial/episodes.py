"""The one evaluation loop of QARL runs: used by training, the robustness grid and the report.

The protagonist plays with sampled actions (as in the paper's evaluation, specs/qarl.md §8), optionally against
the trained adversary at temperature 0 (the rational adversary), optionally on a perturbed model (mass and
friction factors of the nominal model), and returns are undiscounted. Each episode is reproducible from its seed
alone: the env is reset with it and the action sampling runs on a torch generator seeded with it (forked from the
global one, so evaluating never moves a training run's random stream).

What the policies observe follows the run's :class:`rl.qarl.modes.Mode`: ``temperature`` appends 0 (alpha = 0),
``force`` appends the full force bound (the force curriculum's hardest setting), ``none`` appends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch as th

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.policies import SupportsPredict
from envs.common.registry import check_choice

CONTEXTS = ("temperature", "force", "none")


class EpisodeReturns(NamedTuple):
    """Per-episode results of :func:`run_episodes` (arrays of shape ``(episodes,)``)."""

    returns: np.ndarray
    lengths: np.ndarray
    seeds: np.ndarray


def context_value(context: str, game: AdversarialMujocoEnv) -> float | None:
    """The observation entry of an evaluation: 0 for ``temperature``, the force bound for ``force``, else ``None``."""
    check_choice(context, CONTEXTS, "context")
    if context == "temperature":
        return 0.0
    if context == "force":
        return game.force_bound
    return None


def perturbation_options(
    mass_factor: float = 1.0, friction_factor: float = 1.0, mass_bodies: Sequence[str] | None = None
) -> dict[str, Any]:
    """Reset options scaling the mass of ``mass_bodies`` (all bodies if ``None``) and the sliding friction of all geoms.

    Returns an empty dict for the nominal model (factors 1, 1).
    """
    if mass_factor == 1.0 and friction_factor == 1.0:
        return {}
    options: dict[str, Any] = {"mass_scale": float(mass_factor), "friction_scale": float(friction_factor)}
    if mass_bodies is not None:
        options["mass_bodies"] = list(mass_bodies)
    return options


def run_episodes(
    game: AdversarialMujocoEnv,
    protagonist: SupportsPredict,
    context: str,
    seeds: Sequence[int] | np.ndarray,
    adversary: SupportsPredict | None = None,
    perturbation: Mapping[str, Any] | None = None,
) -> EpisodeReturns:
    """Play one protagonist episode per seed and return the undiscounted returns.

    Args:
        game: the two-player game (its ``max_episode_steps`` is the horizon).
        protagonist: the protagonist (an SB3 model or anything with ``predict``); actions are sampled.
        context: the run's ``Mode.context``: ``temperature``, ``force`` or ``none``.
        seeds: one reset seed per episode; it also seeds that episode's action sampling.
        adversary: the adversary, playing at temperature 0 (``None``: zero force).
        perturbation: reset options (``mass_scale``, ``friction_scale``, ``mass_bodies``, ...) applied to every
            episode; the nominal model is restored when the episodes end.

    Returns:
        Returns, lengths and seeds of the episodes.
    """
    extra = context_value(context, game)
    game.set_force_limit(game.force_bound)
    zero = np.zeros(game.adversary_action_space.shape)
    options = dict(perturbation) if perturbation else None
    seeds = np.asarray(seeds, dtype=np.int64)
    returns, lengths = np.zeros(len(seeds)), np.zeros(len(seeds), dtype=np.int64)
    try:
        for k, seed in enumerate(seeds):
            with th.random.fork_rng(devices=[]):
                th.manual_seed(int(seed))
                obs, _ = game.reset(seed=int(seed), options=options)
                done, total, steps = False, 0.0, 0
                while not done:
                    x = obs if extra is None else np.append(obs, extra).astype(np.float32)
                    action, _ = protagonist.predict(x, deterministic=False)
                    push = adversary.predict(x, deterministic=False)[0] if adversary is not None else zero
                    obs, reward, terminated, truncated, _ = game.step(action, push)
                    total += float(reward)
                    steps += 1
                    done = terminated or truncated
            returns[k], lengths[k] = total, steps
    finally:
        game.restore_nominal()
    return EpisodeReturns(returns, lengths, seeds)

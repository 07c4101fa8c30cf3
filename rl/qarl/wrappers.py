"""The per-episode context wrapper of QARL's training views, and the fast SAC opponent."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC

from envs.adversarial.views import PlayerView


class EpisodeContext(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """Give each episode its scheduled temperature and report the protagonist's returns when it ends.

    QARL draws one temperature alpha per episode and appends it to the observation for the whole episode
    (specs/qarl.md §2). SB3's vectorised envs reset automatically, so the temperatures of a phase are queued with
    :meth:`schedule` and popped at each reset. ``context_of(alpha)`` maps alpha to the observation entry and the
    force limit (the force curriculum maps it to a force budget); ``None`` leaves the view's context alone.

    At episode end ``info["qarl_episode"]`` holds the alpha, the protagonist's return, its discounted return
    (gamma) and the length, whichever player's view this is.
    """

    def __init__(
        self, view: PlayerView, gamma: float, context_of: Callable[[float], tuple[float, float | None]] | None
    ) -> None:
        super().__init__(view)
        self.view = view
        self.gamma = gamma
        self.context_of = context_of
        self.queue: deque[float] = deque()
        self.alpha = float("nan")
        self._sign = 1.0 if view.player == "protagonist" else -1.0
        self._return = self._discounted = 0.0
        self._discount = 1.0
        self._length = 0

    def schedule(self, alphas: Sequence[float] | np.ndarray) -> None:
        """Queue the temperatures of the next episodes (one per reset)."""
        self.queue = deque(float(a) for a in alphas)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Pop the next temperature (if any) and reset."""
        if self.queue:
            self.alpha = self.queue.popleft()
            if self.context_of is not None:
                context, force_limit = self.context_of(self.alpha)
                self.view.set_context(context)
                if force_limit is not None:
                    self.view.game.set_force_limit(force_limit)
        self._return = self._discounted = 0.0
        self._discount = 1.0
        self._length = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and accumulate the protagonist's returns."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        r = self._sign * float(reward)
        self._return += r
        self._discounted += self._discount * r
        self._discount *= self.gamma
        self._length += 1
        if terminated or truncated:
            info["qarl_episode"] = {
                "alpha": self.alpha,
                "return": self._return,
                "discounted_return": self._discounted,
                "length": self._length,
            }
        return obs, reward, terminated, truncated, info


class SACActorPolicy:
    """An opponent that samples from an SB3 SAC actor directly (stochastic, as both QARL players act in training).

    Equivalent to ``model.predict(obs, deterministic=False)`` for a Box observation, without ``predict``'s
    per-call checks and conversions, which cost about as much as the actor itself on a CPU; the opponent is
    queried once per env step, so this is on the training hot path.
    """

    def __init__(self, model: SAC) -> None:
        self.model = model

    def __call__(self, obs: np.ndarray, np_random: np.random.Generator) -> np.ndarray:
        """Return a sampled action in the model's action space."""
        with th.no_grad():
            x = th.as_tensor(obs, dtype=th.float32, device=self.model.device).unsqueeze(0)
            action = self.model.actor(x, deterministic=False)[0].cpu().numpy()
        return self.model.policy.unscale_action(action)

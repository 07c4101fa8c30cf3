"""Single-agent views of the two-player game, so any stable-baselines3 algorithm trains either side."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.policies import OpponentPolicy, as_policy
from envs.common.registry import check_choice

PLAYERS = ("protagonist", "adversary")


class PlayerView(gym.Env[np.ndarray, np.ndarray]):
    """One player's view of :class:`AdversarialMujocoEnv`; the other player is a fixed ``opponent`` policy.

    Used for RARL-style alternation (arXiv:1703.02702) and QARL (arXiv:2311.01642): while one player learns,
    the view queries the other inside ``step``.

    ## Action Space
    The chosen player's Box (the task's actuators for the protagonist, ``[-1, 1]^(bodies x axes)`` for
    the adversary).

    ## Observation Space
    The task's observation; with ``append_context=True`` one more entry holding a scalar context (QARL's
    adversary temperature, or the force curriculum's force budget), bounded by ``context_bounds``. The
    context is set with :meth:`set_context` or ``reset(options={"context": value})`` and stays fixed until
    changed. Both players see the same (extended) observation.

    ## Rewards
    The protagonist's view returns the task's reward ``r``; the adversary's view returns exactly ``-r``.

    ## Episode End
    As the two-player env: task termination, truncation after ``max_episode_steps``.

    ## Arguments
    - ``env``: an :class:`AdversarialMujocoEnv` or its short name (extra keywords build it).
    - ``player``: ``"protagonist"`` or ``"adversary"``.
    - ``opponent``: ``None``/``"zero"`` (zero action), ``"random"`` (uniform, from this view's ``np_random``),
      an SB3 model (``predict``, stochastic) or a callable ``(obs, np_random) -> action``; see
      :meth:`set_opponent`.
    - ``append_context``, ``context``, ``context_bounds``: the appended scalar.
    """

    def __init__(
        self,
        env: AdversarialMujocoEnv | str = "Hopper",
        player: str = "protagonist",
        opponent: Any = None,
        append_context: bool = False,
        context: float = 0.0,
        context_bounds: tuple[float, float] = (0.0, np.inf),
        **env_kwargs: Any,
    ) -> None:
        self.game = env if isinstance(env, AdversarialMujocoEnv) else AdversarialMujocoEnv(env, **env_kwargs)
        self.player = check_choice(player, PLAYERS, "player")
        self._sign = 1.0 if player == "protagonist" else -1.0
        self.render_mode = self.game.render_mode
        self.metadata = self.game.metadata
        own, other = self.game.protagonist_action_space, self.game.adversary_action_space
        if player == "adversary":
            own, other = other, own
        self.action_space: spaces.Box = own
        self.opponent_action_space: spaces.Box = other
        self.append_context = append_context
        self.context_bounds = (float(context_bounds[0]), float(context_bounds[1]))
        base = self.game.observation_space
        assert isinstance(base, spaces.Box)
        if append_context:
            low = np.append(base.low, self.context_bounds[0]).astype(base.dtype)
            high = np.append(base.high, self.context_bounds[1]).astype(base.dtype)
            self.observation_space: spaces.Box = spaces.Box(low, high, dtype=base.dtype)
        else:
            self.observation_space = base
        self.context = 0.0
        self.set_context(context)
        self.opponent: OpponentPolicy = as_policy(opponent, other)
        self._obs: np.ndarray = np.zeros(self.observation_space.shape, dtype=self.observation_space.dtype)

    def set_opponent(self, opponent: Any) -> None:
        """Replace the opponent policy (see the class docstring for what is accepted)."""
        self.opponent = as_policy(opponent, self.opponent_action_space)

    def set_context(self, value: float) -> None:
        """Set the scalar appended to the observation from the next step (or reset) on."""
        value = float(value)
        low, high = self.context_bounds
        if not (low <= value <= high) or np.isnan(value):
            raise ValueError(f"context {value!r} is outside its bounds [{low}, {high}]")
        self.context = value

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        if self.append_context:
            obs = np.append(obs, self.context)
        return obs.astype(self.observation_space.dtype, copy=False)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the game; ``options`` may hold ``context`` and the game's perturbation keys."""
        super().reset(seed=seed)
        if seed is not None:
            # The task draws its initial-state noise from a generator seeded with ``seed`` as well: a clone of
            # it here would make a random opponent's first actions replay that noise. Use a child stream.
            self._np_random = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1,))))
        options = dict(options or {})
        if "context" in options:
            self.set_context(options.pop("context"))
        obs, info = self.game.reset(seed=seed, options=options or None)
        self._obs = self._augment(obs)
        return self._obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Play ``action`` for this view's player and the opponent's action for the other."""
        # the game checks both actions' shapes (naming this view's player), so they are not checked twice
        other = self.opponent(self._obs, self.np_random)
        pair = (action, other) if self._sign > 0 else (other, action)
        obs, reward, terminated, truncated, info = self.game.step(*pair)
        self._obs = self._augment(obs)
        return self._obs, self._sign * float(reward), terminated, truncated, info

    def render(self) -> Any:
        """Render the game."""
        return self.game.render()

    def close(self) -> None:
        """Close the game."""
        self.game.close()


class ProtagonistView(PlayerView):
    """The protagonist's view (:class:`PlayerView` with ``player="protagonist"``)."""

    def __init__(self, env: AdversarialMujocoEnv | str = "Hopper", **kwargs: Any) -> None:
        super().__init__(env, player="protagonist", **kwargs)


class AdversaryView(PlayerView):
    """The adversary's view (:class:`PlayerView` with ``player="adversary"``): rewards are ``-r``."""

    def __init__(self, env: AdversarialMujocoEnv | str = "Hopper", **kwargs: Any) -> None:
        super().__init__(env, player="adversary", **kwargs)

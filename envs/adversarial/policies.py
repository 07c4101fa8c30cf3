"""Opponent policies that a single-agent view queries inside ``step``.

Anything with ``predict(obs, deterministic=...)`` (a stable-baselines3 model) or any callable
``obs -> action`` works as an opponent; :func:`as_policy` turns it into an :data:`OpponentPolicy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

OpponentPolicy = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""``policy(obs, np_random) -> action``: ``np_random`` is the view's generator, for random policies."""


class SupportsPredict(Protocol):
    """Anything with SB3's ``predict``."""

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        """Return ``(action, state)``."""
        ...


class ZeroPolicy:
    """Always the zero action: no force from an adversary."""

    def __init__(self, space: spaces.Box) -> None:
        self.action = np.zeros(space.shape, dtype=space.dtype)

    def __call__(self, obs: np.ndarray, np_random: np.random.Generator) -> np.ndarray:
        """Return the zero action."""
        return self.action


class RandomPolicy:
    """Uniform actions in the Box, drawn from the view's ``np_random`` (so seeding the view seeds it)."""

    def __init__(self, space: spaces.Box) -> None:
        self.low, self.high, self.dtype = space.low, space.high, space.dtype

    def __call__(self, obs: np.ndarray, np_random: np.random.Generator) -> np.ndarray:
        """Return a uniform action drawn from ``np_random``."""
        return np_random.uniform(self.low, self.high).astype(self.dtype)


class PredictPolicy:
    """Wrap a model with SB3's ``predict``; stochastic by default, as both QARL players act while training."""

    def __init__(self, model: SupportsPredict, deterministic: bool = False) -> None:
        self.model, self.deterministic = model, deterministic

    def __call__(self, obs: np.ndarray, np_random: np.random.Generator) -> np.ndarray:
        """Return the model's action for ``obs``."""
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(action)


def as_policy(opponent: Any, space: spaces.Box) -> OpponentPolicy:
    """Turn ``None``/``"zero"``, ``"random"``, an SB3 model or a callable into an opponent policy."""
    if opponent is None or (isinstance(opponent, str) and opponent == "zero"):
        return ZeroPolicy(space)
    if isinstance(opponent, str):
        if opponent == "random":
            return RandomPolicy(space)
        raise ValueError(f"unknown opponent {opponent!r}; valid: 'zero', 'random', an SB3 model or a callable(obs, np_random)")
    if hasattr(opponent, "predict"):
        return PredictPolicy(opponent)
    if callable(opponent):
        return opponent
    raise ValueError(f"opponent must be 'zero', 'random', an SB3 model or a callable, got {type(opponent).__name__}")

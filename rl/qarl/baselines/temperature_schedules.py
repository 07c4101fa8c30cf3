"""The temperature schedules of QARL's ablations (specs/qarl.md §7; official ``qarl_linear``/``qarl_point``).

Both play the role of :class:`rl.qarl.teacher.SelfPacedGammaTeacher` in the trainer (``sample``, ``add``,
``ready``, ``update``, ``summary``, ``state_dict``) and are built by :func:`rl.qarl.modes.make_teacher`:

* :class:`LinearTemperatureSchedule` (``algo=qarl_linear``, official ``QARLLinearExperiment``): every episode of
  iteration ``i`` gets ``alpha(i)``, linear from ``alpha_init`` (0.05 c) at ``start_fraction * N`` to
  ``alpha_target`` (0.001 c) at ``end_fraction * N`` (0 and 2/3 of the N iterations) and flat outside; no
  feedback from returns.
* :class:`SelfPacedPointTeacher` (``algo=qarl_point``, official ``SelfPacedPointTemperatureTeacher``): a single
  temperature (no distribution). Each update, if the buffer's mean discounted return is strictly above ``xi`` and
  the squared distance to the target exceeds ``stop_mse``, the temperature moves down by ``sqrt(max_mse)`` and is
  clipped at ``lower_bound``; otherwise it stays. Official dm_control values: 0.05 -> 1e-8 in steps of 0.001
  (``max_mse`` 1e-6), stop at squared distance 1e-15; here scaled by the reward scale c (steps of 0.001 c).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rl.qarl.teacher import TeacherUpdate


def linear_bounded(a: float, b: float, x_a: float, x_b: float, x: float) -> float:
    """The value ``a`` at ``x_a``, ``b`` at ``x_b``, linear between and flat outside (official ``linear_bounded_function``)."""
    if x_b <= x_a:
        return float(b if x >= x_b else a)
    value = a + (b - a) / (x_b - x_a) * (x - x_a)
    return float(np.clip(value, min(a, b), max(a, b)))


@dataclass
class LinearTemperatureSchedule:
    """A non-adaptive linear temperature schedule over iterations (``algo=qarl_linear``).

    The trainer sets ``iteration`` before each iteration (:meth:`rl.qarl.trainer.QARLTrainer.advance_schedules`:
    the iteration count, or its step-budget equivalent under ``budget.max_env_steps``); returns are not used.

    Attributes:
        alpha_init, alpha_target: first and last temperature.
        iterations: N, the configured number of iterations.
        start_fraction, end_fraction: where the descent starts and ends (0 and 2/3).
        threshold: xi (logged only).
        iteration: the current iteration (0-based).
    """

    alpha_init: float
    alpha_target: float
    iterations: int
    start_fraction: float = 0.0
    end_fraction: float = 2.0 / 3.0
    threshold: float = float("nan")
    iteration: int = 0
    kind: str = "linear"

    def __post_init__(self) -> None:
        if not (self.alpha_init > 0 and self.alpha_target > 0):
            raise ValueError(f"linear schedule temperatures must be positive, got {self.alpha_init!r}, {self.alpha_target!r}")
        if not 0 <= self.start_fraction <= self.end_fraction:
            raise ValueError(
                f"algo.linear needs 0 <= start_fraction <= end_fraction, got {self.start_fraction!r}, {self.end_fraction!r}"
            )

    @property
    def alpha(self) -> float:
        """The temperature of the current iteration."""
        n = self.iterations
        return linear_bounded(
            self.alpha_init, self.alpha_target, self.start_fraction * n, self.end_fraction * n, self.iteration
        )

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` copies of the current temperature (``rng`` is unused)."""
        return np.full(n, self.alpha)

    def add(self, alphas: Any, returns: Any) -> None:
        """The schedule ignores returns."""

    ready = False

    def update(self) -> TeacherUpdate:
        """Never called by the trainer (``ready`` is ``False``); a no-op for completeness."""
        return TeacherUpdate(False, False, float("nan"), self.alpha, self.alpha, 0.0, float("nan"))

    def summary(self) -> dict[str, float]:
        """Scalars for the ``curriculum/`` section of the logs."""
        return {"curriculum/distribution_mean": self.alpha, "curriculum/distribution_std": 0.0}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LinearTemperatureSchedule:
        """Rebuild a schedule saved with :meth:`state_dict`."""
        return cls(**state)


@dataclass
class SelfPacedPointTeacher:
    """The point-temperature self-paced teacher of ``algo=qarl_point`` (see the module docstring).

    Attributes:
        alpha: current temperature.
        alpha_target: target temperature.
        max_mse: squared step per update (the step is ``sqrt(max_mse)``).
        threshold: xi on the protagonist's discounted return.
        lower_bound: the temperature never goes below this.
        stop_mse: no more steps once ``(alpha - alpha_target)**2 <= stop_mse``.
        min_pairs: pairs needed before an update; the buffer is cleared after each.
    """

    alpha: float
    alpha_target: float
    max_mse: float
    threshold: float
    lower_bound: float
    stop_mse: float
    min_pairs: int = 30
    alphas: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    kind: str = "point"

    def __post_init__(self) -> None:
        for key in ("alpha", "alpha_target", "max_mse", "lower_bound"):
            value = getattr(self, key)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"point teacher {key} must be positive and finite, got {value!r}")
        if self.min_pairs < 1:
            raise ValueError(f"point teacher min_pairs must be >= 1, got {self.min_pairs}")

    @property
    def mean(self) -> float:
        """The current temperature."""
        return self.alpha

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` copies of the current temperature (``rng`` is unused)."""
        return np.full(n, self.alpha)

    def add(self, alphas: Any, returns: Any) -> None:
        """Store (alpha, discounted protagonist return) pairs."""
        a, j = np.asarray(alphas, dtype=float).ravel(), np.asarray(returns, dtype=float).ravel()
        if a.shape != j.shape:
            raise ValueError(f"got {a.size} temperatures but {j.size} returns")
        self.alphas.extend(a.tolist())
        self.returns.extend(j.tolist())

    @property
    def ready(self) -> bool:
        """Whether the buffer holds enough pairs for an update."""
        return len(self.alphas) >= self.min_pairs

    def update(self) -> TeacherUpdate:
        """Step the temperature towards the target if the mean return is above ``threshold``; clear the buffer."""
        old = self.alpha
        performance = float(np.mean(self.returns)) if self.returns else float("nan")
        frozen = not (performance > self.threshold)
        if (self.alpha - self.alpha_target) ** 2 > self.stop_mse and not frozen:
            self.alpha = float(max(self.alpha - np.sqrt(self.max_mse), self.lower_bound))
        self.alphas.clear()
        self.returns.clear()
        return TeacherUpdate(
            updated=self.alpha != old,
            frozen=frozen,
            performance=performance,
            nu_old=old,
            nu_new=self.alpha,
            kl_step=(self.alpha - old) ** 2,
            kl_target=(self.alpha - self.alpha_target) ** 2,
        )

    def summary(self) -> dict[str, float]:
        """Scalars for the ``curriculum/`` section of the logs."""
        return {
            "curriculum/distribution_mean": self.alpha,
            "curriculum/distribution_std": 0.0,
            "curriculum/mse_to_target": (self.alpha - self.alpha_target) ** 2,
            "curriculum/threshold": self.threshold,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SelfPacedPointTeacher:
        """Rebuild a teacher saved with :meth:`state_dict`."""
        return cls(**state)

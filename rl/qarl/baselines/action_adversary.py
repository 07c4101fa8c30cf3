"""Action-space adversaries of the MixedNE-LD and CAT baselines (specs/qarl.md §7).

Both perturb the protagonist's *action* instead of pushing bodies. Actions here are SB3's normalised actions in
``[-1, 1]`` (the squashed Gaussian's range; on DeepMind Control, where the official code runs, this is the env's
action range). The executed action is also what the replay buffer stores, as in the official code (whose cores
hand the perturbed action to the protagonist's ``fit``).

* **MixedNE-LD** (Kamalaruban et al. 2020, arXiv:2002.06063): the executed action is ``(1 - delta) a + delta a_adv``
  with an action adversary trained against the same critic (:mod:`rl.qarl.baselines.mixedne`); :func:`mix_actions`.
* **CAT** (curriculum adversarial training, IEEE 9892908, with the MAS attack of Lee et al., arXiv:1909.02583):
  a non-learned perturbation that descends the protagonist's policy density, projected on an L2 ball whose radius
  follows a curriculum; :class:`MASAttack`, :class:`BudgetSchedule`, :class:`CATSAC`.

:class:`AttackedPolicy` plays a protagonist under its action adversary, for the evaluation "against the
adversary" of these baselines (MixedNE-LD: its co-trained adversary at ``delta``; CAT: the MAS attack at the
target budget; both as the official ``sgld``/``mas`` experiments evaluate them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch as th

from rl.qarl.sac import QARLSAC


def mix_actions(action: Any, adversary_action: Any, delta: float) -> Any:
    """MixedNE-LD's executed action ``(1 - delta) * action + delta * adversary_action`` (arrays or tensors)."""
    return (1.0 - delta) * action + delta * adversary_action


def l2_project(x: np.ndarray, radius: float) -> np.ndarray:
    """Project ``x`` on the L2 ball of ``radius`` (scale it down if it is longer)."""
    norm = float(np.linalg.norm(x))
    return x if norm <= radius else x * (radius / norm)


@dataclass
class MASAttack:
    """The MAS action perturbation of CAT, as in the official ``MASPolicy.draw_action`` (``mas.py``).

    Starting from the protagonist's action ``a0``, gradient *descent* on each dimension's policy density
    ``p_i(a_i) = N(a_i; mu_i, sigma_i)`` (the pre-squash Gaussian evaluated at the action, exactly as the official
    code does with ``distribution(state).log_prob(a).exp()``) with step ``lr``: two steps, then up to
    ``max_steps`` more while some coordinate still moves by more than ``tolerance``. The difference to ``a0`` is
    projected on the L2 ball of radius ``budget``; the executed action is ``clip(a0 + delta, -1, 1)``.

    Deviations: the gradient is the closed form ``-p_i (a_i - mu_i) / sigma_i**2`` instead of autograd's
    Jacobian diagonal (the same numbers); the executed action is clipped to the action box (the official code
    relies on the simulator clipping the control); only ``lp_norm=2`` (what the paper's experiments use).

    Attributes:
        budget: L2 radius of the perturbation (normalised action units; the official default target is 1).
        lr: gradient step size (3).
        max_steps: further steps after the first two (25).
        tolerance: convergence threshold on the per-coordinate change (1e-3).
    """

    budget: float = 1.0
    lr: float = 3.0
    max_steps: int = 25
    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        for key in ("budget", "lr", "tolerance"):
            value = float(getattr(self, key))
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"MAS attack {key} must be finite and >= 0, got {value!r}")
        if int(self.max_steps) < 0:
            raise ValueError(f"MAS attack max_steps must be >= 0, got {self.max_steps!r}")

    @staticmethod
    def density(action: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Per-dimension Gaussian densities ``N(a_i; mu_i, sigma_i)``."""
        z = (action - mean) / std
        return np.exp(-0.5 * z * z) / (std * np.sqrt(2.0 * np.pi))

    def gradient(self, action: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """``d p_i(a_i) / d a_i`` for each dimension."""
        return -self.density(action, mean, std) * (action - mean) / (std * std)

    def perturbation(self, action: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """The projected perturbation ``delta`` (same shape as ``action``, ``||delta||_2 <= budget``)."""
        action = np.asarray(action, dtype=np.float64)
        if self.budget == 0:
            return np.zeros_like(action)
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        current = action - self.lr * self.gradient(action, mean, std)
        new = current - self.lr * self.gradient(current, mean, std)
        steps = 0
        while np.any(np.abs(current - new) > self.tolerance) and steps < int(self.max_steps):
            current = new
            new = current - self.lr * self.gradient(current, mean, std)
            steps += 1
        return l2_project(new - action, float(self.budget))

    def attack(self, action: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """The executed action ``clip(action + perturbation, -1, 1)`` for a batch ``(n, dim)`` or one ``(dim,)``."""
        action = np.asarray(action)
        if action.ndim == 1:
            return np.clip(action + self.perturbation(action, mean, std), -1.0, 1.0)
        rows = [self.perturbation(a, m, s) for a, m, s in zip(action, mean, std, strict=True)]
        return np.clip(action + np.stack(rows), -1.0, 1.0).astype(action.dtype)


@dataclass
class BudgetSchedule:
    """CAT's budget curriculum over iterations (official ``MASExperiment``).

    With ``N`` iterations, ``s = int(start_fraction N)`` and ``m = int(round(end_fraction - start_fraction, 2) N)``,
    iteration ``i`` (0-based) gets 0 for ``i < s``, ``np.linspace(0, target, m)[i - s]`` for ``s <= i < s + m``
    and ``target`` afterwards: 0 for the first 20% of iterations, then linear up to the target by 80%.

    Attributes:
        target: the final budget.
        iterations: N, the configured number of iterations.
        start_fraction, end_fraction: where the ramp starts and ends (0.2, 0.8).
        iteration: the current iteration (saved with the checkpoint).
    """

    target: float = 1.0
    iterations: int = 200
    start_fraction: float = 0.2
    end_fraction: float = 0.8
    iteration: int = 0

    def __post_init__(self) -> None:
        if not np.isfinite(self.target) or self.target < 0:
            raise ValueError(f"CAT budget target must be finite and >= 0, got {self.target!r}")
        if not 0 <= self.start_fraction <= self.end_fraction <= 1:
            raise ValueError(
                f"CAT budget fractions need 0 <= start <= end <= 1, got start={self.start_fraction!r} "
                f"end={self.end_fraction!r}"
            )
        if self.iterations < 1:
            raise ValueError(f"CAT budget schedule needs iterations >= 1, got {self.iterations!r}")

    def budget(self, iteration: int | None = None) -> float:
        """The budget of ``iteration`` (default: the current one)."""
        i = self.iteration if iteration is None else int(iteration)
        start = int(self.start_fraction * self.iterations)
        ramp = int(round(self.end_fraction - self.start_fraction, 2) * self.iterations)
        if i < start:
            return 0.0
        if i < start + ramp:
            return float(np.linspace(0.0, self.target, ramp)[i - start])
        return float(self.target)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the schedule."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict`."""
        for key, value in state.items():
            setattr(self, key, type(getattr(self, key))(value))


def gaussian_params(model: QARLSAC, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``model``'s pre-squash Gaussian at a batch of observations ``(n, obs_dim)``."""
    with th.no_grad():
        x = th.as_tensor(np.asarray(obs), dtype=th.float32, device=model.device)
        mean, log_std, _ = model.actor.get_action_dist_params(x)
    return mean.cpu().numpy().astype(np.float64), log_std.exp().cpu().numpy().astype(np.float64)


class CATSAC(QARLSAC):
    """The protagonist of CAT: :class:`QARLSAC` whose executed (and stored) actions pass the MAS attack.

    Only ``_sample_action`` changes: the action SB3 samples (or draws uniformly during warm-up) is attacked at
    the current budget (``self.attack.budget``, set each iteration from :class:`BudgetSchedule` by the trainer)
    before the env step, and the attacked action is what the replay buffer stores.

    Args:
        attack: the MAS attack (its ``budget`` is updated by the curriculum).
        *args, **kwargs: as :class:`QARLSAC`.
    """

    def __init__(self, *args: Any, attack: MASAttack | None = None, **kwargs: Any) -> None:
        self.attack = attack if attack is not None else MASAttack()
        super().__init__(*args, **kwargs)

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        if self.attack.budget == 0:
            return action, buffer_action
        assert self._last_obs is not None
        mean, std = gaussian_params(self, self._last_obs)  # type: ignore[arg-type]
        attacked = self.attack.attack(buffer_action, mean, std)
        return self.policy.unscale_action(attacked), attacked

    def attacked_action(self, obs: np.ndarray, scaled_action: np.ndarray) -> np.ndarray:
        """The MAS-attacked version of ``scaled_action`` at ``obs`` (batches)."""
        mean, std = gaussian_params(self, obs)
        return self.attack.attack(scaled_action, mean, std)


class AttackedPolicy:
    """A protagonist played under an action adversary (``predict`` returns the executed action).

    Args:
        protagonist: the SB3 protagonist.
        perturb: maps (observation batch, normalised action batch) to the executed normalised actions.
    """

    def __init__(self, protagonist: QARLSAC, perturb: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.protagonist = protagonist
        self.perturb = perturb

    def predict(self, observation: np.ndarray, deterministic: bool = False, **kwargs: Any) -> tuple[np.ndarray, None]:
        """The executed action in the env's units (``deterministic`` applies to the protagonist's own sample)."""
        action, _ = self.protagonist.predict(observation, deterministic=deterministic)
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        obs_b = obs[None] if single else obs
        scaled = self.protagonist.policy.scale_action(np.asarray(action).reshape(len(obs_b), -1))
        executed = self.protagonist.policy.unscale_action(self.perturb(obs_b, scaled))
        return (executed[0] if single else executed), None

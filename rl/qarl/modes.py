"""How each ``algo=`` choice switches the one QARL implementation, and the curriculum's gymnasium rescaling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.adversarial.specs import AdversarialEnvSpec
from rl.common.registry import check_choice
from rl.qarl.teacher import SelfPacedGammaTeacher

ALGOS = ("qarl", "rarl", "sac", "fixed_temp", "force_curriculum")
TEMPERATURES = ("curriculum", "fixed", "learned")
FORCES = ("constant", "curriculum")


@dataclass(frozen=True)
class Mode:
    """The resolved switches of one run.

    Attributes:
        adversary: an adversary plays and learns.
        context: what the observation's extra entry holds: ``temperature``, ``force`` or ``none``.
        per_sample_temperature: the adversary's temperature is read from each replay sample.
        teacher: a self-paced teacher samples per-episode temperatures.
    """

    adversary: bool
    context: str
    per_sample_temperature: bool
    teacher: bool


def resolve_mode(algo: Any) -> Mode:
    """Check an ``AlgoConfig`` node and return its :class:`Mode`."""
    check_choice(algo.name, ALGOS, "algo")
    check_choice(algo.temperature, TEMPERATURES, "algo.temperature")
    check_choice(algo.force, FORCES, "algo.force")
    if not algo.adversary:
        return Mode(adversary=False, context="none", per_sample_temperature=False, teacher=False)
    if algo.force == "curriculum":
        if algo.temperature != "learned":
            raise ValueError(
                "algo.force=curriculum needs algo.temperature=learned (the force curriculum's adversary is plain SAC)"
            )
        return Mode(adversary=True, context="force", per_sample_temperature=False, teacher=True)
    if algo.temperature == "learned":
        return Mode(adversary=True, context="none", per_sample_temperature=False, teacher=False)
    return Mode(adversary=True, context="temperature", per_sample_temperature=True, teacher=algo.temperature == "curriculum")


@dataclass(frozen=True)
class Rescaling:
    """The gymnasium rescaling of the dm_control curriculum (specs/qarl.md §3.3).

    Attributes:
        reward_scale: c, a competent policy's per-step reward.
        rate: the Gamma rate ``rate_dmc / c`` (temperatures are c times the dm_control ones).
        threshold: xi on the protagonist's discounted return.
    """

    reward_scale: float
    rate: float
    threshold: float


def rescale(curriculum: Any, spec: AdversarialEnvSpec) -> Rescaling:
    """Apply the rule ``rate = rate_dmc / c`` and ``xi = J_rand + f * (100 c - J_rand)`` (unless xi is given)."""
    c = float(curriculum.reward_scale if curriculum.reward_scale is not None else spec.reward_scale)
    if not np.isfinite(c) or c <= 0:
        raise ValueError(f"curriculum.reward_scale must be positive, got {c!r}")
    rate = float(curriculum.rate_dmc) / c
    if curriculum.threshold is not None:
        return Rescaling(c, rate, float(curriculum.threshold))
    j_rand = curriculum.random_return if curriculum.random_return is not None else spec.random_return
    if j_rand is None or not np.isfinite(j_rand):
        raise ValueError(
            f"no random-policy return is known for {spec.name}; set curriculum.threshold=... or curriculum.random_return=..."
        )
    j_ref = 100.0 * c  # ~ a competent policy's discounted return with gamma = 0.99
    return Rescaling(c, rate, float(j_rand + curriculum.threshold_fraction * (j_ref - j_rand)))


def make_teacher(curriculum: Any, scaling: Rescaling) -> SelfPacedGammaTeacher:
    """Build the self-paced Gamma teacher from a ``CurriculumConfig`` node."""
    return SelfPacedGammaTeacher(
        rate=scaling.rate,
        nu=float(curriculum.nu_init),
        nu_target=float(curriculum.nu_target),
        epsilon=float(curriculum.epsilon),
        threshold=scaling.threshold,
        min_pairs=int(curriculum.min_pairs),
        kl_stop=float(curriculum.kl_stop),
    )


def force_budget(alpha: float, alpha_init: float, alpha_target: float, max_force: float) -> float:
    """The force curriculum's budget ``F = clip((a0 + aT - a) * F_max / a0, 0, F_max)`` (specs/qarl.md §7)."""
    return float(np.clip((alpha_init + alpha_target - alpha) * max_force / alpha_init, 0.0, max_force))

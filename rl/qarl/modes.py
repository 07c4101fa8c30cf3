"""How each ``algo=`` choice switches the one QARL implementation, and the curriculum's gymnasium rescaling."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from envs.adversarial.specs import AdversarialEnvSpec
from envs.common.registry import check_choice
from rl.qarl.baselines.action_adversary import CATSAC, AttackedPolicy, BudgetSchedule, MASAttack, gaussian_params
from rl.qarl.baselines.mixedne import MixedNESAC
from rl.qarl.baselines.temperature_schedules import LinearTemperatureSchedule, SelfPacedPointTeacher
from rl.qarl.sac import QARLSAC
from rl.qarl.teacher import SelfPacedGammaTeacher, TeacherUpdate

ALGOS = (
    "qarl",
    "rarl",
    "sac",
    "fixed_temp",
    "force_curriculum",
    "mixedne_ld",
    "cat",
    "qarl_linear",
    "qarl_point",
    "qarl_single",
    "qarl_homogeneous",
)
TEMPERATURES = ("curriculum", "fixed", "learned", "linear", "point")
FORCES = ("constant", "curriculum")
SAMPLINGS = ("episode", "iteration")
PROTAGONIST_TEMPERATURES = ("learned", "curriculum")
ACTION_ADVERSARIES = ("none", "mixedne_ld", "cat")


@dataclass(frozen=True)
class Mode:
    """The resolved switches of one run.

    Attributes:
        adversary: an adversary plays and learns.
        context: what the observation's extra entry holds: ``temperature``, ``force`` or ``none``.
        per_sample_temperature: the adversary's temperature is read from each replay sample.
        teacher: a teacher (self-paced, or the linear schedule) gives the episodes' temperatures.
        schedule: which teacher: ``gamma`` (QARL, force curriculum), ``linear`` or ``point`` (ablations).
        single_temperature: one temperature per iteration for all its episodes (``qarl_single``).
        homogeneous: the protagonist, too, reads its temperature per replay sample (``qarl_homogeneous``).
        action_adversary: ``none``, ``mixedne_ld`` or ``cat`` (action-space adversaries, no force adversary).
    """

    adversary: bool
    context: str
    per_sample_temperature: bool
    teacher: bool
    schedule: str = "gamma"
    single_temperature: bool = False
    homogeneous: bool = False
    action_adversary: str = "none"


def resolve_mode(algo: Any) -> Mode:
    """Check an ``AlgoConfig`` node and return its :class:`Mode`."""
    check_choice(algo.name, ALGOS, "algo")
    check_choice(algo.temperature, TEMPERATURES, "algo.temperature")
    check_choice(algo.force, FORCES, "algo.force")
    sampling = check_choice(algo.get("temperature_sampling", "episode"), SAMPLINGS, "algo.temperature_sampling")
    protagonist = check_choice(
        algo.get("protagonist_temperature", "learned"), PROTAGONIST_TEMPERATURES, "algo.protagonist_temperature"
    )
    action_adversary = check_choice(algo.get("action_adversary", "none"), ACTION_ADVERSARIES, "algo.action_adversary")
    mode = _resolve_switches(algo)
    if action_adversary != "none":
        if algo.adversary:
            raise ValueError(f"algo.action_adversary={action_adversary} needs algo.adversary=false (no force adversary)")
        _check_action_adversary(algo, action_adversary)
    if sampling == "iteration" and not mode.teacher:
        raise ValueError("algo.temperature_sampling=iteration needs a temperature teacher (algo.temperature=curriculum)")
    if protagonist == "curriculum" and not mode.per_sample_temperature:
        raise ValueError(
            "algo.protagonist_temperature=curriculum needs an alpha in the observation "
            f"(algo.temperature=curriculum, fixed, linear or point with algo.adversary=true), got {algo.temperature}"
        )
    if algo.temperature == "linear":
        _check_fractions("algo.linear", algo.linear.start_fraction, algo.linear.end_fraction)
    if algo.temperature == "point":
        for key in ("target_dmc", "lower_bound_dmc", "max_mse_dmc", "stop_mse_dmc"):
            _check_positive(f"algo.point.{key}", algo.point[key])
    return Mode(
        adversary=mode.adversary,
        context=mode.context,
        per_sample_temperature=mode.per_sample_temperature,
        teacher=mode.teacher,
        schedule=mode.schedule,
        single_temperature=sampling == "iteration",
        homogeneous=protagonist == "curriculum",
        action_adversary=action_adversary,
    )


def _resolve_switches(algo: Any) -> Mode:
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
    schedule = {"curriculum": "gamma", "linear": "linear", "point": "point"}.get(algo.temperature, "gamma")
    return Mode(
        adversary=True,
        context="temperature",
        per_sample_temperature=True,
        teacher=algo.temperature != "fixed",
        schedule=schedule,
    )


def _check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else 'positive'} and finite, got {value!r}")


def _check_fractions(name: str, start: Any, end: Any) -> None:
    if not 0 <= float(start) <= float(end) <= 1:
        raise ValueError(f"{name} needs 0 <= start_fraction <= end_fraction <= 1, got {start!r} and {end!r}")


def _check_action_adversary(algo: Any, kind: str) -> None:
    if kind == "mixedne_ld":
        m = algo.mixedne
        if not 0 <= float(m.delta) <= 1:
            raise ValueError(f"algo.mixedne.delta must be in [0, 1], got {m.delta!r}")
        for key in ("sgld_lr", "adversary_ent_coef_init"):
            _check_positive(f"algo.mixedne.{key}", m[key])
        _check_positive("algo.mixedne.sgld_noise", m.sgld_noise, allow_zero=True)
        for key in ("sgld_alpha", "noise_decay"):
            if not 0 <= float(m[key]) < 1:
                raise ValueError(f"algo.mixedne.{key} must be in [0, 1), got {m[key]!r}")
    else:
        c = algo.cat
        for key in ("budget", "lr", "tolerance"):
            _check_positive(f"algo.cat.{key}", c[key], allow_zero=True)
        if int(c.max_steps) < 0:
            raise ValueError(f"algo.cat.max_steps must be >= 0, got {c.max_steps!r}")
        _check_fractions("algo.cat", c.start_fraction, c.end_fraction)


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
    """Apply the rule ``rate = rate_dmc / c`` and ``xi = J_rand + f * (100 c - J_rand)`` (unless xi is given).

    xi given: ``curriculum.threshold``, else the env's official one (``spec.threshold``: dm_control tasks, c = 1).
    """
    c = float(curriculum.reward_scale if curriculum.reward_scale is not None else spec.reward_scale)
    if not np.isfinite(c) or c <= 0:
        raise ValueError(f"curriculum.reward_scale must be positive, got {c!r}")
    rate = float(curriculum.rate_dmc) / c
    if curriculum.threshold is not None:
        return Rescaling(c, rate, float(curriculum.threshold))
    if spec.threshold is not None:
        return Rescaling(c, rate, float(spec.threshold))
    j_rand = curriculum.random_return if curriculum.random_return is not None else spec.random_return
    if j_rand is None or not np.isfinite(j_rand):
        raise ValueError(
            f"no random-policy return is known for {spec.name}; set curriculum.threshold=... or curriculum.random_return=..."
        )
    j_ref = 100.0 * c  # ~ a competent policy's discounted return with gamma = 0.99
    return Rescaling(c, rate, float(j_rand + curriculum.threshold_fraction * (j_ref - j_rand)))


class Teacher(Protocol):
    """What the trainer needs from a temperature teacher (Gamma, point or linear schedule)."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Temperatures of the next ``n`` episodes."""
        ...

    def add(self, alphas: Any, returns: Any) -> None:
        """Store one iteration's (alpha, discounted return) pairs."""
        ...

    @property
    def ready(self) -> bool:
        """Whether an update is possible."""
        ...

    def update(self) -> TeacherUpdate:
        """Update on the stored pairs."""
        ...

    def summary(self) -> dict[str, float]:
        """Scalars to log."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        ...


def make_teacher(
    curriculum: Any, scaling: Rescaling, algo: Any = None, iterations: int | None = None
) -> SelfPacedGammaTeacher | LinearTemperatureSchedule | SelfPacedPointTeacher:
    """Build the run's teacher: the self-paced Gamma teacher, or the ``linear``/``point`` ablation's schedule.

    Args:
        curriculum: the ``CurriculumConfig`` node.
        scaling: the gymnasium rescaling (temperatures are ``c = rate_dmc / rate`` times the dm_control ones).
        algo: the ``AlgoConfig`` node (``None``: the Gamma teacher).
        iterations: the configured number of iterations (for ``linear``).
    """
    temperature = algo.temperature if algo is not None else "curriculum"
    alpha_init = float(curriculum.nu_init) / scaling.rate
    alpha_target = float(curriculum.nu_target) / scaling.rate
    if temperature == "linear":
        assert iterations is not None
        return LinearTemperatureSchedule(
            alpha_init=alpha_init,
            alpha_target=alpha_target,
            iterations=int(iterations),
            start_fraction=float(algo.linear.start_fraction),
            end_fraction=float(algo.linear.end_fraction),
            threshold=scaling.threshold,
        )
    if temperature == "point":
        c = float(curriculum.rate_dmc) / scaling.rate
        point = algo.point
        return SelfPacedPointTeacher(
            alpha=alpha_init,
            alpha_target=float(point.target_dmc) * c,
            max_mse=float(point.max_mse_dmc) * c * c,
            threshold=scaling.threshold,
            lower_bound=float(point.lower_bound_dmc) * c,
            stop_mse=float(point.stop_mse_dmc) * c * c,
            min_pairs=int(curriculum.min_pairs),
        )
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


def teacher_from_state(state: dict[str, Any]) -> SelfPacedGammaTeacher | LinearTemperatureSchedule | SelfPacedPointTeacher:
    """Rebuild a teacher from its ``state_dict`` (the ablations' states carry a ``kind``)."""
    kind = state.get("kind", "gamma")
    if kind == "linear":
        return LinearTemperatureSchedule.from_state_dict(state)
    if kind == "point":
        return SelfPacedPointTeacher.from_state_dict(state)
    return SelfPacedGammaTeacher.from_state_dict(state)


def protagonist_class(mode: Mode) -> type[QARLSAC]:
    """The SB3 class of the protagonist (MixedNE-LD and CAT have their own; load checkpoints with it)."""
    classes: dict[str, type[QARLSAC]] = {"mixedne_ld": MixedNESAC, "cat": CATSAC}
    return classes.get(mode.action_adversary, QARLSAC)


def protagonist_kwargs(algo: Any, mode: Mode) -> dict[str, Any]:
    """Constructor arguments of :func:`protagonist_class` beyond :class:`QARLSAC`'s."""
    if mode.action_adversary == "mixedne_ld":
        m = algo.mixedne
        return {
            "delta": float(m.delta),
            "sgld_lr": float(m.sgld_lr),
            "sgld_noise": float(m.sgld_noise),
            "sgld_alpha": float(m.sgld_alpha),
            "noise_decay": float(m.noise_decay),
            "adversary_ent_coef_init": float(m.adversary_ent_coef_init),
        }
    if mode.action_adversary == "cat":
        c = algo.cat
        return {"attack": MASAttack(budget=0.0, lr=float(c.lr), max_steps=int(c.max_steps), tolerance=float(c.tolerance))}
    return {}


def budget_schedule(algo: Any, iterations: int) -> BudgetSchedule:
    """CAT's budget curriculum over the configured ``iterations``."""
    c = algo.cat
    return BudgetSchedule(
        target=float(c.budget),
        iterations=int(iterations),
        start_fraction=float(c.start_fraction),
        end_fraction=float(c.end_fraction),
    )


def attacked_protagonist(protagonist: QARLSAC, algo: Any) -> AttackedPolicy | None:
    """The protagonist under its action adversary, for the evaluation "against the adversary" (else ``None``).

    MixedNE-LD plays against its co-trained action adversary at the training ``delta`` (the official final
    evaluation, ``evaluate_vs_internal_adversary``); CAT against the MAS attack at the *target* budget (the
    official ``train_worst_adversary`` builds exactly that attack). No force adversary plays in either.
    """
    if isinstance(protagonist, MixedNESAC):
        return AttackedPolicy(protagonist, protagonist.mixed_action)
    if algo.get("action_adversary", "none") == "cat":
        c = algo.cat
        attack = MASAttack(budget=float(c.budget), lr=float(c.lr), max_steps=int(c.max_steps), tolerance=float(c.tolerance))
        return AttackedPolicy(protagonist, lambda obs, a: attack.attack(a, *gaussian_params(protagonist, obs)))
    return None

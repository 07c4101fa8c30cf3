"""Per-environment defaults of the two-player MuJoCo games: adversary bodies, axes, force bounds.

The defaults follow ``specs/qarl.md`` §6 ("recommended v5 setup"): forces of about 1-3% of the
robot's weight on the bodies RARL and QARL attack. Planar tasks (Hopper, HalfCheetah, Walker2d,
InvertedPendulum: the x-z plane; Swimmer: the x-y plane) only accept the axes that move them; a force
along the dead axis does nothing and is never offered as an action dimension.

``reward_scale`` (c) and ``random_return`` (J_rand, discounted with gamma=0.99) are properties of the
env's reward that QARL uses to rescale its temperature range and performance threshold (qarl.md §3.3).
The robustness grid ranges are factors of the nominal values (qarl.md §8).
"""

from __future__ import annotations

from dataclasses import dataclass

from rl.common.registry import lookup

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class AdversarialEnvSpec:
    """Defaults of one two-player MuJoCo game.

    Attributes:
        name: the short name users type (``env=Hopper``).
        gym_id: the gymnasium MuJoCo task wrapped.
        bodies: bodies the adversary pushes, by default.
        axes: world axes of the force on each body, by default.
        live_axes: axes along which a force moves the robot at all (planar tasks drop one).
        force_bound: default force bound in newtons per (body, axis).
        mass_body: the body whose mass the robustness grid scales ("torso" for locomotion).
        mass_factors: robustness-grid range of the mass factor (low, high).
        friction_factors: robustness-grid range of the friction factor (low, high).
        reward_scale: c, a competent policy's per-step reward (QARL's temperature scale).
        random_return: J_rand, a uniform random policy's discounted return (gamma=0.99).
    """

    name: str
    gym_id: str
    bodies: tuple[str, ...]
    axes: tuple[str, ...]
    live_axes: tuple[str, ...]
    force_bound: float
    mass_body: str
    mass_factors: tuple[float, float]
    friction_factors: tuple[float, float]
    reward_scale: float
    random_return: float

    @property
    def env_id(self) -> str:
        """The registered id, e.g. ``rldyn/AdversarialHopper-v5``."""
        version = self.gym_id.rsplit("-", 1)[1]
        return f"rldyn/Adversarial{self.name}-{version}"


_XZ = ("x", "z")
_XYZ = ("x", "y", "z")

ADVERSARIAL_ENVS: dict[str, AdversarialEnvSpec] = {
    spec.name: spec
    for spec in (
        AdversarialEnvSpec("Hopper", "Hopper-v5", ("foot",), _XZ, _XZ, 3.0, "torso", (0.21, 1.86), (0.1, 1.9), 3.0, 18.9),
        AdversarialEnvSpec(
            "HalfCheetah",
            "HalfCheetah-v5",
            ("torso", "bfoot", "ffoot"),
            _XZ,
            _XZ,
            3.0,
            "torso",
            (0.48, 1.44),
            (0.25, 4.75),
            10.0,
            -26.5,
        ),
        AdversarialEnvSpec(
            "Walker2d", "Walker2d-v5", ("foot", "foot_left"), _XZ, _XZ, 3.0, "torso", (0.47, 1.41), (0.14, 1.86), 4.5, -0.3
        ),
        # Ant and InvertedPendulum: RRLS's absolute ranges turned into factors of the nominal masses
        # (Ant torso 0.327 kg: 0.1-3 kg; InvertedPendulum pole 5.02 kg: 1-31 kg).
        AdversarialEnvSpec("Ant", "Ant-v5", ("torso",), _XYZ, _XYZ, 0.3, "torso", (0.31, 9.17), (0.5, 1.5), 5.0, -18.0),
        AdversarialEnvSpec(
            "InvertedPendulum", "InvertedPendulum-v5", ("pole",), ("x",), _XZ, 3.0, "pole", (0.2, 6.18), (0.5, 1.5), 1.0, 4.3
        ),
        # Humanoid and Swimmer are not in the paper; bounds chosen at ~2% of weight (Humanoid) and by
        # measured effect (Swimmer), grid ranges from RARL (factors 0.5-1.5). J_rand not measured (nan).
        AdversarialEnvSpec(
            "Humanoid", "Humanoid-v5", ("torso",), _XYZ, _XYZ, 8.0, "torso", (0.5, 1.5), (0.5, 1.5), 5.0, float("nan")
        ),
        AdversarialEnvSpec(
            "Swimmer",
            "Swimmer-v5",
            ("torso",),
            ("x", "y"),
            ("x", "y"),
            3.0,
            "torso",
            (0.5, 1.5),
            (0.5, 1.5),
            0.3,
            float("nan"),
        ),
    )
}


def get_env_spec(name: str) -> AdversarialEnvSpec:
    """Return the spec of ``name`` (``"Hopper"``), raising a ``ValueError`` that lists the valid names."""
    return lookup(ADVERSARIAL_ENVS, name, "adversarial env")

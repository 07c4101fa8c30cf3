"""Per-environment defaults of the two-player MuJoCo games: adversary bodies, axes, force bounds.

The defaults follow ``specs/qarl.md`` §6 ("recommended v5 setup"): forces of about 1-3% of the
robot's weight on the bodies RARL and QARL attack. Planar tasks (Hopper, HalfCheetah, Walker2d,
InvertedPendulum: the x-z plane; Swimmer: the x-y plane) only accept the axes that move them; a force
along the dead axis does nothing and is never offered as an action dimension.

``reward_scale`` (c) and ``random_return`` (J_rand, discounted with gamma=0.99) are properties of the
env's reward that QARL uses to rescale its temperature range and performance threshold (qarl.md §3.3).
Measured with ``scripts/calibrate_scales.py`` (commands, budgets and the rule below in benchmarks/README.md). A
measured c replaces the spec's estimate when its SAC protagonist lives at least 90% of the 500-step horizon
(falls would lower it); otherwise the estimate stays if spec §3.3's rationality check passes with it:

- InvertedPendulum c = 1.000, measured (500 of 500 steps); J_rand 4.9 ± 0.8 measured, the spec's 4.3 kept.
- Hopper c = 3.36, measured (210k steps, 460 of 500 steps; the spec guessed 3).
- Walker2d c = 3.06, measured (260k steps, 500 of 500 steps, return 1529; 2.90 at 200k; the spec guessed 4.5; the
  rationality check passes with both).
- HalfCheetah c = 10, the spec's estimate: a 300k-step protagonist gives 7.30 and is still improving (4.93, 6.46
  at 100k, 200k); the check passes with 10.
- Swimmer c = 0.3, our estimate, kept by the check: SAC at gamma = 0.99 plateaus at 0.089 per step, but with that
  value the p0-mean adversary loses its spread and lowers the return by 19%; with 0.3 it keeps its spread and
  lowers it by 2%, while the mu-mean adversary lowers it by 38%.
- Ant c = 5 and Humanoid c = 5, the spec's estimates, unverified: Ant's protagonist gives 2.14 at 300k steps and is
  still improving, and its check (200k protagonist) is inconclusive (0.3 N on the torso does not hurt it); Humanoid
  needs about 1M steps.

J_rand: Swimmer 0.28 ± 0.63 and Humanoid 94.2 ± 3.9 (20 episodes) are ours; the others are the spec's measurements,
which ours agree with within one standard error.
The robustness grid ranges are factors of the nominal values (qarl.md §8).

Two families share this registry and the one two-player core (:class:`envs.adversarial.env.AdversarialMujocoEnv`):
``gymnasium`` (the MuJoCo v5 tasks above) and ``dm_control`` (the paper's own two-player DeepMind Control tasks,
:mod:`envs.adversarial.dmc`, whose facts come from the official ``*_two_players.py`` files: bodies, force axes and
bounds, rewards in [0, 1] so QARL needs no rescaling (c = 1), the official threshold xi, and the official absolute
robustness ranges, ``grid_absolute=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.adversarial.dmc_specs import DMC_HORIZON, DMC_TABLE
from envs.common.registry import lookup

AXES = ("x", "y", "z")
TORQUE_AXES = ("rx", "ry", "rz")
"""Torques about the world axes (columns 3-5 of ``xfrc_applied``); only dm_control's quadruped uses one (``ry``)."""
FAMILIES = ("gymnasium", "dm_control")


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
        family: ``gymnasium`` (``gym_id`` is the wrapped task) or ``dm_control`` (``gym_id``:
            ``dm_control/<domain>-<task>``).
        threshold: the official curriculum threshold xi (dm_control tasks); ``None``: derived from c and J_rand.
        horizon: default ``max_episode_steps`` (``None``: the gymnasium task's own limit).
        grid_absolute: the robustness ranges (``mass_factors``, ``friction_factors``) are absolute values (kg and
            friction coefficients, as the official code sets them) rather than factors of the nominal model.
        second_body: the second robustness metric is the mass of this body (official cartpole, pendulum, acrobot,
            ball_in_cup, reacher); ``None``: the sliding friction of every geom.
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
    family: str = "gymnasium"
    threshold: float | None = None
    horizon: int | None = None
    grid_absolute: bool = False
    second_body: str | None = None

    @property
    def env_id(self) -> str:
        """The registered id, e.g. ``rldyn/AdversarialHopper-v5`` or ``rldyn/AdversarialDMCWalkerWalk-v1``."""
        if self.family == "dm_control":
            domain, task = self.gym_id.split("/", 1)[1].split("-", 1)
            camel = "".join(part.capitalize() for part in f"{domain}_{task}".split("_"))
            return f"rldyn/AdversarialDMC{camel}-v1"
        version = self.gym_id.rsplit("-", 1)[1]
        return f"rldyn/Adversarial{self.name}-{version}"

    @property
    def grid_labels(self) -> tuple[str, str]:
        """What the two robustness axes set, e.g. ``("torso mass (kg)", "friction (all geoms)")``."""
        if not self.grid_absolute:
            return f"{self.mass_body} mass factor", "friction factor (all geoms)"
        second = f"{self.second_body} mass (kg)" if self.second_body else "friction (all geoms)"
        return f"{self.mass_body} mass (kg)", second

    def grid_options(self, first: float, second: float, only: str | None = None) -> dict[str, Any]:
        """Reset options of one robustness-grid cell: ``first`` on the mass axis, ``second`` on the other.

        Factors (gymnasium family): scale ``mass_body``'s mass and every geom's sliding friction; ``{}`` at (1, 1).
        Absolute values (dm_control family, as the official ``change_first_metric`` / ``change_second_metric``):
        set ``mass_body``'s mass, and either every geom's sliding friction or ``second_body``'s mass.
        ``only="mass"`` or ``"friction"`` (a 1-D sweep) sets that axis alone and leaves the other nominal.
        """
        if not self.grid_absolute:
            first, second = (first, 1.0) if only == "mass" else (1.0, second) if only == "friction" else (first, second)
            if first == 1.0 and second == 1.0:
                return {}
            return {"mass_scale": float(first), "friction_scale": float(second), "mass_bodies": [self.mass_body]}
        mass: dict[str, float] = {} if only == "friction" else {self.mass_body: float(first)}
        options: dict[str, Any] = {}
        if only != "mass":
            if self.second_body is not None:
                mass[self.second_body] = float(second)
            else:
                options["friction"] = float(second)
        if mass:
            options["mass"] = mass
        return options


_XZ = ("x", "z")
_XYZ = ("x", "y", "z")

ADVERSARIAL_ENVS: dict[str, AdversarialEnvSpec] = {
    spec.name: spec
    for spec in (
        AdversarialEnvSpec("Hopper", "Hopper-v5", ("foot",), _XZ, _XZ, 3.0, "torso", (0.21, 1.86), (0.1, 1.9), 3.36, 18.9),
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
            "Walker2d", "Walker2d-v5", ("foot", "foot_left"), _XZ, _XZ, 3.0, "torso", (0.47, 1.41), (0.14, 1.86), 3.06, -0.3
        ),
        # Ant and InvertedPendulum: RRLS's absolute ranges turned into factors of the nominal masses
        # (Ant torso 0.327 kg: 0.1-3 kg; InvertedPendulum pole 5.02 kg: 1-31 kg).
        AdversarialEnvSpec("Ant", "Ant-v5", ("torso",), _XYZ, _XYZ, 0.3, "torso", (0.31, 9.17), (0.5, 1.5), 5.0, -18.0),
        AdversarialEnvSpec(
            "InvertedPendulum", "InvertedPendulum-v5", ("pole",), ("x",), _XZ, 3.0, "pole", (0.2, 6.18), (0.5, 1.5), 1.0, 4.3
        ),
        # Humanoid and Swimmer are not in the paper; bounds chosen at ~2% of weight (Humanoid) and by
        # measured effect (Swimmer), grid ranges from RARL (factors 0.5-1.5). J_rand measured (calibrate_scales).
        AdversarialEnvSpec("Humanoid", "Humanoid-v5", ("torso",), _XYZ, _XYZ, 8.0, "torso", (0.5, 1.5), (0.5, 1.5), 5.0, 94.2),
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
            0.28,
        ),
    )
}


def _dm_control_spec(domain: str, task: str) -> AdversarialEnvSpec:
    bodies, axes, live, bound, body1, range1, body2, range2, xi = DMC_TABLE[domain, task]
    return AdversarialEnvSpec(
        name=f"dmc_{domain}_{task}",
        gym_id=f"dm_control/{domain}-{task}",
        bodies=bodies,
        axes=axes,
        live_axes=live,
        force_bound=float(bound),
        mass_body=body1,
        mass_factors=(float(range1[0]), float(range1[1])),
        friction_factors=(float(range2[0]), float(range2[1])),
        reward_scale=1.0,
        random_return=float("nan"),
        family="dm_control",
        threshold=float(xi),
        horizon=DMC_HORIZON,
        grid_absolute=True,
        second_body=body2,
    )


ADVERSARIAL_ENVS.update({f"dmc_{d}_{t}": _dm_control_spec(d, t) for d, t in DMC_TABLE})


def get_env_spec(name: str) -> AdversarialEnvSpec:
    """Return the spec of ``name`` (``"Hopper"``, ``"dmc_walker_walk"``), raising a ``ValueError`` listing valid names."""
    return lookup(ADVERSARIAL_ENVS, name, "adversarial env")


def family_envs(family: str) -> list[str]:
    """Names of the registered envs of one family (``gymnasium`` or ``dm_control``)."""
    return [name for name, spec in ADVERSARIAL_ENVS.items() if spec.family == family]

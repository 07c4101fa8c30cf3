"""The two-player zero-sum MuJoCo game: a protagonist controls the robot, an adversary pushes it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.adversarial.dmc import DMControlTask
from envs.adversarial.specs import AXES, TORQUE_AXES, AdversarialEnvSpec, get_env_spec
from envs.common.registry import unknown_choice_error

Scale = float | Mapping[str, float]

PERTURBATION_KEYS = ("mass_scale", "friction_scale", "mass_bodies", "friction_bodies", "mass", "friction")


def check_action(action: Any, space: spaces.Box, who: str) -> np.ndarray:
    """Return ``action`` as a float array of ``space``'s shape, or raise a ``ValueError`` naming both shapes.

    Float arrays pass through as they are (no copy: a float32 action reaches the task exactly as in the plain
    gymnasium env); anything else is converted to float64.
    """
    arr = action if isinstance(action, np.ndarray) and action.dtype.kind == "f" else np.asarray(action, dtype=np.float64)
    if arr.shape != space.shape:
        raise ValueError(
            f"{who} action has shape {arr.shape}; expected {space.shape} (bounds [{space.low.min()}, {space.high.max()}])"
        )
    return arr


class AdversarialMujocoEnv(gym.Env[np.ndarray, dict[str, np.ndarray]]):
    """Two-player zero-sum game over a MuJoCo task (RARL, arXiv:1703.02702; QARL, arXiv:2311.01642).

    One core, two backends chosen by the env's family: a gymnasium MuJoCo v5 task (``MujocoEnv``), or one of
    the paper's two-player DeepMind Control tasks (:class:`envs.adversarial.dmc.DMControlTask`). Both expose the
    raw ``MjModel``/``MjData``, ``reset(seed=...)`` and ``step(action)``; everything below is shared.

    The protagonist drives the robot's actuators exactly as in the wrapped task. The adversary applies
    external forces (``MjData.xfrc_applied``) to chosen bodies; its normalized action in [-1, 1] is scaled
    by ``force_bound`` newtons and clipped to the current force limit (the force-curriculum baseline lowers
    it with :meth:`set_force_limit`). Forces are rewritten every step (``xfrc_applied`` persists across
    MuJoCo steps) and zeroed on reset.

    Use :class:`envs.adversarial.views.ProtagonistView` or :class:`~envs.adversarial.views.AdversaryView` to
    train one side with any stable-baselines3 algorithm while the other side is a fixed policy.

    ## Action Space
    ``Dict(protagonist=Box(wrapped task's action space), adversary=Box(-1, 1, (n_bodies * n_axes,)))``.
    :meth:`step` also takes the two actions as two arguments, ``step(protagonist_action, adversary_action)``.
    The adversary action is ordered body-major: ``[body0_axis0, body0_axis1, body1_axis0, ...]``.

    ## Observation Space
    The wrapped task's observation, unchanged (dm_control: the task's ``OrderedDict`` flattened in its key order,
    :attr:`envs.adversarial.dmc.DMControlTask.obs_keys`).

    ## Rewards
    The protagonist receives the wrapped task's reward ``r``; the adversary receives ``-r`` (zero-sum), reported
    as ``info["reward_adversary"]``. The task's own reward terms (``info["reward_forward"]``, ...) pass through.

    ## Starting State
    The wrapped task's, with zero external force and the nominal model unless ``reset`` options perturb it.

    ## Episode End
    Termination as in the wrapped task; truncation after ``max_episode_steps`` steps (gymnasium: the task's
    default, 1000; dm_control: 500, the paper's horizon, with dm_control's own time limit disabled).

    ## Arguments
    - ``env``: short name (``"Hopper"``, see :data:`envs.adversarial.specs.ADVERSARIAL_ENVS`).
    - ``bodies``: bodies the adversary pushes (default: per-env, see the README table).
    - ``axes``: world axes of the force per body (``x``, ``y``, ``z``; torques ``rx``, ``ry``, ``rz``); planar
      tasks only accept their live axes.
    - ``force_bound``: newtons per (body, axis) for an action of magnitude 1.
    - ``max_episode_steps``: truncation horizon.
    - ``render_mode`` and any other keyword: passed to the wrapped gymnasium task (reward weights, ...).

    ## Dynamics perturbations
    ``reset(options={"mass_scale": s, "friction_scale": f})`` scales body masses (and inertias, so the
    bodies keep their shape) and sliding friction of the whole model, or of ``mass_bodies`` /
    ``friction_bodies`` only; a scale may also be a ``{body: factor}`` mapping. Absolute values, as the official
    dm_control code sets its robustness metrics: ``mass={body: kg}`` sets those bodies' masses (inertias
    untouched, as there) and ``friction=v`` (or ``{body: v}``) the sliding friction of every geom (or of the
    body's geoms); they apply after the scales. Every reset first restores
    the nominal model exactly, so a reset without options plays the nominal task. :meth:`set_dynamics`
    applies a perturbation without resetting; :meth:`restore_nominal` undoes it.

    ## Info
    Everything the wrapped task reports, plus ``reward_adversary`` and ``adversary_force`` (the applied
    world-frame forces, shape ``(n_bodies, 3)``).

    ## Version History
    - v5: first version, over gymnasium's MuJoCo v5 tasks.
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array", "depth_array"]}  # noqa: RUF012

    def __init__(
        self,
        env: str = "Hopper",
        bodies: Sequence[str] | None = None,
        axes: Sequence[str] | None = None,
        force_bound: float | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **task_kwargs: Any,
    ) -> None:
        self.spec_defaults: AdversarialEnvSpec = get_env_spec(env)
        # the backend: gymnasium's ``MujocoEnv`` or a ``DMControlTask``; ``Any`` so family-specific attributes
        # (``init_qpos``, ``obs_keys``, ...) stay reachable without casts
        self.task: Any
        if self.spec_defaults.family == "dm_control":
            self.task = DMControlTask(self.spec_defaults.name, render_mode=render_mode, **task_kwargs)
        else:
            task = gym.make(self.spec_defaults.gym_id, render_mode=render_mode, disable_env_checker=True, **task_kwargs)
            self.task = task.unwrapped
        self.render_mode = render_mode
        self.metadata = {**self.task.metadata}
        self.model = self.task.model
        self.data = self.task.data

        self.bodies = tuple(bodies) if bodies is not None else self.spec_defaults.bodies
        self.axes = tuple(axes) if axes is not None else self.spec_defaults.axes
        self._body_ids = np.array([self.body_id(b) for b in self.bodies], dtype=np.intp)
        self._axis_ids = np.array([self._axis_index(a) for a in self.axes], dtype=np.intp)
        if len(set(self.bodies)) != len(self.bodies) or len(set(self.axes)) != len(self.axes):
            raise ValueError(f"bodies {self.bodies} and axes {self.axes} must not repeat")
        defaults = (self.spec_defaults.bodies, self.spec_defaults.axes)
        if getattr(self.task, "wind", None) is not None and (self.bodies, self.axes) != defaults:
            raise ValueError(
                f"{self.spec_defaults.name}'s adversary is the wind (one action, the total wind along +y): bodies and "
                f"axes cannot be chosen; got bodies={list(self.bodies)}, axes={list(self.axes)}; valid: "
                f"bodies={list(defaults[0])}, axes={list(defaults[1])} (the defaults)"
            )
        self.force_bound = float(force_bound if force_bound is not None else self.spec_defaults.force_bound)
        if not np.isfinite(self.force_bound) or self.force_bound < 0:
            raise ValueError(f"force_bound must be a finite non-negative number of newtons, got {force_bound!r}")
        self.force_limit = self.force_bound
        horizon = max_episode_steps if max_episode_steps is not None else self.spec_defaults.horizon
        if horizon is None:
            horizon = gym.spec(self.spec_defaults.gym_id).max_episode_steps
        if horizon is None or int(horizon) < 1:
            raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps!r}")
        self.max_episode_steps = int(horizon)

        self.protagonist_action_space: spaces.Box = self.task.action_space
        n_adv = len(self.bodies) * len(self.axes)
        self.adversary_action_space = spaces.Box(-1.0, 1.0, shape=(n_adv,), dtype=np.float32)
        pair: dict[str, spaces.Space[Any]] = {
            "protagonist": self.protagonist_action_space,
            "adversary": self.adversary_action_space,
        }
        self.action_space = spaces.Dict(pair)  # type: ignore[assignment]
        self.observation_space = self.task.observation_space

        self._nominal_mass = self.model.body_mass.copy()
        self._nominal_inertia = self.model.body_inertia.copy()
        self._nominal_friction = self.model.geom_friction.copy()
        # the applied wrench per body (force xyz, torque xyz); ``_force`` views its force columns
        self._wrench = np.zeros((len(self.bodies), 6))
        self._force = self._wrench[:, :3]
        self._has_torque = bool((self._axis_ids >= 3).any())
        # flat indices of the adversary's action entries (body-major) in ``_wrench`` and in ``xfrc_applied``,
        # and preallocated operands: NumPy ufuncs on tiny arrays cost less with array operands and ``out=``
        self._force_index = (np.arange(len(self.bodies))[:, None] * 6 + self._axis_ids[None, :]).ravel()
        self._xfrc = self.data.xfrc_applied  # a view of MjData's buffer (fetching the attribute builds a new view)
        self._xfrc_index = (self._body_ids[:, None] * self._xfrc.shape[1] + self._axis_ids[None, :]).ravel()
        self._unit_low, self._unit_high = -np.ones(n_adv), np.ones(n_adv)
        self._bound_vec = np.full(n_adv, self.force_bound)
        self._force_buf = np.zeros(n_adv)
        self._elapsed = 0

    # ------------------------------------------------------------------ names
    @property
    def body_names(self) -> tuple[str, ...]:
        """Names of the model's bodies that can be pushed or perturbed (the world and unnamed bodies excluded)."""
        names = (self.model.body(i).name for i in range(1, self.model.nbody))
        return tuple(n for n in names if n)

    def body_id(self, name: str) -> int:
        """Return the MuJoCo id of body ``name``, or raise a ``ValueError`` listing the valid bodies."""
        if name not in self.body_names:
            raise unknown_choice_error(f"body of {self.spec_defaults.name}", name, self.body_names)
        return int(self.model.body(name).id)

    def _axis_index(self, axis: str) -> int:
        live = self.spec_defaults.live_axes
        if axis not in live:
            dead = " (a force along it does nothing in this planar task)" if axis in AXES + TORQUE_AXES else ""
            raise ValueError(f"axis {axis!r} is not valid for {self.spec_defaults.name}{dead}; valid axes: {list(live)}")
        return (AXES + TORQUE_AXES).index(axis)

    # ------------------------------------------------------------------ forces
    def set_force_limit(self, limit: float) -> None:
        """Clip adversary forces to ``±limit`` newtons (at most ``force_bound``); used by the force curriculum."""
        if not np.isfinite(limit) or limit < 0:
            raise ValueError(f"force limit must be a finite non-negative number, got {limit!r}")
        self.force_limit = min(float(limit), self.force_bound)

    def _apply_force(self, adversary_action: np.ndarray) -> np.ndarray:
        # clip(clip(a, -1, 1) * bound, -limit, limit), written with raw ufuncs and flat ``put``: np.clip and
        # fancy-index assignment cost more than the rest of the two-player step (benchmarks/bench_env_overhead.py).
        forces = self._force_buf
        np.maximum(adversary_action, self._unit_low, out=forces)
        np.minimum(forces, self._unit_high, out=forces)
        np.multiply(forces, self._bound_vec, out=forces)
        if self.force_limit < self.force_bound:
            np.minimum(np.maximum(forces, -self.force_limit, out=forces), self.force_limit, out=forces)
        self._wrench.put(self._force_index, forces)
        self._xfrc.put(self._xfrc_index, forces)
        return self._wrench

    # ------------------------------------------------------------------ dynamics
    def _scale_vector(self, scale: Scale, bodies: Iterable[str] | None, what: str) -> np.ndarray:
        """Per-body factors from a scalar (for ``bodies`` or all) or a ``{body: factor}`` mapping."""
        factors: np.ndarray = np.ones(self.model.nbody)
        if isinstance(scale, Mapping):
            if bodies is not None:
                raise ValueError(f"give {what} either as a mapping or with a body list, not both")
            items: list[tuple[str, float]] = [(str(k), float(v)) for k, v in scale.items()]
        else:
            names = list(bodies) if bodies is not None else None
            if names is None:
                items = [("", float(scale))]
            else:
                items = [(b, float(scale)) for b in names]
        for body, factor in items:
            if not np.isfinite(factor) or factor <= 0:
                raise ValueError(f"{what} must be positive and finite, got {factor!r}")
            if body:
                factors[self.body_id(body)] = factor
            else:
                factors[:] = factor
        return factors

    def _absolute(self, value: Scale, what: str) -> list[tuple[str, float]]:
        items = [(str(k), float(v)) for k, v in value.items()] if isinstance(value, Mapping) else [("", float(value))]
        for body, v in items:
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{what} must be positive and finite, got {v!r}")
            if body:
                self.body_id(body)
            elif what == "mass":
                raise ValueError("mass must be a {body: kg} mapping (the mass of every body at once is not a metric)")
        return items

    def set_dynamics(
        self,
        mass_scale: Scale = 1.0,
        friction_scale: Scale = 1.0,
        mass_bodies: Iterable[str] | None = None,
        friction_bodies: Iterable[str] | None = None,
        mass: Mapping[str, float] | None = None,
        friction: Scale | None = None,
    ) -> None:
        """Set masses, inertias and sliding friction to the nominal values times the given factors.

        Factors are always relative to the nominal model, so calls do not compound. ``mass`` (``{body: kg}``)
        and ``friction`` (a value for every geom, or ``{body: value}``) then set absolute values.
        """
        mass_f = self._scale_vector(mass_scale, mass_bodies, "mass_scale")
        friction_f = self._scale_vector(friction_scale, friction_bodies, "friction_scale")
        absolute_mass = self._absolute(mass, "mass") if mass is not None else []
        absolute_friction = self._absolute(friction, "friction") if friction is not None else []
        self.model.body_mass[:] = self._nominal_mass * mass_f
        self.model.body_inertia[:] = self._nominal_inertia * mass_f[:, None]
        self.model.geom_friction[:] = self._nominal_friction
        self.model.geom_friction[:, 0] *= friction_f[self.model.geom_bodyid]
        for body, kg in absolute_mass:
            self.model.body_mass[self.body_id(body)] = kg
        for body, value in absolute_friction:
            geoms = self.model.geom_bodyid == self.body_id(body) if body else slice(None)
            self.model.geom_friction[geoms, 0] = value

    def restore_nominal(self) -> None:
        """Restore the nominal masses, inertias and friction exactly."""
        np.copyto(self.model.body_mass, self._nominal_mass)
        np.copyto(self.model.body_inertia, self._nominal_inertia)
        np.copyto(self.model.geom_friction, self._nominal_friction)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the task, restore the nominal model, then apply the perturbation in ``options`` if any."""
        super().reset(seed=seed)
        if seed is not None:
            # The task below seeds its initial-state noise with ``seed`` too: a clone of that generator here would
            # make players drawing from ``self.np_random`` (the demo's random players) replay the noise.
            self._np_random = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
        options = dict(options or {})
        unknown = set(options) - set(PERTURBATION_KEYS)
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; valid: {list(PERTURBATION_KEYS)}")
        self.restore_nominal()
        if options:
            self.set_dynamics(**options)
        obs, info = self.task.reset(seed=seed)
        self.data.xfrc_applied[:] = 0.0
        self._wrench[:] = 0.0
        self._elapsed = 0
        return obs, info

    def step(
        self, action: Mapping[str, Any] | np.ndarray, adversary_action: np.ndarray | None = None
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Advance one step with both players' actions; returns the protagonist's reward."""
        if adversary_action is None:
            if not isinstance(action, Mapping):
                raise ValueError("step() takes step(protagonist_action, adversary_action) or a dict with both keys")
            action, adversary_action = action["protagonist"], action["adversary"]
        pro = check_action(action, self.protagonist_action_space, "protagonist")
        adv = check_action(adversary_action, self.adversary_action_space, "adversary")
        force = self._apply_force(adv)
        obs, reward, terminated, truncated, task_info = self.task.step(pro)
        self._elapsed += 1
        if self._elapsed >= self.max_episode_steps:
            truncated = True
        info: dict[str, Any] = task_info  # a fresh dict from the task every step: extend it rather than copy it
        info["reward_adversary"] = -float(reward)
        info["adversary_force"] = force[:, :3].copy()
        if self._has_torque:
            info["adversary_torque"] = force[:, 3:].copy()
        return obs, reward, terminated, truncated, info

    def render(self) -> Any:
        """Render the wrapped task."""
        return self.task.render()

    def close(self) -> None:
        """Close the wrapped task."""
        self.task.close()

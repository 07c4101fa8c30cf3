"""The dm_control backend of the two-player core: one DeepMind Control task behind a small gym-like interface.

:class:`DMControlTask` is to :class:`envs.adversarial.env.AdversarialMujocoEnv` what gymnasium's ``MujocoEnv`` is
for the gymnasium family: it owns the simulation (``model`` and ``data`` are the raw ``mujoco.MjModel`` /
``MjData`` under dm_control's ``Physics``, so the core pushes bodies and perturbs masses the same way for both
families), and offers ``reset(seed=...) -> (obs, info)``, ``step(action) -> (obs, reward, terminated, truncated,
info)``, ``observation_space`` and ``action_space``.

Tasks follow the official two-player code (``AryamanReddi99/quantal-adversarial-rl``); where it differs from the
plain dm_control task, the official behaviour is kept:

- ``walker-stand``: the official reward always multiplies the stand reward by ``(5 * move + 1) / 6`` with a move
  speed of 0, i.e. the stand reward when the torso's horizontal velocity is >= 0 and a sixth of it otherwise
  (dm_control's own ``stand`` returns the stand reward alone);
- ``pendulum-swingup``: the official model splits the pendulum into a ``pole`` body (mass 0.1) and a ``mass`` body
  (mass 1), so the two robustness metrics have bodies to change (dm_control's model has one body, pole mass 0);
- ``quadruped-walk|run``: the official task starts from the model's default pose (no random orientation) and the
  episode terminates when the torso turns upside down (``torso_upright <= 0``); the floor is the model's default.

Observations are dm_control's ``OrderedDict`` flattened in the task's own key order (the official wrapper's
order, e.g. walker: ``orientations`` (14), ``height`` (1), ``velocity`` (9)); :attr:`DMControlTask.obs_keys`
lists them. dm_control's time limit is disabled (as in the official code); the core truncates after
``max_episode_steps`` (500).

Rendering needs a GL backend chosen before dm_control is first imported (``MUJOCO_GL=egl|osmesa|glfw``). Without
one, dm_control is imported with ``MUJOCO_GL=disable`` (only for that import, so gymnasium's own rendering
options are untouched) and ``render()`` raises.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.adversarial.dmc_specs import DMC_HORIZON, DMC_TASKS

_DM_CONTROL: Any = None


def import_dm_control() -> Any:
    """Import dm_control once; without ``MUJOCO_GL`` set, import it with rendering disabled (no display needed)."""
    global _DM_CONTROL
    if _DM_CONTROL is None:
        unset = "MUJOCO_GL" not in os.environ
        if unset:
            os.environ["MUJOCO_GL"] = "disable"
        try:
            import dm_control.suite as suite
            from dm_control.rl import control
        finally:
            if unset:
                del os.environ["MUJOCO_GL"]
        _DM_CONTROL = (suite, control)
    return _DM_CONTROL


def _official_pendulum_xml(xml: bytes | str) -> str:
    """dm_control's pendulum with the official body split: ``pendulum`` > ``pole`` (0.1 kg) > ``mass`` (1 kg)."""
    root = ET.fromstring(xml)
    hinge_body = root.find("./worldbody/body[@name='pole']")
    assert hinge_body is not None, "dm_control's pendulum.xml changed: no body 'pole'"
    hinge_body.set("name", "pendulum")
    pole_geom, mass_geom = hinge_body.find("geom[@name='pole']"), hinge_body.find("geom[@name='mass']")
    assert pole_geom is not None and mass_geom is not None
    hinge_body.remove(pole_geom)
    hinge_body.remove(mass_geom)
    pole = ET.SubElement(hinge_body, "body", name="pole")
    pole_geom.set("mass", "0.1")
    pole.append(pole_geom)
    mass = ET.SubElement(pole, "body", name="mass")
    mass.append(mass_geom)
    return ET.tostring(root, encoding="unicode")


def build_dm_control_env(domain: str, task: str, random: Any = None) -> Any:
    """Build the ``control.Environment`` of one official two-player task, time limit disabled.

    Args:
        domain: dm_control domain (``walker``).
        task: task of the domain (``walk``).
        random: seed or ``np.random.RandomState`` of the task's initial-state noise.
    """
    suite, control = import_dm_control()
    inf = float("inf")
    if (domain, task) == ("walker", "stand"):
        from dm_control.suite import walker
        from dm_control.utils import rewards

        class OfficialStand(walker.PlanarWalker):
            """dm_control's walker stand with the official two-player reward (see the module docstring)."""

            def get_reward(self, physics: Any) -> float:
                stand = super().get_reward(physics)  # move_speed 0: dm_control returns the stand reward
                move = rewards.tolerance(physics.horizontal_velocity(), bounds=(0.0, inf), margin=0.0)
                return float(stand * (5 * move + 1) / 6)

        physics = walker.Physics.from_xml_string(*walker.get_model_and_assets())
        return control.Environment(
            physics, OfficialStand(move_speed=0, random=random), time_limit=inf, control_timestep=walker._CONTROL_TIMESTEP
        )
    if domain == "pendulum":
        from dm_control.suite import common, pendulum

        physics = pendulum.Physics.from_xml_string(_official_pendulum_xml(common.read_model("pendulum.xml")), common.ASSETS)
        return control.Environment(physics, pendulum.SwingUp(random=random), time_limit=inf)
    if domain == "quadruped":
        from dm_control.suite import base, common, quadruped

        class OfficialMove(quadruped.Move):
            """dm_control's quadruped Move starting from the default pose, as the official code does."""

            def initialize_episode(self, physics: Any) -> None:
                base.Task.initialize_episode(self, physics)

        speed = {"walk": quadruped._WALK_SPEED, "run": quadruped._RUN_SPEED}[task]
        physics = quadruped.Physics.from_xml_string(quadruped.make_model(), common.ASSETS)
        return control.Environment(
            physics,
            OfficialMove(desired_speed=speed, random=random),
            time_limit=inf,
            control_timestep=quadruped._CONTROL_TIMESTEP,
        )
    return suite.load(domain, task, task_kwargs={"time_limit": inf, "random": random})


def _quadruped_fell(physics: Any) -> bool:
    return bool(physics.torso_upright() <= 0.0)


class DMControlTask:
    """One official two-player dm_control task with a gym-like single-step interface (the core's backend).

    Args:
        name: the env's short name (``dmc_walker_walk``).
        render_mode: ``None`` or ``rgb_array`` (needs ``MUJOCO_GL``, see the module docstring).
        width: rendered image width.
        height: rendered image height.
        camera_id: dm_control camera.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(
        self, name: str, render_mode: str | None = None, width: int = 480, height: int = 480, camera_id: int = 0
    ) -> None:
        self.domain, self.task_name = DMC_TASKS[name]
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported by dm_control games; valid: [None, 'rgb_array']")
        self.render_mode, self._render_size, self._camera_id = render_mode, (height, width), camera_id
        self.env = build_dm_control_env(self.domain, self.task_name)
        self.physics = self.env.physics
        self._task, self._n_sub_steps = self.env.task, self.env._n_sub_steps
        self.model: mujoco.MjModel = self.physics.model.ptr
        self.data: mujoco.MjData = self.physics.data.ptr
        self._terminate: Callable[[Any], bool] | None = _quadruped_fell if self.domain == "quadruped" else None
        spec = self.env.action_spec()
        self.action_space = spaces.Box(
            np.asarray(spec.minimum, dtype=np.float32) * np.ones(spec.shape, dtype=np.float32),
            np.asarray(spec.maximum, dtype=np.float32) * np.ones(spec.shape, dtype=np.float32),
            dtype=np.float32,
        )
        obs_spec: OrderedDict[str, Any] = self.env.observation_spec()
        self.obs_keys: tuple[str, ...] = tuple(obs_spec)
        self.obs_sizes: tuple[int, ...] = tuple(int(np.prod(s.shape)) for s in obs_spec.values())
        self._ravel = tuple(len(s.shape) > 1 for s in obs_spec.values())
        self._all_1d = all(len(s.shape) == 1 for s in obs_spec.values())
        n = sum(self.obs_sizes)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float64)
        self._obs = np.zeros(n)
        self._slices = []
        start = 0
        for size in self.obs_sizes:
            self._slices.append(slice(start, start + size))
            start += size

    def _flatten(self, observation: OrderedDict[str, Any]) -> np.ndarray:
        if self._all_1d:
            return np.concatenate(tuple(observation.values()))
        # slice assignment broadcasts scalars and copies 1-D entries; only entries of 2 or more dims need a ravel
        obs = np.empty(self._obs.shape)
        for sl, ravel, value in zip(self._slices, self._ravel, observation.values(), strict=True):
            obs[sl] = np.ravel(value) if ravel else value
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` reseeds the task's initial-state noise (``RandomState(seed)``, as dm_control)."""
        if seed is not None:
            self.env.task._random = np.random.RandomState(seed)
        step = self.env.reset()
        return self._flatten(step.observation), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Advance one control step (dm_control's ``n_sub_steps`` physics steps).

        The body of ``control.Environment.step`` without its ``TimeStep`` and step-count bookkeeping (the time
        limit is disabled and the core counts steps): the same calls in the same order, so the trajectory is
        bit-identical to dm_control's (tested), a little cheaper per step.
        """
        task, physics = self._task, self.physics
        task.before_step(action, physics)
        physics.step(self._n_sub_steps)
        task.after_step(physics)
        reward = task.get_reward(physics)
        observation = task.get_observation(physics)
        terminated = task.get_termination(physics) is not None
        if self._terminate is not None and not terminated:
            terminated = self._terminate(physics)
        return self._flatten(observation), float(reward), terminated, False, {}

    def render(self) -> Any:
        """An ``rgb_array`` frame of camera ``camera_id``."""
        if self.render_mode is None:
            return None
        height, width = self._render_size
        return self.physics.render(height=height, width=width, camera_id=self._camera_id)

    def close(self) -> None:
        """Free the physics (nothing else is held)."""
        self.env.close()


class DMControlGymEnv(gym.Env[np.ndarray, np.ndarray]):
    """The plain single-player task of a dm_control game as a gymnasium env (no adversary at all).

    The reference for benchmarks and baselines: the same :class:`DMControlTask` (official task, flattened
    observation) truncated after ``max_episode_steps``, without the two-player core.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(self, name: str, max_episode_steps: int = DMC_HORIZON, render_mode: str | None = None) -> None:
        self.task = DMControlTask(name, render_mode=render_mode)
        self.render_mode = render_mode
        self.action_space = self.task.action_space
        self.observation_space = self.task.observation_space
        self.max_episode_steps, self._elapsed = int(max_episode_steps), 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (``seed`` reseeds the task's initial-state noise)."""
        super().reset(seed=seed)
        self._elapsed = 0
        return self.task.reset(seed=seed)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """One control step; truncated after ``max_episode_steps``."""
        obs, reward, terminated, _, info = self.task.step(action)
        self._elapsed += 1
        return obs, reward, terminated, self._elapsed >= self.max_episode_steps, info

    def render(self) -> Any:
        """See :meth:`DMControlTask.render`."""
        return self.task.render()

    def close(self) -> None:
        """Free the physics."""
        self.task.close()

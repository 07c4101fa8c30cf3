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
- ``quadruped-reach_goal|reach_goal_wind`` (official ``reach_goal_vs_adversary`` / ``reach_goal_vs_wind_adversary``):
  the same start and termination in the official goal arena (:func:`_official_goal_xml`: floor 40 x 40 m, walls at
  y = +-7, a gate at x = 8 with a 4 m gap, the wind zone's floor plate 1 mm above the floor, a non-colliding goal
  sphere at (10, 0, 0.5)); the observation adds ``to_goal`` (goal minus torso geom, world x-y) and the reward is
  ``upright * 5 * exp(-0.2 * |to_goal|)``, in [0, 5] per step (about 0.68 at the start, 10 m away). The official
  code runs it with the temperatures and threshold of every other task (Gamma rate 1000, nu 50 -> 1, xi = 100), so
  rldyn keeps c = 1 and xi = 100 rather than scaling them by 5: relative to the reward, the temperatures are 5
  times smaller than on the [0, 1] tasks and xi = 100 is about 20% of the best discounted return (~497) instead of
  ~100% of ~99.3. ``info`` has ``goal_distance`` and ``is_success`` (within 1 m of the goal, the official success
  criterion at the episode's last step). The official ``reach_goal_vs_adversary`` physics lacks the goal methods
  (its first observation raises ``AttributeError``); we give it the goal observation and reward of the wind task,
  with walk's torso adversary.
- the wind adversary (``reach_goal_wind``): one action, the total wind along world +y, ``|a| * 600`` N (within the
  force limit), shared equally by the robot's 17 bodies (:data:`envs.adversarial.dmc_specs.QUADRUPED_WIND_BODIES`)
  and applied only while the torso geom is at 4 <= x <= 8 before the step. The core writes the command into the
  torso's y entry of ``xfrc_applied`` (the task's default ``bodies=("torso",)``, ``axes=("y",)``); the step turns it
  into the wind, so after a step ``xfrc_applied`` holds the wind actually applied and ``info["wind_force"]`` its
  total (``info["adversary_force"]`` is the command). The official wind is in [0, 600] N (its SAC squashes onto
  that box); ``|a|`` keeps rldyn's convention that a zero action is no force (the official "no adversary"
  evaluation uses a constant 0 N) and maps a uniform random action to a uniform wind in [0, 600] N, as the
  official random adversary; the force curriculum's limit ``L`` gives [0, L] N as the official ``update_adversary``.

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

from envs.adversarial.dmc_specs import DMC_HORIZON, DMC_TASKS, QUADRUPED_WIND_BODIES, QUADRUPED_WIND_X

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


GOAL_SUCCESS_DISTANCE = 1.0
"""The official success criterion of the reach-goal tasks: the torso within 1 m of the goal (x-y)."""
_GOAL_REWARD_SCALE, _GOAL_REWARD_DECAY = 5.0, 0.2  # reward = upright * 5 * exp(-0.2 * distance)
_ARENA_WALL = {"type": "box", "rgba": "0.2 0.2 0.2 1"}
# (name, fromto, half-size) of the official arena's walls: two side walls along x and a gate across x = 8 whose
# two halves (low and high bars) leave the corridor |y| < 2 open
_ARENA_WALLS = (
    ("sideW", "-20 7 1 20 7 1", "1"),
    ("sideE", "-20 -7 1 20 -7 1", "1"),
    ("left_gate_low", "8 6 .5 8 2 .5", ".5"),
    ("left_gate_high", "8 6 1.5 8 2 1.5", ".5"),
    ("right_gate_low", "8 -2 .5 8 -6 .5", ".5"),
    ("right_gate_high", "8 -2 1.5 8 -6 1.5", ".5"),
)


def _official_goal_xml(xml: bytes | str) -> str:
    """dm_control's quadruped (walls, ball, target, terrain and rangefinders removed) in the official goal arena.

    Physical facts of the official ``quadruped_goal.xml`` (lights, cameras and the unused ``torso_subtreelinvel``
    sensor are left as dm_control has them): the floor is 40 x 40 m; the wind zone's plate (a plane, so it collides
    as an infinite plane) lies 1 mm above the floor; walls and gate as :data:`_ARENA_WALLS`; the goal is a
    0.5 m sphere at (10, 0, 0.5) that collides with nothing. World geoms keep the official order.
    """
    root = ET.fromstring(xml)
    world = root.find("worldbody")
    floor = root.find("./worldbody/geom[@name='floor']")
    assert world is not None and floor is not None, "dm_control's quadruped.xml changed: no worldbody floor"
    floor.set("size", "40 40 .5")
    plate = ET.Element("geom", name="floor_adversary", type="plane", size="2 6 1", pos="6 0 0.001")
    plate.set("material", "decoration")
    world.insert(list(world).index(floor) + 1, plate)
    for name, fromto, size in _ARENA_WALLS:
        ET.SubElement(world, "geom", {"name": name, "fromto": fromto, "size": size, **_ARENA_WALL})
    goal = ET.SubElement(world, "geom", name="goal", type="sphere", size=".5", pos="10 0 .5", rgba="0 0.8 0 1")
    goal.set("contype", "0")
    goal.set("conaffinity", "0")
    return ET.tostring(root, encoding="unicode")


def torso_to_goal(physics: Any) -> np.ndarray:
    """The goal minus the torso geom's position in the world x-y plane (the official ``to_goal`` observation)."""
    xpos = physics.named.data.geom_xpos
    return np.asarray(xpos["goal", :2] - xpos["torso", :2])


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

        class ReachGoal(OfficialMove):
            """The official reach-goal task: the move task's start, ``to_goal`` observed, the goal reward."""

            def get_observation(self, physics: Any) -> OrderedDict[str, Any]:
                observation = super().get_observation(physics)
                observation["to_goal"] = torso_to_goal(physics)
                return observation

            def get_reward(self, physics: Any) -> float:
                distance = np.linalg.norm(torso_to_goal(physics))
                upright = quadruped._upright_reward(physics)
                return float(upright * _GOAL_REWARD_SCALE * np.exp(-_GOAL_REWARD_DECAY * distance))

        xml = quadruped.make_model()
        if task.startswith("reach_goal"):
            xml, move = _official_goal_xml(xml), ReachGoal(desired_speed=quadruped._WALK_SPEED, random=random)
        else:
            speed = {"walk": quadruped._WALK_SPEED, "run": quadruped._RUN_SPEED}[task]
            move = OfficialMove(desired_speed=speed, random=random)
        physics = quadruped.Physics.from_xml_string(xml, common.ASSETS)
        return control.Environment(physics, move, time_limit=inf, control_timestep=quadruped._CONTROL_TIMESTEP)
    return suite.load(domain, task, task_kwargs={"time_limit": inf, "random": random})


def _quadruped_fell(physics: Any) -> bool:
    return bool(physics.torso_upright() <= 0.0)


class QuadrupedWind:
    """The official wind adversary: the core's command on the torso's y entry turned into the applied wind.

    ``apply`` runs before each physics step: the total wind is ``|command|`` newtons (the core has already scaled
    the action by the bound and clipped it to the force limit), split equally over
    :data:`~envs.adversarial.dmc_specs.QUADRUPED_WIND_BODIES` along world +y, and applied only while the torso
    geom's x is in :data:`~envs.adversarial.dmc_specs.QUADRUPED_WIND_X`; every other entry of ``xfrc_applied`` is
    zero. The core refuses other ``bodies``/``axes`` at creation; a force written anywhere else past the core raises
    a ``ValueError`` here.

    Args:
        model: the task's ``MjModel``.
        name: the env's short name (for messages).
    """

    def __init__(self, model: mujoco.MjModel, name: str) -> None:
        self.name = name
        self._body_names = [model.body(i).name for i in range(model.nbody)]
        self.torso = int(model.body("torso").id)
        self.torso_geom = int(model.geom("torso").id)
        self.body_ids = np.array([model.body(b).id for b in QUADRUPED_WIND_BODIES], dtype=np.intp)
        self.x_low, self.x_high = QUADRUPED_WIND_X
        self._written = np.zeros((model.nbody, 6))  # what the last ``apply`` left in xfrc_applied
        self._others = np.ones((model.nbody, 6), dtype=bool)  # every entry but the command's
        self._others[self.torso, 1] = False

    def reset(self) -> None:
        """Forget the last wind (the core zeroes ``xfrc_applied`` on reset)."""
        self._written[:] = 0.0

    def apply(self, data: mujoco.MjData) -> float:
        """Replace the command in ``data.xfrc_applied`` by the wind it commands; return the total applied (N)."""
        xfrc = data.xfrc_applied
        changed = (xfrc != self._written) & self._others
        if changed.any():
            body, column = (int(i) for i in np.argwhere(changed)[0])
            raise ValueError(
                f"{self.name}'s adversary has one action, the total wind, given through bodies=['torso'] and "
                f"axes=['y'] (the defaults); a force was also written on body {self._body_names[body]!r}, "
                f"xfrc_applied column {column}"
            )
        total = abs(float(xfrc[self.torso, 1]))
        inside = self.x_low <= data.geom_xpos[self.torso_geom, 0] <= self.x_high
        xfrc[:] = 0.0
        if inside:
            xfrc[self.body_ids, 1] = total / len(self.body_ids)
        np.copyto(self._written, xfrc)
        return total if inside else 0.0


class DMControlTask:
    """One official two-player dm_control task with a gym-like single-step interface (the core's backend).

    Args:
        name: the env's short name (``dmc_walker_walk``).
        render_mode: ``None`` or ``rgb_array`` (needs ``MUJOCO_GL``, see the module docstring).
        width: rendered image width.
        height: rendered image height.
        camera_id: dm_control camera.

    Attributes:
        wind: the wind adversary of ``dmc_quadruped_reach_goal_wind`` (``None`` for every other task).
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
        self._goal = self.domain == "quadruped" and self.task_name.startswith("reach_goal")
        self.wind = (
            QuadrupedWind(self.model, name) if (self.domain, self.task_name) == ("quadruped", "reach_goal_wind") else None
        )
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
        if self.wind is not None:
            self.wind.reset()
        step = self.env.reset()
        return self._flatten(step.observation), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Advance one control step (dm_control's ``n_sub_steps`` physics steps).

        The body of ``control.Environment.step`` without its ``TimeStep`` and step-count bookkeeping (the time
        limit is disabled and the core counts steps): the same calls in the same order, so the trajectory is
        bit-identical to dm_control's (tested), a little cheaper per step. The wind task first turns the adversary's
        command into the wind (:class:`QuadrupedWind`, ``info["wind_force"]``); the reach-goal tasks report
        ``info["goal_distance"]`` and ``info["is_success"]``.
        """
        task, physics = self._task, self.physics
        info: dict[str, Any] = {}
        if self.wind is not None:
            info["wind_force"] = self.wind.apply(self.data)
        task.before_step(action, physics)
        physics.step(self._n_sub_steps)
        task.after_step(physics)
        reward = task.get_reward(physics)
        observation = task.get_observation(physics)
        terminated = task.get_termination(physics) is not None
        if self._terminate is not None and not terminated:
            terminated = self._terminate(physics)
        if self._goal:
            distance = float(np.linalg.norm(observation["to_goal"]))
            info["goal_distance"], info["is_success"] = distance, distance < GOAL_SUCCESS_DISTANCE
        return self._flatten(observation), float(reward), terminated, False, info

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

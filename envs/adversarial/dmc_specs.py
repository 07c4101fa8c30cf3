"""The paper's two-player DeepMind Control tasks: defaults taken from the official code (data only).

Facts from ``AryamanReddi99/quantal-adversarial-rl`` (``src/dm_control_extensions/suite/*_two_players.py``,
``src/experiments/mujoco_experiments/abstract_experiment.py`` and ``qarl_experiment.py``):

- adversary bodies, force axes and bounds (``xfrc_applied[body] = [fx, 0, fz, 0, 0, 0]`` clipped to the bound;
  reacher pushes along x and y, the quadruped adds a torque about y);
- the curriculum threshold xi on the discounted return (code comment: cheetah, walker, cartpole 10; hopper 1;
  quadruped 100; the default 10 elsewhere) with rewards in [0, 1] per step, so the temperatures need no rescaling
  (c = 1);
- the robustness "metrics" and their absolute ranges (``np.linspace(low, high, 11)``); the acrobot and
  ball_in_cup ranges are the ones the official code writes before overwriting them with empty arrays (its bug,
  specs/qarl.md §10.5);
- 500-step episodes with dm_control's time limit disabled;
- the quadruped "reach goal" tasks (``quadruped_two_players.py``: ``reach_goal_vs_adversary`` and
  ``reach_goal_vs_wind_adversary``, here ``reach_goal`` and ``reach_goal_wind``): the first keeps walk's torso
  adversary; the wind adversary has one action, a total force along world +y in [0, 600] N (here |a| * 600) shared
  equally by the robot's 17 bodies (:data:`QUADRUPED_WIND_BODIES`) and blowing only while the torso is at 4 <= x <= 8
  (:data:`QUADRUPED_WIND_X`). Their reward is ``upright * 5 * exp(-0.2 * distance)``, up to 5 per step rather than
  1, but the official code runs them with the same temperatures and threshold as every other task (c = 1,
  xi = 100, the quadruped's), so nothing is rescaled here either (see :mod:`envs.adversarial.dmc`). The official
  metrics are the quadruped's (torso mass 65-75 kg, friction 0.95-1.05: the wind physics names them
  ``change_mass``/``change_friction``).
"""

from __future__ import annotations

import difflib

_XZ = ("x", "z")
_PLANAR_XZ = ("x", "z", "ry")
_XYZ = ("x", "y", "z")
_LEG_PARTS = ("hip", "knee", "ankle", "toe")
DMC_HORIZON = 500
# quadruped walk, run and reach_goal share everything: torso force (x, z) and torque about y, bound 10, torso mass
# 65-75 kg, friction 0.95-1.05, threshold 100
_QUADRUPED = (("torso",), ("x", "z", "ry"), (*_XYZ, "rx", "ry", "rz"), 10.0, "torso", (65, 75), None, (0.95, 1.05), 100)
# the wind adversary's one action: the total wind (N) along world +y, commanded through the torso's y entry
# (envs.adversarial.dmc spreads it over QUADRUPED_WIND_BODIES); metrics and threshold as the other quadruped tasks
_QUADRUPED_WIND = (("torso",), ("y",), ("y",), 600.0, "torso", (65, 75), None, (0.95, 1.05), 100)
QUADRUPED_WIND_BODIES: tuple[str, ...] = (
    "torso",
    *(f"{part}_{leg}" for leg in ("front_left", "front_right", "back_left", "back_right") for part in _LEG_PARTS),
)
"""The bodies the official wind pushes, each with 1/17 of the total: the torso and every leg body (official order)."""
QUADRUPED_WIND_X = (4.0, 8.0)
"""The wind blows only while the torso geom's world x is in this closed interval (the official wind zone)."""

# (domain, task): bodies, axes, live axes, bound, first-metric body and range, second body (None: friction) and
# range, threshold xi
DMC_TABLE: dict[tuple[str, str], tuple] = {
    ("walker", "stand"): (("right_foot", "left_foot"), _XZ, _PLANAR_XZ, 1.0, "torso", (5, 15), None, (0.1, 1.3), 10),
    ("walker", "walk"): (("right_foot", "left_foot"), _XZ, _PLANAR_XZ, 1.0, "torso", (5, 15), None, (0.1, 1.3), 10),
    ("walker", "run"): (("right_foot", "left_foot"), _XZ, _PLANAR_XZ, 1.0, "torso", (5, 15), None, (0.1, 1.3), 10),
    ("hopper", "stand"): (("foot",), _XZ, _PLANAR_XZ, 1.0, "torso", (1, 9), None, (0.1, 1.9), 1),
    ("hopper", "hop"): (("foot",), _XZ, _PLANAR_XZ, 1.0, "torso", (1, 9), None, (0.1, 1.9), 1),
    ("cheetah", "run"): (("torso", "bfoot", "ffoot"), _XZ, _PLANAR_XZ, 1.0, "torso", (3, 9), None, (0.1, 1.9), 10),
    ("cartpole", "balance"): (("pole_1",), _XZ, _PLANAR_XZ, 2.0, "pole_1", (1, 20), "cart", (0.5, 1.5), 10),
    ("cartpole", "swingup"): (("pole_1",), _XZ, _PLANAR_XZ, 2.0, "pole_1", (0.05, 0.15), "cart", (0.5, 1.5), 10),
    ("pendulum", "swingup"): (("pole",), _XZ, _PLANAR_XZ, 1.0, "pole", (0.05, 0.15), "mass", (0.5, 1.5), 10),
    ("acrobot", "swingup"): (("upper_arm",), _XZ, _PLANAR_XZ, 1.0, "upper_arm", (0.95, 1.05), "lower_arm", (0.95, 1.05), 10),
    ("ball_in_cup", "catch"): (("ball",), _XZ, _PLANAR_XZ, 0.005, "ball", (0.01, 0.11), "cup", (0.01, 0.11), 10),
    ("reacher", "easy"): (("arm",), ("x", "y"), ("x", "y", "rz"), 0.1, "arm", (0.02, 0.06), "hand", (0.02, 0.05), 10),
    ("reacher", "hard"): (("arm",), ("x", "y"), ("x", "y", "rz"), 0.1, "arm", (0.02, 0.06), "hand", (0.02, 0.05), 10),
    ("quadruped", "walk"): _QUADRUPED,
    ("quadruped", "run"): _QUADRUPED,
    ("quadruped", "reach_goal"): _QUADRUPED,
    ("quadruped", "reach_goal_wind"): _QUADRUPED_WIND,
}


def dmc_name(domain: str, task: str) -> str:
    """The short env name of a dm_control task (``dmc_walker_walk``), checking both parts against the registry.

    Raises:
        ValueError: naming the valid domains, or the valid tasks of ``domain``.
    """
    domains = sorted({d for d, _ in DMC_TABLE})
    if domain not in domains:
        near = difflib.get_close_matches(domain, domains, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown dm_control domain {domain!r}; valid domains: {domains}{hint}")
    tasks = sorted(t for d, t in DMC_TABLE if d == domain)
    if task not in tasks:
        raise ValueError(f"unknown task {task!r} of dm_control domain {domain!r}; valid tasks: {tasks}")
    return f"dmc_{domain}_{task}"


DMC_TASKS: dict[str, tuple[str, str]] = {f"dmc_{d}_{t}": (d, t) for d, t in DMC_TABLE}

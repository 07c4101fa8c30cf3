"""The dm_control family of two-player games: the official facts, check_env, plain-task equality, forces, perturbations."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from omegaconf import OmegaConf

import envs  # noqa: F401  (registers the ids)
from envs.adversarial import AdversarialMujocoEnv, AdversaryView, ProtagonistView, get_env_spec, make_adversarial_env
from envs.adversarial.dmc import build_dm_control_env, import_dm_control
from envs.adversarial.dmc_specs import DMC_TASKS, dmc_name
from envs.adversarial.specs import family_envs
from rl.qarl.config import CurriculumConfig
from rl.qarl.modes import rescale

pytestmark = pytest.mark.filterwarnings("ignore:.*Box observation space m:UserWarning", "ignore:.*symmetric and normalized")

DMC_NAMES = family_envs("dm_control")
INF = float("inf")


def flat(observation: OrderedDict[str, Any]) -> np.ndarray:
    return np.concatenate([np.ravel(v) for v in observation.values()])


def random_actions(space: gym.spaces.Box, steps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(space.low, space.high).astype(np.float32) for _ in range(steps)]


# ---------------------------------------------------------------- the official facts
def test_registry_ids_and_configs() -> None:
    expected = {
        "walker": {"stand", "walk", "run"},
        "hopper": {"stand", "hop"},
        "cheetah": {"run"},
        "cartpole": {"balance", "swingup"},
        "pendulum": {"swingup"},
        "acrobot": {"swingup"},
        "ball_in_cup": {"catch"},
        "reacher": {"easy", "hard"},
        "quadruped": {"walk", "run"},
    }
    assert {(d, t) for d, ts in expected.items() for t in ts} == set(DMC_TASKS.values())
    ids = sorted(i for i in gym.registry if i.startswith("rldyn/AdversarialDMC"))
    assert ids == sorted(get_env_spec(n).env_id for n in DMC_NAMES)
    assert "rldyn/AdversarialDMCWalkerWalk-v1" in ids and "rldyn/AdversarialDMCBallInCupCatch-v1" in ids
    for name in DMC_NAMES:
        cfg = OmegaConf.load(f"configs/env/{name}.yaml")
        assert cfg.name == name


def test_official_bodies_axes_bounds_thresholds() -> None:
    """quantal-adversarial-rl ``*_two_players.py`` and qarl_experiment.py's threshold comment."""
    official = {
        "dmc_walker_walk": (("right_foot", "left_foot"), ("x", "z"), 1.0, 10.0),
        "dmc_hopper_hop": (("foot",), ("x", "z"), 1.0, 1.0),
        "dmc_cheetah_run": (("torso", "bfoot", "ffoot"), ("x", "z"), 1.0, 10.0),
        "dmc_cartpole_swingup": (("pole_1",), ("x", "z"), 2.0, 10.0),
        "dmc_pendulum_swingup": (("pole",), ("x", "z"), 1.0, 10.0),
        "dmc_acrobot_swingup": (("upper_arm",), ("x", "z"), 1.0, 10.0),
        "dmc_ball_in_cup_catch": (("ball",), ("x", "z"), 0.005, 10.0),
        "dmc_reacher_easy": (("arm",), ("x", "y"), 0.1, 10.0),
        "dmc_quadruped_walk": (("torso",), ("x", "z", "ry"), 10.0, 100.0),
    }
    for name, (bodies, axes, bound, xi) in official.items():
        spec = get_env_spec(name)
        assert (spec.bodies, spec.axes, spec.force_bound, spec.threshold) == (bodies, axes, bound, xi)
        scaling = rescale(OmegaConf.structured(CurriculumConfig), spec)
        assert (scaling.reward_scale, scaling.rate, scaling.threshold) == (1.0, 1000.0, xi)  # c = 1: no rescaling
    # the official absolute robustness ranges (specs/qarl.md section 8)
    walker = get_env_spec("dmc_walker_walk")
    assert (walker.mass_body, walker.mass_factors, walker.friction_factors, walker.second_body) == (
        "torso",
        (5.0, 15.0),
        (0.1, 1.3),
        None,
    )
    assert walker.grid_absolute and get_env_spec("dmc_cartpole_swingup").second_body == "cart"


def test_official_model_changes() -> None:
    pendulum = AdversarialMujocoEnv("dmc_pendulum_swingup")
    assert pendulum.model.body("pole").mass[0] == pytest.approx(0.1) and pendulum.model.body("mass").mass[0] == 1.0
    quadruped = AdversarialMujocoEnv("dmc_quadruped_walk")
    obs_a, _ = quadruped.reset(seed=0)
    obs_b, _ = quadruped.reset(seed=1)
    assert np.array_equal(obs_a, obs_b)  # the official task starts from the default pose, with no random orientation


def test_horizon_and_time_limit_disabled() -> None:
    game = AdversarialMujocoEnv("dmc_cartpole_balance")
    assert game.max_episode_steps == 500 and game.task.env._step_limit == INF
    game.reset(seed=0)
    zero_pro = np.zeros(game.protagonist_action_space.shape, np.float32)
    zero_adv = np.zeros(game.adversary_action_space.shape, np.float32)
    ends = [game.step(zero_pro, zero_adv)[3] for _ in range(500)]
    assert not any(ends[:-1]) and ends[-1]
    short = AdversarialMujocoEnv("dmc_cartpole_balance", max_episode_steps=3)
    short.reset(seed=0)
    assert [short.step(zero_pro, zero_adv)[3] for _ in range(3)] == [False, False, True]


# ---------------------------------------------------------------- the Gymnasium contract
@pytest.mark.parametrize("name", DMC_NAMES)
def test_check_env_game_and_views(name: str) -> None:
    env = gym.make(get_env_spec(name).env_id)
    game = env.unwrapped
    assert isinstance(game, AdversarialMujocoEnv)
    check_env(game, skip_render_check=True)
    for view in (
        ProtagonistView(name, opponent="random", append_context=True, context=0.05),
        AdversaryView(name, opponent="random"),
    ):
        check_env(view, skip_render_check=True)
        view.close()
    env.close()


def test_observation_order_is_documented() -> None:
    game = AdversarialMujocoEnv("dmc_walker_walk")
    assert game.task.obs_keys == ("orientations", "height", "velocity") and game.task.obs_sizes == (14, 1, 9)
    obs, _ = game.reset(seed=0)
    physics = game.task.physics
    assert np.array_equal(obs[:14], physics.orientations()) and obs[14] == physics.torso_height()
    assert np.array_equal(obs[15:], physics.velocity())


# ---------------------------------------------------------------- zero adversary == the plain dm_control task
@pytest.mark.parametrize("name", DMC_NAMES)
def test_zero_adversary_is_the_plain_task(name: str) -> None:
    """Bit-identical observations and equal rewards under the same seed and actions.

    The reference is dm_control's own ``suite.load`` task, except where the official two-player code changes the
    task (pendulum's model, the quadruped's start): there it is the plain dm_control ``Environment`` over the
    official model and task, stepped without our wrapper. Walker-stand's official reward is checked by formula.
    """
    suite, _ = import_dm_control()
    domain, task = DMC_TASKS[name]
    seed, steps = 3, 60
    if domain in ("pendulum", "quadruped"):
        plain = build_dm_control_env(domain, task, random=seed)
    else:
        plain = suite.load(domain, task, task_kwargs={"random": seed, "time_limit": INF})
    game = AdversarialMujocoEnv(name)
    obs, _ = game.reset(seed=seed)
    assert np.array_equal(obs, flat(plain.reset().observation))
    zero = np.zeros(game.adversary_action_space.shape, np.float32)
    for action in random_actions(game.protagonist_action_space, steps, seed):
        obs, reward, _, truncated, info = game.step(action, zero)
        ref = plain.step(action)
        assert np.array_equal(obs, flat(ref.observation))
        if name == "dmc_walker_stand":
            velocity = plain.physics.horizontal_velocity()
            assert float(reward) == pytest.approx(ref.reward * (1.0 if velocity >= 0 else 1.0 / 6.0), abs=1e-12)
        else:
            assert reward == ref.reward
        assert info["reward_adversary"] == -float(reward)
        assert not truncated and not game.data.xfrc_applied.any()


# ---------------------------------------------------------------- forces
@pytest.mark.parametrize("name", DMC_NAMES)
def test_each_force_moves_its_body_in_its_direction(name: str) -> None:
    game = AdversarialMujocoEnv(name)
    game.reset(seed=0)
    for action in random_actions(game.protagonist_action_space, 5, 0):
        game.step(action, np.zeros(game.adversary_action_space.shape, np.float32))
    qpos, qvel = game.data.qpos.copy(), game.data.qvel.copy()

    def qacc(xfrc: np.ndarray) -> np.ndarray:
        game.data.qpos[:], game.data.qvel[:] = qpos, qvel
        np.copyto(game.data.xfrc_applied, xfrc)
        mujoco.mj_forward(game.model, game.data)
        return game.data.qacc.copy()

    base = qacc(np.zeros_like(game.data.xfrc_applied))
    k = 0
    for body in game.bodies:
        bid = game.body_id(body)
        jacp, jacr = np.zeros((3, game.model.nv)), np.zeros((3, game.model.nv))
        mujoco.mj_jacBodyCom(game.model, game.data, jacp, jacr, bid)
        for axis in game.axes:
            action = np.zeros(game.adversary_action_space.shape, np.float32)
            action[k] = 1.0
            wrench = game._apply_force(action)  # what step() writes into xfrc_applied
            xfrc = game.data.xfrc_applied.copy()
            column = ("x", "y", "z", "rx", "ry", "rz").index(axis)
            assert xfrc[bid, column] == pytest.approx(game.force_bound) and np.count_nonzero(xfrc) == 1
            assert wrench[list(game.bodies).index(body), column] == pytest.approx(game.force_bound)
            dacc = qacc(xfrc) - base
            moved = (jacp @ dacc)[column] if column < 3 else (jacr @ dacc)[column - 3]
            assert moved > 0, (body, axis, moved)
            k += 1


def test_force_is_clipped_and_reported() -> None:
    game = AdversarialMujocoEnv("dmc_quadruped_walk")
    game.reset(seed=0)
    pro = np.zeros(game.protagonist_action_space.shape, np.float32)
    _, _, _, _, info = game.step(pro, np.array([5.0, -0.5, 1.0], np.float32))
    assert np.array_equal(info["adversary_force"], [[10.0, 0.0, -5.0]])
    assert np.array_equal(info["adversary_torque"], [[0.0, 10.0, 0.0]])
    game.reset(seed=0)
    assert not game.data.xfrc_applied.any()


def test_quadruped_terminates_upside_down() -> None:
    game = AdversarialMujocoEnv("dmc_quadruped_walk")
    game.reset(seed=0)
    game.data.qpos[3:7] = [0.0, 1.0, 0.0, 0.0]  # torso rotated by pi about x: upside down
    mujoco.mj_forward(game.model, game.data)
    *_, terminated, truncated, _ = game.step(
        np.zeros(game.protagonist_action_space.shape, np.float32), np.zeros(3, np.float32)
    )
    assert terminated and not truncated


# ---------------------------------------------------------------- perturbations
@pytest.mark.parametrize("name", ["dmc_walker_walk", "dmc_cartpole_swingup", "dmc_hopper_hop"])
def test_official_metrics_are_set_absolutely_and_restored_exactly(name: str) -> None:
    spec = get_env_spec(name)
    game = AdversarialMujocoEnv(name)
    nominal = [a.copy() for a in (game.model.body_mass, game.model.body_inertia, game.model.geom_friction)]
    zero = np.zeros(game.adversary_action_space.shape, np.float32)
    actions = random_actions(game.protagonist_action_space, 30, 1)

    def rollout(options: dict[str, Any] | None) -> np.ndarray:
        obs, _ = game.reset(seed=5, options=options)
        return np.array([obs, *[game.step(a, zero)[0] for a in actions]])

    reference = rollout(None)
    first, second = spec.mass_factors[1], spec.friction_factors[0]
    perturbed = rollout(spec.grid_options(first, second))
    assert game.model.body(spec.mass_body).mass[0] == first
    if spec.second_body is None:
        assert np.all(game.model.geom_friction[:, 0] == second)
        assert np.array_equal(game.model.geom_friction[:, 1:], nominal[2][:, 1:])
    else:
        assert game.model.body(spec.second_body).mass[0] == second
    assert np.array_equal(game.model.body_inertia, nominal[1])  # the official metrics change masses only
    assert not np.array_equal(perturbed, reference)
    again = rollout(None)
    for now, before in zip((game.model.body_mass, game.model.body_inertia, game.model.geom_friction), nominal, strict=True):
        assert np.array_equal(now, before)
    assert np.array_equal(again, reference)
    # 1-D sweeps leave the other metric nominal
    game.reset(options=spec.grid_options(first, second, only="mass"))
    assert np.array_equal(game.model.geom_friction, nominal[2])
    game.reset(options=spec.grid_options(first, second, only="friction"))
    assert game.model.body(spec.mass_body).mass[0] == nominal[0][game.body_id(spec.mass_body)]


def test_factor_options_still_work_on_dm_control() -> None:
    game = AdversarialMujocoEnv("dmc_walker_walk")
    torso = game.body_id("torso")
    mass = game.model.body_mass[torso]
    game.reset(options={"mass_scale": 2.0, "mass_bodies": ["torso"], "friction_scale": 0.5})
    assert game.model.body_mass[torso] == 2 * mass
    game.reset()
    assert game.model.body_mass[torso] == mass


# ---------------------------------------------------------------- bad input
def test_unknown_domain_task_and_env_list_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown dm_control domain 'walkr'.*'walker'.*did you mean 'walker'"):
        dmc_name("walkr", "walk")
    with pytest.raises(ValueError, match=re.escape("valid tasks: ['run', 'stand', 'walk']")):
        dmc_name("walker", "sprint")
    assert dmc_name("ball_in_cup", "catch") == "dmc_ball_in_cup_catch"
    with pytest.raises(ValueError, match="did you mean 'dmc_walker_walk'"):
        AdversarialMujocoEnv("dmc_walker_wlak")


def test_unknown_body_names_the_bodies() -> None:
    with pytest.raises(ValueError, match=r"unknown body of dmc_walker_walk 'foot'.*'left_foot'.*'right_foot'"):
        AdversarialMujocoEnv("dmc_walker_walk", bodies=["foot"])
    game = AdversarialMujocoEnv("dmc_cartpole_swingup")
    with pytest.raises(ValueError, match=r"'pole'.*valid choices: \['cart', 'pole_1'\]"):
        game.reset(options={"mass": {"pole": 0.1}})
    assert np.array_equal(game.model.body_mass, game._nominal_mass)
    with pytest.raises(ValueError, match="valid axes"):
        AdversarialMujocoEnv("dmc_walker_walk", axes=["y"])


# ---------------------------------------------------------------- SB3
def test_sac_trains_on_a_view() -> None:
    from stable_baselines3 import SAC

    view = make_adversarial_env("dmc_cartpole_balance", view="protagonist", opponent="random", append_context=True)
    view.reset(options={"context": 0.05})
    model = SAC("MlpPolicy", view, learning_starts=20, batch_size=16, policy_kwargs={"net_arch": [16]}, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.actor.parameters()]
    model.learn(60)
    assert model.num_timesteps == 60
    assert any(
        not np.array_equal(b.numpy(), a.detach().numpy()) for b, a in zip(before, model.policy.actor.parameters(), strict=True)
    )
    adversary = AdversaryView("dmc_cartpole_balance", opponent=model, append_context=True)
    adversary.reset(seed=0)
    _, reward, *_ = adversary.step(adversary.action_space.sample())
    assert float(reward) <= 0.0

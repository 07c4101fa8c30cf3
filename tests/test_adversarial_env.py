"""The two-player MuJoCo game: registration, check_env, determinism, forces, dynamics perturbations, errors."""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.adversarial import ADVERSARIAL_ENVS, AdversarialMujocoEnv, make_adversarial_env
from envs.adversarial.specs import AXES, family_envs

# MuJoCo observations are unbounded and InvertedPendulum's actuator range is [-3, 3]: check_env's advice, not errors.
pytestmark = pytest.mark.filterwarnings("ignore:.*Box observation space m:UserWarning", "ignore:.*symmetric and normalized")

# the gymnasium family (the dm_control family has its own tests: tests/test_adversarial_dmc.py)
ENV_NAMES = family_envs("gymnasium")
REGISTERED_IDS = sorted(i for i in gym.registry if i.startswith("rldyn/Adversarial") and "DMC" not in i)
PLANAR = [name for name in ENV_NAMES if len(ADVERSARIAL_ENVS[name].live_axes) == 2]


def zero_pro(game: AdversarialMujocoEnv) -> np.ndarray:
    return np.zeros(game.protagonist_action_space.shape, dtype=np.float32)


def zero_adv(game: AdversarialMujocoEnv) -> np.ndarray:
    return np.zeros(game.adversary_action_space.shape, dtype=np.float32)


def unit_adv(game: AdversarialMujocoEnv, index: int, value: float = 1.0) -> np.ndarray:
    action = zero_adv(game)
    action[index] = value
    return action


# ---------------------------------------------------------------- registration and the Gymnasium contract
def test_every_spec_is_registered_under_the_namespace() -> None:
    assert REGISTERED_IDS == sorted(ADVERSARIAL_ENVS[name].env_id for name in ENV_NAMES)
    for env_id in REGISTERED_IDS:
        assert re.fullmatch(r"rldyn/Adversarial[A-Za-z0-9]+-v5", env_id)
    assert {"Hopper", "HalfCheetah", "Walker2d", "Ant", "Humanoid", "Swimmer", "InvertedPendulum"} <= set(ENV_NAMES)


@pytest.mark.parametrize("env_id", REGISTERED_IDS)
def test_check_env_two_player(env_id: str) -> None:
    env = gym.make(env_id)
    game = env.unwrapped
    assert isinstance(game, AdversarialMujocoEnv)
    assert env.spec is not None and env.spec.max_episode_steps is None  # the game truncates itself
    check_env(game, skip_render_check=True)
    # the Dict form of step (what check_env and Gymnasium tooling use) and the two-argument form agree
    game.reset(seed=3)
    a = game.step({"protagonist": zero_pro(game), "adversary": unit_adv(game, 0)})
    game.reset(seed=3)
    b = game.step(zero_pro(game), unit_adv(game, 0))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    env.close()


@pytest.mark.parametrize("name", ENV_NAMES)
def test_spaces_follow_the_spec(name: str) -> None:
    spec = ADVERSARIAL_ENVS[name]
    game = AdversarialMujocoEnv(name)
    task = gym.make(spec.gym_id)
    assert game.bodies == spec.bodies and game.axes == spec.axes and game.force_bound == spec.force_bound
    assert set(spec.axes) <= set(spec.live_axes)
    assert game.adversary_action_space == gym.spaces.Box(-1.0, 1.0, (len(spec.bodies) * len(spec.axes),), np.float32)
    assert game.protagonist_action_space == task.action_space
    assert game.observation_space == task.observation_space
    assert game.max_episode_steps == task.spec.max_episode_steps  # type: ignore[union-attr]
    task.close()


def test_defaults_match_the_qarl_spec_table() -> None:
    """specs/qarl.md section 6, "Recommended v5 setup"."""
    expected = {
        "Hopper": (("foot",), ("x", "z"), 3.0),
        "HalfCheetah": (("torso", "bfoot", "ffoot"), ("x", "z"), 3.0),
        "Walker2d": (("foot", "foot_left"), ("x", "z"), 3.0),
        "Ant": (("torso",), ("x", "y", "z"), 0.3),
        "InvertedPendulum": (("pole",), ("x",), 3.0),
    }
    for name, (bodies, axes, bound) in expected.items():
        spec = ADVERSARIAL_ENVS[name]
        assert (spec.bodies, spec.axes, spec.force_bound) == (bodies, axes, bound)


def rollout(game: AdversarialMujocoEnv, seed: int, steps: int, action_seed: int) -> list[Any]:
    rng = np.random.default_rng(action_seed)
    pro_space, adv_space = game.protagonist_action_space, game.adversary_action_space
    obs, _ = game.reset(seed=seed)
    trace: list[Any] = [obs]
    for _ in range(steps):
        pro = rng.uniform(pro_space.low, pro_space.high).astype(np.float32)
        adv = rng.uniform(-1, 1, adv_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = game.step(pro, adv)
        trace += [obs, reward, terminated, truncated, info["adversary_force"]]
        if terminated or truncated:
            obs, _ = game.reset()  # unseeded: continues the seeded generator
            trace.append(obs)
    return trace


def traces_equal(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", ENV_NAMES)
def test_seeded_determinism(name: str) -> None:
    steps = 10 if name == "Humanoid" else 60  # long enough for Hopper/Walker2d/InvertedPendulum to reset
    first = rollout(AdversarialMujocoEnv(name, max_episode_steps=25), seed=11, steps=steps, action_seed=0)
    second = rollout(AdversarialMujocoEnv(name, max_episode_steps=25), seed=11, steps=steps, action_seed=0)
    assert traces_equal(first, second)
    other_seed = rollout(AdversarialMujocoEnv(name, max_episode_steps=25), seed=12, steps=steps, action_seed=0)
    assert not np.array_equal(first[0], other_seed[0])


# ---------------------------------------------------------------- forces
def qacc_with(game: AdversarialMujocoEnv, xfrc: np.ndarray) -> np.ndarray:
    """Accelerations at the current state under external forces ``xfrc`` (the state is not advanced)."""
    np.copyto(game.data.xfrc_applied, xfrc)
    mujoco.mj_forward(game.model, game.data)
    return game.data.qacc.copy()


def generic_state(game: AdversarialMujocoEnv, seed: int = 0, steps: int = 5) -> None:
    """Reset and take a few random protagonist steps so the state is not the symmetric initial one."""
    game.reset(seed=seed)
    rng = np.random.default_rng(seed)
    space = game.protagonist_action_space
    for _ in range(steps):
        game.step(rng.uniform(space.low, space.high).astype(np.float32), zero_adv(game))


@pytest.mark.parametrize("name", ENV_NAMES)
def test_each_adversary_dimension_pushes_its_body_along_its_axis(name: str) -> None:
    """The action maps to ``xfrc_applied[body, axis]``, and the body's COM accelerates along the force.

    With the state fixed, an external force ``f`` on a body changes ``qacc`` by ``Δqacc`` with
    ``f · (J_com Δqacc) > 0`` (MuJoCo's constrained forward dynamics is a proximal map in the
    mass-matrix metric, hence monotone in the generalized force ``J_com^T f``).
    """
    game = AdversarialMujocoEnv(name)
    generic_state(game)
    n_axes = len(game.axes)
    for k in range(game.adversary_action_space.shape[0]):
        body, axis = game.bodies[k // n_axes], game.axes[k % n_axes]
        bid, aid = game.body_id(body), AXES.index(axis)
        state = (game.data.qpos.copy(), game.data.qvel.copy(), game.data.act.copy(), game.data.time)
        for sign in (1.0, -1.0):
            *_, info = game.step(zero_pro(game), unit_adv(game, k, sign))
            expected = np.zeros((game.model.nbody, 6))
            expected[bid, aid] = sign * game.force_bound
            assert np.array_equal(game.data.xfrc_applied, expected), "the action did not land on (body, axis)"
            assert np.array_equal(info["adversary_force"], expected[game._body_ids, :3])
            pushed = game.data.xfrc_applied.copy()
            # back to the state before the step: compare accelerations with and without this force
            game.data.qpos[:], game.data.qvel[:], game.data.act[:] = state[0], state[1], state[2]
            game.data.time = state[3]
            base = qacc_with(game, np.zeros_like(pushed))
            jac = np.zeros((3, game.model.nv))
            mujoco.mj_jacBodyCom(game.model, game.data, jac, None, bid)
            dqacc = qacc_with(game, pushed) - base
            dacc = jac @ dqacc
            assert np.abs(dqacc).max() > 1e-6, f"{name} {body} {axis}: the force has no effect"
            assert sign * dacc[aid] > 1e-6, f"{name} {body} {axis}{sign:+}: COM acceleration change {dacc}"
            assert float(pushed[bid, :3] @ dacc) > 0


@pytest.mark.parametrize("name", ENV_NAMES)
def test_dead_axes_do_nothing_and_are_rejected(name: str) -> None:
    """Why planar tasks never offer the off-plane axis: a raw force along it leaves qacc unchanged."""
    spec = ADVERSARIAL_ENVS[name]
    game = AdversarialMujocoEnv(name)
    generic_state(game)
    bid = game.body_id(spec.bodies[0])
    base = qacc_with(game, np.zeros_like(game.data.xfrc_applied))
    for aid, axis in enumerate(AXES):
        xfrc = np.zeros_like(game.data.xfrc_applied)
        xfrc[bid, aid] = spec.force_bound
        moved = np.abs(qacc_with(game, xfrc) - base).max()
        if axis in spec.live_axes:
            assert moved > 1e-6
        else:
            assert moved == 0.0
            with pytest.raises(ValueError, match="does nothing") as err:
                AdversarialMujocoEnv(name, axes=[spec.live_axes[0], axis])
            assert f"valid axes: {list(spec.live_axes)}" in str(err.value) and repr(axis) in str(err.value)


@pytest.mark.parametrize("name", PLANAR)
def test_y_axis_on_planar_env_names_valid_axes(name: str) -> None:
    live = ADVERSARIAL_ENVS[name].live_axes
    dead = next(a for a in AXES if a not in live)
    with pytest.raises(ValueError, match=re.escape(f"valid axes: {list(live)}")):
        AdversarialMujocoEnv(name, axes=[dead])


def test_axis_and_body_validation() -> None:
    with pytest.raises(ValueError, match=r"axis 'w' is not valid for Ant; valid axes: \['x', 'y', 'z'\]"):
        AdversarialMujocoEnv("Ant", axes=["w"])
    with pytest.raises(ValueError, match="must not repeat"):
        AdversarialMujocoEnv("Hopper", axes=["x", "x"])
    with pytest.raises(ValueError, match="must not repeat"):
        AdversarialMujocoEnv("Hopper", bodies=["foot", "foot"])


def test_custom_bodies_and_axes() -> None:
    game = AdversarialMujocoEnv("Walker2d", bodies=["torso", "foot_left"], axes=["z"], force_bound=2.0)
    assert game.adversary_action_space.shape == (2,)
    game.reset(seed=0)
    game.step(zero_pro(game), np.array([0.5, -1.0], dtype=np.float32))
    torso, foot_left = game.body_id("torso"), game.body_id("foot_left")
    assert game.data.xfrc_applied[torso, :3].tolist() == [0.0, 0.0, 1.0]
    assert game.data.xfrc_applied[foot_left, :3].tolist() == [0.0, 0.0, -2.0]


@pytest.mark.parametrize("name", ["Hopper", "Ant"])
def test_xfrc_applied_is_zero_after_reset_and_with_zero_adversary(name: str) -> None:
    game = AdversarialMujocoEnv(name)
    game.reset(seed=0)
    game.step(zero_pro(game), np.ones(game.adversary_action_space.shape, dtype=np.float32))
    assert np.abs(game.data.xfrc_applied).max() == game.force_bound
    game.reset(seed=1)
    assert not game.data.xfrc_applied.any()
    game.step(zero_pro(game), np.ones(game.adversary_action_space.shape, dtype=np.float32))
    *_, info = game.step(zero_pro(game), zero_adv(game))  # forces are rewritten every step, not accumulated
    assert not game.data.xfrc_applied.any() and not info["adversary_force"].any()


def test_actions_are_clipped_to_the_bound() -> None:
    game = AdversarialMujocoEnv("Hopper", force_bound=3.0)
    game.reset(seed=0)
    *_, info = game.step(zero_pro(game), np.array([5.0, -7.0], dtype=np.float32))
    assert info["adversary_force"][0].tolist() == [3.0, 0.0, -3.0]
    *_, info = game.step(zero_pro(game), np.array([0.25, -0.5], dtype=np.float32))
    assert info["adversary_force"][0].tolist() == [0.75, 0.0, -1.5]


def test_set_force_limit_clips() -> None:
    game = AdversarialMujocoEnv("Hopper", force_bound=3.0)
    game.reset(seed=0)
    game.set_force_limit(1.0)
    *_, info = game.step(zero_pro(game), np.array([0.5, 0.2], dtype=np.float32))
    assert np.allclose(info["adversary_force"][0], [1.0, 0.0, 0.6])  # 1.5 N clipped to 1 N; 0.6 N untouched
    *_, info = game.step(zero_pro(game), np.array([-1.0, -1.0], dtype=np.float32))
    assert info["adversary_force"][0].tolist() == [-1.0, 0.0, -1.0]
    game.set_force_limit(0.0)
    *_, info = game.step(zero_pro(game), np.array([1.0, 1.0], dtype=np.float32))
    assert not info["adversary_force"].any() and not game.data.xfrc_applied.any()
    game.set_force_limit(100.0)  # never above the bound
    assert game.force_limit == 3.0
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="force limit"):
            game.set_force_limit(bad)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_force_bound(bad: float) -> None:
    with pytest.raises(ValueError, match="force_bound"):
        AdversarialMujocoEnv("Hopper", force_bound=bad)


# ---------------------------------------------------------------- dynamics perturbations
def nominal_arrays(game: AdversarialMujocoEnv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return game.model.body_mass.copy(), game.model.body_inertia.copy(), game.model.geom_friction.copy()


def assert_nominal(game: AdversarialMujocoEnv, nominal: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    assert np.array_equal(game.model.body_mass, nominal[0])
    assert np.array_equal(game.model.body_inertia, nominal[1])
    assert np.array_equal(game.model.geom_friction, nominal[2])


@pytest.mark.parametrize("name", ["Hopper", "HalfCheetah", "Ant"])
def test_whole_model_scaling_and_exact_restore(name: str) -> None:
    game = AdversarialMujocoEnv(name)
    nominal = nominal_arrays(game)
    game.reset(seed=0, options={"mass_scale": 1.7, "friction_scale": 0.3})
    assert np.allclose(game.model.body_mass, 1.7 * nominal[0])
    assert np.allclose(game.model.body_inertia, 1.7 * nominal[1])
    assert np.allclose(game.model.geom_friction[:, 0], 0.3 * nominal[2][:, 0])
    assert np.array_equal(game.model.geom_friction[:, 1:], nominal[2][:, 1:])  # torsional/rolling untouched
    game.reset(seed=0)
    assert_nominal(game, nominal)


def test_named_bodies_scaling_touches_only_those_bodies() -> None:
    game = AdversarialMujocoEnv("Walker2d")
    nominal = nominal_arrays(game)
    torso, foot = game.body_id("torso"), game.body_id("foot")
    game.reset(options={"mass_scale": 2.0, "mass_bodies": ["torso"], "friction_scale": 0.5, "friction_bodies": ["foot"]})
    changed_mass = np.flatnonzero(game.model.body_mass != nominal[0])
    assert changed_mass.tolist() == [torso]
    assert game.model.body_mass[torso] == 2.0 * nominal[0][torso]
    assert np.array_equal(game.model.body_inertia[torso], 2.0 * nominal[1][torso])
    foot_geoms = np.flatnonzero(game.model.geom_bodyid == foot)
    assert foot_geoms.size > 0
    changed_friction = np.flatnonzero((game.model.geom_friction != nominal[2]).any(axis=1))
    assert changed_friction.tolist() == foot_geoms.tolist()
    assert np.array_equal(game.model.geom_friction[foot_geoms, 0], 0.5 * nominal[2][foot_geoms, 0])
    game.reset()
    assert_nominal(game, nominal)


def test_mapping_form() -> None:
    game = AdversarialMujocoEnv("Hopper")
    nominal = nominal_arrays(game)
    torso, foot = game.body_id("torso"), game.body_id("foot")
    game.set_dynamics(mass_scale={"torso": 3.0, "foot": 0.5}, friction_scale={"foot": 2.0})
    expected_mass = nominal[0].copy()
    expected_mass[[torso, foot]] *= [3.0, 0.5]
    assert np.array_equal(game.model.body_mass, expected_mass)
    foot_geoms = game.model.geom_bodyid == foot
    assert np.array_equal(game.model.geom_friction[foot_geoms, 0], 2.0 * nominal[2][foot_geoms, 0])
    assert np.array_equal(game.model.geom_friction[~foot_geoms], nominal[2][~foot_geoms])
    game.restore_nominal()
    assert_nominal(game, nominal)


def test_scaling_does_not_compound() -> None:
    game = AdversarialMujocoEnv("Hopper")
    game.set_dynamics(mass_scale=2.0, friction_scale=0.5)
    once = nominal_arrays(game)
    game.set_dynamics(mass_scale=2.0, friction_scale=0.5)
    game.reset(options={"mass_scale": 2.0, "friction_scale": 0.5})
    assert_nominal(game, once)
    game.set_dynamics(mass_scale=3.0)  # a new call replaces the previous factors (friction back to nominal)
    game.set_dynamics()
    game.reset()
    game.set_dynamics(mass_scale=2.0, friction_scale=0.5)
    assert_nominal(game, once)


def test_perturbation_changes_the_dynamics_and_reset_restores_them() -> None:
    game = AdversarialMujocoEnv("Hopper")
    nominal = rollout(game, seed=4, steps=15, action_seed=1)
    heavy = rollout_with_options(game, {"mass_scale": 1.5}, seed=4, steps=15, action_seed=1)
    slippery = rollout_with_options(game, {"friction_scale": 0.1}, seed=4, steps=15, action_seed=1)
    assert not traces_equal(nominal, heavy) and not traces_equal(nominal, slippery)
    assert traces_equal(nominal, rollout(game, seed=4, steps=15, action_seed=1))


def rollout_with_options(game: AdversarialMujocoEnv, options: dict[str, Any], **kwargs: Any) -> list[Any]:
    original = game.reset

    def reset(**reset_kwargs: Any) -> Any:
        return original(**reset_kwargs, options=options)

    game.reset = reset  # type: ignore[method-assign]
    try:
        return rollout(game, **kwargs)
    finally:
        del game.reset


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"mass_scale": 0.0}, "mass_scale must be positive"),
        ({"friction_scale": -1.0}, "friction_scale must be positive"),
        ({"mass_scale": float("nan")}, "mass_scale must be positive"),
        ({"mass_scale": {"torso": 2.0}, "mass_bodies": ["foot"]}, "either as a mapping or with a body list"),
        ({"mass_scale": 2.0, "mass_bodies": ["tors"]}, "did you mean 'torso'"),
        ({"friction_scale": {"shin": 2.0}}, "unknown body of Hopper 'shin'"),
        ({"masses": 2.0}, r"unknown reset options \['masses'\]; valid: \['mass_scale'"),
        ({"mass": 2.0}, r"mass must be a \{body: kg\} mapping"),
        ({"mass": {"torso": -1.0}}, "mass must be positive"),
        ({"friction": {"shin": 2.0}}, "unknown body of Hopper 'shin'"),
    ],
)
def test_bad_perturbations_raise_and_leave_model_nominal(options: dict[str, Any], match: str) -> None:
    game = AdversarialMujocoEnv("Hopper")
    nominal = nominal_arrays(game)
    with pytest.raises(ValueError, match=match):
        game.reset(seed=0, options=options)
    game.reset(seed=0)
    assert_nominal(game, nominal)


# ---------------------------------------------------------------- rewards, info, episode end
def test_zero_sum_reward_and_task_terms() -> None:
    game = AdversarialMujocoEnv("Hopper")
    game.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, reward, terminated, _, info = game.step(
            rng.uniform(-1, 1, 3).astype(np.float32), rng.uniform(-1, 1, 2).astype(np.float32)
        )
        assert info["reward_adversary"] == -reward
        terms = info["reward_forward"] + info["reward_ctrl"] + info["reward_survive"]
        assert terms == pytest.approx(reward, abs=1e-12)
        assert info["adversary_force"].shape == (1, 3)
        if terminated:
            break


def test_truncation_after_max_episode_steps() -> None:
    game = AdversarialMujocoEnv("Swimmer", max_episode_steps=5)  # Swimmer never terminates
    for _ in range(2):
        game.reset(seed=0)
        flags = [game.step(zero_pro(game), zero_adv(game))[3] for _ in range(5)]
        assert flags == [False] * 4 + [True]
    with pytest.raises(ValueError, match="max_episode_steps"):
        AdversarialMujocoEnv("Swimmer", max_episode_steps=0)


# ---------------------------------------------------------------- bad input
def test_unknown_env_name_lists_valid_names_and_close_match() -> None:
    with pytest.raises(ValueError) as err:
        AdversarialMujocoEnv("Hoper")
    msg = str(err.value)
    assert "unknown adversarial env 'Hoper'" in msg and "did you mean 'Hopper'?" in msg
    assert all(repr(name) in msg for name in ENV_NAMES)
    with pytest.raises(ValueError, match="did you mean 'HalfCheetah'"):
        make_adversarial_env("Halfcheetah")


def test_unknown_body_lists_valid_bodies() -> None:
    with pytest.raises(ValueError) as err:
        AdversarialMujocoEnv("Hopper", bodies=["fot"])
    msg = str(err.value)
    assert "unknown body of Hopper 'fot'" in msg and "did you mean 'foot'?" in msg
    assert all(repr(body) in msg for body in ("torso", "thigh", "leg", "foot"))
    assert "world" not in msg


@pytest.mark.parametrize(
    ("who", "pro_shape", "adv_shape"),
    [("protagonist", (2,), (2,)), ("protagonist", (1, 3), (2,)), ("adversary", (3,), (3,)), ("adversary", (3,), ())],
)
def test_wrong_action_shape_names_both_shapes(who: str, pro_shape: tuple[int, ...], adv_shape: tuple[int, ...]) -> None:
    game = AdversarialMujocoEnv("Hopper")
    game.reset(seed=0)
    bad = pro_shape if who == "protagonist" else adv_shape
    good = (3,) if who == "protagonist" else (2,)
    with pytest.raises(ValueError, match=re.escape(f"{who} action has shape {bad}; expected {good}")):
        game.step(np.zeros(pro_shape), np.zeros(adv_shape))


def test_single_array_action_is_rejected() -> None:
    game = AdversarialMujocoEnv("Hopper")
    game.reset(seed=0)
    with pytest.raises(ValueError, match=r"step\(protagonist_action, adversary_action\)"):
        game.step(np.zeros(3))


def test_game_generator_is_not_a_clone_of_the_reset_noise_generator() -> None:
    """Players that draw from ``game.np_random`` (the demo's random players) must not replay the reset noise."""
    game = AdversarialMujocoEnv("Hopper")
    game.reset(seed=0)
    noise = (game.data.qpos - game.task.init_qpos) / game.task._reset_noise_scale
    draws = game.np_random.uniform(-1.0, 1.0, size=noise.shape)
    assert not np.allclose(draws, noise)


def test_halfcheetah_builds_without_the_settotalmass_warning(capfd, tmp_path, monkeypatch) -> None:
    """Gymnasium's half_cheetah.xml uses a deprecated attribute; MuJoCo's warning is dropped, others still print."""
    from envs.adversarial.env import quiet_settotalmass

    monkeypatch.chdir(tmp_path)  # MuJoCo's default handler also appends the warning to ./MUJOCO_LOG.TXT
    installed = mujoco.get_mju_user_warning()  # dm_control, once imported in this process, installs its own
    mujoco.set_mju_user_warning(None)
    try:
        game = AdversarialMujocoEnv("HalfCheetah")
        game.close()
        with quiet_settotalmass():
            mujoco.get_mju_user_warning()("another warning")
        err = capfd.readouterr().err
        assert "settotalmass" not in err and "WARNING: another warning" in err
        assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
        assert mujoco.get_mju_user_warning() is None  # the default handler is back
    finally:
        mujoco.set_mju_user_warning(installed)


def test_quiet_settotalmass_forwards_to_a_c_callback(capfd) -> None:
    """A handler installed as a C callback (dm_control's) gets other warnings as bytes, not a ctypes error."""
    import ctypes

    from envs.adversarial.env import quiet_settotalmass

    seen: list[bytes] = []
    callback = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(seen.append)
    installed = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(callback)
    try:
        with quiet_settotalmass():
            handler = mujoco.get_mju_user_warning()
            handler("another warning")
            handler("settotalmass is deprecated")
    finally:
        mujoco.set_mju_user_warning(installed)
    assert seen == [b"another warning"]

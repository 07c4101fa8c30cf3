"""Single-agent views: check_env, zero-sum rewards, the appended context, opponents, SB3 vec envs and SAC."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from envs.adversarial import (
    AdversarialMujocoEnv,
    AdversaryView,
    PlayerView,
    PredictPolicy,
    ProtagonistView,
    make_adversarial_env,
)
from envs.adversarial.specs import family_envs

pytestmark = pytest.mark.filterwarnings("ignore:.*Box observation space m:UserWarning", "ignore:.*symmetric and normalized")

# the gymnasium family (the dm_control family has its own tests: tests/test_adversarial_dmc.py)
ENV_NAMES = family_envs("gymnasium")
REGISTERED_IDS = sorted(i for i in gym.registry if i.startswith("rldyn/Adversarial") and "DMC" not in i)
PLAYERS = ("protagonist", "adversary")


def replay(actions: Sequence[np.ndarray]) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """An opponent that plays a fixed action sequence (ignores the observation)."""
    it = iter(actions)
    return lambda obs, np_random: next(it)


def action_sequences(game: AdversarialMujocoEnv, steps: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    pro_space, adv_space = game.protagonist_action_space, game.adversary_action_space
    pro = [rng.uniform(pro_space.low, pro_space.high).astype(np.float32) for _ in range(steps)]
    adv = [rng.uniform(-1, 1, adv_space.shape).astype(np.float32) for _ in range(steps)]
    return pro, adv


# ---------------------------------------------------------------- Gymnasium contract
@pytest.mark.parametrize("env_id", REGISTERED_IDS)
@pytest.mark.parametrize("player", PLAYERS)
@pytest.mark.parametrize("extras", [{}, {"opponent": "random", "append_context": True, "context": 0.5}], ids=["plain", "ctx"])
def test_check_env_views(env_id: str, player: str, extras: dict) -> None:
    env = gym.make(env_id, view=player, **extras)
    view = env.unwrapped
    assert isinstance(view, PlayerView) and view.player == player
    check_env(view, skip_render_check=True)
    game = view.game
    own = game.protagonist_action_space if player == "protagonist" else game.adversary_action_space
    assert view.action_space == own
    extra_dim = 1 if extras else 0
    assert view.observation_space.shape == (game.observation_space.shape[0] + extra_dim,)
    env.close()


def test_view_classes_and_factory_agree() -> None:
    assert ProtagonistView("Hopper").player == "protagonist"
    assert AdversaryView("Hopper").player == "adversary"
    game = AdversarialMujocoEnv("Hopper", force_bound=1.0)
    view = AdversaryView(game)
    assert view.game is game and view.action_space.shape == (2,)
    built = make_adversarial_env("Walker2d", view="adversary", force_bound=2.0, append_context=True)
    assert isinstance(built, PlayerView) and built.game.force_bound == 2.0 and built.append_context


# ---------------------------------------------------------------- zero-sum
@pytest.mark.parametrize("name", ENV_NAMES)
def test_adversary_view_reward_is_exactly_minus_protagonist(name: str) -> None:
    steps = 8 if name == "Humanoid" else 40
    probe = AdversarialMujocoEnv(name)
    pro_actions, adv_actions = action_sequences(probe, steps, seed=1)
    pro_view = ProtagonistView(name, opponent=replay(adv_actions))
    adv_view = AdversaryView(name, opponent=replay(pro_actions))
    obs_p, _ = pro_view.reset(seed=5)
    obs_a, _ = adv_view.reset(seed=5)
    assert np.array_equal(obs_p, obs_a)
    for t in range(steps):
        obs_p, r_p, term_p, trunc_p, info_p = pro_view.step(pro_actions[t])
        obs_a, r_a, term_a, trunc_a, info_a = adv_view.step(adv_actions[t])
        assert np.array_equal(obs_p, obs_a)
        assert r_a == -r_p and info_p["reward_adversary"] == -r_p and info_a["reward_adversary"] == r_a
        assert (term_p, trunc_p) == (term_a, trunc_a)
        if term_p or trunc_p:
            break


def test_view_step_is_the_game_step() -> None:
    game = AdversarialMujocoEnv("HalfCheetah")
    pro_actions, adv_actions = action_sequences(game, 10, seed=2)
    view = ProtagonistView("HalfCheetah", opponent=replay(adv_actions))
    view.reset(seed=0)
    game.reset(seed=0)
    for pro, adv in zip(pro_actions, adv_actions, strict=True):
        a = view.step(pro)
        b = game.step(pro, adv)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]
        assert np.array_equal(a[4]["adversary_force"], b[4]["adversary_force"])


def test_zero_opponent_means_no_force() -> None:
    view = ProtagonistView("Hopper", opponent=None)
    view.reset(seed=0)
    *_, info = view.step(view.action_space.sample())
    assert not info["adversary_force"].any() and not view.game.data.xfrc_applied.any()
    adversary = AdversaryView("Hopper", opponent="zero")
    adversary.reset(seed=0)
    adversary.step(np.ones(2, dtype=np.float32))
    assert not adversary.game.data.ctrl.any()  # a zero protagonist: no actuator torque


# ---------------------------------------------------------------- opponents and determinism
@pytest.mark.parametrize("player", PLAYERS)
def test_random_opponent_is_seeded_by_the_view(player: str) -> None:
    def trace(seed: int) -> list[np.ndarray]:
        view = PlayerView("Hopper", player=player, opponent="random")
        view.action_space.seed(0)
        obs, _ = view.reset(seed=seed)
        out = [obs]
        for _ in range(10):
            obs, reward, *_ = view.step(np.zeros(view.action_space.shape, dtype=np.float32))
            out += [obs, np.array(reward)]
        return out

    a, b, c = trace(3), trace(3), trace(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_opponent_sees_the_view_observation_and_set_opponent() -> None:
    seen: list[np.ndarray] = []

    def spy(obs: np.ndarray, np_random: np.random.Generator) -> np.ndarray:
        seen.append(obs.copy())
        return np.zeros(2, dtype=np.float32)

    view = ProtagonistView("Hopper", opponent=spy, append_context=True, context=0.25)
    obs, _ = view.reset(seed=0)
    obs2, *_ = view.step(np.zeros(3, dtype=np.float32))
    view.step(np.zeros(3, dtype=np.float32))
    assert np.array_equal(seen[0], obs) and np.array_equal(seen[1], obs2)
    view.set_opponent("random")
    *_, info = view.step(np.zeros(3, dtype=np.float32))
    assert len(seen) == 2 and info["adversary_force"].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"opponent": "rand"}, "unknown opponent 'rand'"),
        ({"opponent": 3}, "opponent must be"),
        ({"player": "advesary"}, "did you mean 'adversary'"),
    ],
)
def test_bad_view_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PlayerView("Hopper", **kwargs)


def test_factory_rejects_unknown_view() -> None:
    with pytest.raises(ValueError, match=r"unknown view 'both'; valid choices: \['adversary', 'protagonist'\]"):
        make_adversarial_env("Hopper", view="both")


@pytest.mark.parametrize(("player", "bad", "good"), [("protagonist", (2,), (3,)), ("adversary", (3,), (2,))])
def test_view_wrong_action_shape(player: str, bad: tuple[int, ...], good: tuple[int, ...]) -> None:
    view = PlayerView("Hopper", player=player)
    view.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape(f"{player} action has shape {bad}; expected {good}")):
        view.step(np.zeros(bad))


def test_view_passes_perturbations_and_rejects_unknown_options() -> None:
    view = AdversaryView("Hopper", append_context=True)
    nominal = view.game.model.body_mass.copy()
    view.reset(seed=0, options={"context": 1.0, "mass_scale": 2.0})
    assert np.array_equal(view.game.model.body_mass, 2.0 * nominal) and view.context == 1.0
    view.reset(seed=0)
    assert np.array_equal(view.game.model.body_mass, nominal) and view.context == 1.0  # the context stays
    with pytest.raises(ValueError, match=r"unknown reset options \['contxt'\]"):
        view.reset(options={"contxt": 1.0})


# ---------------------------------------------------------------- appended context
@pytest.mark.parametrize("player", PLAYERS)
def test_context_is_the_last_observation_entry(player: str) -> None:
    view = PlayerView("Walker2d", player=player, opponent="random", append_context=True, context=0.7)
    plain = PlayerView("Walker2d", player=player, opponent="random")
    assert view.observation_space.shape == (18,)
    assert view.observation_space.low[-1] == 0.0 and view.observation_space.high[-1] == np.inf
    obs, _ = view.reset(seed=0)
    ref, _ = plain.reset(seed=0)
    assert obs[-1] == np.float64(0.7) and np.array_equal(obs[:-1], ref)
    for t in range(6):
        if t == 3:
            view.set_context(2.5)  # takes effect from the next observation on
        obs, *_ = view.step(np.zeros(view.action_space.shape, dtype=np.float32))
        assert obs[-1] == (0.7 if t < 3 else 2.5)
    obs, _ = view.reset(seed=1, options={"context": 4.0})
    assert obs[-1] == 4.0 and view.context == 4.0
    assert obs in view.observation_space


def test_context_matches_plain_view_exactly() -> None:
    pro_actions, adv_actions = action_sequences(AdversarialMujocoEnv("Hopper"), 15, seed=3)
    with_ctx = ProtagonistView("Hopper", opponent=replay(adv_actions), append_context=True, context=0.1)
    without = ProtagonistView("Hopper", opponent=replay(adv_actions))
    a, _ = with_ctx.reset(seed=2)
    b, _ = without.reset(seed=2)
    assert np.array_equal(a[:-1], b)
    for pro in pro_actions:
        a, ra, *_ = with_ctx.step(pro)
        b, rb, *_ = without.step(pro)
        assert np.array_equal(a[:-1], b) and a[-1] == 0.1 and ra == rb


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_context_out_of_bounds_rejected(bad: float) -> None:
    view = ProtagonistView("Hopper", append_context=True, context_bounds=(0.0, 10.0))
    with pytest.raises(ValueError, match="outside its bounds"):
        view.set_context(bad)
    with pytest.raises(ValueError, match="outside its bounds"):
        view.reset(options={"context": bad})
    with pytest.raises(ValueError, match="outside its bounds"):
        ProtagonistView("Hopper", append_context=True, context=bad, context_bounds=(0.0, 10.0))
    assert view.context == 0.0


# ---------------------------------------------------------------- stable-baselines3
@pytest.mark.parametrize("player", PLAYERS)
def test_dummy_vec_env(player: str) -> None:
    venv = make_vec_env(
        "rldyn/AdversarialHopper-v5",
        n_envs=2,
        seed=0,
        env_kwargs={"view": player, "opponent": "random", "append_context": True, "max_episode_steps": 7},
        vec_env_cls=DummyVecEnv,
    )
    obs = venv.reset()
    assert obs.shape == (2, 12) and np.all(obs[:, -1] == 0.0)
    dones = 0
    for _ in range(10):
        obs, rewards, done, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        assert obs.shape == (2, 12) and np.all(np.isfinite(rewards))
        sign = -1.0 if player == "protagonist" else 1.0  # SB3 stores rewards as float32
        assert [np.float32(info["reward_adversary"]) for info in infos] == [sign * r for r in rewards]
        dones += int(done.sum())
    assert dones >= 2  # truncation at 7 steps went through SB3's auto-reset
    venv.close()


def test_subproc_vec_env() -> None:
    venv = make_vec_env(
        AdversaryView,
        n_envs=2,
        seed=0,
        env_kwargs={"env": "Hopper", "opponent": "random", "append_context": True, "context": 0.3},
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "fork"},
    )
    try:
        obs = venv.reset()
        assert obs.shape == (2, 12) and np.all(obs[:, -1] == np.float64(0.3))
        assert not np.array_equal(obs[0], obs[1])  # different seeds per worker
        for _ in range(5):
            obs, rewards, _, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
            assert [info["reward_adversary"] for info in infos] == list(rewards)  # stacked float64 here
        venv.env_method("set_context", 1.5)
        obs, *_ = venv.step(np.zeros((2, 2), dtype=np.float32))
        assert np.all(obs[:, -1] == 1.5)
    finally:
        venv.close()


def tiny_sac(env: gym.Env, seed: int = 0) -> SAC:
    return SAC(
        "MlpPolicy",
        env,
        learning_starts=32,
        batch_size=32,
        buffer_size=1000,
        policy_kwargs={"net_arch": [16]},
        seed=seed,
        device="cpu",
    )


def actor_params(model: SAC) -> np.ndarray:
    return np.concatenate([p.detach().cpu().numpy().ravel() for p in model.actor.parameters()])


def test_sac_trains_both_sides_and_serves_as_opponent() -> None:
    pro_model = tiny_sac(ProtagonistView("Hopper", opponent="random", append_context=True, context=0.2))
    before = actor_params(pro_model)
    pro_model.learn(total_timesteps=64)
    assert pro_model.num_timesteps == 64 and not np.array_equal(before, actor_params(pro_model))

    adv_view = AdversaryView("Hopper", opponent=pro_model, append_context=True, context=0.2)
    adv_model = tiny_sac(adv_view, seed=1)
    before = actor_params(adv_model)
    adv_model.learn(total_timesteps=64)
    assert adv_model.num_timesteps == 64 and not np.array_equal(before, actor_params(adv_model))
    assert isinstance(adv_view.opponent, PredictPolicy)

    # a trained model as a deterministic opponent: the view plays exactly the model's action
    back = ProtagonistView("Hopper", opponent=PredictPolicy(adv_model, deterministic=True), append_context=True, context=0.2)
    obs, _ = back.reset(seed=0)
    expected, _ = adv_model.predict(obs, deterministic=True)
    assert expected.shape == (2,) and np.all(np.abs(expected) <= 1.0)
    *_, info = back.step(np.zeros(3, dtype=np.float32))
    assert np.allclose(info["adversary_force"][0, [0, 2]], expected * back.game.force_bound)


def test_random_opponent_stream_is_not_the_reset_noise_stream() -> None:
    """The task seeds its reset-noise generator with the same seed; the opponent's draws must not replay it."""
    view = ProtagonistView("Hopper", opponent="random")
    view.reset(seed=0)
    noise = (view.game.data.qpos - view.game.task.init_qpos) / view.game.task._reset_noise_scale
    *_, info = view.step(np.zeros(3, dtype=np.float32))
    first_action = info["adversary_force"][0, [0, 2]] / view.game.force_bound
    assert not np.allclose(first_action, noise[:2])

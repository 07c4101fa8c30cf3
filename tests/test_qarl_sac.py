import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from rl.qarl.sac import QARLSAC, LossNotFiniteError, PerSampleTemperatureSAC


class TinyEnv(gym.Env):
    """3 observations + a temperature column, 2 actions."""

    def __init__(self):
        self.observation_space = spaces.Box(np.array([-1, -1, -1, 0], np.float32), np.array([1, 1, 1, np.inf], np.float32))
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([0, 0, 0, 0.05], np.float32), {}

    def step(self, action):
        return np.array([0.1, 0, 0, 0.05], np.float32), float(-np.sum(action**2)), False, False, {}


def make(cls=PerSampleTemperatureSAC, **kw):
    th.manual_seed(0)
    return cls("MlpPolicy", TinyEnv(), policy_kwargs={"net_arch": [8]}, learning_starts=0, batch_size=4, seed=0, **kw)


def batch(n=5, seed=0):
    g = th.Generator().manual_seed(seed)
    obs = th.rand(n, 4, generator=g) * 2 - 1
    obs[:, -1] = th.tensor([0.01, 0.05, 0.2, 1.0, 3.0])[:n]
    return obs


def test_actor_loss_uses_per_sample_temperature():
    model = make()
    assert model.log_ent_coef is None and model.ent_coef_optimizer is None
    obs = batch()
    th.manual_seed(1)
    actions, log_prob = model.actor.action_log_prob(obs)
    log_prob = log_prob.reshape(-1, 1)
    alpha = model._entropy_coefficient(obs, log_prob, update_actor=True)
    loss = model.actor_loss(obs, actions, log_prob, alpha)
    # hand-computed: mean_i(alpha_i * log pi_i - min_j Q_j(s_i, a_i)), sample by sample
    terms = []
    for i in range(obs.shape[0]):
        q1, q2 = model.critic(obs[i : i + 1], actions[i : i + 1])
        terms.append(obs[i, -1] * log_prob[i, 0] - th.minimum(q1, q2)[0, 0])
    hand = th.stack(terms).mean()
    assert loss.item() == pytest.approx(hand.item(), abs=1e-6)
    # gradients w.r.t. the actor agree too
    g_loss = th.autograd.grad(loss, list(model.actor.parameters()), retain_graph=True)
    g_hand = th.autograd.grad(hand, list(model.actor.parameters()))
    for a, b in zip(g_loss, g_hand, strict=True):
        th.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    # changing one alpha changes exactly that sample's term
    obs2 = obs.clone()
    obs2[2, -1] += 0.5
    loss2 = model.actor_loss(obs2, actions, log_prob, model._entropy_coefficient(obs2, log_prob, True))
    # the critic sees the changed observation too, so compare only through alpha: fix Q by reusing obs for Q
    q = th.cat(model.critic(obs, actions), dim=1).min(dim=1, keepdim=True)[0]
    expected = ((obs2[:, -1:] * log_prob) - q).mean()
    manual = ((obs[:, -1:] * log_prob) - q).mean()
    assert (expected - manual).item() == pytest.approx(0.5 * log_prob[2, 0].item() / 5, abs=1e-6)
    assert loss2.item() != pytest.approx(loss.item(), abs=1e-9)


def test_setting_ent_coef_has_no_effect():
    model = make()
    obs = batch()
    th.manual_seed(2)
    actions, log_prob = model.actor.action_log_prob(obs)
    before = model.actor_loss(obs, actions, log_prob.reshape(-1, 1), model._entropy_coefficient(obs, log_prob, True))
    model.ent_coef = 123.0
    after = model.actor_loss(obs, actions, log_prob.reshape(-1, 1), model._entropy_coefficient(obs, log_prob, True))
    assert before.item() == after.item()


def test_target_uses_per_sample_temperature():
    model = make()
    obs = batch()
    rewards, dones = th.ones(5, 1), th.zeros(5, 1)
    alpha = model._entropy_coefficient(obs, th.zeros(5, 1), True)
    th.manual_seed(3)
    y = model.target_q_values(obs, rewards, dones, 0.99, alpha)
    th.manual_seed(3)
    next_a, next_lp = model.actor.action_log_prob(obs)
    q = th.cat(model.critic_target(obs, next_a), dim=1).min(dim=1, keepdim=True)[0]
    expected = rewards + 0.99 * (q - obs[:, -1:] * next_lp.reshape(-1, 1))
    th.testing.assert_close(y, expected)


def test_scale_invariance_of_actor_loss():
    # with fixed weights, scaling alpha and Q by c scales the actor loss by c
    model = make()
    obs = batch()
    th.manual_seed(4)
    actions, log_prob = model.actor.action_log_prob(obs)
    q = th.cat(model.critic(obs, actions), dim=1).min(dim=1, keepdim=True)[0]
    c = 7.0
    base = (obs[:, -1:] * log_prob.reshape(-1, 1) - q).mean()
    scaled = (c * obs[:, -1:] * log_prob.reshape(-1, 1) - c * q).mean()
    assert scaled.item() == pytest.approx(c * base.item(), rel=1e-6)


def test_zero_temperature_in_buffer_is_refused():
    model = make()
    obs = batch()
    obs[0, -1] = 0.0
    with pytest.raises(LossNotFiniteError, match="non-positive temperature"):
        model._entropy_coefficient(obs, th.zeros(5, 1), True)


def test_split_learning_rates_and_protagonist_initial_temperature():
    model = make(QARLSAC, actor_lr=1e-4, critic_lr=3e-4, ent_coef_lr=2e-4, ent_coef="auto_0.005")
    assert model.actor.optimizer.param_groups[0]["lr"] == 1e-4
    assert model.critic.optimizer.param_groups[0]["lr"] == 3e-4
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == 2e-4
    assert th.exp(model.log_ent_coef).item() == pytest.approx(0.005)
    model.learn(40)  # train() must not reset the learning rates to one value
    assert model.actor.optimizer.param_groups[0]["lr"] == 1e-4
    assert model.critic.optimizer.param_groups[0]["lr"] == 3e-4


def test_actor_warm_up_leaves_actor_unchanged():
    model = make(QARLSAC, actor_learning_starts=10_000)
    actor = [p.detach().clone() for p in model.actor.parameters()]
    critic = [p.detach().clone() for p in model.critic.parameters()]
    model.learn(40)
    assert all(th.equal(a, b) for a, b in zip(actor, model.actor.parameters(), strict=True))
    assert not all(th.equal(a, b) for a, b in zip(critic, model.critic.parameters(), strict=True))


def test_save_load_round_trip(tmp_path):
    model = make()
    model.learn(20)
    model.save(tmp_path / "adv.zip")
    loaded = PerSampleTemperatureSAC.load(tmp_path / "adv.zip")
    obs = np.array([0.1, 0.2, 0.3, 0.05], np.float32)
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(a1, a2, atol=1e-6)
    assert loaded.log_ent_coef is None


def test_nan_loss_raises():
    model = make(QARLSAC)
    with pytest.raises(LossNotFiniteError, match="critic_loss"):
        model._check_finite("critic_loss", th.tensor(float("nan")))


def test_string_ent_coef_refused_for_per_sample():
    with pytest.raises(ValueError, match="from the observation"):
        make(ent_coef="auto")


def test_actor_opponent_matches_predict_distribution():
    from rl.qarl.wrappers import SACActorPolicy

    model = make(QARLSAC)
    obs = np.array([0.1, -0.2, 0.3, 0.05], np.float32)
    th.manual_seed(5)
    fast = SACActorPolicy(model)(obs, np.random.default_rng(0))
    th.manual_seed(5)
    slow, _ = model.predict(obs, deterministic=False)
    np.testing.assert_allclose(fast, slow, atol=1e-6)
    assert fast.shape == model.action_space.shape

"""MixedNE-LD, CAT and the QARL ablations (``algo=mixedne_ld|cat|qarl_linear|qarl_point|qarl_single|qarl_homogeneous``)."""

import itertools
import math

import numpy as np
import pytest
import torch as th
from torch import nn

from envs.common.runs import prepare_run_dir
from rl.qarl import load_policies, train
from rl.qarl.baselines.action_adversary import (
    CATSAC,
    BudgetSchedule,
    MASAttack,
    gaussian_params,
    l2_project,
    mix_actions,
)
from rl.qarl.baselines.mixedne import MixedNESAC
from rl.qarl.baselines.sgld import SGLD, LangevinNoiseSchedule
from rl.qarl.baselines.temperature_schedules import LinearTemperatureSchedule, SelfPacedPointTeacher
from rl.qarl.modes import attacked_protagonist, resolve_mode
from rl.qarl.sac import QARLSAC, PerSampleTemperatureSAC
from rl.qarl.trainer import QARLTrainer
from tests.qarl_helpers import assert_same_state, tiny_cfg

NEW_ALGOS = ["mixedne_ld", "cat", "qarl_linear", "qarl_point", "qarl_single", "qarl_homogeneous"]


def make_trainer(tmp_path, *overrides):
    cfg = tiny_cfg(tmp_path, *overrides)
    return QARLTrainer(cfg, prepare_run_dir(cfg), th.device("cpu"))


# ------------------------------------------------------------------ MixedNE-LD
def test_mix_actions():
    a, b = np.array([1.0, -1.0]), np.array([-1.0, 1.0])
    np.testing.assert_allclose(mix_actions(a, b, 0.1), [0.8, -0.8])
    np.testing.assert_allclose(mix_actions(a, b, 0.0), a)


def test_mixedne_executes_the_mixed_action(tmp_path):
    tr = make_trainer(tmp_path, "algo=mixedne_ld")
    model = tr.protagonist
    assert isinstance(model, MixedNESAC) and tr.adversary is None and model.delta == 0.1
    model._last_obs = model.env.reset()
    th.manual_seed(3)
    own, _ = model.predict(model._last_obs, deterministic=False)
    with th.no_grad():
        adv = model.adversary_actor(th.as_tensor(model._last_obs), deterministic=False).numpy()
    expected = 0.9 * model.policy.scale_action(own) + 0.1 * adv
    th.manual_seed(3)
    action, buffer_action = model._sample_action(learning_starts=0)
    np.testing.assert_allclose(buffer_action, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(action, model.policy.unscale_action(expected), rtol=1e-5, atol=1e-6)
    assert not np.allclose(buffer_action, model.policy.scale_action(own))  # the adversary moved it


def official_next_q(model, next_obs, ent_coef):
    """The official ``SAC_LD._next_q`` (sac_ld.py): both actions drawn from the *protagonist's* policy (a probe)."""
    action_new_actor, log_prob_actor = model.actor.action_log_prob(next_obs)
    action_new_adversary, _ = model.actor.action_log_prob(next_obs)  # ``self.policy``, not the adversary's
    action_new = model.delta * action_new_adversary + (1 - model.delta) * action_new_actor
    q = th.min(th.cat(model.critic_target(next_obs, action_new), dim=1), dim=1, keepdim=True)[0]
    return q - ent_coef * log_prob_actor.reshape(-1, 1)


def test_mixedne_critic_target_official_and_corrected(tmp_path):
    """``algo.mixedne.target=official`` is the official target; the default draws a'_adv from the adversary."""
    models = {}
    for target in ("official", "corrected"):
        overrides = ["algo=mixedne_ld"] + ([f"algo.mixedne.target={target}"] if target == "official" else [])
        model = make_trainer(tmp_path / target, *overrides).protagonist
        assert model.target == target
        models[target] = model
    official, corrected = models["official"], models["corrected"]
    corrected.set_parameters(official.get_parameters())  # same networks, adversary included
    corrected.adversary_actor.load_state_dict(official.adversary_actor.state_dict())
    next_obs, ent_coef = th.randn(16, 4), th.tensor([[0.02]])
    with th.no_grad():
        th.manual_seed(7)
        expected = official_next_q(official, next_obs, ent_coef)
        th.manual_seed(7)
        a, log_prob = official.actor.action_log_prob(next_obs)
        b, _ = official.adversary_actor.action_log_prob(next_obs)
        mixed = 0.9 * a + 0.1 * b
        expected_corrected = th.min(th.cat(official.critic_target(next_obs, mixed), dim=1), dim=1, keepdim=True)[0]
        expected_corrected = expected_corrected - ent_coef * log_prob.reshape(-1, 1)
    th.manual_seed(7)
    th.testing.assert_close(official.next_q(next_obs, ent_coef), expected)
    th.manual_seed(7)
    th.testing.assert_close(corrected.next_q(next_obs, ent_coef), expected_corrected)
    assert not th.allclose(expected, expected_corrected)


def test_mixedne_official_target_is_used_in_training_and_saved(tmp_path, monkeypatch):
    """Both update engines use the chosen critic target; the run records it."""
    import rl.qarl.baselines.mixedne as mixedne_module

    calls = []
    original = MixedNESAC.next_q

    def spy(self, next_observations, ent_coef):
        calls.append(self.target)
        return original(self, next_observations, ent_coef)

    monkeypatch.setattr(MixedNESAC, "next_q", spy)
    train(tiny_cfg(tmp_path / "reference", "algo=mixedne_ld", "algo.mixedne.target=official", "sac.engine=reference"))
    assert calls and set(calls) == {"official"}
    policies = load_policies(tmp_path / "reference")
    assert policies.config.algo.mixedne.target == "official"  # recorded in the run's config
    assert isinstance(policies.protagonist, MixedNESAC) and policies.protagonist.target == "official"

    fast_calls = []
    phase = mixedne_module.mixedne_critic_phase

    def fast_spy(*args):
        fast_calls.append(args[15])  # ``official``
        return phase(*args)

    monkeypatch.setattr(mixedne_module, "mixedne_critic_phase", fast_spy)
    train(tiny_cfg(tmp_path / "fast", "algo=mixedne_ld", "algo.mixedne.target=official", "sac.engine=fast"))
    assert fast_calls and set(fast_calls) == {True}


def test_sgld_update_equals_hand_computed():
    th.manual_seed(0)
    net = nn.Linear(3, 1)
    lr, noise, alpha, eps = 1e-2, 0.5, 0.9, 1e-8
    opt = SGLD(net.parameters(), lr=lr, noise=noise, alpha=alpha, eps=eps)
    x = th.randn(4, 3)
    square_avg = [th.zeros_like(p) for p in net.parameters()]
    for t in (1, 2):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        before = [p.detach().clone() for p in net.parameters()]
        grads = [p.grad.detach().clone() for p in net.parameters()]
        th.manual_seed(100 + t)
        opt.step()
        th.manual_seed(100 + t)
        lr_t, noise_t = lr * (1 - 1e-5) ** (t - 1), noise * (1 - 5e-5) ** (t - 1)
        for k, (p, p0, g) in enumerate(zip(net.parameters(), before, grads, strict=True)):
            square_avg[k] = alpha * square_avg[k] + (1 - alpha) * g * g
            avg = square_avg[k].sqrt() + eps
            xi = th.randn_like(p0)
            expected = p0 - lr_t * g / avg - math.sqrt(2) * noise_t * th.sqrt(lr_t / avg) * xi
            th.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-7)
    # without noise it is the decaying-step RMSprop
    quiet = SGLD(net.parameters(), lr=lr, noise=0.0, alpha=alpha, eps=eps)
    opt.zero_grad()
    net(x).pow(2).mean().backward()
    p0, g = net.bias.detach().clone(), net.bias.grad.detach().clone()
    quiet.step()
    th.testing.assert_close(net.bias.detach(), p0 - lr * g / ((1 - alpha) ** 0.5 * g.abs() + eps))


def official_noise_used(initial: float, fits: int) -> list[float]:
    """The noise of each fit's gradient step in the official ``SAC_LD.fit``, its formula unchanged (a probe)."""
    noise, fit_iteration, used = initial, 1, []  # the optimiser starts at ``noise``; ``_fit_iteration = 1`` (sac.py)
    for _ in range(fits):
        used.append(noise)  # the step of this fit
        noise = initial * ((1 - 5e-5) ** (fit_iteration / 2))  # set after the step, as sac_ld.py does
        fit_iteration += 1
    return used


def test_langevin_noise_decays_as_the_official_schedule():
    opt = SGLD([nn.Parameter(th.zeros(2))], noise=1e-3)
    schedule = LangevinNoiseSchedule(initial=1e-3, decay=5e-5)
    used = []
    for _ in range(6):
        used.append(opt.param_groups[0]["noise"])
        schedule.step(opt)
    # fit k (0-based) steps with initial * (1 - decay) ** (k / 2): k / 2, not (k - 1) / 2
    np.testing.assert_allclose(used, official_noise_used(1e-3, 6), rtol=1e-14, atol=0)
    np.testing.assert_allclose(used, [1e-3 * (1 - 5e-5) ** (k / 2) for k in range(6)], rtol=1e-14, atol=0)
    assert all(b < a for a, b in itertools.pairwise(used))
    assert schedule.value == pytest.approx(1e-3 * (1 - 5e-5) ** 3, rel=1e-14)
    restored = LangevinNoiseSchedule()
    restored.load_state_dict(schedule.state_dict())
    assert restored.value == schedule.value


def test_mixedne_trains_both_policies_with_decaying_noise(tmp_path):
    tr = make_trainer(tmp_path, "algo=mixedne_ld")
    model = tr.protagonist
    adv_before = [p.detach().clone() for p in model.adversary_actor.parameters()]
    for _ in range(2):
        tr.iteration()
    assert model._n_updates > 0
    assert any(not th.equal(a, b) for a, b in zip(adv_before, model.adversary_actor.parameters(), strict=True))
    for optimizer in (model.actor.optimizer, model.adversary_actor.optimizer):
        assert isinstance(optimizer, SGLD) and 0 < optimizer.param_groups[0]["noise"] < 1e-3
    assert model.adversary_log_ent_coef.exp().item() != pytest.approx(0.005, abs=0)


# ------------------------------------------------------------------ CAT
def test_mas_gradient_matches_autograd():
    attack = MASAttack()
    mean, std, a = np.array([0.2, -0.5]), np.array([0.3, 0.8]), np.array([0.35, 0.1])
    at = th.tensor(a, requires_grad=True)
    th.distributions.Normal(th.tensor(mean), th.tensor(std)).log_prob(at).exp().sum().backward()
    np.testing.assert_allclose(attack.gradient(a, mean, std), at.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("budget", [0.05, 0.3, 5.0])
def test_mas_attack_stays_in_budget_and_lowers_the_density(budget):
    rng = np.random.default_rng(0)
    attack = MASAttack(budget=budget)
    for _ in range(50):
        mean, std = rng.uniform(-1, 1, 3), rng.uniform(0.1, 1.0, 3)
        action = np.clip(mean + std * rng.normal(size=3), -1, 1)
        delta = attack.perturbation(action, mean, std)
        assert np.linalg.norm(delta) <= budget + 1e-9
        attacked = attack.attack(action, mean, std)
        assert np.all(np.abs(attacked) <= 1.0)
        before = np.prod(attack.density(action, mean, std))
        assert np.prod(attack.density(action + delta, mean, std)) < before
    assert np.all(MASAttack(budget=0.0).perturbation(action, mean, std) == 0)
    np.testing.assert_allclose(l2_project(np.array([3.0, 4.0]), 1.0), [0.6, 0.8])


def test_cat_budget_schedule():
    s = BudgetSchedule(target=2.0, iterations=100)
    budgets = np.array([s.budget(i) for i in range(100)])
    assert np.all(budgets[:20] == 0)
    ramp = budgets[20:80]
    np.testing.assert_allclose(np.diff(ramp), 2.0 / 59)
    assert ramp[0] == 0 and ramp[-1] == pytest.approx(2.0)
    assert np.all(budgets[80:] == 2.0)
    s.iteration = 50
    restored = BudgetSchedule()
    restored.load_state_dict(s.state_dict())
    assert restored.budget() == s.budget(50)
    with pytest.raises(ValueError, match="start <= end"):
        BudgetSchedule(start_fraction=0.9, end_fraction=0.5)


def test_cat_attacks_training_and_evaluation(tmp_path):
    tr = make_trainer(tmp_path, "algo=cat", "budget.iterations=10", "algo.cat.budget=0.5")
    assert isinstance(tr.protagonist, CATSAC) and tr.adversary is None
    stats = tr.iteration()
    assert stats["curriculum/cat_budget"] == 0.0 and tr.protagonist.attack.budget == 0.0
    tr.state.iteration = 7  # the last ramp iteration: target budget
    tr.iteration()
    assert tr.protagonist.attack.budget == pytest.approx(0.5)
    model = tr.protagonist
    model._last_obs = model.env.reset()
    th.manual_seed(5)
    _, own = QARLSAC._sample_action(model, learning_starts=0)  # SB3's sampling, without the attack
    th.manual_seed(5)
    _, attacked = model._sample_action(learning_starts=0)
    assert 0 < np.linalg.norm(attacked - own) <= 0.5 + 1e-6
    evaluated = attacked_protagonist(model, tr.cfg.algo)
    assert evaluated is not None and evaluated.perturb is not None


@pytest.mark.parametrize("store_unclipped", [False, True])
def test_cat_stores_the_clipped_or_the_unclipped_perturbed_action(tmp_path, store_unclipped):
    """``algo.cat.store_unclipped=true`` stores ``a + delta`` (official buffer); the executed action is clipped."""
    overrides = ["algo=cat", "budget.iterations=10", "algo.cat.budget=5", f"algo.cat.store_unclipped={store_unclipped}"]
    tr = make_trainer(tmp_path, *overrides)
    model = tr.protagonist
    assert isinstance(model, CATSAC) and model.store_unclipped is store_unclipped
    model.attack.budget = 5.0
    model._last_obs = model.env.reset()
    th.manual_seed(2)
    _, own = QARLSAC._sample_action(model, learning_starts=0)
    th.manual_seed(2)
    executed, stored = model._sample_action(learning_starts=0)
    mean, std = gaussian_params(model, model._last_obs)
    delta = model.attack.perturbation(own[0], mean[0], std[0])
    assert np.abs(own[0] + delta).max() > 1  # the perturbation leaves the action box
    np.testing.assert_allclose(executed, model.policy.unscale_action(np.clip(own + delta, -1, 1)), rtol=1e-6)
    np.testing.assert_allclose(stored, own + delta if store_unclipped else np.clip(own + delta, -1, 1), rtol=1e-6)
    tr.state.iteration = 9  # past the ramp: the target budget
    tr.iteration()
    assert model.attack.budget == 5.0
    rows = model.replay_buffer.actions[: model.replay_buffer.size()]
    assert bool(np.abs(rows).max() > 1) == store_unclipped


def test_schedules_follow_the_step_budget_when_it_caps_the_run(tmp_path):
    tr = make_trainer(tmp_path, "algo=cat", "budget.iterations=100", "budget.max_env_steps=1000", "algo.cat.budget=1")
    tr.state.iteration, tr.state.protagonist_steps = 3, 500  # half the step budget after 3 iterations
    assert tr.schedule_iteration() == 50
    assert tr.advance_schedules()["curriculum/cat_budget"] == pytest.approx(30 / 59)
    tr.state.protagonist_steps = 0
    assert tr.schedule_iteration() == 3


# ------------------------------------------------------------------ ablations
def test_linear_schedule_and_single_and_homogeneous(tmp_path):
    tr = make_trainer(tmp_path, "algo=qarl_linear", "budget.iterations=6")
    assert isinstance(tr.teacher, LinearTemperatureSchedule)
    seen = []
    for i in range(5):
        tr.state.iteration = i
        tr.advance_schedules()
        seen.append(tr.sample_alphas(2))
    a0, at = tr.alpha_init, tr.alpha_target
    expected = [a0 + (at - a0) * i / 4 for i in range(4)] + [at]  # 2/3 of 6 iterations = 4
    np.testing.assert_allclose([s[0] for s in seen], expected)
    assert all(s[0] == s[1] for s in seen)

    tr = make_trainer(tmp_path / "single", "algo=qarl_single")
    alphas = tr.sample_alphas(5)
    assert np.all(alphas == alphas[0]) and tr.sample_alphas(5)[0] != alphas[0]

    tr = make_trainer(tmp_path / "homog", "algo=qarl_homogeneous")
    assert isinstance(tr.protagonist, PerSampleTemperatureSAC) and isinstance(tr.adversary, PerSampleTemperatureSAC)
    assert tr.protagonist.log_ent_coef is None


def test_point_teacher_steps_down_by_c_times_the_official_step(tmp_path):
    tr = make_trainer(tmp_path, "algo=qarl_point", "curriculum.threshold=-1e9", "curriculum.reward_scale=2")
    teacher = tr.teacher
    assert isinstance(teacher, SelfPacedPointTeacher)
    assert teacher.alpha == pytest.approx(0.05 * 2) and teacher.alpha_target == pytest.approx(2e-8)
    teacher.add([0.1] * 4, [1.0] * 4)
    teacher.update()
    assert teacher.alpha == pytest.approx(0.1 - 0.002)
    teacher.threshold = 1.0
    teacher.add([0.1] * 4, [1.0] * 4)  # not strictly above: frozen, as the official teacher
    assert teacher.update().frozen and teacher.alpha == pytest.approx(0.098)
    teacher.alpha, teacher.threshold = 0.0015, -1e9
    teacher.add([0.1] * 4, [1.0] * 4)
    teacher.update()
    assert teacher.alpha == pytest.approx(teacher.lower_bound)
    restored = SelfPacedPointTeacher.from_state_dict(teacher.state_dict())
    assert restored.alpha == teacher.alpha


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algo=cat", "algo.adversary=true"], r"algo\.adversary=false"),
        (["algo=mixedne_ld", "algo.mixedne.delta=1.5"], r"algo\.mixedne\.delta must be in \[0, 1\], got 1\.5"),
        (["algo=mixedne_ld", "algo.mixedne.target=paper"], r"algo\.mixedne\.target.*\['corrected', 'official'\]"),
        (["algo.action_adversary=mas"], r"valid choices: \['cat', 'mixedne_ld', 'none'\]"),
        (["algo=rarl", "algo.protagonist_temperature=curriculum"], "protagonist_temperature=curriculum"),
        (["algo=cat", "algo.cat.start_fraction=0.9", "algo.cat.end_fraction=0.1"], r"algo\.cat needs"),
        (["algo=qarl_point", "algo.point.max_mse_dmc=0"], r"algo\.point\.max_mse_dmc"),
    ],
)
def test_invalid_baseline_switches_fail_before_anything_is_created(tmp_path, overrides, message):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        train(tiny_cfg(run, *overrides))
    assert not run.exists()


@pytest.mark.parametrize("algo", NEW_ALGOS)
def test_each_new_algo_trains_and_loads(tmp_path, algo):
    result = train(tiny_cfg(tmp_path, f"algo={algo}"))
    assert set(result) == {"eval/return_nominal", "eval/return_vs_adversary"}
    assert all(np.isfinite(v) for v in result.values())
    policies = load_policies(tmp_path)
    mode = resolve_mode(policies.config.algo)
    assert (policies.adversary is None) == (mode.action_adversary != "none")
    if algo == "mixedne_ld":
        assert isinstance(policies.protagonist, MixedNESAC)
    if mode.action_adversary != "none":
        attacked = attacked_protagonist(policies.protagonist, policies.config.algo)
        obs = np.zeros(policies.protagonist.observation_space.shape, np.float32)
        assert attacked is not None and attacked.predict(obs)[0].shape == (1,)


@pytest.mark.parametrize("algo", ["mixedne_ld", "cat"])
def test_action_adversaries_resume_exactly(tmp_path, algo):
    """Adversary policy, SGLD state and noise, and CAT's budget schedule continue bit for bit from a checkpoint."""
    th.set_num_threads(1)
    overrides = [f"algo={algo}", "budget.iterations=4", "algo.cat.budget=0.5"]
    tr = make_trainer(tmp_path / "a", *overrides)
    for _ in range(2):
        tr.iteration()
    checkpoint = tr.save()
    for _ in range(2):
        tr.iteration()
    straight = tr.state_dict()
    other = make_trainer(tmp_path / "b", *overrides)
    other.load(checkpoint)
    for _ in range(2):
        other.iteration()
    resumed = other.state_dict()
    a, b = straight["agents"]["protagonist"], resumed["agents"]["protagonist"]
    assert a["sb3"]["_n_updates"] > 0
    if algo == "mixedne_ld":
        assert "adversary_actor" in a["modules"] and "adversary_actor.optimizer" in a["modules"]
        assert other.protagonist.actor.optimizer.param_groups[0]["noise"] < 1e-3
    else:
        assert straight["algo"]["cat_budget"]["iteration"] == 3 and other.protagonist.attack.budget == 0.5
    assert_same_state(a["modules"], b["modules"], "modules")
    assert_same_state(a["variables"], b["variables"], "variables")
    assert_same_state(a["buffer"], b["buffer"], "buffer")
    assert_same_state(straight["algo"], resumed["algo"], "algo")

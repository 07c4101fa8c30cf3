import dataclasses
import json

import numpy as np
import pytest
import torch as th

from envs.common.runs import prepare_run_dir
from rl.qarl import NotARunError, TrainingError, load_policies, train
from rl.qarl.modes import force_budget, rescale, resolve_mode
from rl.qarl.sac import QARLSAC, LossNotFiniteError, PerSampleTemperatureSAC
from rl.qarl.trainer import QARLTrainer
from tests.qarl_helpers import tiny_cfg


def make_trainer(tmp_path, *overrides):
    cfg = tiny_cfg(tmp_path, *overrides)
    return QARLTrainer(cfg, prepare_run_dir(cfg), th.device("cpu"))


def params(model):
    return [p.detach().clone() for p in model.policy.parameters()]


def same(a, b):
    return all(th.equal(x, y) for x, y in zip(a, b, strict=True))


def test_only_the_phase_agent_learns_and_stores(tmp_path):
    tr = make_trainer(tmp_path)
    assert isinstance(tr.adversary, PerSampleTemperatureSAC) and not isinstance(tr.protagonist, PerSampleTemperatureSAC)
    for _ in range(3):  # get both past learning_starts
        tr.iteration()
    alphas = tr.sample_alphas(2)
    pro_params, pro_size, pro_updates = params(tr.protagonist), tr.protagonist.replay_buffer.size(), tr.protagonist._n_updates
    adv_params, adv_size, adv_updates = params(tr.adversary), tr.adversary.replay_buffer.size(), tr.adversary._n_updates
    episodes = tr.phase(tr.adversary, tr.adversary_env, alphas)
    steps = sum(ep["length"] for ep in episodes)
    assert same(pro_params, params(tr.protagonist))
    assert tr.protagonist.replay_buffer.size() == pro_size and tr.protagonist._n_updates == pro_updates
    assert not same(adv_params, params(tr.adversary))
    assert tr.adversary.replay_buffer.size() == adv_size + steps
    # one gradient step per 3 env steps (train_freq windows restart with each phase)
    assert steps // 3 - 1 <= tr.adversary._n_updates - adv_updates <= steps // 3 + 1
    adv_params = params(tr.adversary)
    tr.phase(tr.protagonist, tr.protagonist_env, alphas)
    assert same(adv_params, params(tr.adversary))
    assert not same(pro_params, params(tr.protagonist))


def test_each_episode_observes_its_temperature_in_both_phases(tmp_path):
    tr = make_trainer(tmp_path)
    alphas = np.array([0.011, 0.022])
    seen = {}
    for name, model, env in [("adv", tr.adversary, tr.adversary_env), ("pro", tr.protagonist, tr.protagonist_env)]:
        start = model.replay_buffer.pos
        episodes = tr.phase(model, env, alphas)
        stored = model.replay_buffer.observations[start : model.replay_buffer.pos, 0, -1]
        next_stored = model.replay_buffer.next_observations[start : model.replay_buffer.pos, 0, -1]
        lengths = [int(ep["length"]) for ep in episodes]
        expected = np.repeat(alphas.astype(stored.dtype), lengths)
        np.testing.assert_array_equal(stored, expected)
        np.testing.assert_array_equal(next_stored, expected)
        assert [ep["alpha"] for ep in episodes] == list(alphas)
        seen[name] = [ep["alpha"] for ep in episodes]
    assert seen["adv"] == seen["pro"]
    assert tr.protagonist.observation_space.shape == (tr.eval_game.observation_space.shape[0] + 1,)


def test_evaluation_uses_temperature_zero_and_stores_nothing(tmp_path):
    tr = make_trainer(tmp_path)
    tr.iteration()
    seen = []
    original = tr.protagonist.predict

    def spy(obs, **kw):
        seen.append(np.array(obs))
        return original(obs, **kw)

    tr.protagonist.predict = spy
    sizes = (tr.protagonist.replay_buffer.size(), tr.adversary.replay_buffer.size())
    stats = tr.eval_stats()
    assert set(stats) == {"eval/return_nominal", "eval/return_vs_adversary"}
    assert seen and all(o[-1] == 0.0 for o in seen)
    assert sizes == (tr.protagonist.replay_buffer.size(), tr.adversary.replay_buffer.size())
    tr.eval_game.reset(seed=0)
    assert np.all(tr.eval_game.data.xfrc_applied == 0.0)


def test_teacher_updates_on_cadence(tmp_path):
    tr = make_trainer(tmp_path, "curriculum.update_every=2", "curriculum.min_pairs=4", "curriculum.threshold=-1e9")
    nus = []
    for _ in range(4):
        tr.iteration()
        nus.append(tr.teacher.nu)
    assert nus[0] == 50.0 and nus[1] < 50.0 and nus[2] == nus[1] and nus[3] < nus[2]


def test_teacher_frozen_when_threshold_never_met(tmp_path):
    tr = make_trainer(tmp_path, "curriculum.threshold=1e9")
    for _ in range(3):
        tr.iteration()
    assert tr.teacher.nu == 50.0


@pytest.mark.parametrize("algo", ["qarl", "rarl", "sac", "fixed_temp", "force_curriculum"])
def test_every_algo_runs_one_iteration(tmp_path, algo):
    tr = make_trainer(tmp_path, f"algo={algo}")
    stats = tr.iteration()
    assert "rollout/protagonist_return" in stats
    mode = resolve_mode(tr.cfg.algo)
    assert (tr.adversary is not None) == mode.adversary
    extra = tr.protagonist.observation_space.shape[0] - tr.eval_game.observation_space.shape[0]
    assert extra == (0 if mode.context == "none" else 1)
    if algo == "rarl":
        assert isinstance(tr.adversary, QARLSAC) and tr.adversary.log_ent_coef is not None
    if algo == "fixed_temp":
        assert np.all(tr.sample_alphas(3) == tr.alpha_target)
    if algo == "force_curriculum":
        limit = tr.adversary_env.view.game.force_limit
        assert 0 <= limit < 0.5 * tr.max_force  # p0 maps to budgets near 2% of the bound
        assert tr.adversary_env.view.context == pytest.approx(limit)


def test_force_budget_mapping():
    assert force_budget(0.05, 0.05, 0.001, 3.0) == pytest.approx(0.001 / 0.05 * 3.0)
    assert force_budget(0.001, 0.05, 0.001, 3.0) == pytest.approx(3.0)
    assert force_budget(0.5, 0.05, 0.001, 3.0) == 0.0


def test_rescaling_rule(tmp_path):
    cfg = tiny_cfg(tmp_path, "env=Hopper")
    from envs.adversarial.specs import get_env_spec

    s = rescale(cfg.curriculum, get_env_spec("Hopper"))
    assert s.rate == pytest.approx(1000 / 3.36)  # c measured (benchmarks/README.md)
    assert s.threshold == pytest.approx(18.9 + 0.1 * (336 - 18.9))
    from envs.adversarial.specs import ADVERSARIAL_ENVS

    for spec in ADVERSARIAL_ENVS.values():  # every registered env has c and J_rand (or xi): QARL runs without overrides
        assert np.isfinite(rescale(cfg.curriculum, spec).threshold), spec.name
    assert rescale(cfg.curriculum, get_env_spec("Walker2d")).rate == pytest.approx(1000 / 3.06)  # measured c
    unknown = dataclasses.replace(get_env_spec("Swimmer"), random_return=float("nan"))  # an env with no J_rand
    with pytest.raises(ValueError, match=r"curriculum\.threshold"):
        rescale(tiny_cfg(tmp_path, "env=Swimmer").curriculum, unknown)


def test_invalid_algo_switches(tmp_path):
    with pytest.raises(ValueError, match=r"algo\.temperature=learned"):
        make_trainer(tmp_path, "algo.force=curriculum", "algo.temperature=curriculum")
    with pytest.raises(ValueError, match="valid choices"):
        make_trainer(tmp_path, "algo.temperature=warm")


def test_train_checkpoint_resume_and_load(tmp_path):
    cfg = tiny_cfg(tmp_path)
    result = train(cfg)
    assert set(result) == {"eval/return_nominal", "eval/return_vs_adversary"}
    latest = (tmp_path / "checkpoints" / "latest").read_text().strip()
    assert latest == "iter_000002"
    state = json.loads((tmp_path / "checkpoints" / latest / "state.json").read_text())
    steps = state["trainer"]["env_steps"]
    resumed = tiny_cfg(tmp_path / "other", f"resume={tmp_path}", "budget.iterations=3")
    train(resumed)
    state = json.loads((tmp_path / "checkpoints" / "iter_000003" / "state.json").read_text())
    assert state["trainer"]["iteration"] == 3 and state["trainer"]["env_steps"] > steps
    assert not (tmp_path / "checkpoints" / "iter_000001").exists()  # keep_checkpoints=2
    policies = load_policies(tmp_path)
    assert isinstance(policies.adversary, PerSampleTemperatureSAC)
    obs = np.zeros(policies.protagonist.observation_space.shape, np.float32)
    assert policies.protagonist.predict(obs)[0].shape == (1,)
    assert policies.teacher is not None


def test_resume_errors(tmp_path):
    with pytest.raises(NotARunError, match="not a directory"):
        train(tiny_cfg(tmp_path, f"resume={tmp_path / 'missing'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotARunError, match=r"no config\.yaml"):
        train(tiny_cfg(tmp_path, f"resume={tmp_path / 'empty'}"))


def test_nan_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = QARLSAC.train

    def flaky(self, gradient_steps, batch_size=64):
        calls["n"] += 1
        if calls["n"] > 30:
            raise LossNotFiniteError("train/critic_loss is nan")
        return original(self, gradient_steps, batch_size)

    monkeypatch.setattr(QARLSAC, "train", flaky)
    cfg = tiny_cfg(tmp_path, "budget.iterations=50")
    with pytest.raises(TrainingError, match=r"diverged.*last good checkpoint"):
        train(cfg)
    latest = (tmp_path / "checkpoints" / "latest").read_text().strip()
    assert (tmp_path / "checkpoints" / latest / "protagonist.zip").exists()
    load_policies(tmp_path)


def test_a_state_records_the_update_mode_and_a_resolved_change_is_noted(tmp_path, capsys):
    import dataclasses

    tr = make_trainer(tmp_path)
    state = tr.state_dict()
    assert (
        state["trainer"]["update_mode"]
        == tr.update_mode.as_dict()
        == {
            "engine": tr.update_mode.engine,
            "compile": tr.update_mode.compile,
            "precision": tr.update_mode.precision,
        }
    )
    tr.load_state_dict(state)  # the same mode: nothing to say
    assert "mode was" not in capsys.readouterr().out
    state["trainer"]["update_mode"] = {**state["trainer"]["update_mode"], "precision": "bf16"}
    tr.load_state_dict(state)  # e.g. precision=auto resolved to bf16 when the run started, fp32 here
    assert "mode was" in capsys.readouterr().out and tr.state.update_mode == tr.update_mode.as_dict()
    state["trainer"].pop("update_mode")  # a checkpoint from before the field: loads, says nothing
    tr.load_state_dict(state)
    assert "mode was" not in capsys.readouterr().out
    assert "update_mode" in {f.name for f in dataclasses.fields(tr.state)}

"""Exact resume, interrupts, fair budgets and strict configs of train_qarl (issue 10, points 1-4)."""

import json
import os
import signal

import numpy as np
import pytest
import torch as th
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from envs.common.runs import prepare_run_dir
from rl.qarl import NotARunError, TrainingInterrupted, train
from rl.qarl.checkpoint import load_resume_state
from rl.qarl.config import register_configs
from rl.qarl.setup import command_line_changes, merge_resume_config
from rl.qarl.trainer import PhaseCallback, QARLTrainer
from tests.qarl_helpers import CONFIGS, assert_same_state, tiny_cfg

N = 4  # iterations of the bar test: N straight vs N/2, interrupt mid-iteration, resume, N/2 more


def final_state(run):
    name = (run / "checkpoints" / "latest").read_text().strip()
    return name, load_resume_state(run / "checkpoints" / name)


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, monkeypatch):
    """The bar: same policies, critics, optimisers, buffers and teacher as an uninterrupted run."""
    th.set_num_threads(1)
    common = [f"budget.iterations={N}", "budget.checkpoint_every=1", "budget.eval_every=1"]
    train(tiny_cfg(tmp_path / "straight", *common))

    # interrupt with SIGINT after a few protagonist steps of iteration N/2 + 1 (the adversary has trained already)
    original_phase, original_step = QARLTrainer.phase, PhaseCallback._on_step
    armed = {"on": False}

    def phase(self, model, env, alphas):
        armed["on"] = self.state.iteration == N // 2 and model is self.protagonist
        return original_phase(self, model, env, alphas)

    def on_step(self):
        if armed["on"] and self.n_calls == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return original_step(self)

    monkeypatch.setattr(QARLTrainer, "phase", phase)
    monkeypatch.setattr(PhaseCallback, "_on_step", on_step)
    run = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted) as stopped:
        train(tiny_cfg(run, *common))
    assert stopped.value.exit_code == 130
    monkeypatch.undo()
    name, state = final_state(run)
    assert name == f"iter_{N // 2:06d}" and state["trainer"]["iteration"] == N // 2  # the last completed iteration
    assert not (run / "done.json").exists()

    train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}", *common))
    assert (run / "done.json").exists()
    assert "# resumed:" in (run / "command.txt").read_text()
    straight_name, straight = final_state(tmp_path / "straight")
    resumed_name, resumed = final_state(run)
    assert straight_name == resumed_name == f"iter_{N:06d}"
    for player in ("protagonist", "adversary"):
        a, b = straight["agents"][player], resumed["agents"][player]
        assert a["sb3"]["_n_updates"] > 0
        assert_same_state(a["modules"], b["modules"], player)  # actor, critics, targets, optimisers
        assert_same_state(a["variables"], b["variables"], player)  # learned temperature
        assert_same_state(a["buffer"], b["buffer"], player)
    assert straight["teacher"] == resumed["teacher"]
    assert straight["trainer"]["protagonist_steps"] == resumed["trainer"]["protagonist_steps"]


def test_resume_reads_the_runs_config_and_refuses_changes(tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(run, "budget.iterations=1"))
    before = sorted(p.name for p in run.rglob("*"))
    command = (run / "command.txt").read_text()
    for bad, key in [("seed=1", "seed"), ("sac.actor_lr=0.1", "sac.actor_lr"), ("algo=rarl", "algo.name")]:
        with pytest.raises(ValueError, match=rf"{key}: the run has .*, the command line gives"):
            train(tiny_cfg(tmp_path / "x", f"resume={run}", bad))
    with pytest.raises(NotARunError):
        train(tiny_cfg(tmp_path / "x", f"resume={tmp_path / 'missing'}"))
    assert sorted(p.name for p in run.rglob("*")) == before and (run / "command.txt").read_text() == command
    assert not (tmp_path / "x").exists()
    train(tiny_cfg(tmp_path / "x", f"resume={run}", "budget.iterations=2"))  # extending the budget is allowed
    assert OmegaConf.load(run / "config.yaml").budget.iterations == 2


def test_resume_without_the_group_choices_uses_the_saved_config(tmp_path):
    """A demo run resumed without ``budget=demo`` continues with its own budget; a real change is refused."""
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        saved = compose("train_qarl", overrides=["budget=demo", "sac.net_arch=[16]"])
        given = compose("train_qarl", overrides=[f"resume={tmp_path}", "budget.iterations=300", "progress=false"])
        merged = merge_resume_config(saved, given, command_line_changes("train_qarl", given))
        assert merged.budget.max_env_steps == 15000 and list(merged.sac.net_arch) == [16]
        assert merged.budget.iterations == 300 and merged.progress is False
        refused = compose("train_qarl", overrides=[f"resume={tmp_path}", "budget=paper", "sac.learning_starts=5"])
        with pytest.raises(ValueError, match=r"sac\.learning_starts: the run has 1000, the command line gives 5"):
            merge_resume_config(saved, refused, command_line_changes("train_qarl", refused))


def test_budget_counts_protagonist_steps_and_logs_against_them(tmp_path):
    cap = 60
    run = tmp_path / "rarl"
    train(tiny_cfg(run, "algo=rarl", "budget.iterations=50", f"budget.max_env_steps={cap}", "budget.eval_every=100"))
    state = json.loads((run / "done.json").read_text())
    assert cap <= state["protagonist_steps"] < cap + 2 * 20  # one iteration past the cap at most
    assert state["env_steps_total"] > 1.5 * state["protagonist_steps"]  # the adversary's steps are counted apart
    ea = EventAccumulator(str(run / "tensorboard"))
    ea.Reload()
    logged = ea.Scalars("time/protagonist_steps")
    assert [e.step for e in logged] == [int(e.value) for e in logged]
    assert [e.step for e in ea.Scalars("rollout/protagonist_return")] == [e.step for e in logged]
    assert ea.Scalars("time/env_steps_total")[-1].value == state["env_steps_total"]


@pytest.mark.parametrize("algo", ["rarl", "force_curriculum"])
def test_learned_adversary_temperature_starts_at_0_005(tmp_path, algo):
    cfg = tiny_cfg(tmp_path, f"algo={algo}")
    tr = QARLTrainer(cfg, prepare_run_dir(cfg), th.device("cpu"))
    for agent in (tr.protagonist, tr.adversary):
        assert th.exp(agent.log_ent_coef).item() == pytest.approx(0.005)


def test_force_curriculum_stores_the_applied_force(tmp_path):
    cfg = tiny_cfg(tmp_path, "algo=force_curriculum")
    tr = QARLTrainer(cfg, prepare_run_dir(cfg), th.device("cpu"))
    tr.iteration()
    buf = tr.adversary.replay_buffer
    actions, budgets = buf.actions[: buf.pos, 0], buf.observations[: buf.pos, 0, -1]
    limits = budgets / tr.max_force  # the force budget F over F_max, in normalised action units
    assert np.all(limits < 0.5)  # p0 maps to small budgets: unclipped random actions would exceed them
    assert np.all(np.abs(actions) <= limits[:, None] + 1e-6)
    assert np.any(np.isclose(np.abs(actions), limits[:, None], atol=1e-6))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("budget.max_env_steps=-5", "budget.max_env_steps"),
        ("budget.max_env_steps=0", "budget.max_env_steps"),
        ("budget.iterations=-1", "budget.iterations"),
        ("budget.episodes_per_phase=0", "budget.episodes_per_phase"),
        ("budget.eval_every=0", "budget.eval_every"),
        ("curriculum.update_every=0", "curriculum.update_every"),
        ("sac.tau=1.5", "sac.tau"),
        ("sac.net_arch=[]", "sac.net_arch"),
        ("sac.learning_starts=-1", "sac.learning_starts"),
        ("env.force_bound=-1", "env.force_bound"),
        ("env.max_episode_steps=100", "env.max_episode_steps"),
    ],
)
def test_bad_numbers_fail_before_anything_is_created(tmp_path, override, key):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as e:
        train(tiny_cfg(run, override))
    assert ("out of range" in str(e.value) and "must be" in str(e.value)) or "conflicts with budget.horizon" in str(e.value)
    assert not run.exists()


@pytest.mark.parametrize(("env", "algo"), [("Swimmer", "sac"), ("Swimmer", "rarl"), ("Humanoid", "sac")])
def test_algos_without_temperature_ignore_the_curriculum(tmp_path, env, algo):
    cfg = tiny_cfg(tmp_path, f"env={env}", f"algo={algo}", "curriculum.update_every=0")  # unused: not checked
    from rl.qarl.setup import prepare

    prepare(cfg)
    tr = QARLTrainer(cfg, prepare_run_dir(cfg), th.device("cpu"))
    assert tr.teacher is None
    tr.close()


def test_failed_multirun_job_folder_is_discarded_only_if_hydra_wrote_it(tmp_path):
    from rl.qarl.setup import discard_hydra_output_dir

    job = tmp_path / "job"
    (job / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (job / ".hydra" / name).write_text("x")
    (job / "train_qarl.log").write_text("")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "config.yaml").write_text("x")
    assert discard_hydra_output_dir(job) and not job.exists()
    assert not discard_hydra_output_dir(kept) and kept.exists()

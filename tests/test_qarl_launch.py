"""What a train_qarl launch checks before it writes (issue 21): resume overrides, no-op resumes, cross-field checks,
multirun sweeps, and the agents' warm-up."""

import subprocess
import sys

import numpy as np
import pytest
import torch as th
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rl.qarl import train
from rl.qarl.checkpoint import load_resume_state
from rl.qarl.config import register_configs
from rl.qarl.sac import QARLSAC
from rl.qarl.setup import CheckBeforeStart, explicit_keys, merge_resume_config
from tests.qarl_helpers import CONFIGS, TINY, assert_same_state, tiny_cfg

ROOT = CONFIGS.rsplit("/", 1)[0]
SCRIPT = f"{ROOT}/scripts/train_qarl.py"


def snapshot(folder):
    """Every file under ``folder`` with its size and modification time (what 'writes nothing' compares)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


# ----------------------------------------------------------------- 1: every explicit override is compared


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("env=Hopper", r"env\.name: the run has 'HalfCheetah', the command line gives 'Hopper'"),  # the primary default
        ("sac.actor_lr=1e-4", r"sac\.actor_lr: the run has 0\.0002, the command line gives 0\.0001"),  # the default
        ("budget=paper", r"budget\.episodes_per_phase: the run has 2, the command line gives 5"),  # the default
    ],
)
def test_resume_refuses_explicit_overrides_equal_to_the_defaults(tmp_path, override, message):
    def launch(*overrides):
        given = compose("train_qarl", overrides=[f"resume={tmp_path}", *overrides])
        return given, explicit_keys("train_qarl", [f"resume={tmp_path}", *overrides], given)

    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        saved = compose("train_qarl", overrides=["env=HalfCheetah", "sac.actor_lr=2e-4", "budget.episodes_per_phase=2"])
        with pytest.raises(ValueError, match=message):
            merge_resume_config(saved, *launch(override))
        # the run's own values given again are accepted
        merged = merge_resume_config(saved, *launch("env=HalfCheetah", "sac.actor_lr=2e-4", "budget.episodes_per_phase=2"))
        assert merged.env.name == "HalfCheetah" and merged.sac.actor_lr == 2e-4


def test_explicit_keys_expand_group_choices_and_dicts():
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        for overrides, expected in [
            (["env=Hopper"], {"env.name", "env.bodies", "env.axes", "env.force_bound", "env.max_episode_steps"}),
            (["budget=demo"], {"budget.max_env_steps", "sac.learning_starts", "sac.warmup", "curriculum.min_pairs"}),
            (["sac={actor_lr:1e-4}", "sac.net_arch=[16]"], {"sac.actor_lr", "sac.net_arch"}),
        ]:
            keys = explicit_keys("train_qarl", overrides, compose("train_qarl", overrides=overrides))
            assert expected <= keys and all(k.split(".")[0] in {"env", "budget", "sac", "curriculum"} for k in keys)
            if overrides[0].startswith("sac"):
                assert keys == expected


def test_runs_saved_before_the_warmup_option_resume_with_random_actions(tmp_path):
    saved = OmegaConf.create(OmegaConf.to_container(tiny_cfg(tmp_path)))  # as OmegaConf.load reads config.yaml
    del saved.sac["warmup"]
    assert merge_resume_config(saved, tiny_cfg(tmp_path), set()).sac.warmup == "random"
    assert merge_resume_config(tiny_cfg(tmp_path), tiny_cfg(tmp_path), set()).sac.warmup == "policy"


# ----------------------------------------------------------------- 5: a resume of a complete run writes nothing


def test_resume_of_a_complete_run_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    result = train(tiny_cfg(run, "budget.iterations=1"))
    before = snapshot(run)
    assert train(tiny_cfg(tmp_path / "x", f"resume={run}", "budget.iterations=1")) == result
    assert train(tiny_cfg(run, "resume=auto", "budget.iterations=1")) == result
    assert snapshot(run) == before and not (tmp_path / "x").exists()
    assert capsys.readouterr().out.count("is complete: 1 iterations") == 2
    train(tiny_cfg(tmp_path / "x", f"resume={run}", "budget.iterations=2"))  # a larger budget continues the run
    assert load_resume_state(run / "checkpoints" / "iter_000002")["trainer"]["iteration"] == 2


def test_hydra_callback_exits_before_hydra_writes_for_a_complete_run(tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_cfg(run, "budget.iterations=1"))
    before = snapshot(run)
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        for resume, extra in [(f"resume={run}", "budget.iterations=1"), ("resume=auto", "sac.net_arch=[16]")]:
            overrides = [*TINY, "budget.iterations=1", resume, extra, f"hydra.run.dir={run}"]
            config = compose("train_qarl", overrides=overrides, return_hydra_config=True)
            with pytest.raises(SystemExit) as done:
                CheckBeforeStart().on_run_start(config=config, config_name="train_qarl")
            assert done.value.code == 0 and "is complete" in capsys.readouterr().out
        overrides = [*TINY, f"resume={run}", "env=Hopper", f"hydra.run.dir={tmp_path / 'y'}"]
        config = compose("train_qarl", overrides=overrides, return_hydra_config=True)
        with pytest.raises(SystemExit, match=r"env\.name: the run has 'InvertedPendulum', the command line gives 'Hopper'"):
            CheckBeforeStart().on_run_start(config=config, config_name="train_qarl")
    assert snapshot(run) == before and not (tmp_path / "y").exists()


# ----------------------------------------------------------------- 6: cross-field checks, every job of a sweep


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sac.buffer_size=4"], r"sac\.buffer_size=4 is smaller than sac\.batch_size=8"),
        (["curriculum.nu_target=60"], r"curriculum\.nu_target=60\.0 is above curriculum\.nu_init=50\.0"),
        (["algo=force_curriculum", "curriculum.nu_target=60"], r"curriculum\.nu_target"),
    ],
)
def test_fields_that_must_agree(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_cfg(tmp_path / "run", *overrides))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("algo", ["sac", "rarl", "qarl_point"])
def test_nu_order_is_not_checked_where_nu_does_not_move(tmp_path, algo):
    from rl.qarl.config import validate_train_config

    validate_train_config(tiny_cfg(tmp_path, f"algo={algo}", "curriculum.nu_target=60"))


def test_a_sweep_with_one_bad_job_launches_none(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*TINY, "sac.buffer_size=2000,4", f"hydra.sweep.dir={sweep}"]
    out = subprocess.run([sys.executable, SCRIPT, "-m", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode != 0
    assert "1 job(s) of the sweep would fail; none was launched" in out.stderr
    assert "job 1 (" in out.stderr and "sac.buffer_size=4 is smaller than sac.batch_size=8" in out.stderr
    assert "Traceback" not in out.stderr and not sweep.exists()


def test_a_sweep_of_complete_runs_exits_before_hydra_writes(tmp_path, capsys):
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    sweep = tmp_path / "sweep"
    overrides = [*TINY, "budget.iterations=1", "seed=0,1", "resume=auto", f"hydra.sweep.dir={sweep}"]
    overrides.append("hydra.sweep.subdir=${name}_${hydra.job.num}")
    register_configs()

    def multirun_start():
        with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
            config = GlobalHydra.instance().config_loader().load_configuration("train_qarl", overrides, RunMode.MULTIRUN)
            CheckBeforeStart().on_multirun_start(config=config, config_name="train_qarl")

    for seed in (0, 1):
        multirun_start()  # not every job is complete: the sweep goes on
        train(tiny_cfg(sweep / f"InvertedPendulum__qarl__s{seed}_{seed}", "budget.iterations=1", f"seed={seed}"))
    before = snapshot(sweep)
    with pytest.raises(SystemExit) as done:
        multirun_start()
    assert done.value.code == 0 and capsys.readouterr().out.count("is complete") == 2
    assert snapshot(sweep) == before


def test_a_sweep_is_checked_without_the_device_its_jobs_may_run_elsewhere(tmp_path):
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from rl.qarl.setup import check_sweep

    overrides = [*TINY, "seed=0,1", "device=cuda:7", f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # a GPU node's device
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        config = GlobalHydra.instance().config_loader().load_configuration("train_qarl", overrides, RunMode.MULTIRUN)
        assert [(num, error) for num, _, error, _ in check_sweep(config, "train_qarl")] == [(0, None), (1, None)]
    assert not (tmp_path / "sweep").exists()


# ----------------------------------------------------------------- 8: warm-up with the policy or at random


def _warmup_actions(warmup):
    import gymnasium as gym

    model = QARLSAC("MlpPolicy", gym.make("Pendulum-v1"), learning_starts=100, warmup=warmup, seed=0, device="cpu")
    with th.no_grad():  # a policy that always plays tanh(0.5) (log std clamped at -20)
        for layer in (model.actor.mu, model.actor.log_std):
            layer.weight.zero_()
        model.actor.mu.bias.fill_(0.5)
        model.actor.log_std.bias.fill_(-30.0)
    model.learn(50)
    return model.replay_buffer.actions[:50, 0, 0]


def test_warmup_acts_with_the_policy_or_uniformly_at_random():
    policy, random = _warmup_actions("policy"), _warmup_actions("random")
    np.testing.assert_allclose(policy, np.tanh(0.5), atol=1e-6)  # the official agents' warm-up
    assert random.min() < -0.5 and random.max() > 0.5  # SB3's uniformly random actions
    with pytest.raises(ValueError, match=r"warmup='uniform' is not one of \['random', 'policy'\]"):
        QARLSAC("MlpPolicy", "Pendulum-v1", warmup="uniform")


def test_paper_settings_warm_up_with_the_policy_and_demos_at_random(tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        assert compose("train_qarl").sac.warmup == "policy"
        for budget in ("demo", "dmc_demo"):
            assert compose("train_qarl", overrides=[f"budget={budget}"]).sac.warmup == "random"
    with pytest.raises(ValueError, match=r"sac\.warmup='none' is not one of \['policy', 'random'\]"):
        train(tiny_cfg(tmp_path / "run", "sac.warmup=none"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("warmup", ["policy", "random"])
def test_resume_inside_the_warmup_is_bit_identical(tmp_path, warmup):
    th.set_num_threads(1)
    common = [f"sac.warmup={warmup}", "sac.learning_starts=500", "sac.actor_learning_starts=500", "algo=rarl"]
    train(tiny_cfg(tmp_path / "straight", *common, "budget.iterations=2"))
    train(tiny_cfg(tmp_path / "resumed", *common, "budget.iterations=1"))
    train(tiny_cfg(tmp_path / "x", f"resume={tmp_path / 'resumed'}", *common, "budget.iterations=2"))
    cfg = OmegaConf.load(tmp_path / "resumed" / "config.yaml")
    assert cfg.sac.warmup == warmup
    a, b = (load_resume_state(tmp_path / run / "checkpoints" / "iter_000002") for run in ("straight", "resumed"))
    for player in ("protagonist", "adversary"):
        assert a["agents"][player]["sb3"]["num_timesteps"] < 500  # the whole run is warm-up
        assert_same_state(a["agents"][player]["buffer"], b["agents"][player]["buffer"], player)
        assert_same_state(a["agents"][player]["modules"], b["agents"][player]["modules"], player)

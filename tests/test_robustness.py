import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from stable_baselines3 import SAC
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.episodes import perturbation_options, run_episodes
from rl.qarl import NotARunError, load_policies, train
from rl.robustness.best_response import AttackSettings, Greedy, attacker_view, train_attacker
from rl.robustness.config import register_configs
from rl.robustness.evaluate import evaluate, evaluate_run
from rl.robustness.output import log_to_tensorboard, write_results
from rl.robustness.runs import find_runs, inspect_run
from rl.robustness.tasks import Task, episode_seeds, make_grid
from rl.robustness.workers import Evaluator
from tests.qarl_helpers import tiny_cfg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qarl_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("qarl_run")
    train(tiny_cfg(root, "budget.iterations=1"))
    return root


class Recorder:
    """A policy that records what it observes and returns a fixed action."""

    def __init__(self, dim, value=0.0):
        self.dim, self.value, self.seen = dim, value, []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.seen.append(np.array(obs))
        return np.full(self.dim, self.value, dtype=np.float32), None


@pytest.mark.parametrize("context", ["temperature", "force", "none"])
def test_observation_context_and_adversary(context):
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=5)
    pro, adv = Recorder(1), Recorder(1, value=1.0)
    out = run_episodes(game, pro, context, seeds=[3, 4], adversary=adv)
    n = game.observation_space.shape[0]
    expected = {"temperature": 0.0, "force": game.force_bound, "none": None}[context]
    for obs in pro.seen + adv.seen:
        assert obs.shape == (n + (expected is not None),)
        if expected is not None:
            assert obs[-1] == expected
    assert len(adv.seen) == len(pro.seen) == out.lengths.sum()
    assert out.returns.shape == (2,) and np.all(out.lengths <= 5)
    # the last step pushed with the full bound
    assert np.allclose(np.abs(game.data.xfrc_applied[game._body_ids][:, 0]), game.force_bound)
    with pytest.raises(ValueError, match="valid choices"):
        run_episodes(game, pro, "temprature", seeds=[0])


def test_episode_is_reproducible_from_its_seed(qarl_run):
    policies = load_policies(qarl_run)
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=20)
    a = run_episodes(game, policies.protagonist, "temperature", seeds=[5, 6, 7], adversary=policies.adversary)
    b = run_episodes(game, policies.protagonist, "temperature", seeds=[7, 6, 5], adversary=policies.adversary)
    np.testing.assert_array_equal(a.returns, b.returns[::-1])
    c = run_episodes(game, policies.protagonist, "temperature", seeds=[50, 60, 70], adversary=policies.adversary)
    assert not np.array_equal(a.returns, c.returns) or not np.array_equal(a.lengths, c.lengths)


@pytest.mark.parametrize("workers", [1, 2])
def test_grid_of_size_one_equals_plain_evaluation(qarl_run, workers):
    result = evaluate_run(
        qarl_run,
        grid_size=1,
        mass_range=[1, 1],
        friction_range=[1, 1],
        episodes_per_cell=3,
        eval_episodes=2,
        seed=11,
        workers=workers,
        progress=False,
    )
    assert result.mass_factors == [1.0] and result.friction_factors == [1.0] and not result.failures
    policies = load_policies(qarl_run)
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=int(policies.config.budget.horizon))
    plain = run_episodes(game, policies.protagonist, "temperature", episode_seeds(11, "grid", 0, 0, 3))
    assert result.grid_returns[0][0] == list(plain.returns)
    nominal = run_episodes(game, policies.protagonist, "temperature", episode_seeds(11, "nominal", 0, 0, 2))
    assert result.nominal_returns == list(nominal.returns)
    attacked = run_episodes(
        game, policies.protagonist, "temperature", episode_seeds(11, "adversary", 0, 0, 2), adversary=policies.adversary
    )
    assert result.adversary_returns == list(attacked.returns)
    assert result.grid_average == pytest.approx(np.mean(plain.returns))


def test_parallel_equals_serial_and_failing_cells_are_kept(qarl_run):
    kw = dict(grid_size=3, mass_range=[0.0, 2.0], friction_range=[0.5, 1.5], eval_episodes=1, seed=3, progress=False)
    serial = evaluate_run(qarl_run, workers=1, **kw)
    parallel = evaluate_run(qarl_run, workers=2, **kw)
    assert serial.grid_returns == parallel.grid_returns
    # mass factor 0 is invalid: those three cells fail, the other six are evaluated
    assert [(f["i"], f["j"]) for f in parallel.failures] == [(0, 0), (0, 1), (0, 2)]
    assert all("mass_scale must be positive" in f["error"] for f in parallel.failures)
    assert all(len(parallel.grid_returns[i][j]) == 1 for i in (1, 2) for j in range(3))
    assert np.isnan(parallel.grid_mean[0]).all() and np.isfinite(parallel.grid_mean[1:]).all()
    assert parallel.grid_average == pytest.approx(np.mean(parallel.grid_mean[1:]))


def test_perturbations_applied_then_restored_between_cells(qarl_run):
    ev = Evaluator(str(qarl_run))
    model = ev.game.model
    nominal = (model.body_mass.copy(), model.body_inertia.copy(), model.geom_friction.copy())
    body = ev.game.body_id(ev.mass_body)
    seen = []
    step = ev.game.step

    def spy(*args):
        seen.append((model.body_mass[body], model.geom_friction[:, 0].copy()))
        return step(*args)

    ev.game.step = spy
    for mass, friction in [(0.5, 1.5), (2.0, 0.3), (1.0, 1.0)]:
        seen.clear()
        result = ev(Task("grid", 0, 0, mass, friction, (1, 2)))
        assert result.error is None and seen
        assert all(m == pytest.approx(nominal[0][body] * mass) for m, _ in seen)
        assert all(np.allclose(f, nominal[2][:, 0] * friction) for _, f in seen)
        np.testing.assert_array_equal(model.body_mass, nominal[0])
        np.testing.assert_array_equal(model.body_inertia, nominal[1])
        np.testing.assert_array_equal(model.geom_friction, nominal[2])
    assert perturbation_options(1.0, 1.0, ["pole"]) == {}


def test_outputs_csv_json_png_and_tensorboard(qarl_run, tmp_path):
    result = evaluate_run(qarl_run, grid_size=2, episodes_per_cell=2, eval_episodes=1, workers=1, progress=False)
    paths = write_results(result, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["env"] == "InvertedPendulum" and data["algo"] == "qarl"
    assert np.array(data["grid_mean"]).shape == (2, 2)
    assert data["grid_average"] == pytest.approx(result.grid_average)
    lines = paths["csv"].read_text().strip().splitlines()
    assert len(lines) == 1 + 2 * 2 * 2
    assert paths["heatmap"].read_bytes()[:4] == b"\x89PNG"
    log_to_tensorboard(result)
    ea = EventAccumulator(str(qarl_run / "tensorboard"), size_guidance={"images": 0})
    ea.Reload()
    assert "robustness/heatmap" in ea.Tags()["images"]
    assert {"robustness/return_nominal", "robustness/grid_average", "robustness/return_vs_adversary"} <= set(
        ea.Tags()["scalars"]
    )


def test_grid_ranges_come_from_the_env_spec():
    grid = make_grid("Hopper")
    assert len(grid.mass_factors) == len(grid.friction_factors) == 11
    assert (grid.mass_factors[0], grid.mass_factors[-1]) == (0.21, 1.86)
    assert (grid.friction_factors[0], grid.friction_factors[-1]) == (0.1, 1.9)
    assert grid.mass_body == "torso"
    with pytest.raises(ValueError, match="low <= high"):
        make_grid("Hopper", mass_range=[2, 1])
    with pytest.raises(ValueError, match="positive"):
        make_grid("Hopper", size=0)
    seeds = episode_seeds(0, "grid", 1, 2, 4)
    assert len(set(seeds.tolist())) == 4 and list(seeds) == list(episode_seeds(0, "grid", 1, 2, 4))
    assert list(seeds) != list(episode_seeds(0, "grid", 2, 1, 4))


def test_bad_runs_give_clear_messages(qarl_run, tmp_path):
    with pytest.raises(ValueError, match=r"trained on env=InvertedPendulum, not env=Hopper"):
        inspect_run(qarl_run, env="Hopper")
    with pytest.raises(ValueError, match="Hopper"):
        inspect_run(qarl_run, env="Hoper")
    broken = tmp_path / "broken"
    shutil.copytree(qarl_run, broken, ignore=shutil.ignore_patterns("iter_*", "latest"))
    with pytest.raises(NotARunError, match="no finished checkpoint"):
        evaluate_run(broken, progress=False)
    no_adversary = tmp_path / "no_adversary"
    shutil.copytree(qarl_run, no_adversary)
    for path in no_adversary.glob("checkpoints/iter_*/adversary.zip"):
        path.unlink()
    with pytest.raises(NotARunError, match=r"no adversary\.zip"):
        inspect_run(no_adversary)
    with pytest.raises(NotARunError, match="matches no file"):
        find_runs(str(tmp_path / "nothing*"))
    with pytest.raises(NotARunError, match="no run directory"):
        find_runs(str(tmp_path / "broken" / "tensorboard"))
    assert find_runs(str(tmp_path)) == sorted([broken.resolve(), no_adversary.resolve()])
    with pytest.raises(ValueError, match="valid choices"):
        evaluate_run(qarl_run, mp_context="threads", progress=False)


def test_script_end_to_end(qarl_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(qarl_run, run)
    script = str(ROOT / "scripts" / "eval_robustness.py")
    args = [f"run={run}", "grid_size=2", "eval_episodes=1", "workers=2", "progress=false", f"hydra.run.dir={tmp_path / 'h'}"]
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "grid average" in out.stdout
    for name in ("robustness.json", "grid.csv", "heatmap.png"):
        assert (run / "robustness" / name).exists()


def eval_cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("eval_robustness", overrides=list(overrides))


def test_evaluate_config_and_bad_runs(qarl_run, tmp_path):
    cfg = eval_cfg(f"run={qarl_run}", "expect_env=Hopper", "progress=false")
    assert cfg.grid_size == 11 and cfg.episodes_per_cell == 1 and cfg.eval_episodes == 20
    with pytest.raises(ValueError, match="not env=Hopper"):
        evaluate(cfg)
    # several runs: the broken one is reported, the good one is evaluated
    good, broken = tmp_path / "runs" / "good", tmp_path / "runs" / "broken"
    shutil.copytree(qarl_run, good)
    shutil.copytree(qarl_run, broken, ignore=shutil.ignore_patterns("iter_*", "latest"))
    cfg = eval_cfg(f"run={tmp_path / 'runs'}", "grid_size=1", "eval_episodes=1", "workers=1", "progress=false")
    results, errors = evaluate(cfg)
    assert [r.run for r in results] == [str(good.resolve())] and (good / "robustness" / "robustness.json").exists()
    assert list(errors) == [str(broken.resolve())] and "no finished checkpoint" in errors[str(broken.resolve())]


# ------------------------------------------------------------------------------------------ issue 12: attack, sweeps
TINY_ATTACK = dict(steps=120, snapshots=(60,), learning_starts=30, batch_size=16, net_arch=(16,), seed=3)


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sac_run")
    train(tiny_cfg(root, "algo=sac", "budget.iterations=1"))
    return root


def test_best_response_for_sac_trained_once_then_reused(sac_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sac_run, run)
    kw = dict(grid_size=1, eval_episodes=2, seed=5, workers=1, progress=False, sweep_size=0, horizon=20)
    first = evaluate_run(run, attack="both", best_response=AttackSettings(**TINY_ATTACK), **kw)
    assert first.adversary_returns is None and first.return_vs_adversary is None  # sac has no co-trained adversary
    assert sorted(first.best_response_returns) == [60, 120] and all(len(v) == 2 for v in first.best_response_returns.values())
    folder = Path(first.best_response_dir)
    assert folder.parent == run / "best_response" and (folder / "settings.json").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("adversary_*.zip")}
    assert sorted(stamps) == ["adversary_120.zip", "adversary_60.zip"]
    ea = EventAccumulator(str(folder / "tensorboard"))
    ea.Reload()
    assert {"best_response/protagonist_return", "best_response/budget"} <= set(ea.Tags()["scalars"])
    assert ea.Scalars("best_response/budget")[0].value == 120
    # the reported returns are the frozen protagonist's against the saved attacker, on the best_response seeds
    policies = load_policies(run)
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=20)
    attacker = Greedy(SAC.load(folder / "adversary_120.zip"))  # the temperature-0 limit: its greedy action
    direct = run_episodes(game, policies.protagonist, "none", episode_seeds(5, "best_response", 0, 0, 2), adversary=attacker)
    assert first.best_response_returns[120] == list(direct.returns) == first.to_json()["best_response_returns"]["120"]
    # a second evaluation reuses the attackers (same settings, budget and protagonist checkpoint)
    second = evaluate_run(run, attack="best_response", best_response=AttackSettings(**TINY_ATTACK), **kw)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("adversary_*.zip")} == stamps
    assert second.best_response_returns == first.best_response_returns
    # the attacker saved at 60 steps of the longer run is the one a 60-step budget trains
    short = dict(TINY_ATTACK, steps=60, snapshots=())
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=20)
    paths = train_attacker(attacker_view(game, policies.protagonist, "none"), AttackSettings(**short), tmp_path / "short")
    a, b = SAC.load(paths[60]).policy.state_dict(), SAC.load(folder / "adversary_60.zip").policy.state_dict()
    assert all(th.equal(a[k], b[k]) for k in a)


def test_attacker_settings_and_config_errors(qarl_run, tmp_path):
    with pytest.raises(ValueError, match=r"best_response.steps"):
        AttackSettings(steps=0)
    with pytest.raises(ValueError, match=r"snapshots must lie in \[1, steps=10\]"):
        AttackSettings(steps=10, snapshots=(20,))
    with pytest.raises(ValueError, match=r"best_response.ent_coef"):
        AttackSettings(ent_coef="auto_x")
    with pytest.raises(ValueError, match=r"best_response.ent_coef"):
        AttackSettings(ent_coef=-0.1)
    cfg = eval_cfg(f"run={qarl_run}", "attack=best_response", "best_response.ent_coef=hot", "progress=false")
    with pytest.raises(ValueError, match=r"best_response.ent_coef must be a number"):
        evaluate(cfg)
    cfg = eval_cfg(f"run={qarl_run}", "attack=worst", "progress=false")
    with pytest.raises(ValueError, match="valid choices"):
        evaluate(cfg)
    cfg = eval_cfg(f"run={qarl_run}", "attack=best_response", "best_response.learning_rate=-1", "progress=false")
    with pytest.raises(ValueError, match=r"best_response\.learning_rate"):
        evaluate(cfg)
    with pytest.raises(ValueError, match="sweep_size must be a non-negative integer"):
        evaluate(eval_cfg(f"run={qarl_run}", "sweep_size=-1", "progress=false"))
    assert not (qarl_run / "best_response").exists()  # nothing was created
    assert eval_cfg(f"run={qarl_run}").sweep_size == 11


def test_sweeps_and_hparams(qarl_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(qarl_run, run)
    kw = dict(grid_size=1, eval_episodes=1, seed=2, workers=1, progress=False, horizon=20)
    result = evaluate_run(run, sweep_size=3, sweep_episodes=2, mass_range=[0.5, 1.5], friction_range=[0.5, 1.5], **kw)
    assert result.sweep_factors == {"mass": [0.5, 1.0, 1.5], "friction": [0.5, 1.0, 1.5]}
    assert all(len(r) == 2 for name in ("mass", "friction") for r in result.sweep_returns[name])
    policies = load_policies(run)
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=20)
    heavy = run_episodes(
        game,
        policies.protagonist,
        "temperature",
        episode_seeds(2, "sweep_mass", 0, 0, 2),
        None,
        perturbation_options(0.5, 1.0, ["pole"]),
    )
    assert result.sweep_returns["mass"][0] == list(heavy.returns)
    nominal = run_episodes(game, policies.protagonist, "temperature", episode_seeds(2, "sweep_friction", 1, 0, 2))
    assert result.sweep_returns["friction"][1] == list(nominal.returns)
    assert result.sweep_average("mass") == pytest.approx(np.mean([np.mean(r) for r in result.sweep_returns["mass"]]))
    paths = write_results(result, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["sweep_mean"]["mass"][0] == pytest.approx(np.mean(heavy.returns))
    rows = paths["sweeps_csv"].read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 3 * 2 and paths["sweeps"].read_bytes()[:4] == b"\x89PNG"
    log_to_tensorboard(result, OmegaConf.create({"sweep_size": 3, "attack": "co_trained"}))
    ea = EventAccumulator(str(run / "tensorboard" / "hparams_robustness"))
    ea.Reload()
    content = ea.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert session.hparams["algo.name"].string_value == "qarl" and session.hparams["eval.sweep_size"].number_value == 3
    assert ea.Scalars("robustness/sweep_mass_average")[0].value == pytest.approx(result.sweep_average("mass"))
    # training wrote its own session (config + final eval/ values) when it completed its budget
    ea = EventAccumulator(str(run / "tensorboard" / "hparams"))
    ea.Reload()
    assert "_hparams_/session_start_info" in ea.PluginTagToContent("hparams") and "eval/return_nominal" in ea.Tags()["scalars"]

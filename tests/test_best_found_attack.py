"""Issue 21 item 2: the best found attack, the minimum over several learned attackers and fixed strategies."""

import json
import shutil

import mujoco
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.episodes import run_episodes
from rl.qarl import load_policies, train
from rl.robustness.best_response import AttackSettings
from rl.robustness.config import register_configs
from rl.robustness.evaluate import evaluate, evaluate_run
from rl.robustness.fixed_attacks import fixed_attacks
from rl.robustness.output import write_results
from rl.robustness.report import build_report, read_run, write_report
from rl.robustness.tasks import episode_seeds
from tests.qarl_helpers import CONFIGS, tiny_cfg


class Balancer:
    """A hand-tuned linear controller that balances InvertedPendulum for the whole horizon when nobody pushes."""

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        action = 1.0 * obs[0] + 10.0 * obs[1] + 0.5 * obs[2] + 2.0 * obs[3]
        return np.clip(np.array([action], dtype=np.float32), -3.0, 3.0), None


def test_fixed_strategies_push_a_balancing_pendulum_over():
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=200)
    attacks = fixed_attacks(game)
    assert list(attacks) == ["const+pole.x", "const-pole.x", "bang+vel", "bang-vel"]
    seeds = [0, 1, 2]
    nominal = run_episodes(game, Balancer(), "none", seeds).returns
    assert list(nominal) == [200.0] * 3  # it balances unattacked
    attacked = {name: run_episodes(game, Balancer(), "none", seeds, adversary=a).returns for name, a in attacks.items()}
    assert attacked["const+pole.x"].mean() < 150.0 and attacked["bang+vel"].mean() < 150.0  # both topple it
    assert attacked["const-pole.x"].mean() == 200.0  # the other sign does not (it compensates a push along -x)
    # a constant push is the full bound along its axis, all the time
    assert np.array_equal(attacks["const-pole.x"].predict(None)[0], np.array([-1.0], dtype=np.float32))


def test_bang_bang_reads_the_attacked_bodys_velocity_without_touching_the_game():
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=50)
    game.reset(seed=0)
    attacks = fixed_attacks(game)
    rng = np.random.default_rng(0)
    pole = game.body_id("pole")
    for _ in range(5):
        qpos, qvel = game.task.init_qpos + rng.normal(0, 0.1, 2), rng.normal(0, 1, 2)
        game.task.set_state(qpos, qvel)
        game.data.xipos[pole] += 1.0  # stale derived quantities (as after mj_step) must not be read
        before = game.data.xipos.copy()
        # the velocity of the pole's centre of mass along x, by finite differences of its position
        scratch, eps = mujoco.MjData(game.model), 1e-6
        scratch.qpos[:] = qpos
        mujoco.mj_kinematics(game.model, scratch)
        x0 = scratch.xipos[pole, 0]
        scratch.qpos[:] = qpos + eps * qvel
        mujoco.mj_kinematics(game.model, scratch)
        velocity = (scratch.xipos[pole, 0] - x0) / eps
        assert attacks["bang+vel"].velocities() == pytest.approx([velocity], rel=1e-4, abs=1e-6)
        assert attacks["bang+vel"].predict(None)[0][0] == np.sign(velocity) == -attacks["bang-vel"].predict(None)[0][0]
        assert np.array_equal(game.data.xipos, before)  # the game's own state is left as it was


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sac_run")
    train(tiny_cfg(root, "algo=sac", "budget.iterations=1"))
    return root


def test_best_found_attack_is_the_minimum_over_every_attacker(sac_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sac_run, run)
    settings = AttackSettings(steps=60, learning_starts=30, batch_size=16, net_arch=(16,), seed=7, snapshots=(40,))
    kw = dict(grid_size=1, eval_episodes=3, seed=5, workers=1, progress=False, sweep_size=0, horizon=30)
    result = evaluate_run(run, attack="best_response", best_response=settings, **kw)
    names = [a["name"] for a in result.attackers]
    assert names == [
        "sac_s7@40",
        "sac_s7@60",
        "sac_s8@40",
        "sac_s8@60",
        "const+pole.x",
        "const-pole.x",
        "bang+vel",
        "bang-vel",
    ]
    assert all(len(a["returns"]) == 3 for a in result.attackers) and not result.failures
    means = result.attacker_means
    final = {n: v for n, v in means.items() if "@40" not in n}  # snapshots are not in the minimum
    assert result.return_vs_best_found_attack == min(final.values()) and result.best_found_attack in final
    assert all(result.return_vs_best_found_attack <= v for v in final.values())
    assert result.return_vs_best_found_attack <= result.return_vs_best_response
    # return_vs_best_response: the mean over the attacker seeds at the main budget
    assert result.return_vs_best_response == pytest.approx(np.mean([means["sac_s7@60"], means["sac_s8@60"]]))
    # every fixed strategy's number is the protagonist's return against it on the best-response episodes
    policies = load_policies(run)
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=30)
    seeds = episode_seeds(5, "best_response", 0, 0, 3)
    for name, attack in fixed_attacks(game).items():
        direct = run_episodes(game, policies.protagonist, "none", seeds, adversary=attack)
        assert result.attackers[names.index(name)]["returns"] == list(direct.returns)

    # a process pool gives the same numbers (the attackers are reused; the workers build their own fixed strategies)
    parallel = evaluate_run(run, attack="best_response", best_response=settings, **(kw | {"workers": 2}))
    assert parallel.attackers == result.attackers

    # robustness.json keeps every attacker's number; the report shows the best found attack and each attacker
    paths = write_results(result, run / "robustness")
    data = json.loads(paths["json"].read_text())
    assert [a["name"] for a in data["attackers"]] == names
    assert data["attackers"][names.index("bang+vel")]["mean"] == pytest.approx(means["bang+vel"])
    assert data["return_vs_best_found_attack"] == pytest.approx(result.return_vs_best_found_attack)
    assert data["best_found_attack"] == result.best_found_attack
    record = read_run(run, "robustness")
    assert record.values["return_vs_best_found_attack"] == pytest.approx(result.return_vs_best_found_attack)
    assert record.attacks == pytest.approx(means)
    write_report(build_report([run]), tmp_path / "report", ["eval/return_nominal"], 10, bootstrap_reps=100)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "vs best found attack" in md and "| method | " + " | ".join(names) + " |" in md
    assert f"{result.return_vs_best_found_attack:.1f} (1 seed)" in md


def test_attack_config_defaults_and_errors(tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("eval_robustness", overrides=[f"run={tmp_path}"])
    assert cfg.best_response.seeds == 2 and cfg.best_response.fixed is True
    assert AttackSettings().seeds == 2 and AttackSettings().fixed and AttackSettings(seed=3).attacker_seeds == [3, 4]
    with pytest.raises(ValueError, match=r"best_response.seeds is out of range: got 0"):
        AttackSettings(seeds=0)
    cfg.best_response.seeds = 0
    with pytest.raises(ValueError, match=r"best_response.seeds"):
        evaluate(cfg)
    assert not any(tmp_path.iterdir())  # nothing was created
    # the number of seeds and the fixed strategies do not change which attacker a seed trains (reused, same folder)
    assert AttackSettings(seeds=1, fixed=False).key("iter_1", 500) == AttackSettings().key("iter_1", 500)

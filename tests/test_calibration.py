import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from envs.adversarial.env import AdversarialMujocoEnv
from rl.robustness.calibration import calibrate, measure_reward_scale, policy_entropy, random_return, rationality_check
from rl.robustness.config import register_configs

ROOT = Path(__file__).resolve().parents[1]


class Constant:
    """A protagonist that always plays the same action."""

    def __init__(self, value):
        self.value = np.array([value], dtype=np.float32)

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        return self.value, None


def cal_cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("calibrate_scales", overrides=list(overrides))


def test_random_return_is_the_discounted_return_of_uniform_actions():
    out = random_return("InvertedPendulum", episodes=3, horizon=30, gamma=0.9, seed=4)
    assert out == random_return("InvertedPendulum", episodes=3, horizon=30, gamma=0.9, seed=4)
    # InvertedPendulum pays 1 per step alive and 0 on the terminating step: a discounted sum of ones
    assert 0 < out["random_return"] <= sum(0.9**k for k in range(30))
    assert out["random_undiscounted_return"] >= out["random_return"]
    with pytest.raises(ValueError, match="gamma"):
        random_return("InvertedPendulum", gamma=0.0)


def test_reward_scale_is_total_reward_over_total_steps():
    out = measure_reward_scale(Constant(0.0), "InvertedPendulum", episodes=2, horizon=10)
    # a pendulum left alone stays up for 10 steps: reward 1 per step
    assert out["length_mean"] == 10 and out["reward_scale"] == pytest.approx(1.0)
    pushed = measure_reward_scale(Constant(3.0), "InvertedPendulum", episodes=2, horizon=200)
    # pushed hard it falls: the terminating step pays 0, so c < 1
    assert pushed["length_mean"] < 200 and pushed["reward_scale"] == pytest.approx(1 - 1 / pushed["length_mean"])


def test_config_errors_before_anything_is_written(tmp_path):
    cfg = cal_cfg("env=dmc_cartpole_balance", f"run_dir={tmp_path / 'a'}")
    with pytest.raises(ValueError, match="need no calibration"):
        calibrate(cfg)
    cfg = cal_cfg("env=InvertedPendulum", "protagonist_steps=0", f"run_dir={tmp_path / 'b'}")
    with pytest.raises(ValueError, match="protagonist_steps must be a positive integer"):
        calibrate(cfg)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_calibration_tiny(tmp_path, capsys):
    """The script's body end to end at a tiny budget: a trained protagonist, c, J_rand and the two adversaries."""
    cfg = cal_cfg(
        "env=InvertedPendulum",
        "protagonist_steps=200",
        "learning_starts=50",
        "net_arch=[8]",
        "horizon=20",
        "episodes=2",
        "random_episodes=2",
        "rationality=true",
        "rationality_steps=60",
        "rationality_net_arch=[8]",
        f"protagonist_dir={tmp_path / 'protagonist'}",
        f"run_dir={tmp_path / 'run'}",
    )
    calibrate(cfg)
    data = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert data["protagonist"]["steps"] == 200 and (tmp_path / "protagonist" / "protagonist.zip").exists()
    assert 0 < data["competent"]["reward_scale"] <= 1.0 and data["random"]["episodes"] == 2
    r = data["rationality"]
    assert r["p0_mean"]["temperature"] == pytest.approx(50 * r["mu_mean"]["temperature"])
    assert r["mu_mean"]["temperature"] == pytest.approx(data["competent"]["reward_scale"] / 1000)
    out = capsys.readouterr().out
    assert "c = " in out and "rationality check" in out
    # a later call with a larger budget continues the saved protagonist (with its kept replay buffer)
    from stable_baselines3 import SAC

    from rl.robustness.calibration import train_protagonist

    path = train_protagonist("InvertedPendulum", 260, tmp_path / "protagonist", horizon=20, net_arch=(8,), learning_starts=50)
    assert SAC.load(path).num_timesteps == 260


def test_rationality_check_of_a_given_scale(tmp_path, capsys):
    """``rationality_reward_scale`` checks that c (e.g. the spec's) instead of the measured one; bad values fail first."""
    common = [
        "env=InvertedPendulum",
        "protagonist_steps=60",
        "learning_starts=50",
        "net_arch=[8]",
        "horizon=10",
        "episodes=1",
        "random_episodes=1",
        "rationality=true",
        "rationality_steps=20",
        "rationality_net_arch=[8]",
        f"protagonist_dir={tmp_path / 'protagonist'}",
    ]
    with pytest.raises(ValueError, match=r"rationality_reward_scale must be a positive number.*-2"):
        calibrate(cal_cfg(*common, "rationality_reward_scale=-2", f"run_dir={tmp_path / 'bad'}"))
    assert not (tmp_path / "bad").exists()
    calibrate(cal_cfg(*common, "rationality_reward_scale=4.5", f"run_dir={tmp_path / 'run'}"))
    r = json.loads((tmp_path / "run" / "calibration.json").read_text())["rationality"]
    assert r["reward_scale"] == 4.5 and r["mu_mean"]["temperature"] == pytest.approx(4.5 / 1000)
    assert "rationality check of c = 4.5" in capsys.readouterr().out


@pytest.mark.slow
def test_rationality_check_on_inverted_pendulum(tmp_path):
    """specs/qarl.md evidence 8 on InvertedPendulum-v5: the adversary at the mean of p0 keeps a higher entropy and
    lowers the frozen protagonist's return less than the one at the mean of mu (about 15 CPU-minutes)."""
    from stable_baselines3 import SAC

    from rl.robustness.calibration import train_protagonist

    path = train_protagonist("InvertedPendulum", 15_000, tmp_path / "protagonist", net_arch=(64, 64), learning_starts=1000)
    protagonist = SAC.load(path)
    c = measure_reward_scale(protagonist, "InvertedPendulum", episodes=5)["reward_scale"]
    result = rationality_check(protagonist, "InvertedPendulum", "none", c, 10_000, tmp_path / "check", episodes=10)
    assert result["p0_mean"]["entropy"] > result["mu_mean"]["entropy"]
    assert result["p0_mean"]["return_drop"] < result["mu_mean"]["return_drop"]
    assert result["passed"]


def test_policy_entropy_of_a_fresh_policy():
    from stable_baselines3 import SAC

    from envs.adversarial.views import AdversaryView

    view = AdversaryView(AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=5))
    model = SAC("MlpPolicy", view, policy_kwargs={"net_arch": [8]}, seed=0)
    obs = np.zeros((50, view.observation_space.shape[0]), dtype=np.float32)
    # tanh of N(mu ~ 0, 1) (SB3's initial log std is 0): 0.5 log(2 pi e) + E[log(1 - tanh(u)^2)] = 1.419 - 0.750
    assert policy_entropy(model, obs, samples=400) == pytest.approx(0.669, abs=0.06)


def test_partial_checkpoint_is_atomic_and_a_torn_pair_is_never_resumed(tmp_path, monkeypatch, capsys):
    """Issue 27 item 7: ``partial.zip`` and its buffer are written atomically, buffer first; a crash while writing
    either leaves a pair that is resumed only when both hold the same step (else the training starts over)."""
    from stable_baselines3 import SAC

    from envs.common.io import load_state_file
    from rl.robustness import calibration

    out = tmp_path / "protagonist"
    kw = dict(horizon=20, net_arch=(8,), learning_starts=50, checkpoint_every=50)
    save_buffer = calibration._save_buffer
    calls = []

    def crash_on_second_buffer(model, path):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full while writing the buffer")
        save_buffer(model, path)

    monkeypatch.setattr(calibration, "_save_buffer", crash_on_second_buffer)
    with pytest.raises(OSError, match="disk full"):
        calibration.train_protagonist("InvertedPendulum", 200, out, **kw)
    # the pair of the first checkpoint is intact and consistent (the zip is written after its buffer)
    assert SAC.load(out / "partial.zip").num_timesteps == 50 == load_state_file(out / "partial_buffer.pt")["num_timesteps"]
    monkeypatch.setattr(calibration, "_save_buffer", save_buffer)

    # a crash inside SB3's save of the zip leaves the old zip whole (the half-written file was a temporary one)
    save = SAC.save

    def crash_inside_save(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a zip")
        raise OSError("killed while writing the zip")

    monkeypatch.setattr(SAC, "save", crash_inside_save)
    with pytest.raises(OSError, match="killed"):
        calibration.train_protagonist("InvertedPendulum", 200, out, **kw)
    monkeypatch.setattr(SAC, "save", save)
    assert sorted(p.name for p in out.iterdir() if p.name != "tensorboard") == ["partial.zip", "partial_buffer.pt"]
    # the buffer of step 100 was written, the zip is still the one of step 50: a torn pair, not resumed
    assert SAC.load(out / "partial.zip").num_timesteps == 50
    assert load_state_file(out / "partial_buffer.pt")["num_timesteps"] == 100
    capsys.readouterr()
    path = calibration.train_protagonist("InvertedPendulum", 200, out, **kw)
    assert "starting over" in capsys.readouterr().out
    assert SAC.load(path).num_timesteps == 200 and not (out / "partial.zip").exists()

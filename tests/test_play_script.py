"""Subprocess smoke runs of scripts/play_adversarial.py: run directory, config, command and TensorBoard logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "play_adversarial.py"


def run_script(*overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *overrides], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_play_writes_run_dir_and_logs_returns(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_script("env=Hopper", "episodes=2", "seed=7", "env.max_episode_steps=30", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert "mean protagonist return" in proc.stdout

    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.env.name == "Hopper" and cfg.episodes == 2 and cfg.seed == 7
    assert cfg.name == "Hopper__random_vs_random__s7"  # interpolations are resolved in the saved config
    command = (run_dir / "command.txt").read_text()
    assert "play_adversarial.py" in command and "env=Hopper" in command and "episodes=2" in command
    assert (run_dir / "checkpoints").is_dir() and (run_dir / ".hydra" / "overrides.yaml").is_file()

    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    pro = acc.Scalars("rollout/protagonist_return")
    adv = acc.Scalars("rollout/adversary_return")
    lengths = acc.Scalars("rollout/episode_length")
    assert len(pro) == len(adv) == len(lengths) == 2
    assert all(p.value == pytest.approx(-a.value) for p, a in zip(pro, adv, strict=True))
    assert all(1 <= e.value <= 30 for e in lengths)
    # the x-axis is env steps: cumulative episode lengths
    assert [e.step for e in pro] == [int(lengths[0].value), int(lengths[0].value + lengths[1].value)]
    assert "config/text_summary" in acc.Tags()["tensors"]


@pytest.mark.slow  # a second interpreter start (~5-10 s on 2 shared cores); the compose API test covers the message
def test_play_rejects_unknown_env(tmp_path: Path) -> None:
    proc = run_script("env=Hoper", "episodes=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0
    assert "Could not find 'env/Hoper'" in proc.stderr and "Hopper" in proc.stderr
    assert not (tmp_path / "run" / "config.yaml").exists()

import signal
import subprocess
import sys
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.qarl_helpers import TINY

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "scripts" / "train_qarl.py")

EXPECTED_TAGS = {
    "rollout/protagonist_return",
    "adversary/episode_return",
    "eval/return_nominal",
    "eval/return_vs_adversary",
    "curriculum/temperature_mean",
    "curriculum/temperature_std",
    "curriculum/kl_to_target",
    "curriculum/performance",
    "curriculum/threshold",
    "train/actor_loss",
    "train/critic_loss",
    "train/ent_coef",
    "adversary/actor_loss",
    "adversary/critic_loss",
    "adversary/ent_coef",
    "time/env_steps_per_second",
}


def run(*args, timeout=300):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_script_end_to_end_writes_tensorboard(tmp_path):
    out = run(*TINY, "budget.iterations=3", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "tensorboard --logdir" in out.stdout
    for name in ("config.yaml", "command.txt", "checkpoints/latest"):
        assert (tmp_path / name).exists(), name
    ea = EventAccumulator(str(tmp_path / "tensorboard"))
    ea.Reload()
    missing = EXPECTED_TAGS - set(ea.Tags()["scalars"])
    assert not missing, missing
    assert any("config" in t for t in ea.Tags()["tensors"])


def test_bad_input_messages(tmp_path):
    out = run("algo=qral", f"hydra.run.dir={tmp_path / 'a'}")
    assert out.returncode != 0 and "qarl" in out.stderr and "rarl" in out.stderr
    out = run("env=Hoper", f"hydra.run.dir={tmp_path / 'b'}")
    assert out.returncode != 0 and "Hopper" in out.stderr
    out = run(f"resume={tmp_path}", f"hydra.run.dir={tmp_path / 'c'}")
    assert out.returncode != 0 and "not a run directory" in out.stderr and "Traceback" not in out.stderr


def test_ctrl_c_saves_a_checkpoint(tmp_path):
    args = [*TINY, "budget.iterations=100000", "budget.checkpoint_every=1", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    latest = tmp_path / "checkpoints" / "latest"
    deadline = time.time() + 180
    while time.time() < deadline and not latest.exists():
        time.sleep(0.5)
    assert latest.exists(), "no checkpoint was written"
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    assert "interrupted: checkpoint saved" in stdout
    name = latest.read_text().strip()
    assert (tmp_path / "checkpoints" / name / "protagonist.zip").exists()
    assert not list((tmp_path / "checkpoints").glob(".iter_*"))  # no half-written folder left behind

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
    assert (tmp_path / "done.json").exists()
    # resume with none of the run's overrides: its own config.yaml is used, in its own folder
    out = run(f"resume={tmp_path}", "budget.iterations=4", f"hydra.run.dir={tmp_path / 'new'}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "iter_000004").exists() and not (tmp_path / "new").exists()
    assert "# resumed:" in (tmp_path / "command.txt").read_text()
    # the same budget again: nothing to do, nothing written (done.json, TensorBoard, command.txt, Hydra's log)
    files = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    out = run(f"resume={tmp_path}", "budget.iterations=4", f"hydra.run.dir={tmp_path / 'new'}")
    assert out.returncode == 0 and "is complete: 4 iterations" in out.stdout, out.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == files


def test_bad_input_messages(tmp_path):
    out = run("algo=qral", f"hydra.run.dir={tmp_path / 'a'}")
    assert out.returncode != 0 and "qarl" in out.stderr and "rarl" in out.stderr
    out = run("env=Hoper", f"hydra.run.dir={tmp_path / 'b'}")
    assert out.returncode != 0 and "Hopper" in out.stderr
    out = run(f"resume={tmp_path}", f"hydra.run.dir={tmp_path / 'c'}")
    assert out.returncode != 0 and "not a run directory" in out.stderr and "Traceback" not in out.stderr
    out = run("budget.eval_every=0", f"hydra.run.dir={tmp_path / 'd'}")
    assert out.returncode != 0 and "budget.eval_every=0 is out of range" in out.stderr and "Traceback" not in out.stderr
    assert not any((tmp_path / name).exists() for name in "abcd")  # a launch that fails writes no folder


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a background job of a non-interactive shell inherits


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_saves_a_checkpoint(tmp_path, signum):
    """SIGINT and SIGTERM stop a run with a checkpoint and 128 + signal, even if SIGINT was inherited ignored."""
    args = [*TINY, "budget.iterations=100000", "budget.checkpoint_every=1", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    latest = tmp_path / "checkpoints" / "latest"
    deadline = time.time() + 180
    while time.time() < deadline and not latest.exists():
        time.sleep(0.5)
    assert latest.exists(), "no checkpoint was written"
    time.sleep(1)
    proc.send_signal(signum)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, stderr[-3000:]
    assert "interrupted by signal" in stdout
    name = latest.read_text().strip()
    assert (tmp_path / "checkpoints" / name / "resume.pt").exists()
    assert not list((tmp_path / "checkpoints").glob(".iter_*"))  # no half-written folder left behind
    assert not (tmp_path / "done.json").exists()


def _submitit_task_pid(sweep_dir):
    """The pid of the running task of submitit's local executor (the child of the controller named by .submitit/)."""
    for folder in (sweep_dir / ".submitit").glob("*"):
        children = Path(f"/proc/{folder.name}/task/{folder.name}/children")
        if folder.name.isdigit() and children.exists() and children.read_text().split():
            return int(children.read_text().split()[0])
    return None


def _iterations_logged(run_dir):
    if not (run_dir / "tensorboard").exists():
        return 0
    ea = EventAccumulator(str(run_dir / "tensorboard"))
    ea.Reload()
    return len(ea.Scalars("time/iteration")) if "time/iteration" in ea.Tags()["scalars"] else 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the task process through /proc")
def test_preempted_submitit_job_is_requeued_and_resumes(tmp_path):
    """A SIGUSR2 (SLURM's time-out/preemption signal) makes the job checkpoint; submitit requeues it and it finishes."""
    iterations = 50
    args = [
        "-m",
        *TINY,
        f"budget.iterations={iterations}",
        "budget.checkpoint_every=1000",  # only the signal and the end write checkpoints
        "resume=auto",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=30",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweep.subdir=${name}_${hydra.job.num}",
    ]
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        job = tmp_path / "InvertedPendulum__qarl__s0_0"
        deadline = time.time() + 300
        while time.time() < deadline and _iterations_logged(job) < 3:  # the job is in its training loop
            time.sleep(0.5)
        pid = _submitit_task_pid(tmp_path)
        assert pid is not None, "no submitit task found"
        os.kill(pid, signal.SIGUSR2)  # what SLURM sends before a time-out or a preemption
        _, stderr = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    done = json.loads((job / "done.json").read_text())
    assert done["iterations"] == iterations
    assert "# resumed:" in (job / "command.txt").read_text()  # the requeued job continued the run
    logs = "".join(p.read_text() for p in (tmp_path / ".submitit").rglob("*.out"))
    assert "interrupted by signal 12" in logs and "Requeued job" in logs + "".join(
        p.read_text() for p in (tmp_path / ".submitit").rglob("*.err")
    )

"""Sweeps, preemption and requeues on a real SLURM scheduler (``make test-cluster``; issue 21).

Marked ``cluster``: the default suite deselects them, and they skip when no scheduler answers ``sinfo``.
``make test-cluster`` starts a private single-node SLURM (``.ci/slurm.sh``), runs them and stops it again.
Every job is a tiny InvertedPendulum run on one CPU, so the module takes a few minutes on two cores.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rl.qarl.checkpoint import load_resume_state
from tests.qarl_helpers import TINY, assert_same_state

ROOT = Path(__file__).resolve().parents[1]
ITERATIONS = 40  # enough that the signals land while the jobs train
WAIT_S = 900  # generous: the jobs take about a minute; a hang fails the test instead of blocking the suite


def _scheduler_problem() -> str | None:
    """Why no SLURM scheduler can take jobs here, or None when one can."""
    if shutil.which("sinfo") is None:
        return "no SLURM client (sinfo) on PATH; `make test-cluster` starts a single-node SLURM"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s"
    if out.returncode != 0:
        return f"no SLURM controller reachable (sinfo: {out.stderr.strip()[:200]})"
    if not set(out.stdout.split()) & {"idle", "mixed", "allocated", "completing"}:
        return f"no SLURM node can take jobs (states: {out.stdout.split()})"
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        return "hydra-submitit-launcher is not installed"
    return None


pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module", autouse=True)
def scheduler():
    """Skip the module, with the reason, when no scheduler takes jobs (checked only when these tests are selected)."""
    problem = _scheduler_problem()
    if problem is not None:
        pytest.skip(problem)


def launcher(sweep_dir: Path) -> list[str]:
    """configs/hydra/launcher/slurm.yaml, sized for a test node."""
    return [
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.timeout_min=30",
        f"hydra.sweep.dir={sweep_dir}",
    ]


def train_args(sweep_dir: Path, seeds: str) -> list[str]:
    """The README's cluster sweep (resume=auto, a job folder that does not depend on the start time), tiny."""
    return [
        *TINY,
        f"budget.iterations={ITERATIONS}",
        "budget.checkpoint_every=1000",  # only the signals and the end write checkpoints
        "torch_threads=1",
        "device=cpu",
        f"seed={seeds}",
        "resume=auto",
        *launcher(sweep_dir),
        "hydra.sweep.subdir=${name}_${hydra.job.num}",
    ]


def launch(script: str, args: list[str], log: Path) -> subprocess.Popen:
    """Start a Hydra multirun (it submits the jobs and waits for their results); output goes to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / script), "-m", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def job_ids(sweep_dir: Path) -> dict[int, str]:
    """SLURM job id of each job number of a sweep, from submitit's folders (``<id>/`` or ``<array id>_<index>/``)."""
    ids = {}
    for pickle in (sweep_dir / ".submitit").glob("*/*_submitted.pkl"):
        job_id = pickle.parent.name
        ids[int(job_id.split("_")[1]) if "_" in job_id else 0] = job_id
    return ids


def job_state(job_id: str) -> str:
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=60)
    m = re.search(r"\bJobState=(\S+)", out.stdout)
    return m[1] if m else "UNKNOWN"


def release_if_requeued(job_id: str) -> None:
    """A requeued job waits 2 minutes (SLURM's fixed delay before it is eligible again); start it now."""
    if job_state(job_id) == "PENDING":
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], capture_output=True, timeout=60)


def iterations_logged(run: Path) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not (run / "tensorboard").exists():
        return 0
    ea = EventAccumulator(str(run / "tensorboard"))
    ea.Reload()
    return len(ea.Scalars("time/iteration")) if "time/iteration" in ea.Tags()["scalars"] else 0


def wait_until(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def finish(proc: subprocess.Popen, log: Path, requeued: list[str] = ()) -> None:
    """Wait for the multirun to return, starting requeued jobs at once; it must succeed."""
    deadline = time.monotonic() + WAIT_S
    while proc.poll() is None:
        assert time.monotonic() < deadline, f"the sweep did not finish in {WAIT_S} s:\n{log.read_text()[-3000:]}"
        for job_id in requeued:
            release_if_requeued(job_id)
        time.sleep(1)
    assert proc.returncode == 0, log.read_text()[-3000:]


def job_log(sweep_dir: Path, job_id: str) -> str:
    return "".join(p.read_text() for p in sorted((sweep_dir / ".submitit" / job_id).glob("*_log.*")))


def interrupt_mid_run(sweep_dir: Path, job: int, run: Path, *scancel_args: str) -> str:
    """Signal a job with ``scancel`` once its training loop is under way; returns its SLURM job id."""
    wait_until(lambda: job in job_ids(sweep_dir), f"job {job} to be submitted", timeout=300)
    job_id = job_ids(sweep_dir)[job]
    wait_until(lambda: iterations_logged(run) >= 3, f"{run.name} to log 3 iterations")
    assert iterations_logged(run) < ITERATIONS, "the job finished before it could be interrupted"
    subprocess.run(["scancel", *scancel_args, job_id], check=True, timeout=60)
    return job_id


def final_state(run: Path):
    name = (run / "checkpoints" / "latest").read_text().strip()
    return name, load_resume_state(run / "checkpoints" / name)


def assert_twins(a: Path, b: Path) -> None:
    """Same final checkpoint, bit for bit: policies, critics, optimisers, temperatures, buffers, teacher."""
    (name_a, sa), (name_b, sb) = final_state(a), final_state(b)
    assert name_a == name_b == f"iter_{ITERATIONS:06d}"
    for player in ("protagonist", "adversary"):
        assert sa["agents"][player]["sb3"]["_n_updates"] > 0
        for part in ("modules", "variables", "buffer"):
            assert_same_state(sa["agents"][player][part], sb["agents"][player][part], f"{player}.{part}")
    assert sa["teacher"] == sb["teacher"]
    assert sa["trainer"]["protagonist_steps"] == sb["trainer"]["protagonist_steps"]
    assert sa["trainer"]["env_steps"] == sb["trainer"]["env_steps"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two jobs of the same run (seed 0 twice) through hydra/launcher=slurm; job 1 gets SIGUSR2 mid-run."""
    root = tmp_path_factory.mktemp("slurm")
    sweep_dir, log = root / "sweep", root / "sweep.log"
    proc = launch("train_qarl.py", train_args(sweep_dir, "0,0"), log)
    interrupted = sweep_dir / "InvertedPendulum__qarl__s0_1"
    try:
        job_id = interrupt_mid_run(sweep_dir, 1, interrupted, "--signal=USR2")  # SLURM's time-out/preemption signal
        finish(proc, log, requeued=[job_id])
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(["scancel", *job_ids(sweep_dir).values()], timeout=60)
    return sweep_dir, log, job_id


def test_two_job_sweep_completes_and_reports(sweep):
    sweep_dir, log, _ = sweep
    runs = sorted(sweep_dir.glob("InvertedPendulum__qarl__s0_*"))
    assert [r.name for r in runs] == ["InvertedPendulum__qarl__s0_0", "InvertedPendulum__qarl__s0_1"]
    for run in runs:
        done = json.loads((run / "done.json").read_text())
        assert done["iterations"] == ITERATIONS
    assert "Submitit 'slurm' sweep output dir" in log.read_text()
    results = sorted((sweep_dir / ".submitit").glob("*_*/*_result.pkl"))
    assert len(results) == 2  # submitit's result of each array task: the job returned, not just died


def test_preempted_job_is_requeued_and_ends_equal_to_its_twin(sweep):
    """SIGUSR2 mid-run: checkpoint, submitit requeues it (SIGTERM from scontrol requeue, one line), resume=auto."""
    sweep_dir, _, job_id = sweep
    straight, interrupted = sweep_dir / "InvertedPendulum__qarl__s0_0", sweep_dir / "InvertedPendulum__qarl__s0_1"
    logs = job_log(sweep_dir, job_id)
    assert "interrupted by signal 12" in logs and f"Requeued job {job_id}" in logs
    assert "Traceback" not in logs and "KeyboardInterrupt" not in logs  # the requeue's SIGTERM is expected
    assert logs.count("requeued: this attempt exits here") == 1
    assert "# resumed:" in (interrupted / "command.txt").read_text()
    assert "# resumed:" not in (straight / "command.txt").read_text()
    assert_twins(straight, interrupted)


def test_scancel_then_scontrol_requeue_continues_the_run(sweep, tmp_path):
    """A plain scancel (SIGTERM) checkpoints and exits 143; `scontrol requeue` later and resume=auto continues."""
    sweep_dir, log = tmp_path / "sweep", tmp_path / "sweep.log"
    proc = launch("train_qarl.py", train_args(sweep_dir, "0"), log)
    run = sweep_dir / "InvertedPendulum__qarl__s0_0"
    try:
        job_id = interrupt_mid_run(sweep_dir, 0, run)
        wait_until(lambda: job_state(job_id) == "CANCELLED", f"job {job_id} to be cancelled")
        assert "interrupted by signal 15" in job_log(sweep_dir, job_id)
        assert not (run / "done.json").exists()
        requeue = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
        assert requeue.returncode == 0, requeue.stderr
        finish(proc, log, requeued=[job_id])  # the launcher was still waiting for the job's result
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(["scancel", *job_ids(sweep_dir).values()], timeout=60)
    logs = job_log(sweep_dir, job_id)
    assert "Traceback" not in logs and "KeyboardInterrupt" not in logs
    assert "# resumed:" in (run / "command.txt").read_text()
    assert_twins(sweep[0] / "InvertedPendulum__qarl__s0_0", run)


def test_robustness_evaluation_runs_as_slurm_jobs(sweep, tmp_path):
    sweep_dir = sweep[0]
    runs = sorted(sweep_dir.glob("InvertedPendulum__qarl__s0_*"))
    args = [
        "run=" + ",".join(str(r) for r in runs),  # one SLURM job per run
        "grid_size=2",
        "eval_episodes=1",
        "sweep_size=2",
        "workers=1",
        "progress=false",
        *launcher(tmp_path / "eval"),
        "hydra.sweep.subdir=${hydra.job.num}",
    ]
    log = tmp_path / "eval.log"
    proc = launch("eval_robustness.py", args, log)
    try:
        finish(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(["scancel", *job_ids(tmp_path / "eval").values()], timeout=60)
    assert len(job_ids(tmp_path / "eval")) == 2
    results = [json.loads((r / "robustness" / "robustness.json").read_text()) for r in runs]
    assert results[0]["grid_average"] == results[1]["grid_average"]  # twins: the same agents, the same seeds

    out = tmp_path / "report"
    args = [f"runs=[{sweep_dir}]", f"out={out}", "bootstrap_reps=100", f"hydra.run.dir={tmp_path / 'h'}"]
    report = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report_qarl.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert (out / "report.md").exists() and "| qarl |" in report.stdout

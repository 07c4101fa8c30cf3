"""A damaged ``resume.pt`` is refused before anything is written, and a new checkpoint is verified (issue 21, item 3).

Each checkpoint's ``state.json`` records the size and SHA-256 of its ``resume.pt``; a resume checks them before any
folder or file is created, and the message names the damaged file, the previous intact checkpoint and the command
that continues from it. A checkpoint is written, fsynced and read back before the previous resume state is deleted.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th

from rl.qarl import train
from rl.qarl.checkpoint import RESUME_FILE, CheckpointManager, load_resume_state
from tests.qarl_helpers import assert_same_state, tiny_cfg

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "scripts" / "train_qarl.py")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip_one_byte(path: Path) -> None:
    """Same size, one byte changed in the middle (inside a tensor's data): only the checksum can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = [truncate, random_bytes, empty, flip_one_byte]


def listing(run: Path) -> dict[str, str]:
    """Every file and folder under ``run`` with a hash of its content (tensorboard/, command.txt, checkpoints...)."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(run.rglob("*"))
    }


def checkpoint(run: Path, iteration: int) -> Path:
    return run / "checkpoints" / f"iter_{iteration:06d}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two-iteration runs checkpointed every iteration: ``all`` keeps resume.pt in both checkpoints, ``latest`` in one."""
    th.set_num_threads(1)
    root = tmp_path_factory.mktemp("integrity")
    for keep_full in ("all", "latest"):
        train(tiny_cfg(root / keep_full, "budget.iterations=2", f"budget.keep_full={keep_full}"))
    return root


def copy_run(runs: Path, keep_full: str, tmp_path: Path) -> Path:
    run = tmp_path / keep_full
    shutil.copytree(runs / keep_full, run)
    return run


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__)
def test_damaged_resume_pt_is_refused_before_anything_is_written(runs, tmp_path, damage):
    run = copy_run(runs, "all", tmp_path)
    damaged = checkpoint(run, 2) / RESUME_FILE
    damage(damaged)
    before = listing(run)
    with pytest.raises(ValueError) as refused:
        train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}", "budget.iterations=3"))
    message = str(refused.value)
    assert str(damaged) in message and "damaged" in message, message
    # the previous intact checkpoint, and the exact command that continues from it
    assert f"resume={checkpoint(run, 1)}" in message, message
    assert listing(run) == before  # no TensorBoard file, no line in command.txt, nothing in checkpoints/
    assert not (tmp_path / "elsewhere").exists()


def test_the_suggested_command_continues_exactly_from_the_previous_checkpoint(runs, tmp_path):
    run = copy_run(runs, "all", tmp_path)
    straight = load_resume_state(checkpoint(run, 2))
    truncate(checkpoint(run, 2) / RESUME_FILE)
    with pytest.raises(ValueError) as refused:
        train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}"))
    command = re.search(r"resume=(\S+)", str(refused.value))
    assert command is not None
    th.set_num_threads(1)
    train(tiny_cfg(tmp_path / "elsewhere", f"resume={command.group(1)}"))
    assert (run / "checkpoints" / "latest").read_text().strip() == "iter_000002"
    resumed = load_resume_state(checkpoint(run, 2))  # rewritten, intact, and bit-identical to the straight run
    for player in ("protagonist", "adversary"):
        for part in ("modules", "variables", "buffer"):
            assert_same_state(straight["agents"][player][part], resumed["agents"][player][part], f"{player}.{part}")
    assert straight["teacher"] == resumed["teacher"]
    wall_time = {"wall_time"}  # the one field that differs: seconds spent
    assert {k: v for k, v in straight["trainer"].items() if k not in wall_time} == {
        k: v for k, v in resumed["trainer"].items() if k not in wall_time
    }


def test_damaged_only_resume_state_says_there_is_nothing_to_fall_back_to(runs, tmp_path):
    run = copy_run(runs, "latest", tmp_path)
    assert not (checkpoint(run, 1) / RESUME_FILE).exists()  # keep_full=latest
    damaged = checkpoint(run, 2) / RESUME_FILE
    flip_one_byte(damaged)
    before = listing(run)
    for resume, out in ((str(run), tmp_path / "elsewhere"), ("auto", run)):
        with pytest.raises(ValueError) as refused:
            train(tiny_cfg(out, f"resume={resume}", "budget.iterations=3"))
        message = str(refused.value)
        assert str(damaged) in message and "SHA-256" in message and "keep_full=all" in message, message
        assert listing(run) == before
    assert not (tmp_path / "elsewhere").exists()


def test_damaged_state_json_is_refused(runs, tmp_path):
    run = copy_run(runs, "latest", tmp_path)
    state = checkpoint(run, 2) / "state.json"
    state.write_text(state.read_text()[:100])
    before = listing(run)
    with pytest.raises(ValueError, match=re.escape(str(state))):
        train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}", "budget.iterations=3"))
    assert listing(run) == before


def test_script_exits_with_a_message_and_writes_nothing(runs, tmp_path):
    run = copy_run(runs, "all", tmp_path)
    damaged = checkpoint(run, 2) / RESUME_FILE
    truncate(damaged)
    before = listing(run)
    out = subprocess.run(
        [sys.executable, SCRIPT, f"resume={run}", f"hydra.run.dir={tmp_path / 'new'}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert str(damaged) in out.stderr and f"resume={checkpoint(run, 1)}" in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert listing(run) == before and not (tmp_path / "new").exists()


# ---------------------------------------------------------------------------- writing a checkpoint
class StubAgent:
    """What CheckpointManager needs of an agent: ``save``."""

    def save(self, path: Path) -> None:
        Path(path).write_bytes(b"policy")


AGENTS = {"protagonist": StubAgent()}


def state(i: int) -> dict:
    return {"weights": th.arange(1000, dtype=th.float32) * i, "buffer": np.full((500, 3), i, dtype=np.float64)}


def test_state_json_records_size_and_checksum_of_resume_pt(tmp_path):
    folder = CheckpointManager(tmp_path).save(1, AGENTS, {"trainer": {}}, state(1))
    record = json.loads((folder / "state.json").read_text())["resume_file"]
    data = (folder / RESUME_FILE).read_bytes()
    assert record == {"name": RESUME_FILE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def assert_intact_previous(manager: CheckpointManager, tmp_path: Path) -> None:
    previous = manager.latest()
    assert previous is not None and previous.name == "iter_000001"  # still what a resume reads
    assert_same_state(load_resume_state(previous), state(1))  # verified against its state.json, and loads
    assert not (tmp_path / "iter_000002").exists() and not list(tmp_path.glob(".iter_*"))


def test_a_failed_write_keeps_the_previous_resume_state(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep=2, keep_full="latest")
    manager.save(1, AGENTS, {}, state(1))
    original = th.save

    def crash_midway(obj, f, *args, **kwargs):
        original(obj, f, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(th, "save", crash_midway)
    with pytest.raises(RuntimeError, match=r"iter_000002.*No space left on device.*resume=\S*iter_000001"):
        manager.save(2, AGENTS, {}, state(2))
    assert_intact_previous(manager, tmp_path)


def test_a_resume_pt_that_reads_back_wrong_is_not_kept(tmp_path, monkeypatch):
    """The file is read back after fsync: a difference from the bytes written keeps the previous checkpoint."""
    import envs.common.io as io

    manager = CheckpointManager(tmp_path, keep=2, keep_full="latest")
    manager.save(1, AGENTS, {}, state(1))
    original = io.fsync_path

    def fsync_and_lose_the_tail(path):
        original(path)
        if Path(path).name == RESUME_FILE:
            with open(path, "r+b") as fh:
                fh.truncate(Path(path).stat().st_size - 10)

    monkeypatch.setattr(io, "fsync_path", fsync_and_lose_the_tail)
    with pytest.raises(RuntimeError, match=r"resume\.pt.*read back"):
        manager.save(2, AGENTS, {}, state(2))
    assert_intact_previous(manager, tmp_path)
    monkeypatch.undo()
    manager.save(2, AGENTS, {}, state(2))  # once written and verified, the previous resume state goes
    assert not (tmp_path / "iter_000001" / RESUME_FILE).exists()
    assert_same_state(load_resume_state(tmp_path / "iter_000002"), state(2))

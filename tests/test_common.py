"""envs.common: device resolution, atomic writes, seeding, registries, run directories, TensorBoard."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from envs.common import (
    atomic_save,
    atomic_write_text,
    log_config,
    lookup,
    make_writer,
    prepare_run_dir,
    resolve_device,
    seed_everything,
)
from envs.common.io import atomic_torch_save
from envs.common.registry import check_choice, unknown_choice_error

HAS_CUDA = torch.cuda.is_available()


# ---------------------------------------------------------------- resolve_device
def test_resolve_device_auto_picks_cuda_only_when_present() -> None:
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device().type == ("cuda" if HAS_CUDA else "cpu")


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu "])
def test_resolve_device_cpu(name: str) -> None:
    assert resolve_device(name) == torch.device("cpu")


def test_resolve_device_passes_torch_device_through() -> None:
    dev = torch.device("cpu")
    assert resolve_device(dev) is dev


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_resolve_device_cuda_without_gpu_raises(name: str) -> None:
    with pytest.raises(ValueError, match="no CUDA device") as err:
        resolve_device(name)
    assert name in str(err.value) and "auto" in str(err.value)


@pytest.mark.gpu
def test_resolve_device_cuda_with_gpu() -> None:
    dev = resolve_device("cuda")
    assert dev.type == "cuda"
    assert torch.ones(2, device=dev).sum().item() == 2.0
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda0", ""])
def test_resolve_device_unknown_lists_choices(name: str) -> None:
    with pytest.raises(ValueError, match="unknown device") as err:
        resolve_device(name)
    msg = str(err.value)
    assert all(choice in msg for choice in ("auto", "cpu", "cuda"))


def test_resolve_device_close_match_hint() -> None:
    with pytest.raises(ValueError, match="did you mean 'cuda'"):
        resolve_device("cudaa")


# ---------------------------------------------------------------- atomic writes
def test_atomic_save_replaces_content(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "model.zip"
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_bytes(b"new")

    assert atomic_save(dest, write) == dest
    assert dest.read_bytes() == b"new"
    # The writer gets a path in the destination folder with the same suffix (SB3 appends .zip otherwise).
    assert seen[0].parent == dest.parent and seen[0].suffix == ".zip" and seen[0] != dest
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.zip"]


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_atomic_save_keeps_old_file_when_writer_raises(tmp_path: Path, exc: BaseException) -> None:
    dest = tmp_path / "ckpt.pt"
    dest.write_bytes(b"old checkpoint")

    def half_write(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise exc

    with pytest.raises(type(exc)):
        atomic_save(dest, half_write)
    assert dest.read_bytes() == b"old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"], "a temporary file was left behind"


def test_atomic_save_without_old_file_leaves_nothing_on_failure(tmp_path: Path) -> None:
    def fail(tmp: Path) -> None:
        raise OSError("boom")

    with pytest.raises(OSError, match="boom"):
        atomic_save(tmp_path / "x.txt", fail)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_and_torch_save_roundtrip(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a" / "b.txt", "hello\n")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello\n"
    obj = {"w": torch.arange(5.0), "step": 3}
    atomic_torch_save(obj, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt")
    assert loaded["step"] == 3 and torch.equal(loaded["w"], obj["w"])


# ---------------------------------------------------------------- seeding
def _draws(rng: np.random.Generator) -> tuple[float, float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1).item()), float(rng.random())


def test_seed_everything_reproduces_every_generator() -> None:
    first = _draws(seed_everything(123))
    second = _draws(seed_everything(123))
    other = _draws(seed_everything(124))
    assert first == second
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_seed_everything_accepts_numpy_and_large_ints() -> None:
    a = _draws(seed_everything(np.int64(7)))
    b = _draws(seed_everything(7))
    assert a == b
    seed_everything(2**40)  # larger than NumPy's legacy 32-bit seed range


@pytest.mark.parametrize("bad", [-1, -(2**33), 1.5, "3", True, None])
def test_seed_everything_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- registries
REGISTRY = {"Hopper": 1, "HalfCheetah": 2, "Walker2d": 3}


def test_lookup_returns_entry() -> None:
    assert lookup(REGISTRY, "Walker2d", "env") == 3


def test_lookup_error_lists_choices_and_close_match() -> None:
    with pytest.raises(ValueError) as err:
        lookup(REGISTRY, "Hoper", "env")
    msg = str(err.value)
    assert "unknown env 'Hoper'" in msg
    assert "['HalfCheetah', 'Hopper', 'Walker2d']" in msg
    assert "did you mean 'Hopper'?" in msg


def test_lookup_unhashable_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="valid choices"):
        lookup(REGISTRY, ["Hopper"], "env")  # type: ignore[arg-type]


def test_no_hint_without_close_match() -> None:
    msg = str(unknown_choice_error("env", "zzzzzz", REGISTRY))
    assert "did you mean" not in msg and "valid choices" in msg


def test_check_choice() -> None:
    assert check_choice("b", ["a", "b"], "letter") == "b"
    with pytest.raises(ValueError, match=r"unknown letter 'c'; valid choices: \['a', 'b'\]"):
        check_choice("c", ["a", "b"], "letter")


# ---------------------------------------------------------------- run directories and TensorBoard
def _cfg(tmp_path: Path):
    return OmegaConf.create({"script": "t", "name": "n_${seed}", "seed": 5, "run_dir": str(tmp_path / "run")})


def test_prepare_run_dir_layout(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    run = prepare_run_dir(cfg)
    assert run.root == (tmp_path / "run").resolve()
    assert run.tensorboard.is_dir() and run.checkpoints.is_dir()
    saved = OmegaConf.load(run.config)
    assert saved == OmegaConf.create({"script": "t", "name": "n_5", "seed": 5, "run_dir": str(tmp_path / "run")})
    command = (run.root / "command.txt").read_text()
    assert command.startswith(sys.executable) and command.endswith("\n")


def test_prepare_run_dir_argument_wins_and_is_idempotent(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    run = prepare_run_dir(cfg, run_dir=tmp_path / "explicit")
    assert run.root == (tmp_path / "explicit").resolve()
    (run.checkpoints / "keep.pt").write_bytes(b"x")
    again = prepare_run_dir(cfg, run_dir=tmp_path / "explicit")
    assert (again.checkpoints / "keep.pt").read_bytes() == b"x"
    assert not (tmp_path / "run").exists()


def test_prepare_run_dir_without_any_dir_raises() -> None:
    with pytest.raises(ValueError, match="no run directory"):
        prepare_run_dir(OmegaConf.create({"seed": 0}))


def test_make_writer_and_log_config(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    writer = make_writer(tmp_path)
    log_config(writer, cfg)
    writer.add_scalar("rollout/return", 1.5, 10)
    writer.close()
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("rollout/return")] == [(10, 1.5)]
    (text_event,) = acc.Tensors("config/text_summary")
    text = text_event.tensor_proto.string_val[0].decode()
    assert text.startswith("```yaml") and "name: n_5" in text


def test_log_hparams_writes_one_session_with_the_public_api(tmp_path, monkeypatch):
    """Issue 27 item 5: the HParams session is written with ``add_hparams``, not the private file writer."""
    import sys

    from tensorboard.plugins.hparams import plugin_data_pb2
    from torch.utils.tensorboard import SummaryWriter

    from envs.common.tensorboard import log_hparams

    private = SummaryWriter._get_file_writer
    callers = []

    def spy(self):
        callers.append(sys._getframe(1).f_globals["__name__"])
        return private(self)

    monkeypatch.setattr(SummaryWriter, "_get_file_writer", spy)
    folder = tmp_path / "tensorboard" / "hparams"
    log_hparams(folder, {"algo": {"name": "qarl"}, "seed": 3}, {"eval/return": 1.0})
    log_hparams(folder, {"algo": {"name": "qarl"}, "seed": 3}, {"eval/return": 2.0, "eval/missing": float("nan")})
    assert callers and set(callers) == {"torch.utils.tensorboard.writer"}  # only torch calls its private method
    assert [p.parent for p in (tmp_path / "tensorboard").rglob("events.out.tfevents.*")] == [folder] * 2
    acc = EventAccumulator(str(folder))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert session.hparams["algo.name"].string_value == "qarl" and session.hparams["seed"].number_value == 3
    assert [(e.step, e.value) for e in acc.Scalars("eval/return")] == [(0, 2.0)]  # the latest call's session only
    assert acc.Tags()["scalars"] == ["eval/return"]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from envs.common.io import atomic_write_text

    path = atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_checkpoints_and_attackers_get_the_usual_permissions(tmp_path, monkeypatch):
    """Checkpoint folders and attacker files are readable by the group like any file (mkdtemp/mkstemp: 0700/0600)."""
    import os
    import stat

    import envs.common.io as io
    from rl.qarl.checkpoint import CheckpointManager

    class Agent:
        def save(self, path: Path) -> None:
            Path(path).write_bytes(b"policy")

    monkeypatch.setattr(io, "_UMASK", 0o022)
    old = os.umask(0o022)
    try:
        folder = CheckpointManager(tmp_path / "checkpoints").save(3, {"protagonist": Agent()}, {"it": 3}, {"x": 1})
        io.atomic_save(tmp_path / "adversary_60.zip", Agent().save)  # how best_response saves its attackers
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == dict.fromkeys(
        ["protagonist.zip", "state.json", "resume.pt"], 0o644
    )
    assert stat.S_IMODE((tmp_path / "checkpoints" / "latest").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "adversary_60.zip").stat().st_mode) == 0o644

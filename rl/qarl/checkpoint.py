"""Checkpoints of a QARL run, written atomically.

A checkpoint is a folder ``checkpoints/iter_<k>/`` holding the policies (``protagonist.zip``, ``adversary.zip``:
SB3 files with their optimisers, what :func:`load_policies` and the evaluations read), ``state.json`` (counters,
teacher; human-readable) and ``resume.pt``, the full resume state of :meth:`rl.qarl.trainer.QARLTrainer.state_dict`
(both replay buffers, SB3's internal counters, every random generator...). With ``keep_full="latest"`` only the
newest checkpoint keeps ``resume.pt``; older ones keep the policies only. A folder is written under a temporary
name and renamed when complete, and ``checkpoints/latest`` (written atomically) names the newest one, so a crash
or a signal never leaves a half-written checkpoint where a reader looks.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch as th
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from envs.common.io import atomic_write_text
from rl.qarl.modes import Teacher, protagonist_class, resolve_mode, teacher_from_state
from rl.qarl.sac import QARLSAC, PerSampleTemperatureSAC


class NotARunError(ValueError):
    """The folder is not a QARL run directory (or has no finished checkpoint)."""


RESUME_FILE = "resume.pt"


class CheckpointManager:
    """Write, list and prune checkpoint folders under ``root``.

    Args:
        root: the ``checkpoints/`` folder.
        keep: how many checkpoint folders to keep.
        keep_full: ``latest`` (only the newest keeps its resume state) or ``all``.
    """

    def __init__(self, root: Path, keep: int = 2, keep_full: str = "latest") -> None:
        self.root = Path(root)
        self.keep = max(1, int(keep))
        if keep_full not in ("latest", "all"):
            raise ValueError(f"keep_full={keep_full!r}; valid choices: ['all', 'latest']")
        self.keep_full = keep_full

    def save(
        self,
        iteration: int,
        agents: Mapping[str, OffPolicyAlgorithm],
        summary: dict[str, Any],
        resume_state: dict[str, Any] | None = None,
    ) -> Path:
        """Write checkpoint ``iter_<iteration>`` (policies, ``state.json``, ``resume.pt``) and point ``latest`` at it."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"iter_{iteration:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.root))
        try:
            for name, agent in agents.items():
                agent.save(tmp / f"{name}.zip")
            (tmp / "state.json").write_text(json.dumps(summary, indent=1, default=float))
            if resume_state is not None:
                th.save(resume_state, tmp / RESUME_FILE)
            for path in (*tmp.iterdir(), tmp):  # the data, then the folder entry, reach the disk before the rename
                _fsync(path)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_text(self.root / "latest", final.name + "\n")
        self._prune(final)
        return final

    def _prune(self, newest: Path) -> None:
        folders = sorted(p for p in self.root.glob("iter_*") if p.is_dir())
        for old in folders[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        if self.keep_full == "latest":
            for old in folders[-self.keep :]:
                if old != newest:
                    (old / RESUME_FILE).unlink(missing_ok=True)

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or ``None``."""
        pointer = self.root / "latest"
        if pointer.exists():
            folder = self.root / pointer.read_text().strip()
            if (folder / "state.json").exists():
                return folder
        return None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_resume_state(checkpoint: Path, device: th.device | str = "cpu") -> dict[str, Any]:
    """The full resume state of a checkpoint folder.

    Raises:
        NotARunError: the folder has no ``resume.pt`` (an older checkpoint kept with policies only, or one
            written by a version without exact resume).
    """
    path = Path(checkpoint) / RESUME_FILE
    if not path.exists():
        raise NotARunError(
            f"{str(checkpoint)!r} holds policies only (no {RESUME_FILE}): it cannot be resumed exactly; "
            "only the newest checkpoint keeps the resume state unless budget.keep_full=all"
        )
    state: dict[str, Any] = th.load(path, map_location=device, weights_only=False)
    return state


def find_run(run_dir: str | Path) -> tuple[Path, DictConfig, Path]:
    """Return (run folder, its config, its latest checkpoint), or raise :class:`NotARunError` saying what is missing."""
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise NotARunError(f"{str(root)!r} is not a directory")
    config = root / "config.yaml"
    if not config.exists():
        raise NotARunError(
            f"{str(root)!r} is not a run directory: it has no config.yaml (expected runs/train_qarl/<name>/<date>)"
        )
    cfg = OmegaConf.load(config)
    assert isinstance(cfg, DictConfig)
    if cfg.get("script") != "train_qarl":
        raise NotARunError(f"{str(root)!r} is a run of {cfg.get('script')!r}, not of train_qarl")
    checkpoint = CheckpointManager(root / "checkpoints").latest()
    if checkpoint is None:
        raise NotARunError(f"{str(root)!r} has no finished checkpoint in checkpoints/ yet")
    return root, cfg, checkpoint


def glob_run_dirs(patterns: str | Sequence[str], is_run: Callable[[Path], bool], what: str) -> list[Path]:
    """Folders matching glob ``patterns`` for which ``is_run`` holds, or such folders below them (by ``config.yaml``).

    Raises:
        NotARunError: when a pattern matches nothing, or no ``what`` is found.
    """
    found: list[Path] = []
    for pattern in [patterns] if isinstance(patterns, str) else list(patterns):
        matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(str(pattern))))
        if not matches:
            raise NotARunError(f"{pattern!r} matches no file or folder")
        for match in matches:
            if is_run(match):
                found.append(match)
            elif match.is_dir():
                found += sorted(p.parent for p in match.rglob("config.yaml") if is_run(p.parent))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise NotARunError(f"no {what} found under {patterns!r}")
    return unique


class QARLPolicies(NamedTuple):
    """The trained players of a run (SB3 models: use ``predict``)."""

    protagonist: QARLSAC
    adversary: QARLSAC | None
    teacher: Teacher | None
    config: DictConfig
    checkpoint: Path


def load_policies(run_dir: str | Path, device: str = "cpu") -> QARLPolicies:
    """Load the trained protagonist, adversary and teacher of a ``train_qarl`` run directory.

    The protagonist's observation has one extra entry (the temperature) for ``algo=qarl``/``fixed_temp`` and the
    force budget for ``force_curriculum``: evaluate with 0 (the rational adversary), as in the paper.
    """
    _, cfg, checkpoint = find_run(run_dir)
    state = json.loads((checkpoint / "state.json").read_text())
    protagonist = protagonist_class(resolve_mode(cfg.algo)).load(checkpoint / "protagonist.zip", device=device)
    adversary: QARLSAC | None = None
    if (checkpoint / "adversary.zip").exists():
        cls = PerSampleTemperatureSAC if resolve_mode(cfg.algo).per_sample_temperature else QARLSAC
        adversary = cls.load(checkpoint / "adversary.zip", device=device)
    teacher = teacher_from_state(state["teacher"]) if state.get("teacher") else None
    return QARLPolicies(protagonist, adversary, teacher, cfg, checkpoint)

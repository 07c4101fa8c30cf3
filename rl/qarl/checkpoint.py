"""Checkpoints of a QARL run: both agents, the teacher and the trainer's counters, written atomically.

A checkpoint is a folder ``checkpoints/iter_<k>/`` (``protagonist.zip``, ``adversary.zip``, ``state.json``,
optionally ``*_replay_buffer.pkl``). It is written under a temporary name and renamed when complete, and
``checkpoints/latest`` (written atomically) names the newest one, so a crash or Ctrl-C never leaves a
half-written checkpoint where a reader looks.
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

from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from rl.common.io import atomic_write_text
from rl.qarl.modes import resolve_mode
from rl.qarl.sac import QARLSAC, PerSampleTemperatureSAC
from rl.qarl.teacher import SelfPacedGammaTeacher


class NotARunError(ValueError):
    """The folder is not a QARL run directory (or has no finished checkpoint)."""


class CheckpointManager:
    """Write, list and prune checkpoint folders under ``root``."""

    def __init__(self, root: Path, keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = max(1, int(keep))

    def save(
        self, iteration: int, agents: Mapping[str, OffPolicyAlgorithm], extra: dict[str, Any], replay_buffers: bool
    ) -> Path:
        """Write checkpoint ``iter_<iteration>`` and point ``latest`` at it."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"iter_{iteration:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.root))
        try:
            for name, agent in agents.items():
                agent.save(tmp / f"{name}.zip")
                if replay_buffers:
                    agent.save_replay_buffer(tmp / f"{name}_replay_buffer.pkl")
            (tmp / "state.json").write_text(json.dumps(extra, indent=1, default=float))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_text(self.root / "latest", final.name + "\n")
        self._prune()
        return final

    def _prune(self) -> None:
        folders = sorted(p for p in self.root.glob("iter_*") if p.is_dir())
        for old in folders[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or ``None``."""
        pointer = self.root / "latest"
        if pointer.exists():
            folder = self.root / pointer.read_text().strip()
            if (folder / "state.json").exists():
                return folder
        return None


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
    teacher: SelfPacedGammaTeacher | None
    config: DictConfig
    checkpoint: Path


def load_policies(run_dir: str | Path, device: str = "cpu") -> QARLPolicies:
    """Load the trained protagonist, adversary and teacher of a ``train_qarl`` run directory.

    The protagonist's observation has one extra entry (the temperature) for ``algo=qarl``/``fixed_temp`` and the
    force budget for ``force_curriculum``: evaluate with 0 (the rational adversary), as in the paper.
    """
    _, cfg, checkpoint = find_run(run_dir)
    state = json.loads((checkpoint / "state.json").read_text())
    protagonist = QARLSAC.load(checkpoint / "protagonist.zip", device=device)
    adversary: QARLSAC | None = None
    if (checkpoint / "adversary.zip").exists():
        cls = PerSampleTemperatureSAC if resolve_mode(cfg.algo).per_sample_temperature else QARLSAC
        adversary = cls.load(checkpoint / "adversary.zip", device=device)
    teacher = SelfPacedGammaTeacher.from_state_dict(state["teacher"]) if state.get("teacher") else None
    return QARLPolicies(protagonist, adversary, teacher, cfg, checkpoint)

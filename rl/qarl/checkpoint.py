"""Checkpoints of a QARL run, written atomically.

A checkpoint is a folder ``checkpoints/iter_<k>/`` holding the policies (``protagonist.zip``, ``adversary.zip``:
SB3 files with their optimisers, what :func:`load_policies` and the evaluations read), ``state.json`` (counters,
teacher; human-readable) and ``resume.pt``, the full resume state of :meth:`rl.qarl.trainer.QARLTrainer.state_dict`
(both replay buffers, SB3's internal counters, every random generator...). With ``keep_full="latest"`` only the
newest checkpoint keeps ``resume.pt``; older ones keep the policies only. A folder is written under a temporary
name and renamed when complete, and ``checkpoints/latest`` (written atomically) names the newest one, so a crash
or a signal never leaves a half-written checkpoint where a reader looks.

Integrity: ``state.json`` records the size and SHA-256 of ``resume.pt`` (``resume_file``). The file is hashed while it
is written, fsynced and read back from the disk, and only once the new checkpoint is in place and named by
``latest`` is the previous one's ``resume.pt`` deleted (``keep_full="latest"``); a failed write keeps the previous
checkpoint and says how to continue from it (:class:`CheckpointWriteError`). A resume checks the size and digest
before anything is written (:func:`verify_checkpoint`) and refuses a damaged file with a message naming it, the
previous intact checkpoint and the ``resume=`` command that continues from it (:class:`DamagedCheckpointError`).

Security: ``resume.pt`` is weights-only (:func:`envs.common.io.load_state_file`): reading it never runs code from it.
SB3's ``.zip`` files store some objects with cloudpickle, so loading one with SB3's ``load`` runs code from it;
:func:`load_policies` with ``weights_only=True`` reads only their network parameters.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch as th
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from envs.common.io import (
    atomic_write_text,
    file_sha256,
    fsync_path,
    load_state_file,
    make_temp_dir,
    save_state_file_verified,
)
from rl.qarl.agents import agent_spec, load_weights, player_view
from rl.qarl.modes import Teacher, protagonist_class, resolve_mode, teacher_from_state
from rl.qarl.sac import QARLSAC, PerSampleTemperatureSAC


class NotARunError(ValueError):
    """The folder is not a QARL run directory (or has no finished checkpoint)."""


class DamagedCheckpointError(NotARunError):
    """A checkpoint's ``resume.pt`` (or ``state.json``) is damaged (truncated, altered, unreadable): no resume from it."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written, or did not read back as written; the previous checkpoint is kept."""


RESUME_FILE = "resume.pt"
RESUME_RECORD = "resume_file"  # the key of state.json that records resume.pt's size and SHA-256
TRAIN_SCRIPT = "scripts/train_qarl.py"


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
        """Write checkpoint ``iter_<iteration>`` (policies, ``state.json``, ``resume.pt``) and point ``latest`` at it.

        Raises:
            CheckpointWriteError: the checkpoint could not be written or verified; the previous one is kept, and the
                message says how to continue from it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"iter_{iteration:06d}"
        previous = self.latest()
        tmp = make_temp_dir(self.root, prefix=f".{final.name}.")  # 0755 under umask 022, not mkdtemp's 0700
        try:
            for name, agent in agents.items():
                agent.save(tmp / f"{name}.zip")
            if resume_state is not None:  # hashed while written, fsynced, read back from the disk and compared
                size, digest = save_state_file_verified(resume_state, tmp / RESUME_FILE)
                summary = {**summary, RESUME_RECORD: {"name": RESUME_FILE, "bytes": size, "sha256": digest}}
            (tmp / "state.json").write_text(json.dumps(summary, indent=1, default=float))
            for path in (*tmp.iterdir(), tmp):  # the data, then the folder entry, reach the disk before the rename
                if path.name != RESUME_FILE:
                    fsync_path(path)
            self._move_into_place(tmp, final)
        except Exception as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CheckpointWriteError(f"checkpoint {str(final)!r} could not be written: {e}. {_kept(previous)}") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_text(self.root / "latest", final.name + "\n")
        fsync_path(self.root)
        self._prune(final)  # only now: the previous resume state goes once the new one is on the disk and named
        return final

    def _move_into_place(self, tmp: Path, final: Path) -> None:
        """Rename ``tmp`` to ``final``; an existing ``final`` (a resume from an earlier checkpoint) is set aside first."""
        aside = None
        if final.exists():
            aside = self.root / f".{final.name}.replaced"
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(final, aside)
        os.replace(tmp, final)
        fsync_path(self.root)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)

    def _prune(self, newest: Path) -> None:
        for stale in self.root.glob(".iter_*"):  # left by a write that a crash or kill cut short
            shutil.rmtree(stale, ignore_errors=True)
        folders = sorted(p for p in self.root.glob("iter_*") if p.is_dir())
        for later in (p for p in folders if p.name > newest.name):  # after a resume from an earlier checkpoint
            shutil.rmtree(later, ignore_errors=True)
        folders = [p for p in folders if p.name <= newest.name]
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


def _resume_command(checkpoint: Path) -> str:
    return f"python {TRAIN_SCRIPT} resume={shlex.quote(str(checkpoint))}"


def _kept(previous: Path | None) -> str:
    """What a failed write leaves: the previous checkpoint, and how to continue from it."""
    if previous is None:
        return "No earlier checkpoint was written"
    if not (previous / RESUME_FILE).exists():
        return f"The previous checkpoint {str(previous)!r} holds policies only"
    return f"The previous checkpoint is kept; continue from it with: {_resume_command(previous)}"


def resume_file_problem(checkpoint: Path) -> str | None:
    """What is wrong with a checkpoint's ``resume.pt``, or ``None`` if it is intact.

    Checks its size and SHA-256 against the record in ``state.json``; a checkpoint written before the record existed
    is checked through the CRC-32 of each member of the zip archive that ``torch.save`` writes.
    """
    path = Path(checkpoint) / RESUME_FILE
    state_json = Path(checkpoint) / "state.json"
    record: Any = None
    if state_json.exists():
        try:
            record = json.loads(state_json.read_text()).get(RESUME_RECORD)
        except (OSError, ValueError, AttributeError) as e:
            return f"{str(state_json)!r} cannot be read ({type(e).__name__}: {e})"
    if not path.exists():
        return f"{str(path)!r} is missing"
    size = path.stat().st_size
    if size == 0:
        return f"{str(path)!r} is empty (0 bytes)"
    if record is None:
        return _zip_problem(path)
    if not (isinstance(record, dict) and isinstance(record.get("bytes"), int) and isinstance(record.get("sha256"), str)):
        return f"{str(state_json)!r} has no valid {RESUME_RECORD!r} record: {record!r}"
    if size != record["bytes"]:
        return f"{str(path)!r} has {size} bytes, but state.json records {record['bytes']} (truncated or overwritten)"
    if file_sha256(path)[1] != record["sha256"]:
        return f"{str(path)!r} does not match the SHA-256 that state.json records (altered or damaged on the disk)"
    return None


def _zip_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as e:  # zipfile raises BadZipFile, OSError, EOFError, ValueError... on a damaged archive
        return f"{str(path)!r} is not a readable torch file ({type(e).__name__}: {e}); truncated or overwritten?"
    return f"{str(path)!r}: its member {bad!r} fails its CRC-32 check" if bad else None


def previous_intact(checkpoint: Path) -> Path | None:
    """The newest checkpoint before ``checkpoint`` in the same folder whose ``resume.pt`` is intact, or ``None``."""
    checkpoint = Path(checkpoint)
    earlier = sorted((p for p in checkpoint.parent.glob("iter_*") if p.is_dir() and p.name < checkpoint.name), reverse=True)
    return next((p for p in earlier if (p / RESUME_FILE).exists() and resume_file_problem(p) is None), None)


def _damaged(checkpoint: Path, problem: str) -> DamagedCheckpointError:
    previous = previous_intact(checkpoint)
    if previous is not None:
        fallback = (
            f"The previous intact checkpoint is {previous.name}; continue the run from it (the checkpoints after it "
            f"are replaced as the run goes on) with: {_resume_command(previous)}"
        )
    else:
        fallback = (
            f"No earlier checkpoint of this run keeps an intact {RESUME_FILE} (budget.keep_full=latest keeps it in the "
            "newest checkpoint only; budget.keep_full=all keeps it in every kept checkpoint), so the run cannot be "
            "continued exactly; its policies (*.zip) may still be evaluated."
        )
    return DamagedCheckpointError(f"checkpoint {str(checkpoint)!r} is damaged: {problem}. {fallback}")


def verify_checkpoint(checkpoint: Path) -> None:
    """Check a checkpoint's ``resume.pt`` against its ``state.json`` (see :func:`resume_file_problem`).

    Raises:
        DamagedCheckpointError: naming the damaged file, the previous intact checkpoint and the command that
            continues from it (or saying that there is none).
    """
    problem = resume_file_problem(checkpoint)
    if problem is not None:
        raise _damaged(Path(checkpoint), problem)


def load_resume_state(
    checkpoint: Path, device: th.device | str = "cpu", trusted: bool = False, verify: bool = True
) -> dict[str, Any]:
    """The full resume state of a checkpoint folder, read weights-only (reading it never runs code from it).

    Args:
        checkpoint: the checkpoint folder.
        device: where its tensors go.
        trusted: read an old-format ``resume.pt`` (pickled NumPy objects) anyway, which runs any code it names.
        verify: first check the file's size and SHA-256 (:func:`verify_checkpoint`); ``False`` where that was done.

    Raises:
        NotARunError: the folder has no ``resume.pt`` (an older checkpoint kept with policies only, or one
            written by a version without exact resume).
        DamagedCheckpointError: ``resume.pt`` is damaged (it does not match its record, or cannot be read).
        envs.common.io.UnsafeStateFileError: ``resume.pt`` is not weights-only (an old format, or a crafted file);
            the message says how to convert it.
    """
    path = Path(checkpoint) / RESUME_FILE
    if not path.exists():
        raise NotARunError(
            f"{str(checkpoint)!r} holds policies only (no {RESUME_FILE}): it cannot be resumed exactly; "
            "only the newest checkpoint keeps the resume state unless budget.keep_full=all"
        )
    if verify:
        verify_checkpoint(Path(checkpoint))
    try:
        state: dict[str, Any] = load_state_file(path, map_location=device, trusted=trusted)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise _damaged(Path(checkpoint), f"{str(path)!r} cannot be read ({type(e).__name__}: {e})") from e
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


def find_checkpoint(path: str | Path) -> tuple[Path, DictConfig, Path]:
    """:func:`find_run`, or for a checkpoint folder ``<run>/checkpoints/iter_<k>``: its run, config and that checkpoint."""
    folder = Path(path).expanduser()
    if folder.parent.name == "checkpoints" and folder.name.startswith("iter_") and (folder / "state.json").exists():
        root, cfg, _ = find_run(folder.parent.parent)
        return root, cfg, folder
    return find_run(folder)


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


def load_policies(run_dir: str | Path, device: str = "cpu", weights_only: bool = False) -> QARLPolicies:
    """Load the trained protagonist, adversary and teacher of a ``train_qarl`` run directory.

    The protagonist's observation has one extra entry (the temperature) for ``algo=qarl``/``fixed_temp`` and the
    force budget for ``force_curriculum``: evaluate with 0 (the rational adversary), as in the paper, except
    ``fixed_temp``, which only saw its training alpha (:func:`rl.qarl.modes.evaluation_alpha`).

    Security: by default the players are read with SB3's ``load``, which unpickles objects stored in the ``.zip``
    files (cloudpickle), so loading a run folder runs code from it: only for folders from a trusted source. With
    ``weights_only=True`` the agents are built afresh from the run's ``config.yaml`` (env, algo, network sizes) and
    only the networks' parameters are read from the zips (``policy.pth`` and the other ``*.pth`` members, with
    ``torch.load(weights_only=True)``); ``state.json`` (the teacher) is JSON. Such agents predict exactly as the
    loaded ones but hold no training state (no replay buffer, counters at 0): use them to evaluate, not to continue.

    Raises:
        NotARunError: the folder is not a finished ``train_qarl`` run.
        ValueError: (``weights_only``) the zips' parameters do not fit the networks that the config builds.
    """
    _, cfg, checkpoint = find_run(run_dir)
    state = json.loads((checkpoint / "state.json").read_text())
    mode = resolve_mode(cfg.algo)
    players = ["protagonist", *(["adversary"] if (checkpoint / "adversary.zip").exists() else [])]
    if weights_only:
        agents = _fresh_agents(cfg, checkpoint, players, device)
    else:
        agents = {"protagonist": protagonist_class(mode).load(checkpoint / "protagonist.zip", device=device)}
        if "adversary" in players:
            cls = PerSampleTemperatureSAC if mode.per_sample_temperature else QARLSAC
            agents["adversary"] = cls.load(checkpoint / "adversary.zip", device=device)
    teacher = teacher_from_state(state["teacher"]) if state.get("teacher") else None
    return QARLPolicies(agents["protagonist"], agents.get("adversary"), teacher, cfg, checkpoint)


def _fresh_agents(cfg: DictConfig, checkpoint: Path, players: Sequence[str], device: str) -> dict[str, Any]:
    """The run's players built from its config, holding the parameters of ``<player>.zip`` (weights-only)."""
    from envs.adversarial.demo import make_game

    mode = resolve_mode(cfg.algo)
    env_cfg = dict(cfg.env)
    env_cfg["max_episode_steps"] = int(cfg.budget.horizon)
    game = make_game(env_cfg)
    try:
        agents = {}
        for player in players:
            view = player_view(game, mode, player)
            cls, kwargs = agent_spec(cfg, mode, player)
            path = checkpoint / f"{player}.zip"
            agents[player] = load_weights(cls, path, view.observation_space, view.action_space, device, **kwargs)
        return agents
    finally:
        game.close()

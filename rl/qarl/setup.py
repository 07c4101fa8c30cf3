"""What a ``train_qarl`` launch resolves before anything is written: the checked config, the run folder, the resume.

:func:`prepare` validates every field (:func:`rl.qarl.config.validate_train_config`), builds the game once to check
the env's settings, and, for a resume, reads the run's own ``config.yaml``: the command line may change only
:data:`rl.qarl.config.RESUME_SAFE_KEYS`; any other key it sets to a different value is refused, naming the key,
the saved value and the given one. It writes nothing, so a launch that fails here leaves no folder behind.

Under Hydra, :class:`CheckBeforeStart` (a Hydra callback, ``hydra.callbacks`` in ``configs/train_qarl.yaml``)
runs :func:`prepare` before Hydra creates the job's output folder, and points Hydra at the resumed run's folder
(without writing a new ``.hydra/``), so neither a failing launch nor a resume leaves an empty folder.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, NamedTuple

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from envs.adversarial.demo import make_game
from envs.adversarial.specs import get_env_spec
from envs.common.device import resolve_device
from envs.common.runs import hydra_output_dir
from rl.qarl.checkpoint import RESUME_FILE, CheckpointManager, NotARunError, find_run
from rl.qarl.config import RESUME_SAFE_KEYS, UPDATE_MODE_KEYS, TrainQARLConfig, validate_train_config
from rl.qarl.modes import rescale, resolve_mode

AUTO = "auto"


class Setup(NamedTuple):
    """A checked launch.

    Attributes:
        cfg: the config to train with (for a resume: the run's saved config plus the safe changes).
        root: the run folder (``None``: not known outside Hydra without ``cfg.run_dir``).
        checkpoint: the checkpoint to resume from, or ``None`` for a fresh run.
    """

    cfg: DictConfig
    root: Path | None
    checkpoint: Path | None


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"budget.iterations": 200, ...}``: a config's leaves (lists are leaves) by dotted key."""
    node: Any = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    out: dict[str, Any] = {}
    for key, value in dict(node or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, path + ".")
        else:
            out[path] = value
    return out


def command_line_changes(config_name: str, cfg: DictConfig) -> set[str]:
    """The keys whose value the command line (overrides, group choices) moved away from the primary config's defaults.

    Must run inside a Hydra app (it composes ``config_name`` without overrides).
    """
    from hydra import compose

    defaults = flatten(compose(config_name=config_name, overrides=[]))
    given = flatten(_task_config(cfg))
    return {key for key in set(defaults) | set(given) if defaults.get(key, _MISSING) != given.get(key, _MISSING)}


_MISSING = object()


def _task_config(cfg: DictConfig) -> DictConfig:
    if "hydra" not in cfg:
        return cfg
    task = cfg.copy()
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def _is_safe(key: str) -> bool:
    return any(key == safe or key.startswith(safe + ".") for safe in RESUME_SAFE_KEYS)


def merge_resume_config(saved: DictConfig, given: DictConfig, changed: set[str] | None) -> DictConfig:
    """The saved config with the given values of the safe keys; refuse any other change.

    Args:
        saved: the run's ``config.yaml``.
        given: the launch's config.
        changed: keys the launch set explicitly (``None``: every key where ``given`` differs from ``saved``).

    Raises:
        ValueError: listing each refused key with its saved and given values, and the keys that may change.
    """
    base = OmegaConf.merge(OmegaConf.structured(TrainQARLConfig), saved)
    assert isinstance(base, DictConfig)
    if OmegaConf.select(saved, "sac.engine", default=None) is None:
        base.sac.engine = "reference"  # a run saved before sac.engine existed was trained with SB3's update
    old, new = flatten(base), flatten(given)
    keys = set(new) if changed is None else changed
    refused = [
        f"{key}: the run has {old.get(key)!r}, the command line gives {new.get(key)!r}"
        for key in sorted(keys)
        if not _is_safe(key) and old.get(key, _MISSING) != new.get(key, _MISSING)
    ]
    if refused:
        raise ValueError(
            "a resume continues the run with its own config.yaml; these keys cannot change: "
            + "; ".join(refused)
            + f". Keys a resume may change: {', '.join(k for k in RESUME_SAFE_KEYS if k not in ('resume', 'run_dir'))}"
        )
    moved = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in UPDATE_MODE_KEYS if k in keys and old.get(k) != new.get(k)]
    if moved:
        print(
            f"note: the SAC update's mode changes on resume ({', '.join(moved)}): the run continues, but not bit for bit "
            "as it would have in its own mode"
        )
    with open_dict(base):
        for key in RESUME_SAFE_KEYS:
            if key in keys and key in new and key != "run_dir":
                OmegaConf.update(base, key, new[key], merge=False)
    return base


def check_config(cfg: DictConfig) -> None:
    """Every check that needs no run folder: numeric ranges, choices, the curriculum's rescaling, the env, the device."""
    validate_train_config(cfg)
    mode = resolve_mode(cfg.algo)
    spec = get_env_spec(cfg.env.name)
    if mode.context != "none" or mode.teacher:
        rescale(cfg.curriculum, spec)
    resolve_device(cfg.device)
    game = make_game({**OmegaConf.to_container(cfg.env, resolve=True), "max_episode_steps": int(cfg.budget.horizon)})  # type: ignore[dict-item]
    game.close()


def _output_root(cfg: DictConfig) -> Path | None:
    hydra_dir = hydra_output_dir()
    if hydra_dir is not None:
        return hydra_dir
    return Path(str(cfg.run_dir)) if cfg.get("run_dir") else None


def _resumable(root: Path) -> Path | None:
    """The checkpoint with a resume state in ``root``, if ``root`` is a train_qarl run that has one."""
    if not (root / "config.yaml").exists():
        return None
    latest = CheckpointManager(root / "checkpoints").latest()
    return latest if latest is not None and (latest / RESUME_FILE).exists() else None


def prepare(cfg: DictConfig, changed: set[str] | None = None, root: Path | None = None) -> Setup:
    """Check a launch and resolve its config and folder, writing nothing (see the module docstring).

    Args:
        cfg: the launch's config.
        changed: for a resume, the keys the command line set (``None``: all keys that differ from the run's).
        root: the launch's output folder (default: Hydra's job folder, else ``cfg.run_dir``).

    Raises:
        ValueError: a field is out of range or a resume would change a fixed key.
        NotARunError: ``resume`` does not name a resumable run.
    """
    out = root if root is not None else _output_root(cfg)
    resume = cfg.resume
    if not resume:
        check_config(cfg)
        return Setup(cfg, out, None)
    if resume == AUTO:
        if out is None:
            raise ValueError("resume=auto needs a run folder (run under Hydra or set run_dir)")
        checkpoint = _resumable(out)
        if checkpoint is None:  # nothing to continue yet: start the run in this folder
            check_config(cfg)
            return Setup(cfg, out, None)
        run_root, saved = out, OmegaConf.load(out / "config.yaml")
    else:
        run_root, saved, checkpoint = find_run(str(resume))
        if not (checkpoint / RESUME_FILE).exists():
            raise NotARunError(
                f"{str(run_root)!r}'s latest checkpoint {checkpoint.name} has no {RESUME_FILE}: it was written by a "
                "version without exact resume and cannot be continued"
            )
    assert isinstance(saved, DictConfig)
    merged = merge_resume_config(saved, cfg, changed)
    with open_dict(merged):
        merged.resume = str(resume)
    check_config(merged)
    return Setup(merged, Path(run_root).resolve(), checkpoint)


HYDRA_FILES = frozenset({"config.yaml", "hydra.yaml", "overrides.yaml"})


def discard_hydra_output_dir(root: Path | None = None) -> bool:
    """Remove a Hydra job folder that holds only what Hydra wrote (``.hydra/`` and the job's log); True if removed.

    A multirun job's folder is created by the launcher before the job's checks run; when they fail nothing of the
    run was written, and this removes the empty shell. Any other file keeps the folder.
    """
    root = root if root is not None else hydra_output_dir()
    if root is None or not root.is_dir():
        return False
    for entry in root.iterdir():
        if entry.name == ".hydra" and entry.is_dir():
            if not {p.name for p in entry.iterdir()} <= HYDRA_FILES:
                return False
        elif not (entry.is_file() and entry.suffix == ".log"):
            return False
    shutil.rmtree(root)
    return True


def current_command_line_changes(cfg: DictConfig) -> set[str] | None:
    """:func:`command_line_changes` for the running Hydra job, or ``None`` outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        config_name = HydraConfig.get().job.config_name
    except (ImportError, ValueError):
        return None
    return command_line_changes(str(config_name), cfg) if config_name else None


class CheckBeforeStart(Callback):
    """Hydra callback: run :func:`prepare` before Hydra creates the output folder, and resume in the run's own folder.

    For ``resume=<run dir>``, ``hydra.run.dir`` becomes that folder and ``hydra.output_subdir`` null, so Hydra
    neither creates a new dated folder nor overwrites the run's ``.hydra/``. Multirun jobs are checked in
    :func:`rl.qarl.train.train` (their folders are created by the launcher).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check the launch; redirect Hydra's output folder for a resume."""
        task = _task_config(config)
        config_name = kwargs.get("config_name") or "train_qarl"
        try:
            setup = prepare(task, changed=command_line_changes(str(config_name), config), root=Path(str(config.hydra.run.dir)))
        except (ValueError, NotARunError) as e:
            # Hydra turns a callback's exceptions into warnings and goes on; SystemExit is the one way to stop it
            sys.exit(f"error: {e}")
        if setup.checkpoint is not None and task.resume != AUTO:
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.run.dir = str(setup.root)
                config.hydra.output_subdir = None

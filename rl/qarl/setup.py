"""What a ``train_qarl`` launch resolves before anything is written: the checked config, the run folder, the resume.

:func:`prepare` validates every field (:func:`rl.qarl.config.validate_train_config`), builds the game once to check
the env's settings, and, for a resume, reads the run's own ``config.yaml``: the command line may change only
:data:`rl.qarl.config.RESUME_SAFE_KEYS`; any other key it sets (:func:`explicit_keys`: every ``key=value`` and
every key a group choice such as ``env=Hopper`` sets) to a value other than the run's is refused, naming the key,
the saved value and the given one. A resume of a run that has already completed the budget is a no-op
(:attr:`Setup.complete`). It writes nothing, so a launch that fails here leaves no folder behind.

Under Hydra, :class:`CheckBeforeStart` (a Hydra callback, ``hydra.callbacks`` in ``configs/train_qarl.yaml``)
runs :func:`prepare` before Hydra creates the job's output folder, and points Hydra at the resumed run's folder
(without writing a new ``.hydra/``), so neither a failing launch nor a resume leaves an empty folder; a resume
of a complete run exits there, having written nothing. For a multirun it checks every job of the sweep before
the first is launched.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from envs.adversarial.demo import make_game
from envs.adversarial.specs import get_env_spec
from envs.common.device import resolve_device
from envs.common.runs import hydra_output_dir
from rl.qarl.checkpoint import RESUME_FILE, CheckpointManager, NotARunError, find_checkpoint, verify_checkpoint
from rl.qarl.config import RESUME_SAFE_KEYS, UPDATE_MODE_KEYS, TrainQARLConfig, validate_train_config
from rl.qarl.modes import rescale, resolve_mode

AUTO = "auto"
DONE_FILE = "done.json"  # written into a run folder when the run completes its budget


class Setup(NamedTuple):
    """A checked launch.

    Attributes:
        cfg: the config to train with (for a resume: the run's saved config plus the safe changes).
        root: the run folder (``None``: not known outside Hydra without ``cfg.run_dir``).
        checkpoint: the checkpoint to resume from, or ``None`` for a fresh run.
        complete: for a resume of a run that has completed this budget (``done.json``): the message saying so;
            there is nothing to train and nothing may be written.
    """

    cfg: DictConfig
    root: Path | None
    checkpoint: Path | None
    complete: str | None = None


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


def _leaf_keys(node: Any, prefix: str = "") -> set[str]:
    """The dotted keys of a config's leaves, without resolving anything (lists are leaves)."""
    container = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    if not isinstance(container, dict):
        return {prefix.rstrip(".")} if prefix else set()
    keys: set[str] = set()
    for key, value in container.items():
        name = f"{prefix}{key!s}"
        keys |= _leaf_keys(value, name + ".") if isinstance(value, dict) else {name}
    return keys


def explicit_keys(config_name: str, overrides: Sequence[str], cfg: DictConfig) -> set[str]:
    """The keys a launch's command line sets, whatever their values.

    A ``key=value`` override sets ``key`` (a dict value: its own leaves below ``key``); a group choice (``env=Hopper``,
    ``budget=demo``) sets every key of the chosen config files (the option and the configs of its own defaults
    list, each under its package), even where the value equals the primary config's default. Must run inside an
    initialised Hydra (a Hydra app, or ``initialize_config_dir``).

    Args:
        config_name: the primary config (``train_qarl``).
        overrides: the launch's task overrides (``hydra.overrides.task``; Hydra's own ``hydra.*`` are not in it).
        cfg: the composed config (for the leaves below a dict-valued override).
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    loader: Any = GlobalHydra.instance().config_loader()
    defaults = loader.compute_defaults_list(config_name=config_name, overrides=list(overrides), run_mode=RunMode.RUN)
    leaves = flatten(_task_config(cfg))
    keys: set[str] = set()
    for override in defaults.overrides.config_overrides:
        key, value = str(override.key_or_group), None if override.is_delete() else override.value()
        if isinstance(value, dict):  # merged into the node: it sets its own leaves
            keys |= _leaf_keys(value, key + ".")
        else:
            keys |= {key} | {k for k in leaves if k.startswith(key + ".")}
    chosen = {
        f"{group}/{option}"
        for group, option in defaults.overrides.override_choices.items()
        if option is not None and defaults.overrides.override_metadata[group].external_override
    }
    selected: set[str] = set()  # the chosen options and, below them, the configs of their defaults lists
    grew = True
    while grew:
        grew = False
        for default in defaults.defaults:
            path = default.config_path
            if path not in selected and (path in chosen or default.parent in selected):
                selected.add(path)
                grew = True
    for default in defaults.defaults:
        if default.config_path not in selected:
            continue
        package = default.package or ""
        result = loader.repository.load_config(default.config_path)
        node = OmegaConf.masked_copy(result.config, [k for k in result.config if k != "defaults"])
        keys |= {f"{package}.{k}" if package else k for k in _leaf_keys(node)}
    return {key for key in keys if key != "hydra" and not key.startswith("hydra.")}


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
    legacy = OmegaConf.create({"sac": {"warmup": "random"}})  # runs saved before sac.warmup existed acted so
    base = OmegaConf.merge(OmegaConf.structured(TrainQARLConfig), legacy, saved)
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


def check_config(cfg: DictConfig, device: bool = True) -> None:
    """Every check that needs no run folder: numeric ranges, choices, the curriculum's rescaling, the env, the device.

    ``device=False`` skips the device: a sweep checked where it is submitted may run its jobs on other machines.
    """
    validate_train_config(cfg)
    mode = resolve_mode(cfg.algo)
    spec = get_env_spec(cfg.env.name)
    if mode.context != "none" or mode.teacher:
        rescale(cfg.curriculum, spec)
    if device:
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


def prepare(cfg: DictConfig, changed: set[str] | None = None, root: Path | None = None, device: bool = True) -> Setup:
    """Check a launch and resolve its config and folder, writing nothing (see the module docstring).

    Args:
        cfg: the launch's config.
        changed: for a resume, the keys the command line set (``None``: all keys that differ from the run's).
        root: the launch's output folder (default: Hydra's job folder, else ``cfg.run_dir``).
        device: check that ``cfg.device`` exists on this machine.

    Raises:
        ValueError: a field is out of range or a resume would change a fixed key.
        NotARunError: ``resume`` does not name a resumable run (or one of its checkpoints).
        rl.qarl.checkpoint.DamagedCheckpointError: the checkpoint's ``resume.pt`` is damaged.
    """
    out = root if root is not None else _output_root(cfg)
    resume = cfg.resume
    if not resume:
        check_config(cfg, device)
        return Setup(cfg, out, None)
    if resume == AUTO:
        if out is None:
            raise ValueError("resume=auto needs a run folder (run under Hydra or set run_dir)")
        checkpoint = _resumable(out)
        if checkpoint is None:  # nothing to continue yet: start the run in this folder
            check_config(cfg, device)
            return Setup(cfg, out, None)
        run_root, saved = out, OmegaConf.load(out / "config.yaml")
    else:
        run_root, saved, checkpoint = find_checkpoint(str(resume))  # a run folder, or one of its checkpoints
        if not (checkpoint / RESUME_FILE).exists():
            raise NotARunError(
                f"{str(run_root)!r}'s latest checkpoint {checkpoint.name} has no {RESUME_FILE}: it was written by a "
                "version without exact resume and cannot be continued"
            )
    verify_checkpoint(checkpoint)  # resume.pt's size and SHA-256 against state.json: a damaged file writes nothing
    assert isinstance(saved, DictConfig)
    merged = merge_resume_config(saved, cfg, changed)
    with open_dict(merged):
        merged.resume = str(resume)
    check_config(merged, device)
    root = Path(run_root).resolve()
    return Setup(merged, root, checkpoint, _complete(root, checkpoint, merged))


def _complete(root: Path, checkpoint: Path, cfg: DictConfig) -> str | None:
    """The message for a resume of a run that has completed ``cfg``'s budget (``done.json``), else ``None``."""
    if not (root / DONE_FILE).exists():
        return None
    trainer = json.loads((checkpoint / "state.json").read_text())["trainer"]
    iteration, steps = int(trainer["iteration"]), int(trainer["protagonist_steps"])
    budget = cfg.budget
    cap = budget.max_env_steps
    if iteration < int(budget.iterations) and (cap is None or steps < int(cap)):
        return None
    return (
        f"{root} is complete: {iteration} iterations and {steps} protagonist steps for budget.iterations="
        f"{budget.iterations}, budget.max_env_steps={cap}. Nothing to do; the run is left as it is. "
        "To continue the run, raise budget.iterations (or budget.max_env_steps)."
    )


def last_eval(setup: Setup) -> dict[str, float]:
    """The last evaluation's returns recorded in the resumed checkpoint (what a no-op resume returns)."""
    assert setup.checkpoint is not None
    trainer = json.loads((setup.checkpoint / "state.json").read_text())["trainer"]
    return {str(k): float(v) for k, v in dict(trainer.get("last_eval") or {}).items()}


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


def current_explicit_keys(cfg: DictConfig) -> set[str] | None:
    """:func:`explicit_keys` of the running Hydra job, or ``None`` outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hydra_cfg = HydraConfig.get()
    except (ImportError, ValueError):
        return None
    config_name = hydra_cfg.job.config_name
    return explicit_keys(str(config_name), list(hydra_cfg.overrides.task), cfg) if config_name else None


class CheckBeforeStart(Callback):
    """Hydra callback: run :func:`prepare` before Hydra creates any folder, and resume in the run's own folder.

    For ``resume=<run dir>``, ``hydra.run.dir`` becomes that folder and ``hydra.output_subdir`` null, so Hydra
    neither creates a new dated folder nor overwrites the run's ``.hydra/``. A resume of a complete run prints so
    and exits with 0 before Hydra writes anything. A multirun's jobs are all checked before the first is launched
    (:meth:`on_multirun_start`); each job checks itself again in :func:`rl.qarl.train.train`.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check the launch; redirect Hydra's output folder for a resume."""
        task = _task_config(config)
        config_name = str(kwargs.get("config_name") or "train_qarl")
        try:
            changed = explicit_keys(config_name, list(config.hydra.overrides.task), config)
            setup = prepare(task, changed=changed, root=Path(str(config.hydra.run.dir)))
        except (ValueError, NotARunError) as e:
            # Hydra turns a callback's exceptions into warnings and goes on; SystemExit is the one way to stop it
            sys.exit(f"error: {e}")
        if setup.complete is not None:
            print(setup.complete)
            sys.exit(0)
        if setup.checkpoint is not None and task.resume != AUTO:
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.run.dir = str(setup.root)
                config.hydra.output_subdir = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check every job of the sweep (its config, its resume) before any job or folder is created.

        If every job is a resume of a complete run, say so and exit with 0 before Hydra writes anything (a sweep
        with other jobs launches all of them; Hydra then rewrites the complete jobs' ``.hydra/``, nothing else).
        """
        config_name = str(kwargs.get("config_name") or "train_qarl")
        checked = check_sweep(config, config_name)
        errors = [f"job {num} ({' '.join(job)}): {error}" for num, job, error, complete in checked if error]
        if errors:
            sys.exit(f"error: {len(errors)} job(s) of the sweep would fail; none was launched.\n" + "\n".join(errors))
        if checked and all(complete for *_, complete in checked):
            print("\n".join(str(complete) for *_, complete in checked))
            sys.exit(0)


def sweep_jobs(config: DictConfig) -> list[list[str]] | None:
    """The task overrides of each job of a multirun, in launch order (``None``: a sweeper other than Hydra's basic)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task])
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def check_sweep(config: DictConfig, config_name: str) -> list[tuple[int, list[str], str | None, str | None]]:
    """(job number, overrides, error, complete) of each job of a multirun, by :func:`prepare`; writes nothing.

    ``error`` is why the job would fail (or ``None``), ``complete`` the message of a resume of a complete run.

    Each job's config is composed as the launcher will compose it (``load_sweep_config``, with its
    ``hydra.job.num``), so ``resume=auto`` is checked against the job's own folder. The device is not checked
    (a cluster launcher runs the jobs on other machines; each job checks it when it starts). Uses Hydra 1.3's
    basic sweeper to list the jobs; another sweeper's jobs are checked only when they start.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    jobs = sweep_jobs(config)
    if jobs is None:
        return []
    loader = GlobalHydra.instance().config_loader()
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    checked: list[tuple[int, list[str], str | None, str | None]] = []
    try:
        for num, job in enumerate(jobs):
            try:
                job_cfg = loader.load_sweep_config(config, list(job))
                with read_write(job_cfg.hydra), open_dict(job_cfg.hydra):
                    job_cfg.hydra.job.num = job_cfg.hydra.job.id = num
                hydra_config.set_config(job_cfg)  # the job's ${hydra:...} interpolations, as the launcher sets them
                root = Path(str(job_cfg.hydra.sweep.dir)) / str(job_cfg.hydra.sweep.subdir)
                changed = explicit_keys(config_name, job, job_cfg)
                setup = prepare(_task_config(job_cfg), changed=changed, root=root, device=False)  # jobs may run elsewhere
                checked.append((num, list(job), None, setup.complete))
            except (ValueError, NotARunError) as e:
                checked.append((num, list(job), str(e), None))
            except Exception as e:
                checked.append((num, list(job), f"{type(e).__name__}: {e}", None))
    finally:
        hydra_config.cfg = previous
    return checked

"""Finding the runs to evaluate and checking, without loading a network, that each has what the evaluation needs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from envs.adversarial.specs import get_env_spec
from rl.qarl.checkpoint import NotARunError, find_run, glob_run_dirs
from rl.qarl.modes import resolve_mode


@dataclass
class RunInfo:
    """What the evaluation needs to know about a run, read without loading any network."""

    root: Path
    config: DictConfig
    checkpoint: Path
    env: str
    algo: str
    seed: int
    env_steps: int

    @property
    def label(self) -> str:
        """``env/algo/s<seed>``."""
        return f"{self.env}/{self.algo}/s{self.seed}"


def inspect_run(run_dir: str | Path, env: str | None = None) -> RunInfo:
    """Check that ``run_dir`` is a finished run with both checkpoints it needs (and of ``env``, if given)."""
    root, cfg, checkpoint = find_run(run_dir)
    if not (checkpoint / "protagonist.zip").exists():
        raise NotARunError(f"{str(root)!r}: checkpoint {checkpoint.name} has no protagonist.zip")
    mode = resolve_mode(cfg.algo)
    if mode.adversary and not (checkpoint / "adversary.zip").exists():
        raise NotARunError(
            f"{str(root)!r}: algo={cfg.algo.name} needs an adversary but {checkpoint.name} has no adversary.zip"
        )
    if env is not None and env != cfg.env.name:
        get_env_spec(env)  # an unknown name gets the list of valid ones
        raise ValueError(
            f"{str(root)!r} was trained on env={cfg.env.name}, not env={env}; a policy is only evaluated on its own env"
        )
    state = json.loads((checkpoint / "state.json").read_text())
    steps = int(state.get("trainer", {}).get("env_steps", 0))
    return RunInfo(root, cfg, checkpoint, str(cfg.env.name), str(cfg.algo.name), int(cfg.seed), steps)


def find_runs(patterns: str | Sequence[str]) -> list[Path]:
    """Run folders matching glob patterns; a folder that is not a run is searched for runs below it.

    Raises:
        NotARunError: when a pattern matches nothing or no run is found.
    """

    def is_run(path: Path) -> bool:
        return (path / "config.yaml").exists() and (path / "checkpoints").is_dir()

    return glob_run_dirs(patterns, is_run, "run directory (a folder with config.yaml and checkpoints/)")


@contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` (``filelock``) for the block; another process holding it is waited for, with a note.

    Two evaluations of one run at once (``-m attack=best_response,both`` under the joblib launcher, two jobs on a
    cluster) share the run's caches: the lock makes one train an attacker while the other waits and then reuses it, and
    keeps their result writes apart. The lock is released when the block ends or the process dies.
    """
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another evaluation {what} (lock {path})", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()

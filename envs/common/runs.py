"""The run-directory layout every script shares.

``runs/<script>/<name>/<date-time>/`` (set once in ``configs/hydra/default.yaml``) holding
``config.yaml`` (resolved), ``command.txt``, ``tensorboard/`` and ``checkpoints/``; Hydra adds ``.hydra/``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from envs.common.io import atomic_write_text


@dataclass(frozen=True)
class RunDir:
    """Paths of one run."""

    root: Path

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event folder."""
        return self.root / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        """Checkpoint folder."""
        return self.root / "checkpoints"

    @property
    def config(self) -> Path:
        """Resolved config of the run."""
        return self.root / "config.yaml"


def command_line() -> str:
    """The current process's command line, shell-quoted (what ``command.txt`` records)."""
    return " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])


def hydra_output_dir() -> Path | None:
    """The current Hydra job's output folder, or ``None`` outside a Hydra app."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ImportError, ValueError):
        return None


def prepare_run_dir(cfg: DictConfig, run_dir: str | Path | None = None) -> RunDir:
    """Create the run folders and write ``config.yaml`` and ``command.txt``.

    The folder is, in order of preference: ``run_dir``, the Hydra job's output folder, or
    ``cfg.run_dir`` when the config has one (as tests set).
    """
    root = Path(run_dir) if run_dir is not None else hydra_output_dir()
    if root is None:
        configured = cfg.get("run_dir") if isinstance(cfg, DictConfig) else None
        if not configured:
            raise ValueError("no run directory: pass run_dir=..., set cfg.run_dir, or run inside a Hydra app")
        root = Path(str(configured))
    run = RunDir(root.resolve())
    run.tensorboard.mkdir(parents=True, exist_ok=True)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_text(run.root / "command.txt", command_line() + "\n")
    return run

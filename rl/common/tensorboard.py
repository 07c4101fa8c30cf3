"""TensorBoard writer creation and config logging, shared by every script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter


def make_writer(run_dir: str | Path) -> SummaryWriter:
    """Return a ``SummaryWriter`` logging to ``<run_dir>/tensorboard``."""
    logdir = Path(run_dir) / "tensorboard"
    logdir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(logdir))


def config_as_markdown(cfg: DictConfig | dict[str, Any]) -> str:
    """Render a config as a YAML code block that TensorBoard's text plugin shows verbatim."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    text = OmegaConf.to_yaml(node, resolve=True)
    return "```yaml\n" + text + "```"


def log_config(writer: SummaryWriter, cfg: DictConfig | dict[str, Any], tag: str = "config") -> None:
    """Log the resolved config as text at step 0."""
    writer.add_text(tag, config_as_markdown(cfg), global_step=0)

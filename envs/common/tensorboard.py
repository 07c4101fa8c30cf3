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


def flatten_config(cfg: DictConfig | dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as ``{"a.b": value}`` with values TensorBoard's HParams accept (lists and ``None`` as text)."""
    node = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(node, dict)
    flat: dict[str, bool | int | float | str] = {}
    for key, value in node.items():
        name = f"{prefix}{key!s}"
        if isinstance(value, dict):
            flat |= flatten_config(value, name + ".")
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def log_hparams(logdir: str | Path, cfg: DictConfig | dict[str, Any], metrics: dict[str, float]) -> Path:
    """Write one TensorBoard HParams session into ``logdir``: the flattened config and the final ``metrics``.

    The metrics are also written as scalars (step 0) in the same folder, which the HParams dashboard reads. The
    folder holds one session: event files of an earlier call are removed first (the latest values replace them).
    Written with the public ``SummaryWriter.add_hparams`` (``run_name="."``: the session goes into ``logdir`` itself,
    beside the writer's own empty event file, and nothing is written outside it).

    Returns:
        ``logdir``.
    """
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("events.out.tfevents.*"):
        old.unlink()
    finite = {k: float(v) for k, v in metrics.items() if v is not None and float(v) == float(v)}
    with SummaryWriter(log_dir=str(logdir)) as writer:
        writer.add_hparams(flatten_config(cfg), finite, run_name=".", global_step=0)
    return logdir

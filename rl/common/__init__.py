"""Helpers shared by every rldyn script and package: one place, reused everywhere."""

from rl.common.device import resolve_device
from rl.common.io import atomic_save, atomic_write_text
from rl.common.registry import lookup
from rl.common.runs import RunDir, prepare_run_dir
from rl.common.seeding import seed_everything
from rl.common.tensorboard import log_config, make_writer

__all__ = [
    "RunDir",
    "atomic_save",
    "atomic_write_text",
    "log_config",
    "lookup",
    "make_writer",
    "prepare_run_dir",
    "resolve_device",
    "seed_everything",
]

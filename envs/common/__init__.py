"""Helpers shared by every rldyn script and package: one place, reused everywhere."""

from envs.common.device import resolve_device
from envs.common.io import atomic_save, atomic_write_text
from envs.common.registry import lookup
from envs.common.runs import RunDir, prepare_run_dir
from envs.common.seeding import seed_everything
from envs.common.tensorboard import log_config, make_writer

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

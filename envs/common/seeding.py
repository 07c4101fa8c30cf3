"""Seeding in one place (CleanRL's habit): Python, NumPy and torch together."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic_torch: bool = False) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's legacy global state and torch (CPU and CUDA).

    Environments are seeded separately through ``reset(seed=...)``, as Gymnasium requires.

    Args:
        seed: a non-negative integer.
        deterministic_torch: also ask torch for deterministic kernels (slower on GPU).

    Returns:
        A fresh ``np.random.Generator`` seeded with ``seed`` for the caller's own draws.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic_torch:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)

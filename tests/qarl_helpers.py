"""Tiny QARL configs for tests."""

from pathlib import Path

import numpy as np
import torch as th
from hydra import compose, initialize_config_dir

from rl.qarl.config import register_configs

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")

TINY = [
    "env=InvertedPendulum",
    "budget.iterations=2",
    "budget.episodes_per_phase=2",
    "budget.horizon=20",
    "budget.eval_every=1",
    "budget.eval_episodes=1",
    "budget.checkpoint_every=1",
    "sac.net_arch=[16]",
    "sac.batch_size=8",
    "sac.buffer_size=2000",
    "sac.learning_starts=10",
    "sac.actor_learning_starts=10",
    "curriculum.min_pairs=4",
    "curriculum.update_every=1",
    "progress=false",
]


def tiny_cfg(tmp_path, *overrides):
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("train_qarl", overrides=[*TINY, f"run_dir={tmp_path}", *overrides])
    return cfg


def assert_same_state(a, b, where=""):
    """Assert two nested state structures (tensors, arrays, dicts, sequences, scalars) are identical, NaN == NaN."""
    if isinstance(a, th.Tensor):
        assert th.equal(a, b), where
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"

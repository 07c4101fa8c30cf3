"""Shared pytest setup: env registration, the ``gpu`` marker's skip, and cheap fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import envs  # noqa: F401  (registers the rldyn/ ids)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"

# Tests run several torch models side by side on 2 shared cores; extra threads only add contention.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``@pytest.mark.gpu`` tests cleanly when CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (no GPU visible)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where ``configs/`` and ``scripts/`` live)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def config_dir() -> Path:
    """The absolute path of ``configs/`` for Hydra's compose API."""
    return CONFIG_DIR

"""``device=auto|cpu|cuda[:N]`` resolution, shared by every script."""

from __future__ import annotations

import torch

from envs.common.registry import unknown_choice_error

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a user's device string into a ``torch.device``.

    ``auto`` picks CUDA when a GPU is visible and the CPU otherwise. Asking for ``cuda`` on a machine
    without one is an error rather than a silent fall-back, so a cluster job never runs on the CPU
    by accident.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but no CUDA device is available; use device=auto or cpu")
        return torch.device(name)
    raise unknown_choice_error("device", device, DEVICE_CHOICES)

"""Shared shapes of the DSR package (``S`` windows, ``T`` steps, ``N`` observed, ``M`` latent units)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from torch import Tensor


class GTFBatch(NamedTuple):
    """One training batch of random windows.

    Attributes:
        obs: observed windows, ``(S, T + 1, N)``; ``obs[:, 0]`` initialises the latent state.
        forcing: data-inferred latent states for steps ``2..T+1``, ``(S, T, M)``, outside the autodiff graph.
    """

    obs: Tensor
    forcing: Tensor


class RolloutResult(NamedTuple):
    """A forced rollout.

    Attributes:
        pred: pre-forcing latent predictions ``z_2..z_{T+1}``, ``(S, T, M)``.
        loss: mean squared error of the observed predictions against ``obs[:, 1:]`` (no regularisation).
    """

    pred: Tensor
    loss: Tensor


class DSRData(NamedTuple):
    """A system's training and test trajectories, in the (possibly standardised) units the model sees.

    Attributes:
        name: the system's name.
        train: ``(T_train, N)`` float array.
        test: ``(T_test, N)`` float array.
        mean: per-dimension mean subtracted (zeros when not standardised).
        std: per-dimension scale divided by (ones when not standardised).
        dt: sampling interval in the system's time unit, or ``None`` if unknown.
        source: ``file`` or ``simulate``.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    dt: float | None
    source: str


class Metrics(NamedTuple):
    """The paper's evaluation measures for one model (Hess et al. 2023, Sec. 5)."""

    d_stsp: float
    d_h: float
    pe: float
    lyapunov: float

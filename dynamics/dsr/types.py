"""Shared shapes of the DSR package (``S`` windows, ``T`` steps, ``N`` observed, ``M`` latent units)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from torch import Tensor


class GTFBatch(NamedTuple):
    """One training batch of random windows.

    Attributes:
        obs: observed windows, ``(S, T + 1, N)``; ``obs[:, 0]`` initialises the latent state.
        forcing: data-inferred latent states for steps ``2..T+1``, ``(S, T, M)``, outside the autodiff graph.
        inputs: external inputs for steps ``2..T+1``, ``(S, T, K)``, or ``None``.
    """

    obs: Tensor
    forcing: Tensor
    inputs: Tensor | None = None


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
        provenance: where the data came from (file paths and SHA-256 checksums, or the simulator's parameters and
            seed) and checksums of the final arrays; recorded in every run and its metrics.
        inputs_train: external inputs ``(T_train, K)`` aligned with ``train``, or ``None``.
        inputs_test: external inputs ``(T_test, K)`` aligned with ``test``, or ``None``.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    dt: float | None
    source: str
    provenance: dict[str, Any] | None = None
    inputs_train: np.ndarray | None = None
    inputs_test: np.ndarray | None = None


class Metrics(NamedTuple):
    """The paper's evaluation measures for one model (Hess et al. 2023, Sec. 5)."""

    d_stsp: float
    d_h: float
    pe: float
    lyapunov: float

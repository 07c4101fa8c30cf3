"""Entropy and mutual information in bits (0 log 0 = 0), float64."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.types import FloatArray

LOG2E = float(np.log2(np.e))
"""log2(e) ~ 1.4427 bits: the additive gap of greedy MEC above the majorization bound (Compton 2022)."""


def eta(x: ArrayLike) -> FloatArray:
    """Elementwise ``-x log2 x`` with ``eta(0) = 0``."""
    arr = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(arr)
    pos = arr > 0
    out[pos] = -arr[pos] * np.log2(arr[pos])
    return out


def entropy(p: ArrayLike) -> float:
    """Shannon entropy in bits of a probability array of any shape (a joint is flattened)."""
    arr = np.asarray(p, dtype=np.float64).ravel()
    pos = arr[arr > 0]
    return max(0.0, float(-(pos * np.log2(pos)).sum()))  # clip -1e-16 from masses summing to 1 + ulp


def binary_entropy(x: float) -> float:
    """``h(x) = -x log2 x - (1-x) log2 (1-x)`` for ``x`` in [0, 1]."""
    return entropy([x, 1.0 - x])


def mutual_information(joint: ArrayLike) -> float:
    """``I(X;Y) = H(X) + H(Y) - H(X,Y)`` in bits for a 2-D joint ``P[x, y]``."""
    arr = np.asarray(joint, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"joint must be 2-D, got shape {arr.shape}")
    return entropy(arr.sum(axis=1)) + entropy(arr.sum(axis=0)) - entropy(arr)

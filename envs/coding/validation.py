"""Input checks at the package boundary: distributions and rates.

Every public algorithm calls these once; inner code trusts its inputs.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.types import FloatArray

SUM_TOL = 1e-8
"""Largest accepted ``|sum(p) - 1|``."""


def check_distribution(p: ArrayLike, name: str = "p", tol: float = SUM_TOL) -> FloatArray:
    """Return ``p`` as a 1-D float64 array, or raise ``ValueError`` naming the problem.

    Args:
        p: candidate probability vector.
        name: how the error messages call it.
        tol: accepted deviation of the sum from 1.

    Raises:
        ValueError: if ``p`` is not 1-D and non-empty, contains NaN or infinity, has a negative entry, or sums to
            a value further than ``tol`` from 1.
    """
    arr = np.array(p, dtype=np.float64, copy=True)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN at index {int(np.flatnonzero(np.isnan(arr))[0])}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains an infinite entry at index {int(np.flatnonzero(np.isinf(arr))[0])}")
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"{name} has a negative entry: {name}[{i}] = {arr[i]!r}; probabilities must be >= 0")
    total = float(arr.sum())
    if abs(total - 1.0) > tol:
        raise ValueError(f"{name} sums to {total!r}, not 1 (tolerance {tol:g}); normalise it first")
    return arr


def max_rate(n: int) -> float:
    """The largest meaningful rate, ``log2(n)`` bits, for an alphabet of ``n`` symbols."""
    return math.log2(n) if n > 0 else 0.0


def check_rate(rate: float, n: int, name: str = "rate") -> float:
    """Return ``rate`` as a float if it lies in ``[0, log2(n)]`` bits, else raise ``ValueError`` with the range.

    Args:
        rate: entropy budget ``R`` in bits.
        n: alphabet size of the source (the length of ``p_X``).
        name: how the error message calls it.
    """
    r = float(rate)
    hi = max_rate(n)
    if not math.isfinite(r) or r < 0.0 or r > hi + 1e-12:
        raise ValueError(f"{name} {rate!r} bits is outside the valid range [0, log2({n}) = {hi:.6g}] bits")
    return r

"""Input checks at the package boundary: distributions, rates, real numbers and integers.

Every public algorithm calls these once; inner code trusts its inputs. Each check raises ``ValueError`` naming the
bad value and the valid range or type, before anything is built.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.types import FloatArray

SUM_TOL = 1e-8
"""Largest accepted ``|sum(p) - 1|``; accepted vectors are renormalised to sum to 1 (up to rounding)."""

RATE_TOL = 1e-12
"""Slack above ``log2(n)`` accepted for a rate (a rate computed as ``H(mu)`` may exceed ``log2 n`` by an ulp)."""


def check_real(value: Any, name: str, *, finite: bool = True) -> float:
    """Return ``value`` as a float if it is a real number (not a string, bool, complex or array); else ``ValueError``.

    Args:
        value: candidate number (Python or NumPy int/float, or a 0-d real array).
        name: how the error message calls it.
        finite: also reject NaN and infinities.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    out = float(value)
    if finite and not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer (Python/NumPy int or a 0-d/size-1 integer array) in range.

    Floats are rejected even when integral-valued (``1.7`` must not silently become ``1``).

    Args:
        value: candidate integer.
        name: how the error message calls it.
        low: smallest valid value (inclusive), if any.
        high: largest valid value (inclusive), if any.
    """
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iu":
        value = value.reshape(()).item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    out = int(value)
    if (low is not None and out < low) or (high is not None and out > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name} {out} is outside the valid range [{lo}, {hi}]")
    return out


def as_real_array(a: ArrayLike, name: str) -> FloatArray:
    """``a`` as a float64 array (a copy), or ``ValueError`` if it is not an array of real numbers.

    Accepts bool, integer and float arrays, and object arrays whose items convert to float; rejects complex,
    string and ragged inputs with a message naming the dtype.
    """
    try:
        raw = np.asarray(a)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise ValueError(f"{name} must be an array of real numbers: {e}") from e
    if raw.dtype.kind in "biuf":
        return np.array(raw, dtype=np.float64, copy=True)
    if raw.dtype.kind == "O":
        try:
            return np.array(raw, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be an array of real numbers; an item of its object array is not: {e}") from e
    raise ValueError(f"{name} must be an array of real numbers, got dtype {raw.dtype} ({raw.dtype.kind!r} kind)")


def check_distribution(p: ArrayLike, name: str = "p", tol: float = SUM_TOL) -> FloatArray:
    """Return ``p`` as a 1-D float64 probability vector renormalised to sum to 1, or raise ``ValueError``.

    A vector summing to within ``tol`` of 1 is divided by its sum, so everything built from it (couplings,
    partitions) has marginals equal to the *renormalised* vector up to floating-point rounding; they differ from
    the raw input by at most ``tol`` relative.

    Args:
        p: candidate probability vector.
        name: how the error messages call it.
        tol: accepted deviation of the sum from 1.

    Raises:
        ValueError: if ``p`` is not a 1-D, non-empty array of real numbers, contains NaN or infinity, has a
            negative entry, or sums to a value further than ``tol`` from 1.
    """
    arr = as_real_array(p, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D probability vector, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN at index {int(np.flatnonzero(np.isnan(arr))[0])}")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains an infinite entry at index {int(np.flatnonzero(np.isinf(arr))[0])}")
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"{name} has a negative entry: {name}[{i}] = {arr[i]!r}; probabilities must be >= 0")
    total = math.fsum(arr.tolist())
    if abs(total - 1.0) > tol:
        raise ValueError(f"{name} sums to {total!r}, not 1 (tolerance {tol:g}); normalise it first")
    if total != 1.0:
        arr /= total
    return arr


def max_rate(n: int) -> float:
    """The largest meaningful rate, ``log2(n)`` bits, for an alphabet of ``n`` symbols."""
    return math.log2(n) if n > 0 else 0.0


def check_rate(rate: Any, n: int, name: str = "rate") -> float:
    """Return ``rate`` as a float if it is a real number in ``[0, log2(n)]`` bits, else raise ``ValueError``.

    Args:
        rate: entropy budget ``R`` in bits (a Python or NumPy real; strings and bools are rejected).
        n: alphabet size of the source (the length of ``p_X``).
        name: how the error message calls it.
    """
    hi = max_rate(n)
    try:
        r = check_real(rate, name, finite=False)
    except ValueError as e:
        raise ValueError(f"{e}; valid range [0, log2({n}) = {hi:.6g}] bits") from None
    if not math.isfinite(r) or r < 0.0 or r > hi + RATE_TOL:
        raise ValueError(f"{name} {rate!r} bits is outside the valid range [0, log2({n}) = {hi:.6g}] bits")
    return r

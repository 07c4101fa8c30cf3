"""Entropy-bounded information maximisation (EBIM), the encoder of MEC-B (Ebrahimi, Chen, Khisti, NeurIPS 2024).

``I_EBIM(p_X, R) = max_{p(t|x)} I(X;T)`` subject to ``H(T) <= R``. This module has:

- :func:`ebim_greedy`: the paper's deterministic greedy encoder (Algorithm 1, as in the authors' code). It returns
  a partition of the support with ``H(T) <= R``; for deterministic maps ``I(X;T) = H(T)``, and Theorem 2 bounds
  the loss: ``I_EBIM - I_greedy <= h(p_(2))`` (binary entropy of the second-largest mass).
- :func:`uniform_quantization`: the baseline of the paper's Algorithm 5 (contiguous index bins, ignoring p_X).
- :func:`refine_up` / :func:`refine_down`: the Theorem 3 moves from a deterministic map to the stochastic
  solutions between deterministic maps; :func:`ebim_envelope` sweeps them over every deterministic map (small n)
  and takes the upper envelope ``I*(R)`` (the paper's Fig. 2 solver), and :func:`best_deterministic` is the
  exact optimum over deterministic maps.
- :func:`ebim_curve`: ``I(X;T)`` against ``R`` for the methods above.

The greedy runs in O(n log n): one stable sort (ties by index), then the merged "largest" group only grows, so it
is a running sum over the sorted support, and the entropy is updated incrementally.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.entropy import entropy, eta
from envs.coding.registry_utils import check_method
from envs.coding.types import FloatArray, IntArray
from envs.coding.validation import check_distribution, check_rate

ENCODERS = ("greedy", "uniform")
"""Encoders usable inside MEC-B and the rate-limited game."""


class Partition(NamedTuple):
    """A deterministic map ``T = g(X)``.

    Attributes:
        labels: ``(n,)`` group of each symbol (zero-probability symbols are put in group 0).
        masses: ``(n_groups,)`` ``p_T``, the group masses.
    """

    labels: IntArray
    masses: FloatArray

    @property
    def n_groups(self) -> int:
        """Number of groups (columns of the joint)."""
        return len(self.masses)

    @property
    def entropy(self) -> float:
        """``H(T)``, which for a deterministic map equals ``I(X;T)``."""
        return entropy(self.masses)

    def joint(self, p: ArrayLike) -> FloatArray:
        """The joint ``P[x, t] = p(x) 1[g(x) = t]``."""
        pa = np.asarray(p, dtype=np.float64)
        out = np.zeros((len(pa), self.n_groups))
        out[np.arange(len(pa)), self.labels] = pa
        return out


def _delta_h(a: float, b: float) -> float:
    """Entropy lost by merging masses ``a`` and ``b``: ``(a + b) h(a / (a + b))``."""
    s = a + b
    return (-(a * math.log2(a)) if a > 0 else 0.0) + (-(b * math.log2(b)) if b > 0 else 0.0) + s * math.log2(s)


def _identity(p: FloatArray) -> Partition:
    support = np.flatnonzero(p > 0)
    labels = np.zeros(len(p), dtype=np.int64)
    labels[support] = np.arange(len(support))
    return Partition(labels=labels, masses=p[support].copy())


def ebim_greedy(p: ArrayLike, rate: float) -> Partition:
    """The paper's deterministic greedy EBIM encoder (Algorithm 1, following the authors' code).

    Starting from singletons of the support: if ``R >= H(X)`` return the identity; otherwise repeat: if merging
    the two smallest groups brings ``H(T)`` to at most ``R``, merge them and stop; else merge the two largest
    groups and stop once ``H(T) <= R``.

    Ties: the support is sorted by descending mass, ties by ascending index (stable), so the result is a pure
    function of ``p``. Groups are numbered: 0 = the merged largest group, then the remaining singletons in sorted
    order (a final merged smallest pair shares one number).

    Args:
        p: source distribution ``p_X``.
        rate: budget ``R`` in bits, in ``[0, log2 len(p)]``.

    Returns:
        The partition, with ``H(T) <= R`` (up to 1e-12 of rounding in the incremental entropy).
    """
    pa = check_distribution(p, "p_X")
    r = check_rate(rate, len(pa))
    h = entropy(pa)
    if r >= h:
        return _identity(pa)
    support = np.flatnonzero(pa > 0)
    order = support[np.argsort(-pa[support], kind="stable")]
    w = pa[order].tolist()
    k = len(w)
    top, n_top = w[0], 1  # group 0 = order[:n_top]
    pair_merged = False
    while 1 + (k - n_top) > 1:
        n_groups = 1 + (k - n_top)
        small_a, small_b = (w[k - 2], w[k - 1]) if n_groups >= 3 else (top, w[k - 1])
        d_small = _delta_h(small_a, small_b)
        if h - d_small <= r:
            h -= d_small
            if n_groups >= 3:
                pair_merged = True
            else:
                top += w[k - 1]
                n_top += 1
            break
        h -= _delta_h(top, w[n_top])
        top += w[n_top]
        n_top += 1
        if h <= r:
            break
    labels = np.zeros(len(pa), dtype=np.int64)
    rest = order[n_top:]
    ids = np.arange(1, len(rest) + 1)
    if pair_merged:
        ids[-1] = ids[-2]
    labels[rest] = ids
    masses = np.bincount(labels, weights=pa, minlength=int(labels.max()) + 1).astype(np.float64)
    return Partition(labels=labels, masses=masses)


def uniform_quantization(p: ArrayLike, rate: float) -> Partition:
    """Uniform-quantisation baseline (the paper's Algorithm 5): ``floor(2^R)`` contiguous bins of indices.

    Symbol ``x`` goes to bin ``x // s`` with ``s = ceil(n / m)`` and ``m = max(1, floor(2^R))``; the bins ignore
    ``p_X`` (bins may have zero mass), so ``H(T) <= log2 m <= R``.
    """
    pa = check_distribution(p, "p_X")
    r = check_rate(rate, len(pa))
    n = len(pa)
    m = max(1, min(n, math.floor(2.0**r + 1e-9)))
    s = math.ceil(n / m)
    labels = (np.arange(n) // s).astype(np.int64)
    masses = np.bincount(labels, weights=pa).astype(np.float64)
    return Partition(labels=labels, masses=masses)


def encode(p: ArrayLike, rate: float, method: str = "greedy") -> Partition:
    """Dispatch to :func:`ebim_greedy` (``"greedy"``) or :func:`uniform_quantization` (``"uniform"``)."""
    check_method(method, ENCODERS, "EBIM encoder")
    return ebim_greedy(p, rate) if method == "greedy" else uniform_quantization(p, rate)


def refine_up(joint: ArrayLike, delta: float) -> FloatArray:
    """Theorem 3, ``R > H(T)``: move ``delta`` from the non-zero cell with the smallest ``p(x|t)`` to a new column.

    Args:
        joint: ``P[x, t]`` of a deterministic map (one non-zero per row).
        delta: mass to move, in ``[0, cell mass]``.

    Returns:
        The ``(n, n_groups + 1)`` joint.
    """
    pj = np.asarray(joint, dtype=np.float64)
    x, t = _up_cell(pj)
    if not 0.0 <= delta <= pj[x, t]:
        raise ValueError(f"delta {delta!r} outside the valid range [0, {pj[x, t]!r}] (mass of cell ({x}, {t}))")
    out = np.concatenate([pj, np.zeros((pj.shape[0], 1))], axis=1)
    out[x, t] -= delta
    out[x, -1] += delta
    return out


def refine_down(joint: ArrayLike, delta: float) -> FloatArray:
    """Theorem 3, ``R < H(T)``: move ``delta`` from the smallest cell of the lightest column to the heaviest column.

    Args:
        joint: ``P[x, t]`` of a deterministic map with at least two non-empty columns.
        delta: mass to move, in ``[0, cell mass]``.
    """
    pj = np.asarray(joint, dtype=np.float64)
    x, t_light, t_heavy = _down_cells(pj)
    if not 0.0 <= delta <= pj[x, t_light]:
        raise ValueError(f"delta {delta!r} outside the valid range [0, {pj[x, t_light]!r}] (cell ({x}, {t_light}))")
    out = pj.copy()
    out[x, t_light] -= delta
    out[x, t_heavy] += delta
    return out


def _up_cell(pj: FloatArray) -> tuple[int, int]:
    pt = pj.sum(axis=0)
    xs, ts = np.nonzero(pj)
    ratio = pj[xs, ts] / pt[ts]
    i = int(np.argmin(ratio))
    return int(xs[i]), int(ts[i])


def _down_cells(pj: FloatArray) -> tuple[int, int, int]:
    pt = pj.sum(axis=0)
    cols = np.flatnonzero(pt > 0)
    if len(cols) < 2:
        raise ValueError("refine_down needs at least two non-empty columns")
    t_light = int(cols[np.argmin(pt[cols])])
    others = cols[cols != t_light]
    t_heavy = int(others[np.argmax(pt[others])])
    rows = np.flatnonzero(pj[:, t_light] > 0)
    x = int(rows[np.argmin(pj[rows, t_light])])
    return x, t_light, t_heavy


def set_partitions(n: int) -> Iterator[IntArray]:
    """All set partitions of ``range(n)`` as restricted-growth label arrays (Bell(n) of them)."""
    labels = [0] * n

    def rec(i: int, n_blocks: int) -> Iterator[IntArray]:
        if i == n:
            yield np.array(labels, dtype=np.int64)
            return
        for b in range(n_blocks + 1):
            labels[i] = b
            yield from rec(i + 1, max(n_blocks, b + 1))

    if n == 0:
        return
    yield from rec(1, 1)


def _check_small(pa: FloatArray, max_support: int) -> FloatArray:
    support = pa[pa > 0]
    if len(support) > max_support:
        raise ValueError(f"exhaustive EBIM is for small supports: {len(support)} symbols > max_support={max_support}")
    return support


def best_deterministic(p: ArrayLike, rates: Sequence[float] | FloatArray, max_support: int = 10) -> FloatArray:
    """Exact optimum of ``I(X;T) = H(T)`` over deterministic maps with ``H(T) <= R``, for each rate (Bell(n) maps)."""
    pa = check_distribution(p, "p_X")
    rs = np.array([check_rate(r, len(pa)) for r in rates])
    support = _check_small(pa, max_support)
    hs = np.array([entropy(np.bincount(lab, weights=support)) for lab in set_partitions(len(support))])
    return np.array([hs[hs <= r + 1e-12].max() for r in rs])


def ebim_envelope(p: ArrayLike, rates: Sequence[float] | FloatArray, grid: int = 2001, max_support: int = 8) -> FloatArray:
    """Upper envelope ``I*(R)`` of the Theorem 3 solutions between deterministic maps (the paper's Fig. 2 solver).

    For every set partition of the support (Bell(n) maps), sweep ``delta`` over ``grid`` points of both
    refinements, record ``(H(T), I(X;T))``, and return ``max{I : H(T) <= R}`` for each rate. A lower bound on
    ``I_EBIM`` (the paper reports it optimal; we checked it against SLSQP only on the spec's examples).
    """
    pa = check_distribution(p, "p_X")
    rs = np.array([check_rate(r, len(pa)) for r in rates])
    support = _check_small(pa, max_support)
    hx = entropy(support)
    frac = np.linspace(0.0, 1.0, grid)
    h_pts: list[FloatArray] = []
    i_pts: list[FloatArray] = []
    for lab in set_partitions(len(support)):
        pj = Partition(labels=lab, masses=np.bincount(lab, weights=support).astype(np.float64)).joint(support)
        pt = pj.sum(axis=0)
        ht0, hp0 = entropy(pt), entropy(pj)
        h_pts.append(np.array([ht0]))
        i_pts.append(np.array([ht0]))
        # up: split delta off the cell with the smallest p(x|t) into a new column
        x, t = _up_cell(pj)
        c = pj[x, t]
        d = c * frac
        ht = ht0 - eta(pt[t]) + eta(pt[t] - d) + eta(d)
        hp = hp0 - eta(c) + eta(c - d) + eta(d)
        h_pts.append(ht)
        i_pts.append(hx + ht - hp)
        if pj.shape[1] >= 2:
            x, tl, th = _down_cells(pj)
            c = pj[x, tl]
            d = c * frac
            ht = ht0 - eta(pt[tl]) - eta(pt[th]) + eta(pt[tl] - d) + eta(pt[th] + d)
            hp = hp0 - eta(c) - eta(pj[x, th]) + eta(c - d) + eta(pj[x, th] + d)
            h_pts.append(ht)
            i_pts.append(hx + ht - hp)
    hh, ii = np.concatenate(h_pts), np.concatenate(i_pts)
    order = np.argsort(hh, kind="stable")
    hh, best = hh[order], np.maximum.accumulate(ii[order])
    idx = np.searchsorted(hh, rs + 1e-12, side="right") - 1
    return np.where(idx >= 0, best[np.clip(idx, 0, None)], 0.0)


def ebim_curve(
    p: ArrayLike, rates: Sequence[float] | FloatArray, methods: Sequence[str] = ("greedy", "uniform")
) -> dict[str, FloatArray]:
    """``I(X;T)`` in bits against the rate ``R`` for each method, plus the upper bound ``min(R, H(X))``.

    Methods: ``greedy`` and ``uniform`` (any n), ``deterministic`` (exact over set partitions, n <= 10) and
    ``envelope`` (Theorem 3 envelope, n <= 8). Each deterministic encoder's ``H(T) <= R`` is asserted.
    """
    pa = check_distribution(p, "p_X")
    rs = np.array([check_rate(r, len(pa)) for r in rates], dtype=np.float64)
    out: dict[str, FloatArray] = {"rate": rs, "upper_bound": np.minimum(rs, entropy(pa))}
    for method in methods:
        check_method(method, (*ENCODERS, "deterministic", "envelope"), "EBIM curve method")
        if method in ENCODERS:
            vals = []
            for r in rs:
                part = encode(pa, float(r), method)
                assert part.entropy <= r + 1e-9, (method, part.entropy, r)
                vals.append(part.entropy)
            out[method] = np.array(vals)
        elif method == "deterministic":
            out[method] = best_deterministic(pa, rs)
        else:
            out[method] = ebim_envelope(pa, rs)
    return out

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

The greedy runs in O(n log n): one stable sort (ties by index), then the merged "largest" group only grows, so
every candidate's entropy follows from running sums over the sorted support (vectorised). Candidates within
rounding distance of ``R`` are re-decided with exactly summed entropies (:func:`exact_entropy`) and a tie slack of
:func:`rate_tolerance`, so ``H(T) <= R`` always holds for the reported entropy and knife-edge rates (``R`` equal to
a partition's entropy) get the partition exact arithmetic gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.entropy import entropy, eta
from envs.coding.registry_utils import check_method
from envs.coding.types import FloatArray, IntArray
from envs.coding.validation import SUM_TOL, as_real_array, check_distribution, check_rate, check_real

ENCODERS = ("greedy", "uniform")
"""Encoders usable inside MEC-B and the rate-limited game."""


RATE_TOL_EPS = 16.0
"""Ties within ``RATE_TOL_EPS * eps * max(1, R)`` bits (~3.6e-15 max(1, R)) of the rate count as ``H(T) = R``."""


def rate_tolerance(rate: float) -> float:
    """Rounding slack of the encoders' ``H(T) <= R`` decisions: ``16 eps max(1, R)`` bits.

    A rate that is meant to equal a partition's entropy (``R = 0.75 log2 81 = log2 27``) is off by an ulp or so
    once computed in floating point, and so is the partition's entropy; a strict float comparison then flips the
    greedy's branch at random (up to ~1 bit lost). Within this slack the two are treated as equal, as in exact
    arithmetic, and the partition's reported entropy is clamped to ``R`` (:attr:`Partition.entropy`).
    """
    return RATE_TOL_EPS * float(np.finfo(np.float64).eps) * max(1.0, rate)


def exact_entropy(masses: ArrayLike) -> float:
    """``H`` in bits with the terms ``-w log2 w`` summed exactly (``math.fsum``), so it does not depend on order."""
    terms = eta(np.asarray(masses, dtype=np.float64).ravel())
    return max(0.0, math.fsum(terms.tolist()))


class Partition(NamedTuple):
    """A deterministic map ``T = g(X)``.

    Attributes:
        labels: ``(n,)`` group of each symbol (zero-probability symbols are put in group 0).
        masses: ``(n_groups,)`` ``p_T``, the group masses.
        rate: the budget ``R`` the encoder built it for (``inf``: none). The encoders accept ``H(T)`` up to
            :func:`rate_tolerance` above ``R`` as a tie (rounding); :attr:`entropy` then reports ``R``.
    """

    labels: IntArray
    masses: FloatArray
    rate: float = math.inf

    @property
    def n_groups(self) -> int:
        """Number of groups (columns of the joint)."""
        return len(self.masses)

    @property
    def entropy(self) -> float:
        """``H(T)``, which for a deterministic map equals ``I(X;T)``; never above :attr:`rate`.

        The exactly summed entropy of :attr:`masses`, clamped to ``rate`` when it exceeds it by no more than
        :func:`rate_tolerance` (a tie up to rounding); a larger excess is reported as is.
        """
        h = exact_entropy(self.masses)
        if self.rate < h <= self.rate + rate_tolerance(self.rate):
            return float(self.rate)
        return h

    def joint(self, p: ArrayLike) -> FloatArray:
        """The joint ``P[x, t] = p(x) 1[g(x) = t]``."""
        pa = np.asarray(p, dtype=np.float64)
        out = np.zeros((len(pa), self.n_groups))
        out[np.arange(len(pa)), self.labels] = pa
        return out


def _identity(p: FloatArray, rate: float = math.inf) -> Partition:
    support = np.flatnonzero(p > 0)
    labels = np.zeros(len(p), dtype=np.int64)
    labels[support] = np.arange(len(support))
    return Partition(labels=labels, masses=p[support].copy(), rate=rate)


def _first_accepted(approx: FloatArray, exact: Callable[[int], float], r: float, tol: float, margin: float) -> int:
    """Index of the first candidate with ``H <= r + tol``.

    ``approx`` are running-sum entropies within ``margin`` of the exact ones; only candidates within ``margin`` of
    the threshold are recomputed exactly (``exact(i)``), so the choice is that of exactly summed entropies.
    The last candidate must be acceptable (it is the one-group map, ``H = 0``).
    """
    thr = r + tol
    maybe = np.flatnonzero(approx <= thr + margin)
    for i in maybe.tolist():
        if approx[i] <= thr - margin or exact(i) <= thr:
            return int(i)
    return len(approx) - 1


def ebim_greedy(p: ArrayLike, rate: float) -> Partition:
    """The paper's deterministic greedy EBIM encoder (Algorithm 1, following the authors' code).

    Starting from singletons of the support: if ``R >= H(X)`` return the identity; otherwise repeat: if merging
    the two smallest groups brings ``H(T)`` to at most ``R``, merge them and stop; else merge the two largest
    groups and stop once ``H(T) <= R``.

    Every ``H(T) <= R`` test uses the candidate's exactly summed entropy (group masses by ``math.fsum``, terms
    summed by ``math.fsum``), so the choice does not drift with the number of merges, and a gap within
    :func:`rate_tolerance` counts as a tie (accepted), as exact arithmetic decides a rate set to a partition's
    entropy. The returned partition's :attr:`Partition.entropy` is therefore always ``<= R``.

    Ties: the support is sorted by descending mass, ties by ascending index (stable), so the result is a pure
    function of ``p``. Groups are numbered: 0 = the merged largest group, then the remaining singletons in sorted
    order (a final merged smallest pair shares one number).

    Args:
        p: source distribution ``p_X``.
        rate: budget ``R`` in bits, a real number in ``[0, log2 len(p)]``.

    Returns:
        The partition, with ``entropy <= R``.
    """
    pa = check_distribution(p, "p_X")
    r = check_rate(rate, len(pa))
    tol = rate_tolerance(r)
    support = np.flatnonzero(pa > 0)
    order = support[np.argsort(-pa[support], kind="stable")]
    w = pa[order]
    eta_w = eta(w)
    if math.fsum(eta_w.tolist()) <= r + tol:
        return _identity(pa, r)
    k = len(w)  # >= 2 here: a single atom has H = 0 <= R
    wl = w.tolist()
    # state j (1 <= j <= k - 1): group 0 = the j largest atoms, then singletons j..k-1; running-sum entropies
    top = np.cumsum(w)[: k - 1]  # top[j - 1] = mass of group 0 in state j
    tail = np.cumsum(eta_w[::-1])[::-1]  # tail[j] = sum of eta over atoms j..k-1
    state_h = eta(top) + tail[1:k]  # state_h[j - 1] = H(state j)
    pair = wl[k - 2] + wl[k - 1]
    d_pair = float(eta(np.array([pair]))[0]) - eta_w[k - 2] - eta_w[k - 1]
    # candidates in the greedy's order: A_1, S_2, A_2, S_3, ..., A_(k-1); A_j merges the smallest pair of state j
    # (A_(k-1) merges everything: H = 0), S_(j+1) is state j + 1 (the two largest merged)
    n_cand = 2 * (k - 1) - 1
    approx = np.empty(n_cand)
    approx[0 : n_cand - 1 : 2] = state_h[: k - 2] + d_pair
    approx[1::2] = state_h[1 : k - 1]
    approx[-1] = 0.0
    margin = 8.0 * k * float(np.finfo(np.float64).eps) * (math.fsum(eta_w.tolist()) + math.log2(k) + 2.0)

    def masses_of(i: int) -> list[float]:
        j = i // 2 + 1 if i % 2 == 0 else i // 2 + 2  # state of the candidate
        group0 = math.fsum(wl[:j])
        if i == n_cand - 1:
            return [1.0]
        if i % 2 == 0:  # smallest pair merged
            return [group0, *wl[j : k - 2], pair]
        return [group0, *wl[j:]]

    i = _first_accepted(approx, lambda i: exact_entropy(masses_of(i)), r, tol, margin)
    labels = np.zeros(len(pa), dtype=np.int64)
    if i == n_cand - 1:  # everything in one group
        return Partition(labels=labels, masses=np.array([math.fsum(wl)]), rate=r)
    j = i // 2 + 1 if i % 2 == 0 else i // 2 + 2
    rest = order[j:]
    ids = np.arange(1, len(rest) + 1)
    if i % 2 == 0:
        ids[-1] = ids[-2]
    labels[rest] = ids
    return Partition(labels=labels, masses=np.array(masses_of(i), dtype=np.float64), rate=r)


def uniform_quantization(p: ArrayLike, rate: float) -> Partition:
    """Uniform-quantisation baseline (the paper's Algorithm 5, the authors' ``scalar_quant``).

    ``m = max(1, floor(2^R))`` contiguous bins of indices: symbol ``x`` goes to bin ``x // s`` with
    ``s = ceil(n / m)``; the bins ignore ``p_X`` (bins may have zero mass), so ``H(T) <= log2 m <= R``. ``2^R`` is
    taken with the :func:`rate_tolerance` slack, so ``R = log2 27`` computed in floats gives 27 bins, not 26.
    """
    pa = check_distribution(p, "p_X")
    r = check_rate(rate, len(pa))
    n = len(pa)
    m = max(1, min(n, math.floor(2.0 ** (r + rate_tolerance(r)))))
    s = math.ceil(n / m)
    labels = (np.arange(n) // s).astype(np.int64)
    masses = np.bincount(labels, weights=pa).astype(np.float64)
    return Partition(labels=labels, masses=masses, rate=r)


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

    Raises:
        ValueError: ``joint`` is not the joint of a deterministic map (2-D, finite, non-negative, total mass 1,
            at most one non-zero cell per row), or ``delta`` is not a real number in range.
    """
    pj = _check_deterministic_joint(joint)
    delta = check_real(delta, "delta")
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

    Raises:
        ValueError: as :func:`refine_up`, or fewer than two non-empty columns.
    """
    pj = _check_deterministic_joint(joint)
    delta = check_real(delta, "delta")
    x, t_light, t_heavy = _down_cells(pj)
    if not 0.0 <= delta <= pj[x, t_light]:
        raise ValueError(f"delta {delta!r} outside the valid range [0, {pj[x, t_light]!r}] (cell ({x}, {t_light}))")
    out = pj.copy()
    out[x, t_light] -= delta
    out[x, t_heavy] += delta
    return out


def _check_deterministic_joint(joint: ArrayLike) -> FloatArray:
    """``joint`` as a float array if it is the joint ``P[x, t]`` of a deterministic map, else ``ValueError``."""
    pj = as_real_array(joint, "joint")
    if pj.ndim != 2 or pj.size == 0:
        raise ValueError(f"joint must be a non-empty 2-D array P[x, t], got shape {pj.shape}")
    if not np.isfinite(pj).all() or (pj < 0).any():
        raise ValueError("joint must be finite and non-negative")
    total = math.fsum(pj.ravel().tolist())
    if abs(total - 1.0) > SUM_TOL:
        raise ValueError(f"joint sums to {total!r}, not 1 (tolerance {SUM_TOL:g})")
    per_row = (pj > 0).sum(axis=1)
    if (per_row > 1).any():
        x = int(np.flatnonzero(per_row > 1)[0])
        raise ValueError(
            f"joint is not a deterministic map: row {x} has {int(per_row[x])} non-zero cells "
            f"({np.flatnonzero(pj[x] > 0).tolist()}); Theorem 3 starts from one non-zero cell per row"
        )
    return pj


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
                assert part.entropy <= r, (method, part.entropy, r)
                vals.append(part.entropy)
            out[method] = np.array(vals)
        elif method == "deterministic":
            out[method] = best_deterministic(pa, rs)
        else:
            out[method] = ebim_envelope(pa, rs)
    return out

"""Minimum-entropy coupling (MEC): greedy coupling, the majorization lower bound and a brute-force optimum.

Greedy MEC is Kocaoglu et al. (AAAI 2017, arXiv:1701.08254), Algorithm 1: repeatedly put the smallest of the
marginals' largest residual masses into the cell indexed by those argmaxes. Its entropy is within log2(e) bits of
the majorization bound ``H(p_1 ∧ ... ∧ p_N)`` (Compton, arXiv:2203.05108) and within log2(e)/e of the optimum for
two marginals (Compton et al., arXiv:2302.11838).

Implementation: instead of rescanning for the argmax (O(n) per step, O(n^2) in all), each marginal is kept as its
support sorted once in descending order plus a heap of partially used atoms, both keyed by
``(-residual, index)``. The next atom is the smaller key of the two heads, so a step costs O(log n) and the whole
coupling O(n log n). Ties go to the smallest index, exactly as ``np.argmax`` does in the rescan
(:func:`greedy_mec_rescan`), and the floating-point operations are the same, so both produce bit-identical
couplings; a sender and a receiver that run it independently on the same inputs always agree (no randomness).

Deviation from the MEC-B authors' code: we stop when a marginal's residual is exhausted (as ``ssokota/mec`` does),
not at leftover mass <= 1e-8, so no mass is left unassigned beyond floating-point rounding.
"""

from __future__ import annotations

import heapq
import itertools
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.entropy import entropy
from envs.coding.types import FloatArray, IntArray
from envs.coding.validation import check_distribution


class Coupling(NamedTuple):
    """A sparse joint distribution with the given marginals.

    Attributes:
        cells: ``(nnz, N)`` cell indices, one column per marginal, in the order the greedy filled them.
        mass: ``(nnz,)`` positive cell masses.
        shape: the marginals' lengths.
    """

    cells: IntArray
    mass: FloatArray
    shape: tuple[int, ...]

    def to_dense(self) -> FloatArray:
        """The joint as a dense array of ``shape``."""
        out = np.zeros(self.shape, dtype=np.float64)
        out[tuple(self.cells.T)] = self.mass  # greedy cells are distinct
        return out

    def marginal(self, axis: int) -> FloatArray:
        """Sum of the cell masses along every axis but ``axis``."""
        return np.bincount(self.cells[:, axis], weights=self.mass, minlength=self.shape[axis]).astype(np.float64)

    @property
    def entropy(self) -> float:
        """Joint entropy in bits."""
        return entropy(self.mass)


def _sorted_support(p: FloatArray) -> tuple[list[float], list[int]]:
    """Positive entries of ``p`` in descending order, ties by ascending index (a stable sort)."""
    order = np.argsort(-p, kind="stable")
    order = order[p[order] > 0]
    return p[order].tolist(), order.tolist()


def _greedy_two(p: FloatArray, q: FloatArray) -> tuple[list[int], list[int], list[float]]:
    """Greedy MEC of two marginals; returns the cells' row indices, column indices and masses."""
    pv, pi = _sorted_support(p)
    qv, qi = _sorted_support(q)
    n_p, n_q = len(pv), len(qv)
    ip = iq = 0
    hp: list[tuple[float, int]] = []  # (-residual, index) of partially used atoms
    hq: list[tuple[float, int]] = []
    rows: list[int] = []
    cols: list[int] = []
    mass: list[float] = []
    while True:
        # largest residual of p: head of the sorted support or of the heap, whichever has the smaller key
        if hp and (ip >= n_p or hp[0] < (-pv[ip], pi[ip])):
            neg, ka = heapq.heappop(hp)
            a = -neg
        elif ip < n_p:
            a, ka = pv[ip], pi[ip]
            ip += 1
        else:
            break
        if hq and (iq >= n_q or hq[0] < (-qv[iq], qi[iq])):
            neg, kb = heapq.heappop(hq)
            b = -neg
        elif iq < n_q:
            b, kb = qv[iq], qi[iq]
            iq += 1
        else:
            break
        m = a if a < b else b
        rows.append(ka)
        cols.append(kb)
        mass.append(m)
        a -= m
        b -= m
        if a > 0:
            heapq.heappush(hp, (-a, ka))
        if b > 0:
            heapq.heappush(hq, (-b, kb))
    return rows, cols, mass


def _greedy_many(ps: list[FloatArray]) -> tuple[list[list[int]], list[float]]:
    """Greedy MEC of any number of marginals; same structure and tie rule as :func:`_greedy_two`."""
    supports = [_sorted_support(p) for p in ps]
    ptr = [0] * len(ps)
    heaps: list[list[tuple[float, int]]] = [[] for _ in ps]
    cells: list[list[int]] = []
    mass: list[float] = []
    while True:
        tops: list[tuple[float, int]] = []
        for i, (vals, idx) in enumerate(supports):
            h, k = heaps[i], ptr[i]
            if h and (k >= len(vals) or h[0] < (-vals[k], idx[k])):
                neg, j = heapq.heappop(h)
                tops.append((-neg, j))
            elif k < len(vals):
                tops.append((vals[k], idx[k]))
                ptr[i] = k + 1
            else:
                return cells, mass
        m = min(v for v, _ in tops)
        cells.append([j for _, j in tops])
        mass.append(m)
        for i, (v, j) in enumerate(tops):
            r = v - m
            if r > 0:
                heapq.heappush(heaps[i], (-r, j))


def greedy_mec(*marginals: ArrayLike) -> Coupling:
    """Greedy minimum-entropy coupling of two or more marginals in O(n log n).

    Args:
        *marginals: probability vectors (validated: no NaN, no negative entry, sum 1 within 1e-8).

    Returns:
        The sparse coupling; it has at most ``sum(n_i) - N + 1`` cells, and its marginals equal the inputs up
        to floating-point rounding.

    Raises:
        ValueError: fewer than two marginals, or an invalid distribution (the message names which).
    """
    if len(marginals) < 2:
        raise ValueError(f"greedy_mec needs at least two marginals, got {len(marginals)}")
    ps = [check_distribution(p, name=f"marginal {i}") for i, p in enumerate(marginals)]
    shape = tuple(len(p) for p in ps)
    if len(ps) == 2:
        rows, cols, mass = _greedy_two(ps[0], ps[1])
        index = np.array([rows, cols], dtype=np.int64).T.reshape(-1, 2)
    else:
        cells, mass = _greedy_many(ps)
        index = np.array(cells, dtype=np.int64).reshape(-1, len(ps))
    return Coupling(cells=index, mass=np.array(mass, dtype=np.float64), shape=shape)


def greedy_mec_dense(*marginals: ArrayLike) -> FloatArray:
    """:func:`greedy_mec` as a dense array (for small supports, e.g. messages x actions)."""
    return greedy_mec(*marginals).to_dense()


def greedy_mec_rescan(*marginals: ArrayLike) -> Coupling:
    """Reference greedy MEC that rescans every residual for its argmax at each step (O(n) per step).

    This is the straightforward implementation (``np.argmax``, first index on ties) used as the baseline of
    ``benchmarks/bench_mec.py`` and as the oracle that :func:`greedy_mec` must match bit for bit.
    """
    ps = [check_distribution(p, name=f"marginal {i}") for i, p in enumerate(marginals)]
    if len(ps) < 2:
        raise ValueError(f"greedy_mec_rescan needs at least two marginals, got {len(ps)}")
    res = [p.copy() for p in ps]
    cells: list[list[int]] = []
    mass: list[float] = []
    while True:
        ks = [int(np.argmax(r)) for r in res]
        m = min(float(r[k]) for r, k in zip(res, ks, strict=True))
        if m <= 0:
            break
        cells.append(ks)
        mass.append(m)
        for r, k in zip(res, ks, strict=True):
            r[k] = float(r[k]) - m
    index = np.array(cells, dtype=np.int64).reshape(-1, len(ps))
    return Coupling(cells=index, mass=np.array(mass, dtype=np.float64), shape=tuple(len(p) for p in ps))


def majorization_meet(*marginals: ArrayLike) -> FloatArray:
    """The greatest lower bound ``p_1 ∧ ... ∧ p_N`` in the majorization lattice (Cicalese et al. 2019).

    Sort each marginal in descending order, zero-pad to a common length, take the pointwise minimum ``C`` of the
    cumulative sums, and return its increments. Every coupling ``J`` has ``max_i H(p_i) <= H(meet) <= H(J)``.
    """
    ps = [check_distribution(p, name=f"marginal {i}") for i, p in enumerate(marginals)]
    n = max(len(p) for p in ps)
    cums = np.zeros((len(ps), n), dtype=np.float64)
    for i, p in enumerate(ps):
        cums[i, : len(p)] = np.cumsum(np.sort(p)[::-1])
        cums[i, len(p) :] = cums[i, len(p) - 1]
    c = cums.min(axis=0)
    z = np.diff(np.concatenate([[0.0], c]))
    return np.clip(z, 0.0, None)


def meet_entropy(*marginals: ArrayLike) -> float:
    """``H(p_1 ∧ ... ∧ p_N)``: a lower bound on the entropy of every coupling, in bits."""
    return entropy(majorization_meet(*marginals))


def _tree_solution(p: FloatArray, q: FloatArray, cells: tuple[int, ...], m: int) -> FloatArray | None:
    """Solve the marginal equations on a candidate support of ``n + m - 1`` cells by peeling leaves.

    Returns the cell masses, or ``None`` if the support is not a spanning tree of K_{n,m} or a mass is negative.
    """
    n = len(p)
    edges = [(c // m, n + c % m) for c in cells]
    adj: list[list[int]] = [[] for _ in range(n + m)]
    for e, (u, v) in enumerate(edges):
        adj[u].append(e)
        adj[v].append(e)
    residual = np.concatenate([p, q]).tolist()
    degree = [len(a) for a in adj]
    alive = [True] * len(edges)
    values = [0.0] * len(edges)
    leaves = [u for u in range(n + m) if degree[u] == 1]
    solved = 0
    while leaves:
        u = leaves.pop()
        if degree[u] != 1:
            continue
        e = next(e for e in adj[u] if alive[e])
        a, b = edges[e]
        other = b if a == u else a
        val = residual[u]
        if val < -1e-12:
            return None
        values[e] = val
        alive[e] = False
        solved += 1
        residual[u] -= val
        residual[other] -= val
        degree[u] -= 1
        degree[other] -= 1
        if degree[other] == 1:
            leaves.append(other)
    if solved != len(edges) or any(abs(r) > 1e-9 for r in residual):
        return None  # a cycle (not a tree) or an inconsistent system
    return np.clip(np.array(values), 0.0, None)


def exact_mec(p: ArrayLike, q: ArrayLike, max_cells: int = 16) -> tuple[float, FloatArray]:
    """Exact minimum-entropy coupling of two tiny marginals by enumerating vertices of the transportation polytope.

    Entropy is concave, so the minimum sits at a vertex, whose support is a spanning tree of K_{n,m} with
    ``n + m - 1`` cells (zero-mass symbols are dropped first). Every such support is solved by leaf peeling.
    For tests only: the cost is ``C(n m, n + m - 1)`` supports (11,440 at 4 x 4).

    Returns:
        The minimum entropy in bits and an optimal dense joint (on the original index sets).
    """
    pa, qa = check_distribution(p, "p"), check_distribution(q, "q")
    ip, iq = np.flatnonzero(pa > 0), np.flatnonzero(qa > 0)
    ps, qs = pa[ip], qa[iq]
    n, m = len(ps), len(qs)
    if n * m > max_cells:
        raise ValueError(f"exact_mec is for tiny supports: {n} x {m} > max_cells={max_cells}")
    best_h, best = np.inf, np.zeros((n, m))
    for cells in itertools.combinations(range(n * m), n + m - 1):
        vals = _tree_solution(ps, qs, cells, m)
        if vals is None:
            continue
        h = entropy(vals)
        if h < best_h:
            best_h = h
            best = np.zeros((n, m))
            best[np.array(cells) // m, np.array(cells) % m] = vals
    joint = np.zeros((len(pa), len(qa)))
    joint[np.ix_(ip, iq)] = best
    return float(best_h), joint

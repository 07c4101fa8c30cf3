"""EBIM encoders, Theorem 3 refinements and MEC-B."""

from __future__ import annotations

import functools
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.coding.ebim import (
    best_deterministic,
    ebim_curve,
    ebim_envelope,
    ebim_greedy,
    encode,
    exact_entropy,
    rate_tolerance,
    refine_down,
    refine_up,
    set_partitions,
    uniform_quantization,
)
from envs.coding.entropy import binary_entropy, entropy, mutual_information
from envs.coding.mec import greedy_mec_dense
from envs.coding.mecb import mec_b

SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def source_and_rate(draw, min_size: int = 2, max_size: int = 8):
    n = draw(st.integers(min_size, max_size))
    alpha = draw(st.sampled_from([0.3, 1.0, 3.0]))
    seed = draw(st.integers(0, 2**31))
    p = np.random.default_rng(seed).dirichlet(np.full(n, alpha))
    if draw(st.booleans()):  # add exact ties and zeros
        p = np.round(p * 8) / 8
        if p.sum() == 0:
            p[0] = 1.0
        p = p / p.sum()
    frac = draw(st.floats(0.0, 1.0))
    return p, frac * np.log2(n)


def second_largest(p):
    s = np.sort(p)[::-1]
    return s[1] if len(s) > 1 else 0.0


@SETTINGS
@given(source_and_rate(max_size=12))
def test_encoders_respect_the_budget(pr):
    p, rate = pr
    for method in ("greedy", "uniform"):
        part = encode(p, rate, method)
        assert part.entropy <= rate + 1e-9
        np.testing.assert_allclose(part.masses.sum(), 1.0, atol=1e-12)
        np.testing.assert_allclose(np.bincount(part.labels, weights=p, minlength=part.n_groups), part.masses, atol=1e-15)
        joint = part.joint(p)
        assert mutual_information(joint) == pytest.approx(part.entropy, abs=1e-9)  # deterministic: I = H(T)


@SETTINGS
@given(source_and_rate(max_size=7))
def test_greedy_within_theorem2_bound_of_bruteforce(pr):
    p, rate = pr
    greedy = ebim_greedy(p, rate).entropy
    bound = binary_entropy(second_largest(p))
    best = best_deterministic(p, [rate])[0]
    assert best >= greedy - 1e-9
    assert best - greedy <= bound + 1e-9
    assert min(rate, entropy(p)) - greedy <= bound + 1e-9  # I_EBIM <= min(R, H(X))


def test_greedy_identity_above_entropy():
    p = np.array([0.5, 0.25, 0.125, 0.125, 0.0])
    part = ebim_greedy(p, entropy(p) + 1e-9)
    assert part.n_groups == 4 and part.entropy == pytest.approx(entropy(p))


def test_greedy_spec_examples():
    part = ebim_greedy([0.7, 0.2, 0.1], 0.88)
    np.testing.assert_allclose(np.sort(part.masses), [0.1, 0.9])
    assert part.entropy == pytest.approx(0.469, abs=1e-3)
    u = ebim_greedy(np.full(512, 1 / 512), 4.5)
    sizes = np.bincount(u.labels)
    assert sorted(sizes)[-1] == 283 and (sizes == 1).sum() == 229 and len(sizes) == 230
    assert u.entropy == pytest.approx(4.498, abs=1e-3)


def test_greedy_ties_are_deterministic():
    u = np.full(10, 0.1)
    a, b = ebim_greedy(u, 2.0), ebim_greedy(u.copy(), 2.0)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.labels[0] == 0  # the first indices form the merged largest group


@pytest.mark.parametrize("rate", [0.0, 0.9, 2.0, 4.5, 9.0])
def test_uniform_quantization_bins(rate):
    n = 512
    part = uniform_quantization(np.full(n, 1 / n), rate)
    m = max(1, int(np.floor(2**rate + 1e-9)))
    s = int(np.ceil(n / m))
    np.testing.assert_array_equal(part.labels, np.arange(n) // s)
    assert part.entropy <= rate + 1e-9


def test_envelope_reproduces_spec_table():
    p = [0.7, 0.2, 0.1]
    rates = [0.1, 0.3, 0.6, 0.722, 0.88, 1.0]
    np.testing.assert_allclose(ebim_envelope(p, rates), [0.044, 0.200, 0.511, 0.722, 0.871, 0.921], atol=2e-3)
    np.testing.assert_allclose(best_deterministic(p, rates), [0, 0, 0.469, 0.722, 0.722, 0.881], atol=2e-3)


def test_refinements_keep_p_x_and_move_h_t():
    p = np.array([0.5, 0.3, 0.2])
    joint = ebim_greedy(p, 1.0).joint(p)  # two groups
    h_t = entropy(joint.sum(0))
    up = refine_up(joint, 0.05)
    down = refine_down(joint, 0.05)
    np.testing.assert_allclose(up.sum(1), p)
    np.testing.assert_allclose(down.sum(1), p)
    assert entropy(up.sum(0)) > h_t > entropy(down.sum(0))
    with pytest.raises(ValueError, match="valid range"):
        refine_up(joint, 10.0)


@pytest.mark.parametrize("n, bell", [(1, 1), (3, 5), (5, 52), (7, 877)])
def test_set_partitions_count(n, bell):
    assert sum(1 for _ in set_partitions(n)) == bell


def test_curve_orders_methods():
    p = np.random.default_rng(3).dirichlet(np.ones(6))
    rates = np.linspace(0.05, entropy(p), 12)
    c = ebim_curve(p, rates, ("greedy", "uniform", "deterministic", "envelope"))
    assert (c["deterministic"] >= c["greedy"] - 1e-9).all()
    assert (c["envelope"] >= c["deterministic"] - 1e-9).all()
    assert (c["envelope"] <= c["upper_bound"] + 1e-9).all()


@SETTINGS
@given(source_and_rate(max_size=10), st.integers(2, 6), st.sampled_from(["greedy", "uniform"]))
def test_mecb_marginals_and_information_bound(pr, m, encoder):
    p_x, rate = pr
    p_y = np.random.default_rng(m).dirichlet(np.ones(m))
    res = mec_b(p_x, p_y, rate, encoder)
    np.testing.assert_allclose(res.joint_xy.sum(1), p_x, atol=1e-12)
    np.testing.assert_allclose(res.joint_xy.sum(0), p_y, atol=1e-12)
    assert entropy(res.joint_xt.sum(0)) <= rate + 1e-9
    lower = mutual_information(res.joint_xt) + mutual_information(res.joint_ty) - rate
    assert mutual_information(res.joint_xy) >= lower - 1e-9


def test_mecb_without_bottleneck_is_plain_mec():
    p_x, p_y = np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.6, 0.4])
    res = mec_b(p_x, p_y, 2.0)
    np.testing.assert_array_equal(res.joint_xy, greedy_mec_dense(p_x, p_y))


@pytest.mark.parametrize("rate", [-0.5, 2.5])
def test_rates_outside_range_rejected(rate):
    with pytest.raises(ValueError, match=r"valid range \[0, log2\(4\) = 2\]"):
        ebim_greedy([0.25] * 4, rate)
    with pytest.raises(ValueError, match="valid range"):
        mec_b([0.25] * 4, [0.5, 0.5], rate)


def test_unknown_encoder_suggests():
    with pytest.raises(ValueError, match="did you mean 'greedy'"):
        encode([0.5, 0.5], 0.5, "greedi")


# ---------------------------------------------------------------------------------------------------------------
# Knife-edge rates (issue 15): an exact-arithmetic reference greedy (rational masses, 40-digit logarithms)


@functools.cache
def _exact_eta(m: Fraction) -> Decimal:
    """``-m log2 m`` to 40 significant digits for a rational mass."""
    if m == 0:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 40
        d = Decimal(m.numerator) / Decimal(m.denominator)
        return -d * d.ln() / Decimal(2).ln()


def _exact_h(masses) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        return sum(sorted(_exact_eta(m) for m in masses), Decimal(0))


def _fits(h: Decimal, rate: Decimal) -> bool:
    """``h <= rate`` in exact arithmetic: 40-digit values, so a gap below 1e-30 is an exact tie."""
    with localcontext() as ctx:
        ctx.prec = 60
        return h - rate <= Decimal("1e-30")


def _exact_greedy_candidates(p: list[Fraction]):
    """The exact greedy's candidate partitions in test order: ``(groups, entropy)`` with groups as index sets."""
    order = sorted((i for i in range(len(p)) if p[i] > 0), key=lambda i: (-p[i], i))
    k = len(order)
    cands = []
    for j in range(1, k):
        top = frozenset(order[:j])
        if j <= k - 2:
            groups = [top, *(frozenset([i]) for i in order[j : k - 2]), frozenset(order[k - 2 :])]
        else:
            groups = [frozenset(order)]
        cands.append(groups)
        if j <= k - 2:
            cands.append([frozenset(order[: j + 1]), *(frozenset([i]) for i in order[j + 1 :])])
    out = []
    for groups in cands:
        out.append((groups, _exact_h([sum((p[i] for i in g), Fraction(0)) for g in groups])))
    return order, out


def _exact_greedy(p: list[Fraction], rate: Decimal) -> set[frozenset[int]]:
    order, cands = _exact_greedy_candidates(p)
    if _fits(_exact_h([p[i] for i in order]), rate):
        return {frozenset([i]) for i in order}
    for groups, h in cands:
        if _fits(h, rate):
            return set(groups)
    raise AssertionError("the one-group candidate always fits")


def _groups(part, p) -> set[frozenset[int]]:
    support = np.flatnonzero(np.asarray(p) > 0)
    out: dict[int, set[int]] = {}
    for i in support.tolist():
        out.setdefault(int(part.labels[i]), set()).add(i)
    return {frozenset(g) for g in out.values()}


@st.composite
def rational_source(draw):
    """A rational p = counts / total (ties and zeros likely) and the index of a candidate on its greedy path."""
    n = draw(st.integers(2, 10))
    if draw(st.booleans()):
        counts = [1] * n  # uniform: the most ties
    else:
        counts = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n).filter(lambda c: sum(c) > 0))
    total = sum(counts)
    p = [Fraction(c, total) for c in counts]
    return p, draw(st.integers(0, 10**6))


@settings(max_examples=60, deadline=None)
@given(rational_source())
def test_greedy_matches_exact_arithmetic_at_rates_equal_to_partition_entropies(src):
    """R = the exact entropy of a partition on the greedy's path (rounded to float): the float greedy returns the
    partition that exact arithmetic returns, and its reported H(T) never exceeds R."""
    p, pick = src
    p_float = np.array([float(x) for x in p])
    order, cands = _exact_greedy_candidates(p)
    rates = [h for _, h in cands] + [_exact_h([p[i] for i in order])]
    for r_exact in [rates[pick % len(rates)], *rates[:3]]:
        rate = min(float(r_exact), float(np.log2(len(p))))
        part = ebim_greedy(p_float, rate)
        assert part.entropy <= rate
        assert _groups(part, p_float) == _exact_greedy(p, r_exact), (p, r_exact)


def test_uniform81_at_three_quarters_rate_is_the_exact_partition():
    """0.75 log2 81 = log2 27: one group of 27 and 54 singletons (H = log2 27), not 54 groups (H 4.7302)."""
    p = np.full(81, 1 / 81)
    rate = 0.75 * np.log2(81)
    part = ebim_greedy(p, rate)
    assert part.n_groups == 55
    assert sorted(np.bincount(part.labels))[-1] == 27
    assert part.entropy <= rate
    assert part.entropy == pytest.approx(np.log2(27), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(source_and_rate(max_size=40), st.integers(0, 10**6))
def test_reported_entropy_never_exceeds_a_rate_set_to_a_partition_entropy(pr, pick):
    """Float sources, R = entropy() of a partition the greedy visits (as a user would compute it): H(T) <= R."""
    p, _ = pr
    support = np.flatnonzero(p > 0)
    order = support[np.argsort(-p[support], kind="stable")]
    j = 1 + pick % max(1, len(order) - 1)
    masses = [p[order[:j]].sum(), *p[order[j:]]]
    paired = [*masses[:-2], masses[-2] + masses[-1]] if len(masses) >= 2 else masses
    for rate in (entropy(masses), exact_entropy(masses), entropy(paired)):
        rate = min(rate, float(np.log2(len(p))))
        for method in ("greedy", "uniform"):
            part = encode(p, rate, method)
            assert part.entropy <= rate
            assert exact_entropy(part.masses) <= rate + rate_tolerance(rate)


def test_uniform_quantization_uses_the_exact_bin_count():
    """R = log2 27 computed in floats (2^R = 26.999...): 27 bins, and H(T) reported <= R."""
    rate = float(np.log2(27))
    part = uniform_quantization(np.full(81, 1 / 81), rate)
    assert part.n_groups == 27
    assert part.entropy <= rate


# ---------------------------------------------------------------------------------------------------------------
# Inputs and contracts (issue 15)


@pytest.mark.parametrize("rate", ["1", b"1", True, None, [1.0], 1 + 0j])
def test_rate_must_be_a_real_number(rate):
    with pytest.raises(ValueError, match="rate must be a real number"):
        ebim_greedy([0.25] * 4, rate)
    with pytest.raises(ValueError, match="rate must be a real number"):
        uniform_quantization([0.25] * 4, rate)
    with pytest.raises(ValueError, match="rate must be a real number"):
        mec_b([0.25] * 4, [0.5, 0.5], rate)


def test_numpy_rates_are_accepted():
    for rate in (np.float64(1.0), np.float32(1.0), np.int64(1), np.array(1.0), 1):
        assert ebim_greedy([0.25] * 4, rate).entropy == pytest.approx(1.0)


def test_refinements_reject_a_non_deterministic_joint():
    stochastic = np.array([[0.25, 0.25], [0.5, 0.0]])
    for fn in (refine_up, refine_down):
        with pytest.raises(ValueError, match="not a deterministic map: row 0 has 2 non-zero cells"):
            fn(stochastic, 0.01)
    det = np.array([[0.5, 0.0], [0.0, 0.5]])
    with pytest.raises(ValueError, match="sums to"):
        refine_up(det * 2, 0.01)
    with pytest.raises(ValueError, match="2-D"):
        refine_up([0.5, 0.5], 0.01)
    with pytest.raises(ValueError, match="delta must be a real number"):
        refine_up(det, "0.1")
    with pytest.raises(ValueError, match="real numbers"):
        refine_down(det.astype(complex), 0.01)


@pytest.mark.parametrize("encoder", ["greedy", "uniform"])
def test_mecb_drops_empty_columns_also_without_bottleneck(encoder):
    p_x, p_y = np.array([0.5, 0.0, 0.3, 0.2, 0.0]), np.array([0.6, 0.4])
    res = mec_b(p_x, p_y, float(np.log2(5)), encoder)
    assert res.joint_xt.shape == (5, 3)  # three non-empty groups, empty columns dropped
    assert (res.joint_xt.sum(0) > 0).all()
    assert res.joint_ty.shape == (3, 2)
    np.testing.assert_allclose(res.joint_ty.sum(1), res.joint_xt.sum(0), atol=1e-15)
    np.testing.assert_allclose(res.joint_xy.sum(1), p_x, atol=1e-15)


def test_mecb_unknown_encoder_raises_before_work():
    with pytest.raises(ValueError, match="did you mean 'uniform'"):
        mec_b([0.5, 0.5], [0.5, 0.5], 1.0, "unifrom")

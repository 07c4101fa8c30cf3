"""Minimum-entropy coupling: marginals, bounds, brute-force optimum, determinism, input validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.coding.entropy import LOG2E, binary_entropy, entropy, mutual_information
from envs.coding.mec import (
    exact_mec,
    greedy_mec,
    greedy_mec_dense,
    greedy_mec_rescan,
    majorization_meet,
    meet_entropy,
)
from envs.coding.validation import check_distribution, check_rate

SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def distributions(draw, min_size: int = 1, max_size: int = 12):
    """Probability vectors: continuous weights, or small integers (many ties and zeros)."""
    n = draw(st.integers(min_size, max_size))
    if draw(st.booleans()):
        w = draw(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=n, max_size=n))
    else:
        w = [float(x) for x in draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))]
    w = np.array(w)
    if w.sum() <= 1e-6:
        w[draw(st.integers(0, n - 1))] = 1.0
    return w / w.sum()


@SETTINGS
@given(distributions(), distributions())
def test_greedy_two_marginals_exact_and_sparse(p, q):
    c = greedy_mec(p, q)
    assert np.abs(c.marginal(0) - p).max() <= 1e-12
    assert np.abs(c.marginal(1) - q).max() <= 1e-12
    assert (c.mass > 0).all()
    assert len(c.mass) <= (p > 0).sum() + (q > 0).sum() - 1
    assert len({tuple(i) for i in c.cells}) == len(c.mass)  # distinct cells


@SETTINGS
@given(distributions(), distributions(), distributions())
def test_greedy_three_marginals_exact(p, q, r):
    c = greedy_mec(p, q, r)
    for axis, m in enumerate((p, q, r)):
        assert np.abs(c.marginal(axis) - m).max() <= 1e-12
    assert len(c.mass) <= (p > 0).sum() + (q > 0).sum() + (r > 0).sum() - 2


@SETTINGS
@given(st.lists(distributions(max_size=10), min_size=2, max_size=4))
def test_greedy_within_log2e_of_meet_and_never_below(ps):
    h_meet = meet_entropy(*ps)
    h = greedy_mec(*ps).entropy
    assert h >= h_meet - 1e-9
    assert h <= h_meet + LOG2E + 1e-9
    assert h_meet >= max(entropy(p) for p in ps) - 1e-9


@SETTINGS
@given(st.lists(distributions(max_size=10), min_size=2, max_size=4))
def test_meet_is_a_nonincreasing_distribution(ps):
    z = majorization_meet(*ps)
    assert z.sum() == pytest.approx(1.0, abs=1e-12)
    assert (np.diff(z) <= 1e-12).all()


@SETTINGS
@given(distributions(max_size=3), distributions(max_size=4))
def test_greedy_close_to_bruteforce_optimum(p, q):
    opt, joint = exact_mec(p, q)
    h = greedy_mec(p, q).entropy
    assert np.allclose(joint.sum(1), p, atol=1e-9) and np.allclose(joint.sum(0), q, atol=1e-9)
    assert opt == pytest.approx(entropy(joint), abs=1e-9)
    assert opt >= meet_entropy(p, q) - 1e-9
    assert opt <= h + 1e-9
    assert h - opt <= LOG2E / np.e + 1e-9  # Compton et al. 2023, two marginals


@SETTINGS
@given(distributions(max_size=40), distributions(max_size=40))
def test_heap_matches_argmax_rescan_bit_for_bit(p, q):
    a, b = greedy_mec(p, q), greedy_mec_rescan(p, q)
    assert np.array_equal(a.cells, b.cells)
    assert np.array_equal(a.mass, b.mass)


@pytest.mark.parametrize("n, m", [(512, 4), (64, 64), (7, 3)])
def test_uniform_ties_are_pinned(n, m):
    """Uniform beliefs tie everywhere: the first index wins, the same on every call and in the rescan."""
    p, q = np.full(n, 1 / n), np.full(m, 1 / m)
    a, b, ref = greedy_mec(p, q), greedy_mec(p.copy(), q.copy()), greedy_mec_rescan(p, q)
    assert np.array_equal(a.cells, b.cells) and np.array_equal(a.mass, b.mass)
    assert np.array_equal(a.cells, ref.cells) and np.array_equal(a.mass, ref.mass)
    assert tuple(a.cells[0]) == (0, 0)


def test_known_couplings():
    p = np.array([0.5, 0.5])
    np.testing.assert_array_equal(greedy_mec_dense(p, p), np.diag(p))
    cells = greedy_mec([1.0], [0.75, 0.25], [0.6, 0.3, 0.1]).mass
    np.testing.assert_allclose(np.sort(cells), [0.05, 0.1, 0.25, 0.6], atol=1e-15)
    # independent-ish marginals: I = H(p) + H(q) - H(J)
    j = greedy_mec_dense([0.7, 0.2, 0.1], [0.5, 0.3, 0.2])
    assert mutual_information(j) == pytest.approx(entropy([0.7, 0.2, 0.1]) + entropy([0.5, 0.3, 0.2]) - entropy(j))


def test_exact_mec_small_known_value():
    # [.5,.5] x [.5,.25,.25]: the optimum splits one half: H = 1.5 bits
    opt, _ = exact_mec([0.5, 0.5], [0.5, 0.25, 0.25])
    assert opt == pytest.approx(1.5)
    with pytest.raises(ValueError, match="tiny"):
        exact_mec(np.full(5, 0.2), np.full(5, 0.2))


def test_entropy_helpers():
    assert entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert entropy([1.0, 0.0]) == 0.0
    assert binary_entropy(0.11) == pytest.approx(0.4999, abs=1e-3)
    assert mutual_information(np.diag([0.25] * 4)) == pytest.approx(2.0)
    assert mutual_information(np.full((2, 2), 0.25)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0.5, -0.1, 0.6], "negative"),
        ([0.5, np.nan, 0.5], "NaN"),
        ([0.5, 0.4], "sums to"),
        ([0.5, np.inf], "infinite"),
        ([], "non-empty"),
        ([[0.5, 0.5]], "1-D"),
    ],
)
def test_bad_distributions_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        check_distribution(bad)
    with pytest.raises(ValueError, match=message):
        greedy_mec(bad, [1.0])


@pytest.mark.parametrize("rate", [-0.1, 3.1, np.nan])
def test_bad_rate_lists_the_valid_range(rate):
    with pytest.raises(ValueError, match=r"valid range \[0, log2\(8\) = 3\]"):
        check_rate(rate, 8)


def test_single_marginal_rejected():
    with pytest.raises(ValueError, match="at least two"):
        greedy_mec([1.0])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([0.5 + 0j, 0.5]), "real numbers, got dtype complex"),
        (np.array([0.5, 0.5j], dtype=object), "object array"),
        (np.array([0.5, "a"], dtype=object), "object array"),
        (["0.5", "0.5"], "real numbers, got dtype <U3"),
        ([[0.5], [0.25, 0.25]], "real numbers"),
    ],
)
def test_non_real_arrays_raise_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        check_distribution(bad)
    with pytest.raises(ValueError, match=message):
        greedy_mec(bad, [1.0])


def test_object_array_of_floats_is_accepted():
    np.testing.assert_array_equal(check_distribution(np.array([0.5, 0.5], dtype=object)), [0.5, 0.5])


def test_sums_within_tolerance_are_renormalised():
    """A marginal short by 5e-9 is renormalised: the coupling's marginals sum to 1 and equal p / sum(p)."""
    p = np.array([0.6, 0.4 - 5e-9])
    q = np.array([0.5, 0.5])
    assert check_distribution(p).sum() == pytest.approx(1.0, abs=1e-15)
    c = greedy_mec(p, q)
    np.testing.assert_allclose(c.marginal(0), p / p.sum(), atol=1e-15)
    np.testing.assert_allclose(c.marginal(1), q, atol=1e-15)
    assert c.mass.sum() == pytest.approx(1.0, abs=1e-15)
    exact = np.array([0.25, 0.25, 0.5])
    assert check_distribution(exact) is not exact and np.array_equal(check_distribution(exact), exact)

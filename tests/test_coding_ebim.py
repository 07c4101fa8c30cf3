"""EBIM encoders, Theorem 3 refinements and MEC-B."""

from __future__ import annotations

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

import numpy as np
import pytest
import torch
from scipy.stats import gamma as gamma_dist

from rl.qarl.teacher import SelfPacedGammaTeacher, gamma_kl

SPEC_SEQUENCE = [50, 43.31, 37.12, 31.40, 26.19, 21.47, 17.32, 13.56, 10.28, 7.50, 5.19, 3.37, 1.98, 1.07, 1.0]


@pytest.mark.parametrize(("nu1", "nu2"), [(50.0, 1.0), (43.3, 50.0), (1.07, 1.0), (3.0, 7.5)])
@pytest.mark.parametrize("rate", [1000.0, 333.3, 1.0])
def test_closed_form_kl_matches_torch_and_ignores_rate(nu1, nu2, rate):
    p = torch.distributions.Gamma(torch.tensor(nu1, dtype=torch.float64), torch.tensor(rate, dtype=torch.float64))
    q = torch.distributions.Gamma(torch.tensor(nu2, dtype=torch.float64), torch.tensor(rate, dtype=torch.float64))
    assert gamma_kl(nu1, nu2) == pytest.approx(torch.distributions.kl_divergence(p, q).item(), rel=1e-9, abs=1e-12)


def test_distribution_moments_and_sampling():
    t = SelfPacedGammaTeacher(rate=1000.0)
    assert t.mean == pytest.approx(0.05)
    assert t.std == pytest.approx(0.0071, abs=1e-4)
    samples = t.sample(20000, np.random.default_rng(0))
    assert samples.mean() == pytest.approx(gamma_dist(50, scale=1e-3).mean(), rel=0.01)
    assert np.all(samples > 0)


def test_estimate_at_old_nu_is_plain_mean():
    t = SelfPacedGammaTeacher()
    rng = np.random.default_rng(1)
    alphas, returns = t.sample(30, rng), rng.normal(20, 5, 30)
    t.add(alphas, returns)
    assert t.performance_estimate(t.nu) == pytest.approx(returns.mean(), rel=1e-12)
    assert t.performance_estimate(40.0) != pytest.approx(returns.mean(), rel=1e-6)


def test_high_performance_follows_trust_region_to_target():
    t = SelfPacedGammaTeacher(threshold=10.0)
    rng = np.random.default_rng(0)
    seq = [t.nu]
    for _ in range(16):
        t.add(t.sample(30, rng), np.full(30, 100.0))
        before = t.nu
        update = t.update()
        assert not update.frozen
        assert gamma_kl(t.nu, before) <= 0.5 + 1e-6  # trust region
        assert t.nu <= before  # never moves back to hotter temperatures
        assert not t.alphas  # buffer cleared
        seq.append(t.nu)
    # the spec's trust-constr path: exact derivatives and feasible iterates stop where the official call stops
    np.testing.assert_allclose(seq[:13], SPEC_SEQUENCE[:13], atol=0.01)
    np.testing.assert_allclose(seq[13:15], SPEC_SEQUENCE[13:15], atol=0.25)  # the kl_stop jump to the target
    assert t.at_target and t.nu == 1.0
    assert seq.index(1.0) in (13, 14, 15)  # >= 13 updates: 39 iterations at 3 iterations per update


def _official_step(nu_old, alphas, returns, rate=1000.0, nu_target=1.0, epsilon=0.5, threshold=10.0):
    """One update as the official teacher formulates it (torch Gammas, autograd derivatives, feasible iterates)."""
    from scipy.optimize import Bounds, NonlinearConstraint, minimize

    f64 = torch.float64
    old = torch.distributions.Gamma(torch.tensor([nu_old], dtype=f64), torch.tensor([rate], dtype=f64))
    target = torch.distributions.Gamma(torch.tensor([nu_target], dtype=f64), torch.tensor([rate], dtype=f64))
    a, j = torch.tensor(alphas, dtype=f64), torch.tensor(returns, dtype=f64)
    old_log_prob = old.log_prob(a)

    def with_grad(fn):
        def value(x):
            nu = torch.tensor(x, dtype=f64, requires_grad=True)
            out = fn(torch.distributions.Gamma(nu, torch.tensor([rate], dtype=f64))).sum()
            return out.item(), torch.autograd.grad(out, nu)[0].numpy()

        return value

    kl_old = with_grad(lambda p: torch.distributions.kl_divergence(p, old))
    perf = with_grad(lambda p: torch.mean(torch.exp(p.log_prob(a) - old_log_prob) * j))
    res = minimize(
        with_grad(lambda p: torch.distributions.kl_divergence(p, target)),
        np.array([nu_old]),
        method="trust-constr",
        jac=True,
        bounds=Bounds(1e-8, np.inf, keep_feasible=True),
        constraints=[
            NonlinearConstraint(
                lambda x: kl_old(x)[0], -np.inf, epsilon, jac=lambda x: kl_old(x)[1][None], keep_feasible=True
            ),
            NonlinearConstraint(lambda x: perf(x)[0], threshold, np.inf, jac=lambda x: perf(x)[1][None], keep_feasible=True),
        ],
        options={"gtol": 1e-4, "xtol": 1e-6},
    )
    assert res.success
    return float(res.x[0])


def test_updates_match_the_official_optimiser_call():
    """Exact derivatives and keep_feasible, as the official call: nu 50 -> 43.31 (finite differences gave 43.39)."""
    rng = np.random.default_rng(0)
    t = SelfPacedGammaTeacher(threshold=10.0)
    t.add(t.sample(30, rng), np.full(30, 100.0))
    t.update()
    assert t.nu == pytest.approx(43.31, abs=0.005)
    for binding in (False, True):  # the trust region binds; the performance constraint binds
        rng = np.random.default_rng(0)
        t = SelfPacedGammaTeacher(threshold=10.0)
        for _ in range(13 if not binding else 3):
            alphas = t.sample(40, rng)
            # colder temperatures, worse returns: the estimate falls as nu does, with its mean just above 10
            returns = 10.2 + 4000.0 * (alphas - alphas.mean()) if binding else np.full(40, 100.0)
            t.add(alphas, returns)
            nu_old, expected = t.nu, _official_step(t.nu, alphas, returns)
            t.update()
            assert t.nu == pytest.approx(expected, abs=1e-6)
            step = gamma_kl(t.nu, nu_old)
            assert 0 < step < 1e-3 if binding else 0.44 < step <= 0.5


def test_frozen_below_threshold():
    t = SelfPacedGammaTeacher(threshold=1e9)
    rng = np.random.default_rng(0)
    for _ in range(5):
        t.add(t.sample(30, rng), np.full(30, 100.0))
        update = t.update()
        assert update.frozen and not update.updated
    assert t.nu == 50.0 and not t.ever_met


def test_performance_constraint_limits_step():
    # returns fall with temperature: moving towards colder alpha must keep the IS estimate >= threshold
    t = SelfPacedGammaTeacher(threshold=10.0)
    rng = np.random.default_rng(3)
    alphas = t.sample(200, rng)
    returns = 10.0 + 4000.0 * (alphas - t.mean)  # mean 10.0ish, colder -> worse
    returns += 10.2 - returns.mean()
    t.add(alphas, returns)
    nu_old = t.nu
    t.update()
    assert t.nu <= nu_old
    t2 = SelfPacedGammaTeacher(threshold=10.0)
    t2.add(alphas, np.full(200, 100.0))
    t2.update()
    assert t.nu >= t2.nu  # the binding performance constraint slows the curriculum


def test_state_round_trip_and_validation():
    t = SelfPacedGammaTeacher(rate=333.0, threshold=47.0)
    t.add([0.1, 0.2], [1.0, 2.0])
    t2 = SelfPacedGammaTeacher.from_state_dict(t.state_dict())
    assert t2 == t
    with pytest.raises(ValueError, match="rate"):
        SelfPacedGammaTeacher(rate=-1.0)
    with pytest.raises(ValueError, match="positive finite"):
        t.add([0.0], [1.0])
    with pytest.raises(ValueError, match="2 temperatures but 1"):
        t.add([0.1, 0.2], [1.0])

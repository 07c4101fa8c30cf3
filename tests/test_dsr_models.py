"""PLRNN models and observation models: analytic Jacobians, initialisation, boundedness, inversion (spec gtf.md §11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamics.dsr.models import MODEL_NAMES, PLRNN, ShallowPLRNN, make_model, talathi_vartak_init
from dynamics.dsr.observation import AffineObservation, IdentityObservation, make_observation


def away_from_kinks(model: torch.nn.Module, n: int, m: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, m, generator=g, dtype=torch.float64)
    return z


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_analytic_jacobian_matches_autograd(name: str) -> None:
    torch.manual_seed(0)
    model = make_model(name, 5, hidden_dim=12, n_bases=4).double()
    with torch.no_grad():  # make h2 non-trivial for the unclipped shPLRNN too
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    z = away_from_kinks(model, 6, 5)
    analytic = model.jacobian(z)
    for i in range(z.shape[0]):
        auto = torch.autograd.functional.jacobian(model, z[i])
        assert torch.allclose(analytic[i], auto, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_vjp_and_numpy_step_agree_with_torch(name: str) -> None:
    torch.manual_seed(0)
    model = make_model(name, 4, hidden_dim=9, n_bases=3).double()
    z, g = torch.randn(7, 4, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64)
    jac = model.jacobian(z)
    expected = torch.einsum("si,sij->sj", g, jac)
    cache = model.vjp_cache(z).detach()
    expected = expected.detach()
    assert torch.allclose(model.vjp_step(g, cache), expected, atol=1e-12)
    p = model.numpy_params()
    assert np.allclose(model.step_np(z.numpy(), p), model(z).detach().numpy(), atol=1e-12)
    assert np.allclose(model.vjp_np(g.numpy(), cache.numpy(), p), expected.numpy(), atol=1e-12)


@pytest.mark.parametrize("m", [3, 16])
def test_talathi_vartak_initialisation(m: int) -> None:
    a, w = talathi_vartak_init(m)
    k = (torch.diag(a) + w).double()
    assert torch.linalg.eigvalsh(k).abs().max().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(a > 0) and torch.all(a <= 1 + 1e-6)
    assert torch.count_nonzero(torch.diagonal(w)) == 0


def test_shallow_initialisation_ranges() -> None:
    m, hidden = 5, 250
    model = ShallowPLRNN(m, hidden, clipped=True)
    assert torch.all(model.h1 == 0)
    assert model.W1.abs().max() <= 1 / hidden**0.5 and model.W2.abs().max() <= 1 / m**0.5
    assert model.h2.abs().max() <= 1 / hidden**0.5 and model.h2.abs().max() > 0
    assert torch.all(ShallowPLRNN(m, hidden, clipped=False).h2 == 0)


@pytest.mark.parametrize(("n", "m", "hidden", "expected"), [(5, 5, 250, 2785), (64, 16, 512, 17952)])
def test_parameter_counts_match_paper(n: int, m: int, hidden: int, expected: int) -> None:
    model, obs = make_model("clipped_shplrnn", m, hidden_dim=hidden), make_observation("affine", n, m)
    assert sum(p.numel() for p in [*model.parameters(), *obs.parameters()]) == expected


def test_plrnn_diagonal_of_w_gets_no_gradient() -> None:
    model = PLRNN(4, n_bases=3)
    model(torch.randn(8, 4)).square().sum().backward()
    assert model.W.grad is not None and torch.all(torch.diagonal(model.W.grad) == 0)
    assert torch.any(model.W.grad != 0)


def test_clipped_shplrnn_orbit_stays_bounded() -> None:
    torch.manual_seed(3)
    model = ShallowPLRNN(3, 20, clipped=True).double()
    with torch.no_grad():
        model.A.copy_(torch.tensor([0.9, -0.95, 0.5]))
        model.W1.mul_(5.0)
    p = model.numpy_params()
    z = np.array([1e3, -1e3, 5e2]) / np.sqrt(1.5)
    peak = 0.0
    for _ in range(100_000):
        z = model.step_np(z, p)
        peak = max(peak, float(np.abs(z).max()))
    bracket = float(np.abs(p["W1"]).sum(1).max() * np.abs(p["h2"]).max())
    assert np.all(np.isfinite(z)) and peak <= 1e3 and np.abs(z).max() <= bracket / (1 - 0.95) + 1e-6


def test_identity_observation_inverts_and_refuses_small_latent() -> None:
    obs = IdentityObservation(3, 5)
    x = torch.randn(4, 3)
    assert torch.allclose(obs(obs.init_state(x)), x)
    assert torch.equal(obs.forcing_signal(x)[:, 3:], torch.zeros(4, 2))
    assert torch.equal(obs.forced_units(True), torch.tensor([1.0, 1, 1, 0, 0]))
    with pytest.raises(ValueError, match="latent_dim >= obs_dim"):
        IdentityObservation(4, 3)


def test_affine_observation_inverts_and_gradient_reaches_b_through_z1() -> None:
    torch.manual_seed(0)
    obs = AffineObservation(3, 5).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(obs(obs.init_state(x)), x, atol=1e-10)
    assert not obs.forcing_signal(x).requires_grad
    obs.init_state(x).sum().backward()
    assert obs.B.grad is not None and obs.B.grad.abs().sum() > 0


def test_affine_bias_inverts_and_is_optional() -> None:
    torch.manual_seed(0)
    obs = make_observation("affine", 3, 5, bias=True).double()
    with torch.no_grad():
        obs.b.copy_(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(obs(obs.init_state(x)), x, atol=1e-10)
    assert torch.allclose(obs(obs.forcing_signal(x)), x, atol=1e-10)
    assert [n for n, _ in obs.named_parameters()] == ["B", "b"]
    assert make_observation("affine", 3, 5).b is None  # off by default, as the reference
    with pytest.raises(ValueError, match="obs_bias"):
        make_observation("identity", 3, 5, bias=True)

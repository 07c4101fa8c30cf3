"""Local ERNODE/SRNODE: ``reg.local_k1_grad`` (issue 23, item 3).

``false`` (LocalRegNeuralDE.jl) takes the extra step's ``k1 = f(t*, y*)`` as a constant, so its gradient is not that
of the reported penalty; ``true`` puts ``k1`` on the graph and gives the penalty's exact gradient at fixed ``h``.
"""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from torchdiffeq._impl.misc import _compute_error_ratio, _PerturbFunc, _rms_norm, _select_initial_step
from torchdiffeq._impl.rk_common import _runge_kutta_step

from dynamics.node.regularizers import RegSpec
from dynamics.node.solve import (
    CountingFunc,
    SolverSettings,
    _dopri5_tableau,
    _float64_field,
    local_step_value,
    solve,
)
from dynamics.node.solvers import STABILITY_SIZE, stiffness_estimate

F64 = torch.float64
SETTINGS = SolverSettings(rtol=1e-6, atol=1e-6)


class WeightField(CountingFunc):
    """``f(t, y) = tanh(y W1 + t) W2`` with the weights taken from one flat tensor (so gradcheck can vary them)."""

    def __init__(self, w: torch.Tensor, dim: int = 3, hidden: int = 6) -> None:
        super().__init__()
        self.w, self.dim, self.hidden = w, dim, hidden

    def field(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w1 = self.w[: self.dim * self.hidden].reshape(self.dim, self.hidden)
        w2 = self.w[self.dim * self.hidden :].reshape(self.hidden, self.dim)
        return torch.tanh(y @ w1 + t) @ w2


def _weights(seed: int = 0) -> torch.Tensor:
    return (2.0 * torch.randn(36, dtype=F64, generator=torch.Generator().manual_seed(seed))).requires_grad_(True)


Y = torch.tensor([[0.3, -0.2, 0.9], [0.1, 0.5, -0.7], [-0.4, 0.8, 0.2], [0.6, -0.9, -0.3]], dtype=F64)
T_STAR, H = torch.tensor(0.3, dtype=F64), torch.tensor(0.1, dtype=F64)


@pytest.mark.parametrize("kind", ["error", "stiffness"])
def test_k1_on_the_graph_gives_the_gradient_of_the_reported_penalty(kind: str) -> None:
    def penalty(k1_grad: bool):
        return lambda w: local_step_value(WeightField(w), T_STAR, Y, SETTINGS, kind, h=H, k1_grad=k1_grad)

    w = _weights()
    assert torch.autograd.gradcheck(penalty(True), (w,), eps=1e-6, atol=1e-6, rtol=1e-5)
    # the reference's constant k1 is not the penalty's gradient (this is what the option fixes)
    assert not torch.autograd.gradcheck(penalty(False), (w,), eps=1e-6, atol=1e-6, rtol=1e-5, raise_exception=False)
    same = [penalty(flag)(w) for flag in (False, True)]
    assert torch.equal(same[0], same[1])  # the same reported value either way


def _reference_local_step_value(func, t_star, y_star, settings, kind, h=None, t_end=None):
    """The function as it was before ``k1_grad`` existed (commit afe68ce), for the bit-for-bit comparison."""
    y0 = y_star.detach().to(F64)
    t0 = t_star.detach().to(F64).reshape(())
    field = _float64_field(func)
    rtol = torch.as_tensor(settings.rtol, dtype=F64, device=y0.device)
    atol = torch.as_tensor(settings.atol, dtype=F64, device=y0.device)
    with torch.no_grad():
        k1 = field(t0, y0)
        if h is None:
            h = _select_initial_step(field, t0, y0, 4, rtol, atol, _rms_norm, f0=k1)
            if t_end is not None:
                h = torch.minimum(h, (t_end.detach().to(F64) - t0).clamp_min(torch.finfo(F64).tiny))
    h = h.detach().to(F64).reshape(())
    tableau = _dopri5_tableau(y0)
    y1, _, err, k = _runge_kutta_step(_PerturbFunc(field), y0, k1, t0, h, t0 + h, tableau)
    if kind == "error":
        return (_compute_error_ratio(err, rtol, atol, y0, y1, _rms_norm) * h).to(y_star.dtype)
    beta = tableau.beta[-2]
    y_a = y0 + torch.sum(k[..., : len(beta)] * (beta * h), dim=-1).view_as(y0)
    lam = stiffness_estimate(k[..., -2], k[..., -1], y_a, y1, _rms_norm)
    return (lam / STABILITY_SIZE["dopri5"]).to(y_star.dtype)


@pytest.mark.parametrize("kind", ["error", "stiffness"])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_default_is_the_reference_behaviour_bit_for_bit(kind: str, dtype: torch.dtype) -> None:
    from dynamics.node.models import TimeMLPField

    torch.manual_seed(0)
    func = TimeMLPField(8, 16).to(dtype)
    y = torch.rand(5, 8, dtype=dtype)
    t_star, t_end = torch.tensor(0.3, dtype=dtype), torch.tensor(1.0, dtype=dtype)
    params = list(func.parameters())
    for h in (None, torch.tensor(0.05, dtype=dtype)):
        nfe0 = func.nfe
        new = local_step_value(func, t_star, y, SETTINGS, kind, h=h, t_end=t_end)
        nfe1 = func.nfe
        old = _reference_local_step_value(func, t_star, y, SETTINGS, kind, h=h, t_end=t_end)
        assert nfe1 - nfe0 == func.nfe - nfe1  # the same number of evaluations
        assert torch.equal(new, old)
        for g_new, g_old in zip(torch.autograd.grad(new, params), torch.autograd.grad(old, params), strict=True):
            assert torch.equal(g_new, g_old)


def test_solve_passes_the_option_and_other_regularizers_refuse_it(config_dir) -> None:
    from dynamics.node.config import register_configs
    from dynamics.node.models import TimeMLPField
    from dynamics.node.train import build_reg

    torch.manual_seed(1)
    func = TimeMLPField(4, 8).double()
    y0 = torch.rand(3, 4, dtype=F64)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    values, grads = {}, {}
    for flag in (False, True):
        out = solve(func, y0, t, SETTINGS, RegSpec("local_stiffness", local_k1_grad=flag), torch.Generator().manual_seed(2))
        values[flag], grads[flag] = out.penalty, torch.autograd.grad(out.penalty, list(func.parameters()))
    assert torch.equal(values[False], values[True])
    assert not all(torch.equal(a, b) for a, b in zip(grads[False], grads[True], strict=True))
    with pytest.raises(ValueError, match="local_k1_grad applies to the local regularizers"):
        RegSpec("error", local_k1_grad=True)
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose("train_node", overrides=["reg=local_error", "reg.local_k1_grad=true"])
    assert build_reg(cfg, adjoint=False).local_k1_grad is True

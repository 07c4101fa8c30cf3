"""Evidence for the instrumented torchdiffeq solvers (specs/node.md, "Evidence that an implementation is right")."""

from __future__ import annotations

import math

import pytest
import torch
from torchdiffeq import odeint, odeint_adjoint

import dynamics.node  # noqa: F401  (registers dopri5_reg / bosh3_reg)
from dynamics.node.solvers import StepRecorder, stiffness_estimate

F64 = torch.float64


class ForcedPendulum(torch.nn.Module):
    """y'' = -100 sin y + 50 cos 30 t: stiff enough at tol 1e-4 to force rejected steps."""

    def __init__(self) -> None:
        super().__init__()
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return torch.stack([y[..., 1], -100 * torch.sin(y[..., 0]) + 50 * torch.cos(30 * t)], dim=-1)


class MLPField(torch.nn.Module):
    def __init__(self, dim: int = 3, hidden: int = 8, dtype=torch.float32, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, dim)).to(dtype)
        self.nfe = 0
        self.dts: list[torch.Tensor] = []

    def forward(self, t, y):
        self.nfe += 1
        return self.net(y) * 2.0

    def callback_step(self, t0, y0, dt):
        self.dts.append(dt)


def pendulum_solve(method: str, rec: StepRecorder | None = None):
    f = ForcedPendulum()
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.linspace(0, 2, 5, dtype=F64)
    options = {"recorder": rec} if rec is not None else None
    return odeint(f, y0, t, rtol=1e-4, atol=1e-4, method=method, options=options), f.nfe


def test_forward_bit_identical_to_dopri5_with_same_nfe():
    rec = StepRecorder(stiffness=True)
    ys_reg, nfe_reg = pendulum_solve("dopri5_reg", rec)
    ys, nfe = pendulum_solve("dopri5")
    assert torch.equal(ys_reg, ys)
    assert nfe_reg == nfe


def test_nfe_formula_with_rejections():
    rec = StepRecorder()
    _, nfe = pendulum_solve("dopri5_reg", rec)
    assert rec.rejected > 0, "the problem must force rejections for this test to mean anything"
    assert nfe == 2 + 6 * (rec.accepted + rec.rejected)
    assert len(rec.errors) == rec.accepted


def test_first_step_given_costs_one_evaluation_less():
    f = ForcedPendulum()
    rec = StepRecorder()
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    odeint(
        f,
        y0,
        torch.tensor([0.0, 1.0], dtype=F64),
        rtol=1e-4,
        atol=1e-4,
        method="dopri5_reg",
        options={"recorder": rec, "first_step": 0.01},
    )
    assert f.nfe == 1 + 6 * (rec.accepted + rec.rejected)


def test_recorded_error_equals_independent_dopri5_recomputation():
    """One step of known size: recompute Dormand-Prince stages and the scaled error ratio by hand."""
    a_mat = torch.tensor([[-0.3, 1.7], [-1.1, 0.2]], dtype=F64)

    def f(t, y):
        return torch.tanh(y @ a_mat) + torch.sin(t) * y

    y0 = torch.tensor([[0.7, -0.4], [0.1, 0.9]], dtype=F64)
    h, rtol, atol = 0.05, 1e-9, 1e-10
    rec = StepRecorder()
    odeint(
        f,
        y0,
        torch.tensor([0.0, h], dtype=F64),
        rtol=rtol,
        atol=atol,
        method="dopri5_reg",
        options={"recorder": rec, "first_step": h},
    )
    assert rec.accepted == 1 and rec.rejected == 0
    assert 1e-3 < rec.error_ratios[0].item() <= 1  # a non-trivial ratio
    # Dormand & Prince (1980) coefficients, written out independently of torchdiffeq
    c = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1]
    a = [
        [],
        [1 / 5],
        [3 / 40, 9 / 40],
        [44 / 45, -56 / 15, 32 / 9],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
        [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ]
    b5 = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]
    # torchdiffeq's embedded 4th-order weights are Shampine's (1986) alternative to the 5179/57600 set
    b4 = [1951 / 21600, 0, 22642 / 50085, 451 / 720, -12231 / 42400, 649 / 6300, 1 / 60]
    k = []
    for i in range(7):
        yi = y0 + h * sum(a[i][j] * k[j] for j in range(i)) if i else y0
        k.append(f(torch.tensor(c[i] * h, dtype=F64), yi))
    y1 = y0 + h * sum(b5[j] * k[j] for j in range(7))
    err = h * sum((b5[j] - b4[j]) * k[j] for j in range(7))
    scaled = err / (atol + rtol * torch.maximum(y0.abs(), y1.abs()))
    expected = scaled.pow(2).mean().sqrt()
    assert rec.error_ratios[0].item() == pytest.approx(expected.item(), rel=1e-7)
    assert rec.errors[0].item() == pytest.approx(expected.item() * h, rel=1e-7)


def test_recorded_errors_only_from_accepted_steps_and_bounded():
    rec = StepRecorder()
    pendulum_solve("dopri5_reg", rec)
    ratios = torch.stack(rec.error_ratios)
    assert (ratios <= 1).all()
    dts = torch.stack(rec.dts)
    assert torch.allclose(torch.stack(rec.errors), ratios * dts)
    assert dts.sum().item() >= 2.0 - 1e-12  # the last step may overshoot; never short of T - t0
    assert torch.stack(rec.errors).sum() <= dts.sum()


@pytest.mark.parametrize("detach_dt, first_has_grad", [(True, False), (False, True)])
def test_step_sizes_carry_no_gradient_only_when_detached(detach_dt, first_has_grad):
    f = MLPField()
    rec = StepRecorder()
    odeint(
        f,
        torch.ones(4, 3),
        torch.tensor([0.0, 1.0]),
        rtol=1e-5,
        atol=1e-5,
        method="dopri5_reg",
        options={"recorder": rec, "detach_dt": detach_dt},
    )
    assert not any(dt.requires_grad for dt in rec.dts)
    assert f.dts[0].requires_grad == first_has_grad  # torchdiffeq#284: the first dt depends on the parameters
    assert not any(dt.requires_grad for dt in f.dts[1:])


def test_penalty_gradient_reaches_parameters_not_step_sizes():
    """With dt detached, the penalty's gradient equals that of a solve whose first step is a given constant."""
    t = torch.tensor([0.0, 1.0], dtype=F64)
    y0 = torch.linspace(-1, 1, 6, dtype=F64).reshape(2, 3)

    def grads(options):
        f = MLPField(dtype=F64)
        rec = StepRecorder()
        odeint(f, y0, t, rtol=1e-6, atol=1e-6, method="dopri5_reg", options={"recorder": rec, **options})
        penalty = torch.stack(rec.errors).mean()
        assert penalty.grad_fn is not None
        return [g for g in torch.autograd.grad(penalty, list(f.parameters()))], rec

    g_free, rec = grads({"detach_dt": True})
    assert all(g.abs().sum() > 0 for g in g_free), "every parameter must receive gradient"
    g_fixed, rec_fixed = grads({"detach_dt": True, "first_step": rec.dts[0].item()})
    assert rec_fixed.accepted == rec.accepted
    for a, b in zip(g_free, g_fixed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    g_through_dt, _ = grads({"detach_dt": False})
    assert any(not torch.allclose(a, b, rtol=1e-10, atol=1e-14) for a, b in zip(g_through_dt, g_fixed, strict=True)), (
        "torchdiffeq's raw step sizes do carry a gradient; the comparison above must be able to fail"
    )


def test_gradients_bit_identical_to_dopri5_when_dt_not_detached():
    y0 = torch.ones(4, 3)
    t = torch.tensor([0.0, 0.5, 1.0])
    grads = []
    for method, options in (("dopri5", None), ("dopri5_reg", {"detach_dt": False})):
        f = MLPField()
        ys = odeint(f, y0, t, rtol=1e-5, atol=1e-5, method=method, options=options)
        grads.append(torch.autograd.grad(ys.square().sum(), list(f.parameters())))
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


def test_adjoint_records_values_without_graph():
    f = MLPField()
    rec = StepRecorder()
    ys = odeint_adjoint(
        f,
        torch.ones(2, 3),
        torch.tensor([0.0, 1.0]),
        method="dopri5_reg",
        options={"recorder": rec},
        adjoint_method="dopri5",
        adjoint_options={},
    )
    assert ys.requires_grad
    assert rec.accepted > 0 and not any(e.requires_grad for e in rec.errors)


@pytest.mark.parametrize("a", [0.5, 3.0, 20.0])
def test_stiffness_estimate_of_linear_decay_is_the_rate(a):
    rec = StepRecorder(stiffness=True, stability_size=1.0)
    odeint(
        lambda t, y: -a * y,
        torch.linspace(1, 2, 5, dtype=F64),
        torch.tensor([0.0, 1.0], dtype=F64),
        rtol=1e-6,
        atol=1e-6,
        method="dopri5_reg",
        options={"recorder": rec},
    )
    lam = torch.stack(rec.stiffness_values)
    torch.testing.assert_close(lam, torch.full_like(lam, a), rtol=1e-6, atol=0)


def test_stiffness_estimate_of_normal_matrix_within_eigenvalue_moduli():
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=F64, generator=torch.Generator().manual_seed(0)))
    eig = torch.tensor([-0.5, -2.0, -4.0, -7.0], dtype=F64)
    a_mat = q @ torch.diag(eig) @ q.T
    rec = StepRecorder(stiffness=True, stability_size=1.0)
    odeint(
        lambda t, y: y @ a_mat.T,
        torch.randn(3, 4, dtype=F64, generator=torch.Generator().manual_seed(1)),
        torch.tensor([0.0, 2.0], dtype=F64),
        rtol=1e-6,
        atol=1e-6,
        method="dopri5_reg",
        options={"recorder": rec},
    )
    lam = torch.stack(rec.stiffness_values)
    assert (lam >= 0.5 - 1e-9).all() and (lam <= 7.0 + 1e-9).all()


def test_stiffness_zero_over_zero_is_guarded():
    z = torch.zeros(3)
    assert stiffness_estimate(z, z, z, z, lambda x: x.pow(2).mean().sqrt()).item() == 0.0


def test_tuple_state_and_reversed_time_still_work():
    rec = StepRecorder()
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([0.5])
    sol = odeint(
        lambda t, y: (-y[0], -2 * y[1]),
        (a, b),
        torch.tensor([1.0, 0.0]),
        method="dopri5_reg",
        options={"recorder": rec},
        rtol=1e-8,
        atol=1e-8,
    )
    torch.testing.assert_close(sol[0][-1], a * math.e, rtol=1e-5, atol=0)
    torch.testing.assert_close(sol[1][-1], b * math.e**2, rtol=1e-5, atol=0)
    assert rec.accepted > 0


def test_bosh3_refuses_stiffness_and_records_errors():
    rec = StepRecorder()
    odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), method="bosh3_reg", options={"recorder": rec})
    assert rec.accepted == len(rec.errors) > 0
    with pytest.raises(ValueError, match="stiffness"):
        odeint(
            lambda t, y: -y,
            torch.ones(2),
            torch.tensor([0.0, 1.0]),
            method="bosh3_reg",
            options={"recorder": StepRecorder(stiffness=True)},
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_solve_matches_dopri5():
    f = MLPField().cuda()
    y0 = torch.ones(4, 3, device="cuda")
    t = torch.tensor([0.0, 1.0], device="cuda")
    rec = StepRecorder(stiffness=True)
    a = odeint(f, y0, t, method="dopri5_reg", options={"recorder": rec})
    b = odeint(f, y0, t, method="dopri5")
    assert torch.equal(a, b) and rec.accepted > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("settings", [{}, {"stiffness": True}, {"record_errors": False}, {"keep_states": True}])
def test_cuda_recorder_adds_no_host_sync(settings):
    """The recording on an accepted step reads nothing back to the host (torchdiffeq's own loop still syncs)."""
    from dynamics.node.solvers import InstrumentedDopri5

    f = MLPField().cuda()
    y0 = torch.ones(4, 3, device="cuda")
    rec = StepRecorder(**settings)
    solver = InstrumentedDopri5(func=f, y0=y0, rtol=1e-6, atol=1e-6, recorder=rec)
    k = torch.randn(4, 3, 7, device="cuda", requires_grad=True)
    t0 = torch.tensor(0.0, device="cuda", dtype=F64)
    dt = torch.tensor(0.1, device="cuda", dtype=F64)
    ratio = torch.tensor(0.5, device="cuda", dtype=F64, requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        solver._record_accept(y0, y0 + 0.1, k, t0, dt, ratio)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert rec.accepted == 1


def test_dopri5_error_estimate_is_two_thirds_of_the_standard_dp5_one() -> None:
    """Documented (issue 23): torchdiffeq's Dormand-Prince-Shampine error coefficients are 2/3 of Hairer's ``b - b̂``."""
    from torchdiffeq._impl.dopri5 import Dopri5Solver

    b = torch.tensor([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0], dtype=torch.float64)
    b_hat = torch.tensor([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40], dtype=torch.float64)
    assert torch.allclose(Dopri5Solver.tableau.c_error, (b - b_hat) * 2 / 3, rtol=1e-12, atol=1e-15)

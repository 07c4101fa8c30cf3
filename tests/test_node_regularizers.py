"""Regularizers, schedules and the ``solve`` entry point (global, local, RNODE, adjoint refusal)."""

from __future__ import annotations

import math

import pytest
import torch

from dynamics.node.regularizers import REGULARIZERS, CoefSchedule, RegSpec, aggregate, check_regularizer
from dynamics.node.solve import CountingFunc, SolverSettings, local_step_value, solve

F64 = torch.float64


class Field(CountingFunc):
    def __init__(self, dim: int = 3, hidden: int = 8, dtype=torch.float32) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, dim)).to(dtype)

    def field(self, t, y):
        return 2.0 * self.net(y)


Y0 = torch.linspace(-1, 1, 12).reshape(4, 3)
T = torch.tensor([0.0, 1.0])
SETTINGS = SolverSettings(rtol=1e-5, atol=1e-5)


def param_grads(func, value):
    return torch.autograd.grad(value, list(func.parameters()), allow_unused=True)


@pytest.mark.parametrize("name", ["error", "stiffness", "error_stiff", "local_error", "local_stiffness", "rnode"])
def test_penalty_has_graph_and_reaches_every_parameter(name):
    f = Field()
    out = solve(f, Y0, T, SETTINGS, RegSpec(name), torch.Generator().manual_seed(0))
    assert out.penalty is not None and out.penalty.grad_fn is not None and out.penalty.dim() == 0
    assert out.penalty.dtype == Y0.dtype
    grads = param_grads(f, out.penalty)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_solution_unchanged_by_global_regularizers():
    base = solve(Field(), Y0, T, SETTINGS, RegSpec("none"))
    for name in ("error", "stiffness", "error_stiff"):
        out = solve(Field(), Y0, T, SETTINGS, RegSpec(name))
        assert torch.equal(out.ys, base.ys) and out.stats == base.stats


def test_rnode_augmented_states_do_not_drive_the_step_size():
    base = solve(Field(), Y0, T, SETTINGS, RegSpec("none"))
    out = solve(Field(), Y0, T, SETTINGS, RegSpec("rnode"), torch.Generator().manual_seed(0))
    assert (out.stats.accepted, out.stats.rejected) == (base.stats.accepted, base.stats.rejected)
    torch.testing.assert_close(out.ys, base.ys)


def test_rnode_kinetic_energy_of_linear_field():
    """For f = -a y the kinetic term is int ||a y||^2 = a^2 |y0|^2 (1 - e^{-2aT}) / (2a) per sample."""
    a = 1.5

    class Linear(CountingFunc):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(a, dtype=F64))

        def field(self, t, y):
            return -self.a * y

    y0 = torch.tensor([[1.0, 2.0]], dtype=F64)
    out = solve(
        Linear(),
        y0,
        torch.tensor([0.0, 1.0], dtype=F64),
        SolverSettings(rtol=1e-9, atol=1e-9),
        RegSpec("rnode", kinetic=1.0, jacobian=0.0),
    )
    expected = a**2 * 5.0 * (1 - math.exp(-2 * a)) / (2 * a)
    assert out.penalty.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mode", ["unbiased", "biased"])
def test_local_regularizer_under_adjoint(mode):
    f = Field()
    settings = SolverSettings(rtol=1e-5, atol=1e-5, adjoint=True)
    plain = solve(Field(), Y0, T, SolverSettings(rtol=1e-5, atol=1e-5), RegSpec("none"))
    out = solve(f, Y0, T, settings, RegSpec("local_error", local_mode=mode), torch.Generator().manual_seed(3))
    assert out.ys.shape == plain.ys.shape
    extra = out.stats.nfe - (2 + 6 * (out.stats.accepted + out.stats.rejected))
    assert extra == (8 if mode == "unbiased" else 7)  # k1 + 6 stages (+ the initial-step probe)
    loss = out.ys[-1].square().sum() + out.penalty
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in f.parameters())


def test_local_step_equals_recorded_global_step():
    """The local value at a recorded step start with its dt reproduces that step's recorded E * dt."""
    from torchdiffeq import odeint

    from dynamics.node.solvers import StepRecorder

    f = Field(dtype=F64)
    rec = StepRecorder(keep_states=True)
    y0 = Y0.to(F64)
    odeint(f, y0, T.to(F64), rtol=1e-5, atol=1e-5, method="dopri5_reg", options={"recorder": rec})
    t0, y_start, dt = rec.starts[1]
    value = local_step_value(f, t0, y_start, SolverSettings(rtol=1e-5, atol=1e-5), "error", h=dt)
    assert value.item() == pytest.approx(rec.errors[1].item(), rel=1e-10)


def test_single_step_error_gradcheck():
    """float64 gradcheck of E of one instrumented step with a fixed dt (first_step given, t1 = t0 + dt)."""
    from torchdiffeq import odeint

    from dynamics.node.solvers import StepRecorder

    w = torch.randn(3, 3, dtype=F64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y0 = torch.tensor([[0.3, -0.2, 0.9], [0.1, 0.5, -0.7]], dtype=F64)
    h = 0.1

    def error(w_):
        rec = StepRecorder()
        odeint(
            lambda t, y: torch.tanh(y @ w_),
            y0,
            torch.tensor([0.0, h], dtype=F64),
            rtol=1e-6,
            atol=1e-6,
            method="dopri5_reg",
            options={"recorder": rec, "first_step": h},
        )
        assert rec.accepted == 1 and rec.rejected == 0
        return rec.errors[0]

    assert torch.autograd.gradcheck(error, (w,))


@pytest.mark.parametrize("name", ["error", "stiffness", "error_stiff", "rnode"])
def test_adjoint_refused_with_reason(name):
    with pytest.raises(ValueError, match="adjoint") as info:
        solve(Field(), Y0, T, SolverSettings(adjoint=True), RegSpec(name))
    assert "no_grad" in str(info.value)


def test_unknown_names_list_valid_choices():
    with pytest.raises(ValueError, match="did you mean 'error'"):
        check_regularizer("eror")
    with pytest.raises(ValueError, match="valid choices"):
        SolverSettings(method="tsit5")
    with pytest.raises(ValueError, match="valid choices"):
        CoefSchedule("cosine", 1.0)
    assert set(REGULARIZERS) >= {"none", "error", "stiffness", "local_error", "rnode"}


def test_exp_decay_schedule():
    s = CoefSchedule("exp_decay", 10.0, 1.0, horizon=60)
    assert s(0) == 10.0
    assert s(60) == pytest.approx(1.0)
    assert s(30) == pytest.approx(math.sqrt(10.0))
    ratios = [s(i + 1) / s(i) for i in range(59)]
    assert max(ratios) == pytest.approx(min(ratios)) and ratios[0] < 1
    assert CoefSchedule("constant", 0.3)(1000) == 0.3
    with pytest.raises(ValueError):
        CoefSchedule("exp_decay", 10.0, None)


def test_aggregations():
    v = [torch.tensor(1.0), torch.tensor(3.0)]
    assert aggregate(v, "mean").item() == 2.0
    assert aggregate(v, "sum").item() == 4.0
    assert aggregate(v, "max").item() == 3.0
    with pytest.raises(ValueError):
        aggregate([], "mean")

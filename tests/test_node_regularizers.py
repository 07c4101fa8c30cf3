"""Regularizers, schedules and the ``solve`` entry point (global, local, RNODE, adjoint refusal)."""

from __future__ import annotations

import math

import pytest
import torch

from dynamics.node.regularizers import REGULARIZERS, CoefSchedule, RegSpec, aggregate, check_regularizer
from dynamics.node.solve import CountingFunc, SolverSettings, local_step_value, solve

F64 = torch.float64


class LinearField(CountingFunc):
    """f(t, y) = -a y with a trainable a (float64)."""

    def __init__(self, a):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a, dtype=F64))

    def field(self, t, y):
        return -self.a * y


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


@pytest.mark.parametrize("name", ["error", "stiffness", "error_stiff", "local_error", "local_stiffness", "rnode", "taynode"])
def test_penalty_has_graph_and_reaches_every_parameter(name):
    f = Field()
    out = solve(f, Y0, T, SETTINGS, RegSpec(name, taylor_order=2), torch.Generator().manual_seed(0))
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

    y0 = torch.tensor([[1.0, 2.0]], dtype=F64)
    out = solve(
        LinearField(a),
        y0,
        torch.tensor([0.0, 1.0], dtype=F64),
        SolverSettings(rtol=1e-9, atol=1e-9),
        RegSpec("rnode", kinetic=1.0, jacobian=0.0),
    )
    expected = a**2 * 5.0 * (1 - math.exp(-2 * a)) / (2 * a)
    assert out.penalty.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mode", ["unbiased", "biased", "biased_taken"])
def test_local_regularizer_under_adjoint(mode):
    f = Field()
    settings = SolverSettings(rtol=1e-5, atol=1e-5, adjoint=True)
    plain = solve(Field(), Y0, T, SolverSettings(rtol=1e-5, atol=1e-5), RegSpec("none"))
    out = solve(f, Y0, T, settings, RegSpec("local_error", local_mode=mode), torch.Generator().manual_seed(3))
    assert out.ys.shape == plain.ys.shape
    extra = out.stats.nfe - (2 + 6 * (out.stats.accepted + out.stats.rejected))
    assert extra == (7 if mode == "biased_taken" else 8)  # k1 + 6 stages (+ the initial-step probe)
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


@pytest.mark.parametrize("name", ["error", "stiffness", "error_stiff", "rnode", "taynode"])
def test_adjoint_refused_with_reason(name):
    with pytest.raises(ValueError, match="adjoint") as info:
        solve(Field(), Y0, T, SolverSettings(adjoint=True), RegSpec(name))
    assert "no_grad" in str(info.value) or "jvp" in str(info.value)


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


def _flat_grad(value, module):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, list(module.parameters()))]).double()


@pytest.mark.parametrize("kind", ["error", "stiffness"])
def test_local_step_gradient_agrees_with_float64(kind):
    """Issue 14, point 1: in float32 at tol 1e-6 the local error estimate is below float32 resolution; the step is now
    taken in float64, so a float32 model's penalty gradient points where the float64 model's does (was: cos 0.1-0.4)."""
    import copy

    from dynamics.node.models import TimeMLPField

    torch.manual_seed(0)
    f32 = TimeMLPField(64, 100)
    with torch.no_grad():
        f32.l2.weight.mul_(4.0)
    f64 = copy.deepcopy(f32).double()
    y = torch.rand(128, 64)
    settings = SolverSettings(rtol=1e-6, atol=1e-6)
    t_star = torch.tensor(0.3)
    g32 = _flat_grad(local_step_value(f32, t_star, y, settings, kind), f32)
    g64 = _flat_grad(local_step_value(f64, t_star.double(), y.double(), settings, kind), f64)
    cosine = (g32 @ g64 / (g32.norm() * g64.norm())).item()
    assert cosine > 0.99999
    value = local_step_value(f32, t_star, y, settings, kind)
    assert value.dtype == torch.float32 and f32.l1.weight.dtype == torch.float32  # the model itself is not cast


def test_biased_mode_takes_the_initial_step_heuristic_like_the_reference():
    """Issue 14, point 2: LocalRegNeuralDE.jl builds a fresh integrator at the drawn step start, so both modes use the
    initial-step heuristic; ``biased_taken`` keeps the step the solver took (a separate, named mode)."""
    from torchdiffeq import odeint

    from dynamics.node.solvers import StepRecorder

    f = Field(dtype=F64)
    y0 = Y0.to(F64)
    t = T.to(F64)
    rec = StepRecorder(keep_states=True)
    odeint(f, y0, t, rtol=1e-5, atol=1e-5, method="dopri5_reg", options={"recorder": rec})
    j = int(torch.randint(len(rec.starts), (), generator=torch.Generator().manual_seed(5)).item())
    t0, y_start, dt = rec.starts[j]
    heuristic = local_step_value(f, t0, y_start, SETTINGS, "error", t_end=t[-1])
    taken = local_step_value(f, t0, y_start, SETTINGS, "error", h=dt)
    for mode, expected in (("biased", heuristic), ("biased_taken", taken)):
        out = solve(f, y0, t, SETTINGS, RegSpec("local_error", local_mode=mode), torch.Generator().manual_seed(5))
        assert out.penalty.item() == pytest.approx(expected.item(), rel=1e-12)
    assert heuristic.item() < 0.1 * taken.item()  # the two modes differ by orders of magnitude at equal coefficient


def test_recorder_keeps_only_what_the_regularizer_needs(monkeypatch):
    """Issue 14, point 5: with reg=none (and the regularizers that do not read per-step values) no per-step error
    estimate, and so no per-step graph, is kept."""
    import importlib

    from dynamics.node.solvers import StepRecorder

    solve_module = importlib.import_module("dynamics.node.solve")

    made: list[StepRecorder] = []

    class Spy(StepRecorder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(solve_module, "StepRecorder", Spy)
    kept = {}
    for name in ("none", "local_error", "rnode", "steer", "taynode", "error", "stiffness"):
        made.clear()
        solve(Field(), Y0, T, SETTINGS, RegSpec(name, taylor_order=1), torch.Generator().manual_seed(0))
        (rec,) = made
        assert rec.accepted > 0
        kept[name] = (len(rec.errors) + len(rec.error_ratios) + len(rec.dts), len(rec.stiffness_values))
    assert all(kept[n] == (0, 0) for n in ("none", "local_error", "rnode", "steer", "taynode"))
    assert kept["error"][0] > 0 and kept["error"][1] == 0
    assert kept["stiffness"][0] == 0 and kept["stiffness"][1] > 0


def test_steer_jitters_output_times_within_bounds():
    from dynamics.node.solve import steer_times

    gen = torch.Generator().manual_seed(0)
    t = torch.tensor([0.0, 1.0])
    ends = torch.stack([steer_times(t, 0.5, gen)[-1] for _ in range(200)])
    assert ends.min() >= 0.5 and ends.max() < 1.5 and ends.std() > 0.2  # T' ~ U(0.5, 1.5)
    grid = torch.linspace(0, 1, 11)
    for _ in range(50):
        jittered = steer_times(grid, 0.5, gen)
        assert jittered[0] == 0 and bool((torch.diff(jittered) > 0).all())
        assert (jittered - grid).abs().max() <= 0.05 + 1e-7
    with pytest.raises(ValueError, match="steer_b"):
        RegSpec("steer", steer_b=0.7)


def test_steer_solves_to_the_jittered_end_time():
    f = Field()
    out = solve(f, Y0, T, SETTINGS, RegSpec("steer"), torch.Generator().manual_seed(1))
    from dynamics.node.solve import steer_times

    end = steer_times(T, 0.5, torch.Generator().manual_seed(1))
    ref = solve(f, Y0, end, SETTINGS, RegSpec("none"))
    assert out.penalty is None and torch.equal(out.ys, ref.ys) and end[-1] != 1.0


@pytest.mark.parametrize("order", [1, 2, 3])
def test_total_derivative_by_nested_jvps(order):
    """d^K z/dt^K along dz/dt = a z + sin t: z'' = a z' + cos t, z''' = a z'' - sin t."""
    from dynamics.node.solve import total_derivative

    a = 0.7

    class Affine(CountingFunc):
        def field(self, t, y):
            return a * y + torch.sin(t)

    z = torch.tensor([[0.3, -1.2]], dtype=F64)
    t = torch.tensor(0.4, dtype=F64)
    d1 = a * z + math.sin(0.4)
    d2 = a * d1 + math.cos(0.4)
    d3 = a * d2 - math.sin(0.4)
    torch.testing.assert_close(total_derivative(Affine(), order)(t, z), (d1, d2, d3)[order - 1])


def test_taynode_penalty_of_linear_field():
    """For f = -a z: d^2 z/dt^2 = a^2 z, so R_2 = int mean_i (a^2 z_i)^2 = a^4 mean(z0^2) (1 - e^{-2aT}) / (2a)."""
    a = 1.5

    def penalty(a_):
        return a_**4 * (y0**2).mean() * (1 - torch.exp(-2 * a_)) / (2 * a_)

    y0 = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=F64)
    f = LinearField(a)
    out = solve(f, y0, T.to(F64), SolverSettings(rtol=1e-10, atol=1e-10), RegSpec("taynode", taylor_order=2))
    a_ = torch.tensor(a, dtype=F64, requires_grad=True)
    expected = penalty(a_)
    assert out.penalty.item() == pytest.approx(expected.item(), rel=1e-7)
    (grad,) = torch.autograd.grad(out.penalty, [f.a])
    (expected_grad,) = torch.autograd.grad(expected, [a_])
    assert grad.item() == pytest.approx(expected_grad.item(), rel=1e-5)


def test_warmup_holds_the_coefficient_at_zero_then_starts_the_schedule():
    s = CoefSchedule("exp_decay", 10.0, 1.0, horizon=60, warmup=5)
    assert [s(i) for i in range(5)] == [0.0] * 5 and all(s.warming(i) for i in range(5))
    assert s(5) == 10.0 and not s.warming(5)
    assert s(65) == pytest.approx(1.0) and s(35) == pytest.approx(math.sqrt(10.0))
    c = CoefSchedule("constant", 0.3, warmup=2)
    assert (c(1), c(2), c(100)) == (0.0, 0.3, 0.3)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        CoefSchedule("constant", 0.3, warmup=-1)

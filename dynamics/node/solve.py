"""One entry point for a (regularized) neural-ODE solve on top of torchdiffeq's ``odeint``/``odeint_adjoint``.

``solve(func, y0, t, settings, reg)`` runs the instrumented solver, computes the regularizer's value (before its
coefficient) and returns counters; ``func`` is a ``CountingFunc`` so that NFE is counted in the vector field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint
from torchdiffeq._impl.dopri5 import Dopri5Solver
from torchdiffeq._impl.misc import _compute_error_ratio, _PerturbFunc, _rms_norm, _select_initial_step
from torchdiffeq._impl.rk_common import _ButcherTableau, _runge_kutta_step

from dynamics.node.regularizers import (
    GLOBAL_REGULARIZERS,
    LOCAL_REGULARIZERS,
    STIFFNESS_REGULARIZERS,
    RegSpec,
    aggregate,
    check_regularizer,
)
from dynamics.node.solvers import STABILITY_SIZE, StepRecorder, stiffness_estimate
from dynamics.node.types import SolveOutput, SolveStats
from envs.common.registry import check_choice

#: user-facing solver names -> registered instrumented methods.
SOLVER_METHODS = {"dopri5": "dopri5_reg", "bosh3": "bosh3_reg"}


class CountingFunc(nn.Module):
    """Base class of vector fields ``f(t, y)``: counts evaluations in ``self.nfe`` (torchdiffeq's odenet_mnist)."""

    def __init__(self) -> None:
        super().__init__()
        self.nfe = 0

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        """Count one evaluation and return ``self.field(t, y)``."""
        self.nfe += 1
        return self.field(t, y)

    def field(self, t: Tensor, y: Tensor) -> Tensor:
        """The vector field itself; subclasses implement it."""
        raise NotImplementedError


@dataclass(frozen=True)
class SolverSettings:
    """How to solve.

    Attributes:
        method: ``dopri5`` or ``bosh3`` (run as the instrumented ``dopri5_reg`` / ``bosh3_reg``).
        rtol: relative tolerance.
        atol: absolute tolerance.
        adjoint: use ``odeint_adjoint`` (optimize-then-discretize) instead of backpropagating through the solver.
        detach_dt: detach step sizes inside the stages too (no gradient through the controller).
    """

    method: str = "dopri5"
    rtol: float = 1e-6
    atol: float = 1e-6
    adjoint: bool = False
    detach_dt: bool = True

    def __post_init__(self) -> None:
        check_choice(self.method, SOLVER_METHODS, "solver")
        if self.rtol <= 0 or self.atol <= 0:
            raise ValueError(f"tolerances must be positive, got rtol={self.rtol}, atol={self.atol}")


def check_solver_regularizer(method: str, reg_name: str) -> None:
    """Refuse a regularizer that needs a stiffness estimate on a solver without two stages at ``t + dt``."""
    check_choice(method, SOLVER_METHODS, "solver")
    if reg_name in STIFFNESS_REGULARIZERS and method != "dopri5":
        raise ValueError(
            f"reg={reg_name} needs a stiffness estimate from two stages at t + dt, which solver={method} does not have; "
            "use solver=dopri5 (or reg=local_stiffness, whose extra step is always a Dopri5 step)"
        )


def _integrate(func: CountingFunc, y0: Tensor, t: Tensor, settings: SolverSettings, rec: StepRecorder) -> Tensor:
    options = {"recorder": rec, "detach_dt": settings.detach_dt}
    method = SOLVER_METHODS[settings.method]
    if settings.adjoint:
        # the backward solve uses torchdiffeq's plain method, so the recorder sees the forward solve only
        return odeint_adjoint(
            func, y0, t, rtol=settings.rtol, atol=settings.atol, method=method, options=options,
            adjoint_method=settings.method, adjoint_options={}, adjoint_params=tuple(func.parameters()),
        )  # fmt: skip
    return odeint(func, y0, t, rtol=settings.rtol, atol=settings.atol, method=method, options=options)


def _dopri5_tableau(like: Tensor) -> _ButcherTableau:
    tab = Dopri5Solver.tableau
    return _ButcherTableau(
        alpha=tab.alpha.to(like), beta=[b.to(like) for b in tab.beta], c_sol=tab.c_sol.to(like), c_error=tab.c_error.to(like)
    )


def _float64_field(func: CountingFunc) -> Callable[[Tensor, Tensor], Tensor]:
    """``func`` evaluated in float64: parameters and buffers cast (differentiably) for this call only; counts NFE."""
    params = {name: p.to(torch.float64) if p.is_floating_point() else p for name, p in func.named_parameters()}
    buffers = {name: b.to(torch.float64) if b.is_floating_point() else b for name, b in func.named_buffers()}

    def field(t: Tensor, y: Tensor) -> Tensor:
        return torch.func.functional_call(func, (params, buffers), (t, y))

    return field


def local_step_value(
    func: CountingFunc,
    t_star: Tensor,
    y_star: Tensor,
    settings: SolverSettings,
    kind: str,
    h: Tensor | None = None,
    t_end: Tensor | None = None,
    k1_grad: bool = False,
) -> Tensor:
    """The 2023 local regularizer: one differentiable Dopri5 step from the constant point ``(t*, y*)``.

    ``y*`` and the step ``h`` are constants. ``k1_grad=False`` (LocalRegNeuralDE.jl, whose integrator is not
    differentiable there): ``k1 = f(t*, y*)`` is a constant too and only stages 2..7 carry the parameters' graph, so
    the gradient is not that of the returned value (untrained digits NODE, tol 1e-6, 128 states at t* = 0.3 and 0.7,
    ``h`` the heuristic: cosine with the true gradient at fixed ``h`` -0.02..0.01 for the error and 0.17..0.18 for the
    stiffness, norms 1.2e7x and 3e4x larger). ``k1_grad=True``: ``k1`` is computed on the graph, and the
    gradient is the exact gradient of the returned value at fixed ``h`` (same value, same evaluations). Without ``h``
    the step is torchdiffeq's initial-step heuristic at ``(t*, y*)``, capped at ``t_end - t*`` when ``t_end`` is given
    (LocalRegNeuralDE.jl builds a fresh integrator on ``(t*, T)``, whose largest step is the span). The step is
    computed in float64 (parameters cast for this call only): in float32 at tol 1e-6 the error estimate ``E ~ 1e-4``
    of a step of ``~0.03`` is below float32 resolution, and its gradient points elsewhere than the float64 one.
    Returns ``E * h`` (``kind="error"``) or ``lambda / 3.3066`` (``"stiffness"``) in ``y_star``'s dtype.
    Extra evaluations: 1 + 6, plus 1 probe when ``h`` is chosen here.
    """
    f64 = torch.float64
    y0 = y_star.detach().to(f64)
    t0 = t_star.detach().to(f64).reshape(())
    field = _float64_field(func)
    rtol = torch.as_tensor(settings.rtol, dtype=f64, device=y0.device)
    atol = torch.as_tensor(settings.atol, dtype=f64, device=y0.device)
    with torch.set_grad_enabled(k1_grad and torch.is_grad_enabled()):
        k1 = field(t0, y0)
    with torch.no_grad():
        if h is None:
            h = _select_initial_step(field, t0, y0, 4, rtol, atol, _rms_norm, f0=k1.detach())
            if t_end is not None:
                h = torch.minimum(h, (t_end.detach().to(f64) - t0).clamp_min(torch.finfo(f64).tiny))
    h = h.detach().to(f64).reshape(())
    tableau = _dopri5_tableau(y0)
    y1, _, err, k = _runge_kutta_step(_PerturbFunc(field), y0, k1, t0, h, t0 + h, tableau)
    if kind == "error":
        ratio = _compute_error_ratio(err, rtol, atol, y0, y1, _rms_norm)
        return (ratio * h).to(y_star.dtype)
    beta = tableau.beta[-2]
    y_a = y0 + torch.sum(k[..., : len(beta)] * (beta * h), dim=-1).view_as(y0)
    lam = stiffness_estimate(k[..., -2], k[..., -1], y_a, y1, _rms_norm)
    return (lam / STABILITY_SIZE["dopri5"]).to(y_star.dtype)


class _RNODEAugmented(nn.Module):
    """Augmented field ``(f, ||f||^2, ||eps^T df/dz||^2)`` of RNODE; per-sample rates (first dim is the batch)."""

    def __init__(self, func: CountingFunc, eps: Tensor) -> None:
        super().__init__()
        self.func = func
        self.eps = eps

    def forward(self, t: Tensor, state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        z = state[0]
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            dz = self.func(t, z)
            (vjp,) = torch.autograd.grad(dz, z, self.eps, create_graph=True)
        kinetic = dz.pow(2).flatten(1).sum(1)
        jacobian = vjp.pow(2).flatten(1).sum(1)
        return dz, kinetic, jacobian


def _solve_rnode(
    func: CountingFunc,
    y0: Tensor,
    t: Tensor,
    settings: SolverSettings,
    reg: RegSpec,
    rec: StepRecorder,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    eps = torch.randn(y0.shape, generator=generator, dtype=y0.dtype).to(y0.device)
    aug = _RNODEAugmented(func, eps)
    zeros = torch.zeros(y0.shape[0], dtype=y0.dtype, device=y0.device)
    options = {"recorder": rec, "detach_dt": settings.detach_dt, "norm": lambda ys: _rms_norm(ys[0])}
    zs, kin, jac = odeint(
        aug, (y0, zeros, zeros), t, rtol=settings.rtol, atol=settings.atol,
        method=SOLVER_METHODS[settings.method], options=options,
    )  # fmt: skip
    penalty = reg.kinetic * kin[-1].mean() + reg.jacobian * jac[-1].mean()
    return zs, penalty


def total_derivative(func: CountingFunc, order: int) -> Callable[[Tensor, Tensor], Tensor]:
    """``(t, z) -> d^K z / dt^K`` along the flow of ``dz/dt = func(t, z)``, by ``K - 1`` nested forward-mode jvps.

    ``D_1 = f`` and ``D_{k+1}(t, z) = dD_k/dz f(t, z) + dD_k/dt`` (a jvp with tangent ``(1, f)``). Each level calls
    the one below once inside a jvp (primal and tangent in one call) plus ``f`` once, so the NFE counter sees ``K``
    calls for ``D_K``; but a call at jvp depth ``d`` propagates ``2^d`` dual components, so the work grows about
    geometrically with ``K`` (Taylor mode, JAX's ``jet`` used by Kelly et al., grows about linearly). Measured cost
    per solve: benchmarks/README.md (NODE, regularizer cost).
    """

    def level(k: int) -> Callable[[Tensor, Tensor], Tensor]:
        if k == 1:
            return lambda t, z: func(t, z)
        lower = level(k - 1)

        def derivative(t: Tensor, z: Tensor) -> Tensor:
            return torch.func.jvp(lower, (t, z), (torch.ones_like(t), func(t, z)))[1]

        return derivative

    return level(order)


class _TaylorAugmented(nn.Module):
    """Augmented field ``(f, mean_i (d^K z_i/dt^K)^2)`` of TayNODE; per-sample rate (first dim is the batch)."""

    def __init__(self, func: CountingFunc, order: int) -> None:
        super().__init__()
        self.func = func
        self.derivative = total_derivative(func, order)

    def forward(self, t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        z = state[0]
        dk = self.derivative(t, z)
        return self.func(t, z), dk.pow(2).flatten(1).mean(1)


def _joint_rms(ys: tuple[Tensor, ...]) -> Tensor:
    """RMS over all entries of all tensors (JAX's odeint on a raveled state, as easy-neural-ode integrates)."""
    total = torch.stack([y.pow(2).sum() for y in ys]).sum()
    return torch.sqrt(total / sum(y.numel() for y in ys))


def _solve_taynode(
    func: CountingFunc, y0: Tensor, t: Tensor, settings: SolverSettings, reg: RegSpec, rec: StepRecorder
) -> tuple[Tensor, Tensor]:
    aug = _TaylorAugmented(func, reg.taylor_order)
    zeros = torch.zeros(y0.shape[0], dtype=y0.dtype, device=y0.device)
    options = {"recorder": rec, "detach_dt": settings.detach_dt, "norm": _joint_rms}
    sol = odeint(
        aug, (y0, zeros), t, rtol=settings.rtol, atol=settings.atol, method=SOLVER_METHODS[settings.method], options=options
    )
    return sol[0], sol[1][-1].mean()


def steer_times(t: Tensor, b: float, generator: torch.Generator | None) -> Tensor:
    """STEER's jittered grid: every time after ``t[0]`` moves by ``U(-b, b)`` x the smallest spacing (stays increasing)."""
    u = torch.rand(len(t) - 1, generator=generator, dtype=torch.float64).to(device=t.device, dtype=t.dtype)
    spacing = torch.diff(t).min()
    return torch.cat([t[:1], t[1:] + (2 * u - 1) * b * spacing])


def _insert_time(t: Tensor, t_star: Tensor) -> tuple[Tensor, Tensor, int]:
    """Grid with ``t*`` inserted; returns (grid, indices of the original times in it, index of t*)."""
    hit = (t == t_star).nonzero()
    if len(hit):
        return t, torch.arange(len(t), device=t.device), int(hit[0, 0])
    pos = int(torch.searchsorted(t, t_star.reshape(1)).item())
    grid = torch.cat([t[:pos], t_star.reshape(1), t[pos:]])
    keep = torch.cat([torch.arange(pos), torch.arange(pos + 1, len(t) + 1)]).to(t.device)
    return grid, keep, pos


def solve(
    func: CountingFunc,
    y0: Tensor,
    t: Tensor,
    settings: SolverSettings,
    reg: RegSpec | None = None,
    generator: torch.Generator | None = None,
) -> SolveOutput:
    """Solve ``dy/dt = func(t, y)`` on the increasing grid ``t`` with the regularizer ``reg``.

    Args:
        func: the vector field (counts its evaluations).
        y0: initial state, first dimension the batch.
        t: increasing output times, ``t[0]`` the initial time.
        settings: solver, tolerances, adjoint.
        reg: the regularizer (``None`` or name ``none``: no penalty).
        generator: random source of the local variants (t* or the step index), RNODE's probe and STEER's times.

    Returns:
        ``SolveOutput(ys, penalty, stats)``; ``penalty`` is the value before the coefficient.
    """
    reg = reg if reg is not None else RegSpec("none")
    check_regularizer(reg.name, reg.agg, reg.local_mode, settings.adjoint)
    check_solver_regularizer(settings.method, reg.name)
    nfe0 = func.nfe
    local = reg.name in LOCAL_REGULARIZERS
    keep_states = local and reg.local_mode != "unbiased"
    rec = StepRecorder(record_errors=reg.needs_errors, stiffness=reg.needs_stiffness, keep_states=keep_states)
    penalty: Tensor | None = None
    if reg.name == "rnode":
        ys, penalty = _solve_rnode(func, y0, t, settings, reg, rec, generator)
    elif reg.name == "taynode":
        ys, penalty = _solve_taynode(func, y0, t, settings, reg, rec)
    elif reg.name == "steer":
        ys = _integrate(func, y0, steer_times(t, reg.steer_b, generator), settings, rec)
    elif local and not keep_states:
        u = torch.rand((), generator=generator, dtype=torch.float64).to(t.device)
        t_star = (t[0] + (t[-1] - t[0]) * u.to(t.dtype)).reshape(())
        grid, keep, star = _insert_time(t, t_star)
        ys_all = _integrate(func, y0, grid, settings, rec)
        ys = ys_all[keep]
        kind = reg.name.removeprefix("local_")
        penalty = local_step_value(func, t_star, ys_all[star], settings, kind, t_end=t[-1], k1_grad=reg.local_k1_grad)
    else:
        ys = _integrate(func, y0, t, settings, rec)
        if keep_states:
            j = int(torch.randint(len(rec.starts), (), generator=generator).item())
            t0, y_start, dt = rec.starts[j]
            kind = reg.name.removeprefix("local_")
            h = dt if reg.local_mode == "biased_taken" else None
            penalty = local_step_value(func, t0, y_start, settings, kind, h=h, t_end=t[-1], k1_grad=reg.local_k1_grad)
        elif reg.name in GLOBAL_REGULARIZERS:
            if reg.name == "error":
                values = rec.errors
            elif reg.name == "stiffness":
                values = rec.stiffness_values
            else:
                values = [e + reg.stiff_weight * s for e, s in zip(rec.errors, rec.stiffness_values, strict=True)]
            penalty = aggregate(values, reg.agg).to(ys.dtype)
    stats = SolveStats(nfe=func.nfe - nfe0, accepted=rec.accepted, rejected=rec.rejected)
    return SolveOutput(ys, penalty, stats)

"""Regularizers of neural ODEs: solver heuristics (ERNODE, SRNODE, local) and peers (RNODE), plus schedules.

- ``error`` (ERNODE, Pal et al. ICML 2021, arXiv 2105.03918): ``agg_j E_j * dt_j`` over accepted steps, dt detached.
  ``E_j`` is torchdiffeq's Dormand-Prince-Shampine error estimate, exactly 2/3 of the standard DP5 one (Hairer's
  ``b - b̂``, e.g. OrdinaryDiffEq's ``DP5``), so the penalty is 2/3 of a DP5 ERNODE's at the same steps.
- ``stiffness`` (SRNODE, same paper): ``agg_j lambda_j / stability_size``; the reference uses ``max``, not times dt.
- ``error_stiff``: per step ``E_j * dt_j + 0.1 * S_j``, then the aggregation (``error_stiff_est`` of RegNeuralDE.jl).
- ``local_error`` / ``local_stiffness`` (Pal, Edelman, Rackauckas, ICML 2023, arXiv 2303.02262): one extra
  differentiable step from a detached point ``(t*, y(t*))``; works with ``odeint_adjoint``. The step is computed in
  float64 whatever the model's dtype (in float32 at tol 1e-6 the error estimate is below float32 resolution). Its size
  is the initial-step heuristic at ``(t*, y*)`` in both modes, as LocalRegNeuralDE.jl builds a fresh integrator there:
  ``unbiased`` draws t* ~ U(t0, T), ``biased`` draws t* among the accepted step starts. ``biased_taken`` (ours, not in
  the reference) uses the step the solver actually took from there instead. Deviation: the step is a Dopri5 step
  (torchdiffeq 0.2.5 has no Tsit5), so the stiffness value is divided by DP5's stability size. ``local_k1_grad``:
  ``False`` (default, the reference) treats the step's first stage ``k1 = f(t*, y*)`` as a constant, so the gradient
  is not that of the penalty; ``True`` computes ``k1`` on the graph (the penalty's exact gradient at fixed step).
- ``rnode`` (Finlay et al., arXiv 2002.02798): kinetic energy ``int ||f||^2`` plus Jacobian Frobenius norm
  ``int ||df/dz||_F^2`` (Hutchinson, one vjp), integrated as augmented states that do not drive the step size.
- ``steer`` (Ghosh et al., arXiv 2006.10711): no penalty; during training each output time after ``t0`` moves by
  ``U(-b, b)`` times the smallest grid spacing (end time ``T' ~ U(T - b, T + b)`` for ``[0, T = 1]``, as RegNeuralDE.jl).
  ``b`` is capped at 0.5, half the smallest spacing, so the jittered grid stays increasing; Ghosh et al. jitter one
  end time and allow any ``b < T``, so on a multi-point grid (spiral, latent) the jitter is smaller than theirs.
- ``taynode`` (Kelly et al., arXiv 2007.04504): ``int mean_i (d^K z_i / dt^K)^2 dt`` as an augmented state (the MEAN
  over the state's ``D`` dimensions, then over the batch, as easy-neural-ode's code; the paper writes the squared
  norm, ``D`` times larger, so its coefficients transfer only up to that factor), the K-th
  total time derivative by K - 1 nested forward-mode jvps (``torch.func.jvp``; PyTorch has no Taylor mode), whose
  cost roughly doubles per order (digits, forward + backward: 3.7x a vanilla solve at K = 2, 8.5x at K = 3; JAX's
  ``jet``, used by Kelly et al., grows about linearly). The rate state enters the step-size control, as in
  easy-neural-ode (JAX's odeint on the raveled state).

Coefficient schedules: ``constant`` and ``exp_decay`` (``lambda(s) = lambda0 * exp(-s ln(lambda0/lambda1) / S)``,
RegNeuralDE.jl's per-epoch annealing; LocalRegNeuralDE.jl uses it per optimizer step). ``warmup`` (ours, not in the
references) keeps the regularizer off for the first ``W`` epochs or steps and starts the schedule at ``s = 0`` after
them (the training loop then runs plain vanilla steps, no penalty computed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from envs.common.registry import check_choice

#: valid regularizer names and whether each can run under ``odeint_adjoint``.
REGULARIZERS: dict[str, bool] = {
    "none": True,
    "error": False,
    "stiffness": False,
    "error_stiff": False,
    "local_error": True,
    "local_stiffness": True,
    "rnode": False,
    "steer": True,
    "taynode": False,
}
AGGREGATIONS = ("mean", "sum", "max")
SCHEDULES = ("constant", "exp_decay")
LOCAL_MODES = ("unbiased", "biased", "biased_taken")
GLOBAL_REGULARIZERS = ("error", "stiffness", "error_stiff")
#: regularizers that need two stages at ``t + dt`` in the training solver (dopri5, not bosh3).
STIFFNESS_REGULARIZERS = ("stiffness", "error_stiff")
LOCAL_REGULARIZERS = ("local_error", "local_stiffness")

_ADJOINT_REASON = {
    "error": "odeint_adjoint solves the forward pass under torch.no_grad(), so the recorded error estimates carry no "
    "graph, and the continuous adjoint differentiates the exact flow, not the discretization the penalty measures",
    "rnode": "the Hutchinson Jacobian term needs a vector-Jacobian product with a graph inside the forward solve, "
    "which odeint_adjoint runs under torch.no_grad()",
    "taynode": "its penalty state's rate is a nested jvp whose adjoint (a vjp of a K-fold jvp) is not supported here",
}
_ADJOINT_REASON["stiffness"] = _ADJOINT_REASON["error"]
_ADJOINT_REASON["error_stiff"] = _ADJOINT_REASON["error"]


@dataclass(frozen=True)
class RegSpec:
    """A validated regularizer choice.

    Attributes:
        name: one of ``REGULARIZERS``.
        agg: aggregation over steps for the global ones (``mean``, ``sum``, ``max``).
        local_mode: ``unbiased`` (t* ~ U(t0, T)) or ``biased`` (uniform among accepted step starts).
        kinetic: RNODE weight of the kinetic energy.
        jacobian: RNODE weight of the Jacobian Frobenius norm.
        stiff_weight: weight of the stiffness term in ``error_stiff``.
        steer_b: STEER half-width, in units of the smallest grid spacing (0 < b <= 0.5: half the spacing at most, so
            the jittered grid stays increasing).
        taylor_order: TayNODE's derivative order K (1 <= K <= 4).
        local_k1_grad: local variants: ``False`` (LocalRegNeuralDE.jl) takes the extra step's first stage
            ``k1 = f(t*, y*)`` as a constant, so the gradient is not that of the penalty; ``True`` puts ``k1`` on the
            graph, giving the penalty's exact gradient at fixed step size.
    """

    name: str
    agg: str = "mean"
    local_mode: str = "unbiased"
    kinetic: float = 1.0
    jacobian: float = 1.0
    stiff_weight: float = 0.1
    steer_b: float = 0.5
    taylor_order: int = 3
    local_k1_grad: bool = False

    def __post_init__(self) -> None:
        check_regularizer(self.name, self.agg, self.local_mode)
        if not 0 < self.steer_b <= 0.5:
            raise ValueError(f"steer_b must lie in (0, 0.5] (keeps the jittered grid increasing), got {self.steer_b}")
        if self.local_k1_grad and self.name not in LOCAL_REGULARIZERS:
            raise ValueError(
                f"local_k1_grad applies to the local regularizers {list(LOCAL_REGULARIZERS)} only, got reg={self.name!r}"
            )
        if not 1 <= self.taylor_order <= 4:
            raise ValueError(f"taylor_order must be 1..4 (cost grows as 2^K), got {self.taylor_order}")

    @property
    def needs_stiffness(self) -> bool:
        """Whether the recorder must compute stiffness estimates on every accepted step."""
        return self.name in STIFFNESS_REGULARIZERS

    @property
    def needs_errors(self) -> bool:
        """Whether the recorder must keep the error estimates (with their graphs) of every accepted step."""
        return self.name in ("error", "error_stiff")


def check_regularizer(name: str, agg: str = "mean", local_mode: str = "unbiased", adjoint: bool = False) -> None:
    """Validate a regularizer choice; refuse the global ones (and RNODE) under the adjoint method, with the reason."""
    check_choice(name, REGULARIZERS, "regularizer")
    check_choice(agg, AGGREGATIONS, "aggregation")
    check_choice(local_mode, LOCAL_MODES, "local regularization mode")
    if adjoint and not REGULARIZERS[name]:
        raise ValueError(
            f"regularizer {name!r} cannot be used with the adjoint method: {_ADJOINT_REASON[name]}; "
            "use solver.adjoint=false (discretize-then-optimize) or a local variant (reg=local_error)"
        )


def aggregate(values: list[Tensor], agg: str) -> Tensor:
    """Aggregate per-step values with ``mean``, ``sum`` or ``max``."""
    if not values:
        raise ValueError("no accepted steps were recorded; was the solve run with an instrumented method?")
    stacked = torch.stack([v.reshape(()) for v in values])
    if agg == "mean":
        return stacked.mean()
    if agg == "sum":
        return stacked.sum()
    if agg == "max":
        return stacked.max()
    raise ValueError(f"unknown aggregation {agg!r}; valid choices: {list(AGGREGATIONS)}")


@dataclass(frozen=True)
class CoefSchedule:
    """Regularization coefficient over time (epochs or optimizer steps).

    Attributes:
        kind: ``constant`` or ``exp_decay``.
        start: ``lambda0``.
        end: ``lambda1`` (``exp_decay`` only).
        horizon: ``S`` or ``N``, the number of steps over which ``start`` decays to ``end``.
        warmup: the first ``warmup`` steps have coefficient 0 (regularizer off); the schedule starts after them.
    """

    kind: str
    start: float
    end: float | None = None
    horizon: int = 1
    warmup: int = 0

    def __post_init__(self) -> None:
        check_choice(self.kind, SCHEDULES, "coefficient schedule")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0 (epochs or steps with the regularizer off), got {self.warmup}")
        if self.start < 0:
            raise ValueError(f"coefficient must be non-negative, got {self.start}")
        if self.kind == "exp_decay":
            if self.end is None or self.end <= 0 or self.start <= 0:
                raise ValueError(f"exp_decay needs positive start and end coefficients, got {self.start} -> {self.end}")
            if self.horizon < 1:
                raise ValueError(f"exp_decay needs horizon >= 1, got {self.horizon}")

    def warming(self, step: int) -> bool:
        """Whether ``step`` (0-based) lies in the warm-up, where the regularizer is off."""
        return step < self.warmup

    def __call__(self, step: int) -> float:
        """Coefficient at ``step`` (0-based): 0 in the warm-up; ``exp_decay`` keeps decaying past the horizon."""
        if self.warming(step):
            return 0.0
        if self.kind == "constant" or self.end is None:
            return self.start
        s = step - self.warmup
        return self.start * math.exp(-s * math.log(self.start / self.end) / self.horizon)

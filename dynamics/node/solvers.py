"""Instrumented adaptive Runge-Kutta solvers for torchdiffeq 0.2.5 (pinned: private names are used).

The solvers subclass torchdiffeq's own (``Dopri5Solver``, ``Bosh3Solver``) and override only
``_adaptive_step``, a faithful copy of ``RKAdaptiveStepsizeODESolver._adaptive_step`` plus recording. They are
registered in torchdiffeq's solver table under our names (``dopri5_reg``, ``bosh3_reg``), so they are used through
torchdiffeq's own ``odeint``::

    rec = StepRecorder(stiffness=True)
    ys = odeint(func, y0, t, method="dopri5_reg", options={"recorder": rec})
    penalty = torch.stack(rec.errors).mean()          # ERNODE, mean aggregation

On every **accepted** step the recorder keeps the solver's scaled error ratio ``E_j`` (with its graph; torchdiffeq's
dopri5 uses Shampine's embedded pair, whose error vector is exactly 2/3 of the standard DP5 estimate ``b - b̂``), the
product ``E_j * dt_j`` with ``dt_j`` detached, and (optionally) the stiffness estimate of Hairer & Wanner, Solving
ODEs II, Sec. IV.2 (dominant eigenvalue from the two stages at ``t + dt``); accepted and rejected steps are counted.
References: Pal, Ma, Shah, Rackauckas, "Opening the Blackbox", ICML 2021 (arXiv 2105.03918).

Deviation: by default the step size used inside the stages is detached too (``detach_dt=True``), so no gradient
flows through the step-size controller. torchdiffeq leaves a gradient on the first step from
``_select_initial_step`` (rtqichen/torchdiffeq#284); Diffrax stops it deliberately. ``detach_dt=False`` restores
torchdiffeq's gradients bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torchdiffeq._impl.bosh3 import Bosh3Solver
from torchdiffeq._impl.dopri5 import Dopri5Solver
from torchdiffeq._impl.misc import Perturb, _compute_error_ratio, _optimal_step_size
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver, _runge_kutta_step, _RungeKuttaState

#: ``alg_stability_size`` of OrdinaryDiffEq (dt * lambda on the real axis at the edge of the stability region).
STABILITY_SIZE = {"dopri5": 3.3066, "tsit5": 3.5068}


@dataclass
class StepRecorder:
    """Mutable record of one (or more) solves; pass it as ``options={"recorder": rec}``.

    ``odeint`` shallow-copies ``options``, so the same object is filled by the solver. Call ``reset()`` between solves
    or use a fresh recorder.

    Only what a regularizer needs is kept: with ``record_errors=False`` and ``stiffness=False`` (``reg=none``, RNODE,
    the local variants) the recorder holds counters only, so no per-step graph outlives the step. Nothing here reads
    a value back to the host (no ``.item()``), so on CUDA the recorder adds no synchronization per step.

    Attributes:
        record_errors: keep ``E_j``, ``E_j * dt_j`` (with their graphs) and ``dt_j`` of each accepted step (ERNODE).
        stiffness: also compute the stiffness estimate on each accepted step (one extra stage combination).
        keep_states: keep ``(t0, y0.detach(), dt)`` of each accepted step (for the biased local regularizer).
        stability_size: divisor of the eigenvalue estimate (DP5: 3.3066).
        errors: ``E_j * dt_j`` per accepted step, ``dt_j`` detached; graph through ``E_j``.
        error_ratios: ``E_j`` per accepted step.
        dts: accepted step sizes (detached, float64).
        stiffness_values: ``lambda_j / stability_size`` per accepted step (when ``stiffness``).
        starts: ``(t0, y0, dt)`` of accepted steps (when ``keep_states``), all detached.
        accepted: number of accepted steps.
        rejected: number of rejected steps.
    """

    record_errors: bool = True
    stiffness: bool = False
    keep_states: bool = False
    stability_size: float = STABILITY_SIZE["dopri5"]
    errors: list[Tensor] = field(default_factory=list)
    error_ratios: list[Tensor] = field(default_factory=list)
    dts: list[Tensor] = field(default_factory=list)
    stiffness_values: list[Tensor] = field(default_factory=list)
    starts: list[tuple[Tensor, Tensor, Tensor]] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0

    def reset(self) -> None:
        """Forget everything recorded so far (settings are kept)."""
        self.errors.clear()
        self.error_ratios.clear()
        self.dts.clear()
        self.stiffness_values.clear()
        self.starts.clear()
        self.accepted = 0
        self.rejected = 0


def stiffness_estimate(k_a: Tensor, k_b: Tensor, y_a: Tensor, y_b: Tensor, norm: Any) -> Tensor:
    """Dominant-eigenvalue estimate ``||k_b - k_a|| / ||y_b - y_a||`` of two stages at the same time.

    Hairer & Wanner, Solving ODEs II, Sec. IV.2. Returns 0 when the denominator is 0 or the ratio is not finite
    (the 0/0 guard of the spec). Gradients flow through numerator and denominator.
    """
    num = norm(k_b - k_a)
    den = norm(y_b - y_a)
    lam = num / torch.where(den > 0, den, torch.ones_like(den))
    return torch.where((den > 0) & torch.isfinite(lam), lam, torch.zeros_like(lam))


class _InstrumentedRK(RKAdaptiveStepsizeODESolver):
    """Mixin: the adaptive step of torchdiffeq 0.2.5 plus recording. Use through the registered subclasses."""

    stability_size: float | None = None

    def __init__(
        self,
        func: Any,
        y0: Tensor,
        rtol: Any,
        atol: Any,
        recorder: StepRecorder | None = None,
        detach_dt: bool = True,
        **kwargs: Any,
    ) -> None:
        # popped before the parent sees them, which would otherwise warn about unknown options
        self.recorder = recorder if recorder is not None else StepRecorder()
        self.detach_dt = detach_dt
        super().__init__(func=func, y0=y0, rtol=rtol, atol=atol, **kwargs)
        alpha = self.tableau.alpha
        self._has_stiffness = len(alpha) >= 2 and bool(alpha[-1] == 1) and bool(alpha[-2] == 1)
        if self.recorder.stiffness and not self._has_stiffness:
            raise ValueError(
                f"{type(self).__name__} has no two stages at t + dt, so it gives no stiffness estimate; use dopri5_reg"
            )

    def _record_accept(self, y0: Tensor, y1: Tensor, k: Tensor, t0: Tensor, dt: Tensor, error_ratio: Tensor) -> None:
        rec = self.recorder
        dt_const = dt.detach()
        rec.accepted += 1
        if rec.record_errors:
            rec.error_ratios.append(error_ratio)
            rec.errors.append(error_ratio * dt_const.to(error_ratio.dtype))
            rec.dts.append(dt_const)
        if rec.stiffness:
            # stage 6 rebuilt from k_1..k_5 and beta[-2]; stage 7 is y1 (FSAL), both at t + dt
            beta = self.tableau.beta[-2]
            y_a = y0 + torch.sum(k[..., : len(beta)] * (beta * dt_const.to(y0.dtype)), dim=-1).view_as(y0)
            lam = stiffness_estimate(k[..., -2], k[..., -1], y_a, y1, self.norm)
            rec.stiffness_values.append(lam / rec.stability_size)
        if rec.keep_states:
            rec.starts.append((t0.detach(), y0.detach(), dt_const))

    def _adaptive_step(self, rk_state: _RungeKuttaState) -> _RungeKuttaState:
        """One adaptive step: torchdiffeq 0.2.5's logic unchanged, plus recording on acceptance."""
        y0, f0, _, t0, dt, interp_coeff = rk_state
        if self.detach_dt:
            dt = dt.detach()
        if not torch.isfinite(dt):
            dt = self.min_step
        dt = dt.clamp(self.min_step, self.max_step)
        self.func.callback_step(t0, y0, dt)
        t1 = t0 + dt
        assert t0 + dt > t0, f"underflow in dt {dt.item()}"
        assert torch.isfinite(y0).all(), f"non-finite values in state `y`: {y0}"

        on_step_t = False
        if len(self.step_t):
            next_step_t = self.step_t[self.next_step_index]
            on_step_t = t0 < next_step_t < t0 + dt
            if on_step_t:
                t1 = next_step_t
                dt = t1 - t0

        on_jump_t = False
        if len(self.jump_t):
            next_jump_t = self.jump_t[self.next_jump_index]
            on_jump_t = t0 < next_jump_t < t0 + dt
            if on_jump_t:
                on_step_t = False
                t1 = next_jump_t
                dt = t1 - t0

        y1, f1, y1_error, k = _runge_kutta_step(self.func, y0, f0, t0, dt, t1, tableau=self.tableau)
        error_ratio = _compute_error_ratio(y1_error, self.rtol, self.atol, y0, y1, self.norm)
        accept_step = error_ratio <= 1
        if dt > self.max_step:
            accept_step = False
        if dt <= self.min_step:
            accept_step = True

        if accept_step:
            self._record_accept(y0, y1, k, t0, dt, error_ratio)
            self.func.callback_accept_step(t0, y0, dt)
            t_next = t1
            y_next = y1
            interp_coeff = self._interp_fit(y0, y_next, k, dt)
            if on_step_t and self.next_step_index != len(self.step_t) - 1:
                self.next_step_index += 1
            if on_jump_t:
                if self.next_jump_index != len(self.jump_t) - 1:
                    self.next_jump_index += 1
                f1 = self.func(t_next, y_next, perturb=Perturb.NEXT)
            f_next = f1
        else:
            self.recorder.rejected += 1
            self.func.callback_reject_step(t0, y0, dt)
            t_next = t0
            y_next = y0
            f_next = f0
        dt_next = _optimal_step_size(dt, error_ratio, self.safety, self.ifactor, self.dfactor, self.order)
        dt_next = dt_next.clamp(self.min_step, self.max_step)
        return _RungeKuttaState(y_next, f_next, t0, t_next, dt_next, interp_coeff)


class InstrumentedDopri5(_InstrumentedRK, Dopri5Solver):
    """Dormand-Prince 5(4) of torchdiffeq, recording error and stiffness estimates (method ``dopri5_reg``).

    NFE per solve: ``2 + 6 * (accepted + rejected)`` (``f(t0, y0)``, one probe in the initial-step heuristic, 6 per
    attempt thanks to FSAL); +1 per accepted step landing on a ``jump_t``; 1 instead of 2 with ``first_step``.
    The reference uses Tsit5 (not in torchdiffeq 0.2.5); Dopri5 has the same two stages at ``t + dt``.
    """

    stability_size = STABILITY_SIZE["dopri5"]


class InstrumentedBosh3(_InstrumentedRK, Bosh3Solver):
    """Bogacki-Shampine 3(2) of torchdiffeq, recording error estimates (method ``bosh3_reg``; no stiffness)."""


#: our method names -> solver classes, also registered in torchdiffeq's table.
INSTRUMENTED_SOLVERS: dict[str, type[RKAdaptiveStepsizeODESolver]] = {
    "dopri5_reg": InstrumentedDopri5,
    "bosh3_reg": InstrumentedBosh3,
}


def register_solvers() -> None:
    """Register the instrumented solvers in torchdiffeq's ``SOLVERS`` table (idempotent)."""
    SOLVERS.update(INSTRUMENTED_SOLVERS)


register_solvers()

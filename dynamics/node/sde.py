"""Neural SDE with an error-estimate regularizer on torchsde 0.2.6 (adaptive step doubling instead of SOSRI).

What differs from Pal et al. 2021 (arXiv 2105.03918) and LocalRegNeuralDE.jl:

- The reference uses StochasticDiffEq's SOSRI, whose embedded error estimate is
  ``RMS((delta E1 + E2) / (atol + rtol max(|u0|, |u1|)))``. torchsde has no SOSRI and no embedded estimator: its
  adaptive mode is step doubling (one full step and two half steps per attempt, same Brownian path). Here each
  attempt computes ``E = RMS((y_full - y_half) / max(atol + rtol max(|y_full|, |y_half|), eps))`` as a tensor with a
  graph, and ``E * dt`` (dt constant) is recorded on acceptance; the controller is torchsde's, unchanged. The scale of
  this estimate differs from SOSRI's, so the paper's coefficients do not transfer.
- No stiffness estimate (no two stages at the same time); only ``reg=none`` and ``reg=error`` are offered.
- NFE counts drift and diffusion calls in the model (``f`` and ``g``; torchsde's fused defaults call them).
- The toy is the spiral SDE of RegNeuralDE.jl (u0 = [2, 0], 30 points on [0, 1], loss on mean and variance of
  paths) with torchdiffeq's spiral drift ``y^3 A`` and multiplicative diagonal noise ``0.2 y`` as the ground truth.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torchsde
from torch import Tensor, nn
from torchsde._core import adaptive_stepping, interp, methods
from torchsde._core.base_solver import BaseSDESolver
from torchsde._core.sdeint import check_contract

from dynamics.node.config import TaskConfig
from dynamics.node.data import SPIRAL_A
from dynamics.node.regularizers import RegSpec, aggregate
from dynamics.node.solvers import StepRecorder
from dynamics.node.timing import median_time
from dynamics.node.types import SolveOutput, SolveStats

SDE_REGULARIZERS = ("none", "error")


def step_doubling_error(y_full: Tensor, y_half: Tensor, rtol: float, atol: float, eps: float = 1e-7) -> Tensor:
    """The ``compute_error`` of torchsde, kept as a tensor with its graph (torchsde returns a detached float)."""
    tol = (rtol * torch.max(y_full.abs(), y_half.abs()) + atol).clamp_min(eps)
    return ((y_full - y_half) / tol).pow(2).mean().sqrt().clamp_min(eps)


class _RecordingIntegrate(BaseSDESolver):
    """Mixin replacing ``BaseSDESolver.integrate``'s adaptive branch with a recording copy (controller unchanged)."""

    recorder: StepRecorder
    facmax: float = 1.4

    def integrate(self, y0: Tensor, ts: Tensor, extra0: Any) -> tuple[Tensor, Any]:
        """The adaptive ``integrate`` plus recording of ``E * dt`` on accepted steps."""
        rec = self.recorder
        step_size = self.dt
        prev_t = curr_t = ts[0]
        prev_y = curr_y = y0
        curr_extra = extra0
        ys = [y0]
        prev_error_ratio = None
        for out_t in ts[1:]:
            while curr_t < out_t:
                next_t = min(curr_t + step_size, ts[-1])
                next_y_full, _ = self.step(curr_t, next_t, curr_y, curr_extra)
                midpoint_t = 0.5 * (curr_t + next_t)
                midpoint_y, midpoint_extra = self.step(curr_t, midpoint_t, curr_y, curr_extra)
                next_y, next_extra = self.step(midpoint_t, next_t, midpoint_y, midpoint_extra)
                error = step_doubling_error(next_y_full, next_y, self.rtol, self.atol)
                error_value = error.detach().item()
                if not np.isfinite(error_value):
                    raise FloatingPointError("non-finite SDE error estimate; raise the tolerance or regularize")
                with torch.no_grad():
                    step_size, prev_error_ratio = adaptive_stepping.update_step_size(
                        error_estimate=error_value,
                        prev_step_size=step_size,
                        facmax=self.facmax,
                        prev_error_ratio=prev_error_ratio,
                    )
                if step_size < self.dt_min:
                    warnings.warn("Hitting minimum allowed step size in adaptive time-stepping.", stacklevel=2)
                    step_size = self.dt_min
                    prev_error_ratio = None
                if error_value <= 1 or step_size <= self.dt_min:
                    dt = float(next_t - curr_t)
                    rec.accepted += 1
                    if rec.record_errors:
                        rec.error_ratios.append(error)
                        rec.errors.append(error * dt)
                        rec.dts.append(torch.tensor(dt, dtype=torch.float64))
                    prev_t, prev_y = curr_t, curr_y
                    curr_t, curr_y, curr_extra = next_t, next_y, next_extra
                else:
                    rec.rejected += 1
            ys.append(interp.linear_interp(t0=prev_t, y0=prev_y, t1=curr_t, y1=curr_y, t=out_t))
        return torch.stack(ys, dim=0), curr_extra


_CLASSES: dict[type, type] = {}


def sdeint_reg(
    sde: nn.Module,
    y0: Tensor,
    ts: Tensor,
    recorder: StepRecorder,
    *,
    bm: Any = None,
    method: str | None = None,
    dt: float = 1e-3,
    rtol: float = 1e-5,
    atol: float = 1e-4,
    dt_min: float = 1e-5,
    facmax: float = 1.4,
) -> Tensor:
    """Adaptive ``torchsde.sdeint`` whose accepted steps are recorded in ``recorder`` (errors keep their graph).

    ``facmax`` is the controller's largest growth factor per step (torchsde's default 1.4).
    """
    sde, y0, ts, bm, method, options = check_contract(sde, y0, ts, bm, method, True, None, None, False)
    base = methods.select(method=method, sde_type=sde.sde_type)
    cls = _CLASSES.setdefault(base, type(f"Recording{base.__name__}", (_RecordingIntegrate, base), {}))
    solver = cls(sde=sde, bm=bm, dt=dt, adaptive=True, rtol=rtol, atol=atol, dt_min=dt_min, options=options)
    solver.recorder = recorder
    solver.facmax = facmax
    ys, _ = solver.integrate(y0, ts, solver.init_extra_solver_state(ts[0], y0))
    return ys


class SpiralSDE(nn.Module):
    """Neural SDE of the spiral toy: drift ``MLP(y^3)`` (2->50 tanh->2), diagonal diffusion ``Linear(y)`` (2->2)."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, hidden: int = 50) -> None:
        super().__init__()
        self.drift = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        self.diffusion = nn.Linear(2, 2)
        self.nfe = 0

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        """Drift (counted)."""
        self.nfe += 1
        return self.drift(y**3)

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        """Diagonal diffusion (counted)."""
        self.nfe += 1
        return self.diffusion(y)


class _TrueSpiralSDE(nn.Module):
    noise_type = "diagonal"
    sde_type = "ito"
    a: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("a", torch.tensor(SPIRAL_A))

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        return (y**3) @ self.a

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        return 0.2 * y


def spiral_sde_moments(n_paths: int = 2000, n_points: int = 30, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and variance over paths of the true spiral SDE at ``n_points`` times on [0, 1] (fixed step 1e-3)."""
    ts = torch.linspace(0, 1, n_points)
    y0 = torch.tensor([[2.0, 0.0]]).expand(n_paths, 2)
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(n_paths, 2), entropy=seed, levy_area_approximation="space-time")
    with torch.no_grad():
        ys = torchsde.sdeint(_TrueSpiralSDE(), y0, ts, bm=bm, method="srk", dt=1e-3)
    return ts, ys.mean(1), ys.var(1)


class SDETask:
    """The spiral SDE toy: fit mean and variance of ``batch_size`` model paths to the true moments."""

    def __init__(self, cfg: TaskConfig, device: torch.device, seed: int) -> None:
        ts, mean, var = spiral_sde_moments()
        self.ts, self.mean, self.var = ts.to(device), mean.to(device), var.to(device)
        self.model = SpiralSDE(cfg.hidden).to(device)
        self.cfg = cfg
        self.device = device
        self.n_batches = cfg.iters_per_epoch
        self.rng = np.random.default_rng(seed)

    def batches(self, epoch: int) -> Any:
        """``iters_per_epoch`` Brownian seeds."""
        for _ in range(self.cfg.iters_per_epoch):
            yield int(self.rng.integers(2**31))

    def _simulate(self, n_paths: int, entropy: int, settings: Any, reg: RegSpec) -> tuple[Tensor, SolveOutput]:
        if reg.name not in SDE_REGULARIZERS:
            raise ValueError(f"task=sde supports reg in {list(SDE_REGULARIZERS)}, got {reg.name!r}")
        y0 = torch.tensor([[2.0, 0.0]], device=self.device).expand(n_paths, 2)
        bm = torchsde.BrownianInterval(
            t0=0.0, t1=1.0, size=(n_paths, 2), entropy=entropy, levy_area_approximation="space-time", device=self.device
        )
        rec = StepRecorder(record_errors=reg.name == "error")
        nfe0 = self.model.nfe
        ys = sdeint_reg(self.model, y0, self.ts, rec, bm=bm, method="srk", dt=self.cfg.sde_dt,
                        rtol=self.cfg.sde_tol, atol=self.cfg.sde_tol, facmax=self.cfg.sde_facmax)  # fmt: skip
        loss = (ys.mean(1) - self.mean).pow(2).mean() + (ys.var(1) - self.var).pow(2).mean()
        penalty = aggregate(rec.errors, reg.agg).to(ys.dtype) if reg.name == "error" else None
        return loss, SolveOutput(ys, penalty, SolveStats(self.model.nfe - nfe0, rec.accepted, rec.rejected))

    def loss(
        self, batch: int, settings: Any, reg: RegSpec, gen: torch.Generator
    ) -> tuple[Tensor, dict[str, float], SolveOutput]:
        """Moment-matching loss of one batch of paths."""
        loss, out = self._simulate(self.cfg.batch_size, batch, settings, reg)
        return loss, {}, out

    @torch.no_grad()
    def evaluate(self, settings: Any, gen: torch.Generator, timing: bool = True) -> dict[str, float]:
        """Moment loss of ``sde_eval_paths`` fresh paths (and its mean and variance parts), NFE, steps, median time.

        NFE counts drift plus diffusion calls.
        """
        none = RegSpec("none")
        loss, out = self._simulate(self.cfg.sde_eval_paths, 12345, settings, none)
        metrics = {
            "test_moment_loss": loss.item(),
            "test_mean_loss": (out.ys.mean(1) - self.mean).pow(2).mean().item(),
            "test_var_loss": (out.ys.var(1) - self.var).pow(2).mean().item(),
            "test_nfe": float(out.stats.nfe),
            "test_accepted": float(out.stats.accepted),
            "test_rejected": float(out.stats.rejected),
        }
        if timing:
            metrics["predict_time_s"] = median_time(
                lambda: self._simulate(self.cfg.sde_eval_paths, 12345, settings, none), self.cfg.timing_repeats, self.device
            )
        return metrics

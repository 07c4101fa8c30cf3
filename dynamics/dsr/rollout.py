"""The forced time loop of GTF training (Hess et al. 2023, Sec. 3.2 and Algorithm 1), with a fused backward.

For steps ``k = 0..T−1`` (the paper's ``t = k + 2``)::

    z_k = F(z̃_{k−1}),  z̃_{−1} = z_1
    z̃_k = z_k + w_k ⊙ (ẑ_k − z_k),  w_k = a_k · m

``a_k`` is GTF's ``α`` (constant within a batch), or 1 at sparse-TF forcing steps and 0 elsewhere; ``m`` masks the
forced units (partial forcing). The gradient through forcing is the factor ``1 − w_k``.

:func:`forced_rollout` runs this loop without an autograd graph and computes the backward pass by hand in
:class:`_ForcedRollout`: one vector-Jacobian product per step using derivative masks cached in a single batched
call, and the parameter gradients afterwards with one batched autograd call over all ``(S·T)`` steps. This
removes the per-step graph bookkeeping that dominates eager BPTT on small models.
:func:`forced_rollout_autograd` is the plain eager loop, kept as the reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dynamics.dsr.models import LatentModel
from dynamics.dsr.observation import ObservationModel
from envs.common.registry import check_choice


def _weights(alpha: Tensor, mask: Tensor) -> Tensor:
    """``w_k = a_k · m``: ``(T,)`` and ``(M,)`` to ``(T, M)``."""
    return alpha.unsqueeze(-1) * mask


def _forward_numpy(
    model: LatentModel, z1: Tensor, forcing: Tensor, weights: Tensor, drive: Tensor | None
) -> tuple[Tensor, Tensor]:
    """CPU forward loop in NumPy (zero-copy views); returns the step inputs ``z̃`` and predictions."""
    p = model.numpy_params()
    f = forcing.detach().contiguous().numpy()
    w = weights.detach().contiguous().numpy()
    d = None if drive is None else drive.detach().contiguous().numpy()
    z = z1.detach().numpy().copy()
    inputs = np.empty_like(f)
    preds = np.empty_like(f)
    for k in range(f.shape[1]):
        inputs[:, k] = z
        pred = model.step_np(z, p)
        if d is not None:
            pred += d[:, k]
        preds[:, k] = pred
        z = f[:, k] - pred
        z *= w[k]
        z += pred
    return torch.from_numpy(inputs), torch.from_numpy(preds)


def _backward_numpy(
    model: LatentModel, inputs: Tensor, weights: Tensor, grad_preds: Tensor
) -> tuple[Tensor, Tensor, list[Tensor] | None]:
    """CPU adjoint loop in NumPy.

    Returns the adjoints of the predictions and of ``z_1``, and closed-form parameter gradients when the model
    provides them (``None`` otherwise).
    """
    p = model.numpy_params()
    x = inputs.numpy()
    cache = model.vjp_cache_np(x, p)
    keep = (1.0 - weights).contiguous().numpy()
    grads = grad_preds.contiguous().numpy()
    adjoint = np.empty_like(grads)
    g_tilde = np.zeros_like(grads[:, 0])
    for k in range(grads.shape[1] - 1, -1, -1):
        g = keep[k] * g_tilde
        g += grads[:, k]
        adjoint[:, k] = g
        g_tilde = model.vjp_np(g, cache[:, k], p)
    closed = model.param_grads_np(x, adjoint, p)
    param_grads = None if closed is None else [torch.from_numpy(np.ascontiguousarray(g)) for g in closed]
    return torch.from_numpy(adjoint), torch.from_numpy(g_tilde), param_grads


class _ForcedRollout(torch.autograd.Function):
    """Whole forced rollout as one autograd node; see the module docstring."""

    @staticmethod
    def forward(
        ctx: Any,
        model: LatentModel,
        use_numpy: bool,
        z1: Tensor,
        forcing: Tensor,
        weights: Tensor,
        drive: Tensor | None,
        *params: Tensor,
    ) -> Tensor:
        s, t, m = forcing.shape
        if use_numpy:
            inputs, preds = _forward_numpy(model, z1, forcing, weights, drive)
        else:
            inputs = forcing.new_empty((s, t, m))
            preds = forcing.new_empty((s, t, m))
            z = z1.detach()
            for k in range(t):
                inputs[:, k] = z
                pred = model(z)
                if drive is not None:
                    pred = pred + drive[:, k].detach()
                preds[:, k] = pred
                z = torch.lerp(pred, forcing[:, k], weights[k])
        ctx.model = model
        ctx.use_numpy = use_numpy
        ctx.has_drive = drive is not None
        ctx.save_for_backward(inputs, weights)
        return preds

    @staticmethod
    def backward(ctx: Any, grad_preds: Tensor) -> tuple[Tensor | None, ...]:
        inputs, weights = ctx.saved_tensors
        model: LatentModel = ctx.model
        t = inputs.shape[1]
        param_grads: list[Tensor] | tuple[Tensor | None, ...] | None = None
        with torch.no_grad():
            if ctx.use_numpy:
                adjoint, g_tilde, param_grads = _backward_numpy(model, inputs, weights, grad_preds)
            else:
                cache = model.vjp_cache(inputs).unbind(1)
                keep = (1.0 - weights).unbind(0)
                grads = grad_preds.unbind(1)
                adjoint = torch.empty_like(inputs)
                g_tilde = torch.zeros_like(inputs[:, 0])
                for k in range(t - 1, -1, -1):
                    g = torch.addcmul(grads[k], keep[k], g_tilde)
                    adjoint[:, k] = g
                    g_tilde = model.vjp_step(g, cache[k])
        if param_grads is None:
            params = [p for p in model.dynamics_parameters() if p.requires_grad]
            with torch.enable_grad():
                out = model(inputs.detach())
                param_grads = torch.autograd.grad(out, params, adjoint, allow_unused=True)
        # z_k = F(z̃_{k-1}) + d_k, so the gradient of the input drive d_k is the prediction's adjoint
        return (None, None, g_tilde, None, None, adjoint if ctx.has_drive else None, *param_grads)


def forced_rollout(
    model: LatentModel,
    z1: Tensor,
    forcing: Tensor,
    alpha: Tensor,
    mask: Tensor,
    backend: str = "auto",
    inputs: Tensor | None = None,
) -> Tensor:
    """Forced rollout with the fused backward.

    Args:
        model: the latent model.
        z1: initial states ``(S, M)`` (may require grad).
        forcing: data-inferred states ``(S, T, M)`` (no grad).
        alpha: forcing strength per step ``(T,)`` in [0, 1].
        mask: forced units ``(M,)``.
        backend: loops in ``numpy`` (CPU only), ``torch`` (any device), or ``auto`` (NumPy on CPU).
        inputs: external inputs ``(S, T, K)`` of steps ``2..T+1`` (``z_t = F(z̃_{t−1}) + C s_t``), or ``None``.

    Returns:
        Pre-forcing predictions ``(S, T, M)``.
    """
    check_choice(backend, ("auto", "numpy", "torch"), "rollout backend")
    use_numpy = backend == "numpy" or (backend == "auto" and forcing.device.type == "cpu")
    if use_numpy and forcing.device.type != "cpu":
        raise ValueError(f"backend='numpy' needs CPU tensors, got device {forcing.device}; use backend='auto' or 'torch'")
    params = [p for p in model.dynamics_parameters() if p.requires_grad]
    weights = _weights(alpha, mask).to(forcing)
    drive = None if inputs is None else model.drive(inputs)
    out: Tensor = _ForcedRollout.apply(model, use_numpy, z1, forcing.detach(), weights, drive, *params)
    return out


def forced_rollout_autograd(
    model: LatentModel, z1: Tensor, forcing: Tensor, alpha: Tensor, mask: Tensor, inputs: Tensor | None = None
) -> Tensor:
    """The same rollout as :func:`forced_rollout`, differentiated by eager autograd (reference)."""
    w = _weights(alpha, mask).to(forcing)
    z = z1
    preds = []
    for k in range(forcing.shape[1]):
        pred = model(z, None if inputs is None else inputs[:, k])
        preds.append(pred)
        z = (1 - w[k]) * pred + w[k] * forcing[:, k]
    return torch.stack(preds, dim=1)


def free_run(model: LatentModel, z1: Tensor, steps: int, inputs: Tensor | None = None) -> Tensor:
    """Generate ``steps`` states without forcing; the first returned state is ``z1`` itself.

    Args:
        model: the latent model.
        z1: ``(..., M)`` initial state(s).
        steps: trajectory length including ``z1``.
        inputs: external inputs ``(..., ≥ steps, K)`` aligned with the states: step ``k`` uses ``inputs[..., k, :]``
            (the reference's ``Z[t] = F(Z[t−1], S[t])``), or ``None``.

    Returns:
        ``(..., steps, M)``.
    """
    if inputs is not None and inputs.shape[-2] < steps:
        raise ValueError(f"{steps} generated steps need as many input rows, got {inputs.shape[-2]}")
    out = z1.new_empty((*z1.shape[:-1], steps, z1.shape[-1]))
    with torch.no_grad():
        z = z1
        for k in range(steps):
            out[..., k, :] = z
            if k + 1 < steps:
                z = model(z, None if inputs is None else inputs[..., k + 1, :])
    return out


@torch.no_grad()
def generate(
    model: LatentModel, obs_model: ObservationModel, x1: np.ndarray, length: int, inputs: np.ndarray | None = None
) -> np.ndarray:
    """Protocol generation: ``⌊1.25 length⌋`` free steps from ``x1``, the first ``⌊0.25 length⌋`` dropped.

    With external ``inputs`` (aligned with the series that starts at ``x1``): ``length`` steps driven by them, none
    dropped (the reference's ``evaluate_run`` for input data).
    """
    param = next(model.parameters())
    z1 = obs_model.init_state(torch.as_tensor(np.asarray(x1), dtype=param.dtype, device=param.device))
    if inputs is not None:
        s = torch.as_tensor(np.asarray(inputs), dtype=param.dtype, device=param.device)
        z = free_run(model, z1, length, s)
    else:
        total, drop = math.floor(1.25 * length), math.floor(0.25 * length)
        z = free_run(model, z1, total)[drop:]
    return obs_model(z).cpu().numpy().astype(np.float64)

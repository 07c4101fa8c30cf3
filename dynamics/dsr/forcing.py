"""Forcing schedules: constant and adaptive GTF α (Hess et al. 2023, Algorithm 1) and sparse teacher forcing.

Adaptive α: every ``update_every`` parameter updates, evaluate the Jacobians at the data-inferred states
``ẑ_t``, take a norm ``κ_p`` per sequence (``ALPHA_METHODS``), ``κ = max_p κ_p`` and ``α_est = max(0, 1 − 1/κ)``.
If ``α_est > α`` it replaces ``α``; otherwise ``α ← γα + (1 − γ)α_est``. ``α`` starts at ``alpha0``.

Sparse TF (Mikhaeil et al. 2022; Brenner et al. 2022): forced units are replaced by the data at steps where
``(t − 1) mod τ = 0`` and their gradient is cut, i.e. ``α_t = 1`` there and 0 elsewhere.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from dynamics.dsr.models import LatentModel
from envs.common.registry import check_choice

ALPHA_METHODS = (
    "constant",
    "jacobian_upper_bound",
    "batch_maximum",
    "product_upper_bound",
    "explog_approx",
    "arithmetic_mean",
)
FORCING_METHODS = ("gtf", "stf")
#: ``explog_approx``: singular values below this fraction of a Jacobian's largest are lifted to it (the matrix
#: logarithm of a singular matrix does not exist; the geometric mean's limit is approached from there).
SINGULAR_FLOOR = 1e-8
#: ``explog_approx``: Jacobians whose eigenvector matrix is worse conditioned than this (defective or nearly so, e.g.
#: Jordan blocks, where ``V diag(log λ) V⁻¹`` is wrong) are logged by Schur–Padé (``scipy.linalg.logm``) instead.
EIG_COND_MAX = 1e6


def jacobian_norm_kappa(model: LatentModel, states: Tensor, method: str) -> Tensor:
    """``κ = max_p κ_p`` for the states ``(S, T, M)`` (Algorithm 1, the table of norms).

    ``explog_approx`` is the reference's ``opnorm(geomean(J_1..J_T))``: Julia's geometric mean of a list of
    matrices is ``exp(mean(log, Js))`` with the *matrix* logarithm and exponential, i.e. ``‖expm(mean_t logm J_t)‖₂``
    (principal logarithm, complex where ``J_t`` has negative eigenvalues), not an elementwise mean. Defective
    Jacobians (Jordan blocks) are logged by Schur–Padé and singular ones lifted (:func:`matrix_geometric_mean`).
    """
    check_choice(method, ALPHA_METHODS[1:], "alpha estimation method")
    with torch.no_grad():
        if method == "jacobian_upper_bound":
            return model.jacobian_norm_bound().detach()
        jac = model.jacobian(states)  # (S, T, M, M)
        if method == "arithmetic_mean":
            return torch.linalg.matrix_norm(jac.mean(1), 2).max()
        if method == "explog_approx":
            return torch.linalg.matrix_norm(matrix_geometric_mean(jac), 2).max().to(jac.dtype)
        norms = torch.linalg.matrix_norm(jac, 2)  # (S, T)
        if method == "batch_maximum":
            return norms.max()
        return torch.exp(torch.log(norms).mean(1)).max()  # product_upper_bound


def lift_singular(jac: Tensor) -> tuple[Tensor, int]:
    """Lift singular values below ``SINGULAR_FLOOR`` × the largest (at least float64's tiny) to that floor.

    Returns the float64 matrices (unchanged where nothing was lifted) and how many matrices were lifted. The matrix
    logarithm of a singular ``J`` does not exist (``log 0``); with the lift, ``expm(mean_t logm J_t)`` approaches the
    geometric mean's limit (e.g. ``geomean(diag(2, 0), diag(2, 1)) = diag(2, 0)`` up to ``1e-4`` in the lifted entry).
    """
    jac = jac.to(torch.float64)
    u, sv, vh = torch.linalg.svd(jac)
    floor = (sv[..., :1] * SINGULAR_FLOOR).clamp_min(torch.finfo(torch.float64).tiny)
    low = (sv < floor).any(-1)
    if not bool(low.any()):
        return jac, 0
    lifted = u @ torch.diag_embed(torch.maximum(sv, floor)) @ vh
    return torch.where(low[..., None, None], lifted, jac), int(low.sum())


def matrix_logm(jac: Tensor) -> Tensor:
    """Principal matrix logarithm of a batch ``(..., M, M)`` of invertible matrices (complex128).

    ``logm(J) = V diag(log λ) V⁻¹`` from the eigendecomposition, batched; where ``V`` is ill-conditioned
    (``cond(V) > EIG_COND_MAX``: defective ``J`` such as Jordan blocks, for which that formula is wrong) the matrix is
    logged by Schur–Padé inverse scaling and squaring (``scipy.linalg.logm``, as Julia's ``log``), one at a time.
    """
    jac = jac.to(torch.float64)
    vals, vecs = torch.linalg.eig(jac)
    logs = vecs @ torch.diag_embed(torch.log(vals)) @ torch.linalg.inv(vecs)
    cond = torch.linalg.cond(vecs)
    bad = ~(cond < EIG_COND_MAX) | ~torch.isfinite(torch.view_as_real(logs)).flatten(-3).all(-1)
    if bool(bad.any()):
        m = jac.shape[-1]
        flat, flat_logs = jac.reshape(-1, m, m).cpu().numpy(), logs.reshape(-1, m, m).clone()
        with warnings.catch_warnings():  # its a-posteriori error estimate (~1e-13 here) is not a failure
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            for i in bad.reshape(-1).nonzero().flatten().tolist():
                log_i = np.asarray(scipy.linalg.logm(flat[i]), dtype=np.complex128)
                flat_logs[i] = torch.as_tensor(log_i, device=logs.device)
        logs = flat_logs.reshape(logs.shape)
    return logs


def matrix_geometric_mean(jac: Tensor) -> Tensor:
    """``expm(mean_t logm J_t)`` over dimension 1 of ``(S, T, M, M)``: Julia's ``geomean`` of a vector of matrices.

    Singular ``J_t`` are first lifted (:func:`lift_singular`) with a warning.
    """
    jac, n_lifted = lift_singular(jac)
    if n_lifted:
        warnings.warn(
            "explog_approx: singular Jacobians (no matrix logarithm); their smallest singular values were lifted to "
            f"{SINGULAR_FLOOR:g} x the largest, which approaches the geometric mean's limit",
            stacklevel=2,
        )
    return torch.linalg.matrix_exp(matrix_logm(jac).mean(1))


def estimate_alpha(model: LatentModel, states: Tensor, method: str) -> float:
    """``α_est = max(0, 1 − 1/κ)``; ``κ = 0`` (a Jacobian that is exactly 0) gives 0.

    Raises:
        RuntimeError: ``κ`` is not finite (never turned into a silent ``α_est = 0``).
    """
    kappa = float(jacobian_norm_kappa(model, states, method))
    if not math.isfinite(kappa):
        raise RuntimeError(
            f"the alpha estimate's kappa ({method}) is non-finite ({kappa}); the Jacobians at the forcing states "
            "are not finite or the estimator failed; use another forcing.alpha_method or check the model"
        )
    if kappa <= 0:
        return 0.0
    return max(0.0, 1.0 - 1.0 / kappa)


class AlphaController:
    """The GTF forcing strength over training (constant or adaptive).

    Args:
        method: one of ``ALPHA_METHODS``.
        alpha0: the initial (or constant) α in [0, 1].
        gamma: decay toward lower estimates (the paper's 0.999).
        update_every: ``k``, the number of parameter updates between estimates.
    """

    def __init__(self, method: str = "product_upper_bound", alpha0: float = 1.0, gamma: float = 0.999, update_every: int = 5):
        check_choice(method, ALPHA_METHODS, "alpha estimation method")
        if not 0.0 <= alpha0 <= 1.0:
            raise ValueError(f"alpha0 must be in [0, 1], got {alpha0}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if update_every < 1:
            raise ValueError(f"update_every must be >= 1, got {update_every}")
        self.method = method
        self.alpha = float(alpha0)
        self.gamma = gamma
        self.update_every = update_every

    def combine(self, estimate: float) -> float:
        """Apply the update rule to an estimate and return the new α."""
        if estimate > self.alpha:
            self.alpha = estimate
        else:
            self.alpha = self.gamma * self.alpha + (1.0 - self.gamma) * estimate
        return self.alpha

    def update(self, n_updates: int, model: LatentModel, states: Tensor) -> float:
        """Re-estimate α when ``n_updates % update_every == 0`` (adaptive methods only); return the current α."""
        if self.method != "constant" and n_updates % self.update_every == 0:
            self.combine(estimate_alpha(model, states, self.method))
        return self.alpha


def gtf_alpha_sequence(alpha: float, steps: int, device: torch.device | None = None) -> Tensor:
    """Constant ``α`` for every step."""
    return torch.full((steps,), float(alpha), device=device)


def stf_alpha_sequence(tau: int, steps: int, device: torch.device | None = None) -> Tensor:
    """Sparse TF: 1 where ``(t − 1) mod τ = 0`` for ``t = 2..steps+1``, else 0."""
    if tau < 1:
        raise ValueError(f"sparse teacher forcing needs tau >= 1, got {tau}")
    t = torch.arange(2, steps + 2, device=device)
    return ((t - 1) % tau == 0).float()

"""Forcing schedules: constant and adaptive GTF α (Hess et al. 2023, Algorithm 1) and sparse teacher forcing.

Adaptive α: every ``update_every`` parameter updates, evaluate the Jacobians at the data-inferred states
``ẑ_t``, take a norm ``κ_p`` per sequence (``ALPHA_METHODS``), ``κ = max_p κ_p`` and ``α_est = max(0, 1 − 1/κ)``.
If ``α_est > α`` it replaces ``α``; otherwise ``α ← γα + (1 − γ)α_est``. ``α`` starts at ``alpha0``.

Sparse TF (Mikhaeil et al. 2022; Brenner et al. 2022): forced units are replaced by the data at steps where
``(t − 1) mod τ = 0`` and their gradient is cut, i.e. ``α_t = 1`` there and 0 elsewhere.
"""

from __future__ import annotations

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


def jacobian_norm_kappa(model: LatentModel, states: Tensor, method: str) -> Tensor:
    """``κ = max_p κ_p`` for the states ``(S, T, M)`` (Algorithm 1, the table of norms).

    ``explog_approx`` is the reference's ``opnorm(geomean(J_1..J_T))``: Julia's geometric mean of a list of
    matrices is ``exp(mean(log, Js))`` with the *matrix* logarithm and exponential, i.e. ``‖expm(mean_t logm J_t)‖₂``
    (principal logarithm, complex where ``J_t`` has negative eigenvalues), not an elementwise mean.
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


def matrix_logm(jac: Tensor) -> Tensor:
    """Principal matrix logarithm of a batch ``(..., M, M)`` by eigendecomposition (complex128).

    ``logm(J) = V diag(log λ) V⁻¹``; exact for diagonalisable ``J`` (generic for PLRNN Jacobians). A singular ``J``
    gives ``-inf`` entries, as ``log`` of a singular matrix does in the reference.
    """
    vals, vecs = torch.linalg.eig(jac.to(torch.float64))
    return vecs @ torch.diag_embed(torch.log(vals)) @ torch.linalg.inv(vecs)


def matrix_geometric_mean(jac: Tensor) -> Tensor:
    """``expm(mean_t logm J_t)`` over dimension 1 of ``(S, T, M, M)``: Julia's ``geomean`` of a vector of matrices."""
    return torch.linalg.matrix_exp(matrix_logm(jac).mean(1))


def estimate_alpha(model: LatentModel, states: Tensor, method: str) -> float:
    """``α_est = max(0, 1 − 1/κ)``."""
    kappa = float(jacobian_norm_kappa(model, states, method))
    if not kappa > 0:
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

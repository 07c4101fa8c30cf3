"""Latent PLRNN models with analytic Jacobians (Hess et al., ICML 2023, arXiv 2306.04406, Sec. 3; Brenner et al. 2022).

Every model maps ``z_{t-1} -> z_t`` (``forward``), gives its Jacobian ``dz_t/dz_{t-1}`` (``jacobian``), and
exposes the two pieces the fused forced-BPTT backward needs: a per-time cache of derivative masks computed in
one batched call (``vjp_cache``) and the vector-Jacobian product of one step (``vjp_step``).

Initialisation follows the GTF code (``initialization.jl``): ``K = RᵀR/M + I`` normalised by its largest
|eigenvalue| (Talathi & Vartak 2016), ``A = diag(K)``, ``W = K`` with zero diagonal; ``W1 ~ U(±1/√L)``,
``W2 ~ U(±1/√M)``; ``h1 = 0``; ``h2 = 0`` (shPLRNN) or ``U(±1/√L)`` (clipped shPLRNN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from envs.common.registry import lookup


def talathi_vartak_init(m: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Return ``(A, W)`` from the normalised positive-definite matrix ``K = RᵀR/M + I``.

    ``K / max|eig(K)|`` has spectral radius 1; ``A`` is its diagonal and ``W`` the rest.
    """
    r = torch.randn(m, m, generator=generator, dtype=torch.float64)
    k = r.T @ r / m + torch.eye(m, dtype=torch.float64)
    k = k / torch.linalg.eigvalsh(k).abs().max()
    a = torch.diagonal(k).clone()
    w = k - torch.diag(a)
    return a.float(), w.float()


def _uniform(shape: tuple[int, ...], bound: float) -> Tensor:
    return (torch.rand(shape) * 2.0 - 1.0) * bound


class LatentModel(nn.Module):
    """Base class: ``z_t = F(z_{t-1})`` on ``(..., M)`` tensors.

    Args:
        latent_dim: ``M``.
        n_inputs: ``K`` external inputs (the term ``C s``; 0: none).
    """

    A: Tensor

    def __init__(self, latent_dim: int, n_inputs: int = 0) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if n_inputs < 0:
            raise ValueError(f"n_inputs must be >= 0, got {n_inputs}")
        self.latent_dim = latent_dim
        self.n_inputs = n_inputs
        self.C: nn.Parameter | None = None

    def _init_inputs(self) -> None:
        """``C`` (``M×K``, Glorot-uniform, as ``Flux.glorot_uniform``) for ``K = n_inputs`` external inputs."""
        if self.n_inputs:
            bound = math.sqrt(6.0 / (self.latent_dim + self.n_inputs))
            self.C = nn.Parameter(_uniform((self.latent_dim, self.n_inputs), bound))

    def drive(self, s: Tensor) -> Tensor:
        """The external-input term ``C s`` for inputs ``(..., K)``: ``F(z, s) = F(z) + C s``."""
        if self.C is None:
            raise ValueError("this model has no external inputs (n_inputs=0) but inputs were given")
        if s.shape[-1] != self.n_inputs:
            raise ValueError(f"inputs have {s.shape[-1]} columns, the model expects n_inputs={self.n_inputs}")
        return s @ self.C.T

    def dynamics_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``F(z)`` (all but ``C``), in ``parameters()`` order: what the fused backward handles."""
        return [p for p in self.parameters() if p is not self.C]

    def input_penalty(self) -> Tensor:
        """``‖C‖²`` (0 without inputs), part of the latent regularisation."""
        return self.C.square().sum() if self.C is not None else torch.zeros(())

    def jacobian(self, z: Tensor) -> Tensor:
        """Analytic ``dF/dz`` at ``z``: ``(..., M) -> (..., M, M)``."""
        raise NotImplementedError

    def vjp_cache(self, z: Tensor) -> Tensor:
        """Derivative masks of ``F`` at the states ``z`` (any leading shape), computed without a graph."""
        raise NotImplementedError

    def vjp_step(self, g: Tensor, cache: Tensor) -> Tensor:
        """``gᵀ J`` for one step, ``g`` of shape ``(S, M)`` and the step's slice of ``vjp_cache``."""
        raise NotImplementedError

    def jacobian_norm_bound(self) -> Tensor:
        """An upper bound on ``‖J‖₂`` over all states (``jacobian_upper_bound`` in Algorithm 1)."""
        raise NotImplementedError

    def numpy_params(self) -> dict[str, np.ndarray]:
        """Zero-copy NumPy views of the (CPU) parameters, in the layout ``step_np``/``vjp_np`` use."""
        raise NotImplementedError

    @staticmethod
    def step_np(z: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``forward`` in NumPy (the CPU fast path: ~1 µs per call instead of ~5 µs per torch op)."""
        raise NotImplementedError

    @staticmethod
    def vjp_np(g: np.ndarray, cache: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``vjp_step`` in NumPy."""
        raise NotImplementedError

    def vjp_cache_np(self, x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``vjp_cache`` on a NumPy array (may leave intermediates in ``p`` for ``param_grads_np``)."""
        with torch.no_grad():
            return self.vjp_cache(torch.from_numpy(x)).numpy()

    def param_grads_np(self, x: np.ndarray, adjoint: np.ndarray, p: dict[str, Any]) -> list[np.ndarray] | None:
        """Gradients of ``Σ adjoint · F(x)`` for every parameter in ``parameters()`` order, or ``None`` (use autograd)."""
        return None

    def regularization(self) -> Tensor:
        """Sum of squares of ``(1 - A)`` and the weights and biases (Sec. 5: pulls A toward 1)."""
        raise NotImplementedError

    def mar_terms(self, n_reg: int) -> tuple[Tensor, Tensor, Tensor]:
        """The three blocks that manifold-attractor regularisation pulls to 0 for the last ``n_reg`` units."""
        raise NotImplementedError

    def mar_penalty(self, ratio: float) -> Tensor:
        """Manifold-attractor regularisation over the last ``⌊ratio·M⌋`` units (GTF code ``mar_loss``).

        ``‖1−A_r‖₂ + ‖W_r‖₂ + ‖h_r‖₂`` (norms, not squares; Schmidt et al. 2021).
        """
        n_reg = math.floor(ratio * self.latent_dim)
        terms = self.mar_terms(max(n_reg, 1))
        if n_reg == 0:
            return terms[0].sum() * 0.0
        return terms[0].norm() + terms[1].norm() + terms[2].norm()

    def ar_convergence_penalty(self, eps: float = 1e-4) -> Tensor:
        """``‖relu(A − (1 − ε))‖₂`` (GTF code ``AR_convergence_loss``): keeps the entries of ``A`` below 1."""
        return torch.relu(self.A - (1.0 - eps)).norm()


class ShallowPLRNN(LatentModel):
    """Shallow PLRNN ``z_t = A⊙z + W1 relu(W2 z + h2) + h1`` and its clipped version (Hess et al. 2023, Eq. 6-7).

    The clipped version uses ``W1 [relu(W2 z + h2) − relu(W2 z)]``: the bracket is bounded, so orbits stay bounded
    whenever ``max|A| < 1``.

    Args:
        latent_dim: ``M``.
        hidden_dim: ``L``.
        clipped: use the clipped bracket (the paper's default model).
    """

    def __init__(self, latent_dim: int, hidden_dim: int, clipped: bool = True, n_inputs: int = 0) -> None:
        super().__init__(latent_dim, n_inputs)
        if hidden_dim < 1:
            raise ValueError(f"hidden_dim must be >= 1, got {hidden_dim}")
        self.hidden_dim = hidden_dim
        self.clipped = clipped
        a, _ = talathi_vartak_init(latent_dim)
        self.A = nn.Parameter(a)
        self.W1 = nn.Parameter(_uniform((latent_dim, hidden_dim), 1.0 / math.sqrt(hidden_dim)))
        self.W2 = nn.Parameter(_uniform((hidden_dim, latent_dim), 1.0 / math.sqrt(latent_dim)))
        self.h1 = nn.Parameter(torch.zeros(latent_dim))
        h2 = _uniform((hidden_dim,), 1.0 / math.sqrt(hidden_dim)) if clipped else torch.zeros(hidden_dim)
        self.h2 = nn.Parameter(h2)
        self._init_inputs()

    def forward(self, z: Tensor, s: Tensor | None = None) -> Tensor:
        """One step of the map, ``+ C s`` with external inputs ``s``."""
        u = z @ self.W2.T
        phi = torch.relu(u + self.h2)
        if self.clipped:
            phi = phi - torch.relu(u)
        out = torch.addcmul(self.h1, self.A, z) + phi @ self.W1.T
        return out if s is None else out + self.drive(s)

    def vjp_cache(self, z: Tensor) -> Tensor:
        """``1[W2z > −h2] (− 1[W2z > 0])``, shape ``(..., L)``."""
        u = z @ self.W2.T
        d = (u > -self.h2).to(z.dtype)
        if self.clipped:
            d = d - (u > 0).to(z.dtype)
        return d

    def vjp_step(self, g: Tensor, cache: Tensor) -> Tensor:
        """``A⊙g + W2ᵀ(D ⊙ W1ᵀg)``."""
        return torch.addcmul((g @ self.W1).mul_(cache) @ self.W2, self.A, g)

    def numpy_params(self) -> dict[str, Any]:
        """``A, h1, h2, W1ᵀ, W2ᵀ, W1, W2`` and the clipping flag."""
        w1, w2 = self.W1.detach(), self.W2.detach()
        return {
            "A": self.A.detach().numpy(),
            "h1": self.h1.detach().numpy(),
            "h2": self.h2.detach().numpy(),
            "W1": w1.numpy(),
            "W2": w2.numpy(),
            "W1T": w1.T.contiguous().numpy(),
            "W2T": w2.T.contiguous().numpy(),
            "clipped": self.clipped,
            "zero": np.zeros((), dtype=w1.numpy().dtype),  # np.maximum(x, 0) with a Python int is ~10x slower
        }

    @staticmethod
    def step_np(z: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``forward`` in NumPy."""
        u = z @ p["W2T"]
        phi = np.maximum(u + p["h2"], p["zero"])
        if p["clipped"]:
            phi -= np.maximum(u, p["zero"])
        out = phi @ p["W1T"]
        out += p["A"] * z
        out += p["h1"]
        return out

    @staticmethod
    def vjp_np(g: np.ndarray, cache: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``vjp_step`` in NumPy."""
        v = g @ p["W1"]
        v *= cache
        out = v @ p["W2"]
        out += p["A"] * g
        return out

    def vjp_cache_np(self, x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``vjp_cache`` in NumPy; keeps ``W2 x`` in ``p["_u"]`` for ``param_grads_np``."""
        u = x @ p["W2T"]
        p["_u"] = u
        d = (u > -p["h2"]).astype(x.dtype)
        if p["clipped"]:
            d -= u > 0
        return d

    def param_grads_np(self, x: np.ndarray, adjoint: np.ndarray, p: dict[str, Any]) -> list[np.ndarray] | None:
        """Closed-form parameter gradients over all ``(S·T)`` steps at once: ``A, W1, W2, h1, h2``."""
        if not all(q.requires_grad for q in self.dynamics_parameters()):
            return None
        xf, gf = x.reshape(-1, x.shape[-1]), adjoint.reshape(-1, x.shape[-1])
        u = p["_u"].reshape(xf.shape[0], -1) if "_u" in p else xf @ p["W2T"]
        on = u > -p["h2"]
        phi = np.maximum(u + p["h2"], p["zero"])
        slope = on.astype(x.dtype)
        if p["clipped"]:
            phi -= np.maximum(u, p["zero"])
            slope -= u > 0
        g_phi = gf @ p["W1"]
        g_u = g_phi * slope
        return [(gf * xf).sum(0), gf.T @ phi, g_u.T @ xf, gf.sum(0), (g_phi * on).sum(0)]

    def jacobian(self, z: Tensor) -> Tensor:
        """``diag(A) + W1 diag(D) W2``."""
        d = self.vjp_cache(z)
        return torch.diag(self.A) + (self.W1 * d.unsqueeze(-2)) @ self.W2

    def jacobian_norm_bound(self) -> Tensor:
        """``max|A| + ‖W1‖₂‖W2‖₂``."""
        return self.A.abs().max() + torch.linalg.matrix_norm(self.W1, 2) * torch.linalg.matrix_norm(self.W2, 2)

    def regularization(self) -> Tensor:
        """``Σ(1−A)² + ‖W1‖² + ‖W2‖² + ‖h1‖² + ‖h2‖² + ‖C‖²``."""
        return sum(
            (p.square().sum() for p in (self.W1, self.W2, self.h1, self.h2)),
            start=(1 - self.A).square().sum() + self.input_penalty(),
        )

    def mar_terms(self, n_reg: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(1 − A_r, W1_r, h1_r)`` of the last ``n_reg`` units (MAR; ``W1`` rows stand in for the PLRNN's ``W``)."""
        r = slice(self.latent_dim - n_reg, self.latent_dim)
        return 1 - self.A[r], self.W1[r], self.h1[r]


class PLRNN(LatentModel):
    """Vanilla and dendritic PLRNN (Koppe et al. 2019; Brenner et al., ICML 2022).

    ``z_t = A⊙z + W φ(z) + h`` with ``diag(W) = 0`` (the diagonal is masked, so its gradient is zero) and
    ``φ(z) = relu(z)`` (PLRNN) or ``Σ_b α_b relu(z − H_b)`` (dendPLRNN, ``n_bases = B``), optionally clipped:
    ``Σ_b α_b [relu(z − H_b) − relu(z)]``. Deviation: ``H ~ N(0, 1)`` always (the code's U(min X, max X) option
    for Identity is not used).

    Args:
        latent_dim: ``M``.
        n_bases: ``B``; 0 gives the vanilla PLRNN.
        clipped: clipped dendritic bases.
    """

    offdiag: Tensor

    def __init__(self, latent_dim: int, n_bases: int = 0, clipped: bool = False, n_inputs: int = 0) -> None:
        super().__init__(latent_dim, n_inputs)
        if n_bases < 0:
            raise ValueError(f"n_bases must be >= 0, got {n_bases}")
        if clipped and n_bases == 0:
            raise ValueError("a clipped PLRNN needs n_bases >= 1 (dendritic bases)")
        self.n_bases = n_bases
        self.clipped = clipped
        a, w = talathi_vartak_init(latent_dim)
        self.A = nn.Parameter(a)
        self.W = nn.Parameter(w)
        self.h = nn.Parameter(torch.zeros(latent_dim))
        self.register_buffer("offdiag", 1.0 - torch.eye(latent_dim))
        if n_bases:
            self.alpha = nn.Parameter(_uniform((n_bases,), 1.0 / math.sqrt(n_bases)))
            self.H = nn.Parameter(torch.randn(latent_dim, n_bases))
        self._init_inputs()

    def _w(self) -> Tensor:
        return self.W * self.offdiag

    def _phi(self, z: Tensor) -> Tensor:
        if not self.n_bases:
            return torch.relu(z)
        phi = (torch.relu(z.unsqueeze(-1) - self.H) * self.alpha).sum(-1)
        if self.clipped:
            phi = phi - self.alpha.sum() * torch.relu(z)
        return phi

    def forward(self, z: Tensor, s: Tensor | None = None) -> Tensor:
        """One step of the map, ``+ C s`` with external inputs ``s``."""
        out = torch.addcmul(self.h, self.A, z) + self._phi(z) @ self._w().T
        return out if s is None else out + self.drive(s)

    def vjp_cache(self, z: Tensor) -> Tensor:
        """``φ'(z)``, shape ``(..., M)``."""
        if not self.n_bases:
            return (z > 0).to(z.dtype)
        d = ((z.unsqueeze(-1) > self.H).to(z.dtype) * self.alpha).sum(-1)
        if self.clipped:
            d = d - self.alpha.sum() * (z > 0).to(z.dtype)
        return d

    def vjp_step(self, g: Tensor, cache: Tensor) -> Tensor:
        """``A⊙g + D⊙(Wᵀg)``."""
        return torch.addcmul((g @ self._w()).mul_(cache), self.A, g)

    def numpy_params(self) -> dict[str, Any]:
        """``A, h, W, Wᵀ`` (diagonal masked) and the dendritic bases."""
        w = self._w().detach()
        p: dict[str, Any] = {
            "A": self.A.detach().numpy(),
            "h": self.h.detach().numpy(),
            "W": w.numpy(),
            "WT": w.T.contiguous().numpy(),
            "n_bases": self.n_bases,
            "zero": np.zeros((), dtype=w.numpy().dtype),
        }
        if self.n_bases:
            p["alpha"] = self.alpha.detach().numpy()
            p["H"] = self.H.detach().numpy()
            p["clip"] = float(self.alpha.detach().sum()) if self.clipped else 0.0
        return p

    @staticmethod
    def step_np(z: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``forward`` in NumPy."""
        if p["n_bases"]:
            phi = np.maximum(z[..., None] - p["H"], p["zero"]) @ p["alpha"]
            if p["clip"]:
                phi -= p["clip"] * np.maximum(z, p["zero"])
        else:
            phi = np.maximum(z, p["zero"])
        out = phi @ p["WT"]
        out += p["A"] * z
        out += p["h"]
        return out

    @staticmethod
    def vjp_np(g: np.ndarray, cache: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """``vjp_step`` in NumPy."""
        out = g @ p["W"]
        out *= cache
        out += p["A"] * g
        return out

    def jacobian(self, z: Tensor) -> Tensor:
        """``diag(A) + W diag(φ'(z))``."""
        return torch.diag(self.A) + self._w() * self.vjp_cache(z).unsqueeze(-2)

    def jacobian_norm_bound(self) -> Tensor:
        """``max|A| + ‖W‖₂ · max|φ'|``."""
        slope = self.alpha.abs().sum() * (2.0 if self.clipped else 1.0) if self.n_bases else torch.ones(())
        return self.A.abs().max() + torch.linalg.matrix_norm(self._w(), 2) * slope

    def regularization(self) -> Tensor:
        """``Σ(1−A)² + ‖W‖² + ‖h‖² (+ ‖α‖²) + ‖C‖²`` (the reference's ``regularize``)."""
        out = (1 - self.A).square().sum() + self._w().square().sum() + self.h.square().sum() + self.input_penalty()
        return out + self.alpha.square().sum() if self.n_bases else out

    def mar_terms(self, n_reg: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(1 − A_r, W_r, h_r)`` of the last ``n_reg`` units (manifold-attractor regularisation)."""
        r = slice(self.latent_dim - n_reg, self.latent_dim)
        return 1 - self.A[r], self._w()[r], self.h[r]


MODEL_NAMES = ("plrnn", "dendplrnn", "clipped_dendplrnn", "shplrnn", "clipped_shplrnn")


def make_model(name: str, latent_dim: int, hidden_dim: int = 50, n_bases: int = 20, n_inputs: int = 0) -> LatentModel:
    """Build a latent model by name (one of ``MODEL_NAMES``); ``n_inputs`` adds the external-input term ``C s``."""
    k = n_inputs
    builders = {
        "plrnn": lambda: PLRNN(latent_dim, n_inputs=k),
        "dendplrnn": lambda: PLRNN(latent_dim, n_bases=n_bases, n_inputs=k),
        "clipped_dendplrnn": lambda: PLRNN(latent_dim, n_bases=n_bases, clipped=True, n_inputs=k),
        "shplrnn": lambda: ShallowPLRNN(latent_dim, hidden_dim, clipped=False, n_inputs=k),
        "clipped_shplrnn": lambda: ShallowPLRNN(latent_dim, hidden_dim, clipped=True, n_inputs=k),
    }
    return lookup(builders, name, "model")()

"""Observation models ``x̂ = O(z)`` with their data-inference maps (Hess et al. 2023, Sec. 3; GTF code ``affine.jl``).

- :class:`IdentityObservation` (``M ≥ N``): ``x̂ = z[:N]``, forcing ``ẑ = [x; 0]``, ``z_1 = [x_1; L x_1]`` with a
  trainable ``L`` (Glorot-uniform) when ``M > N``.
- :class:`AffineObservation`: ``x̂ = B z`` (optional bias ``b``, off by default; ``B`` kaiming-normal, std √(2/M)),
  ``ẑ = pinv(B) x``, ``z_1 = pinv(B) x_1``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from envs.common.registry import lookup


class ObservationModel(nn.Module):
    """Base class.

    Args:
        obs_dim: ``N``.
        latent_dim: ``M``.
    """

    def __init__(self, obs_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.latent_dim = latent_dim

    def forward(self, z: Tensor) -> Tensor:
        """``O(z)``: ``(..., M) -> (..., N)``."""
        raise NotImplementedError

    def init_state(self, x: Tensor) -> Tensor:
        """``z_1`` from ``x_1`` (inside the graph, so gradients reach ``L`` or ``B``)."""
        raise NotImplementedError

    def forcing_signal(self, x: Tensor) -> Tensor:
        """Data-inferred states ``ẑ = O⁻¹(x)``, computed outside the autodiff graph."""
        raise NotImplementedError

    def forced_units(self, partial: bool) -> Tensor:
        """0/1 mask ``(M,)`` of the units that teacher forcing interpolates."""
        return torch.ones(self.latent_dim)

    def regularization(self) -> Tensor:
        """The observation-model penalty of Sec. 5 (without ``λ_obs``)."""
        raise NotImplementedError


class IdentityObservation(ObservationModel):
    """``x̂ = z[:N]``; refuses ``M < N``."""

    def __init__(self, obs_dim: int, latent_dim: int) -> None:
        if latent_dim < obs_dim:
            raise ValueError(
                f"the identity observation model needs latent_dim >= obs_dim, got latent_dim={latent_dim} < "
                f"obs_dim={obs_dim}; raise model.latent_dim or use model.observation=affine"
            )
        super().__init__(obs_dim, latent_dim)
        extra = latent_dim - obs_dim
        bound = math.sqrt(6.0 / (extra + obs_dim)) if extra else 0.0
        self.L = nn.Parameter((torch.rand(extra, obs_dim) * 2 - 1) * bound)

    def forward(self, z: Tensor) -> Tensor:
        """``z[..., :N]``."""
        return z[..., : self.obs_dim]

    def init_state(self, x: Tensor) -> Tensor:
        """``[x; L x]``."""
        if self.latent_dim == self.obs_dim:
            return x
        return torch.cat([x, x @ self.L.T], dim=-1)

    def forcing_signal(self, x: Tensor) -> Tensor:
        """``[x; 0]`` (the code's convention even under partial forcing)."""
        with torch.no_grad():
            pad = x.new_zeros((*x.shape[:-1], self.latent_dim - self.obs_dim))
            return torch.cat([x, pad], dim=-1)

    def forced_units(self, partial: bool) -> Tensor:
        """First ``N`` units under partial forcing, all units otherwise."""
        mask = torch.ones(self.latent_dim)
        if partial:
            mask[self.obs_dim :] = 0.0
        return mask

    def regularization(self) -> Tensor:
        """``‖L‖²``."""
        return self.L.square().sum()


class AffineObservation(ObservationModel):
    """``x̂ = B z (+ b)`` with ``ẑ = pinv(B)(x − b)``.

    The bias ``b`` (zeros at init, trainable) is optional, off by default as in the reference
    (``Affine(N, M; use_bias=false)``).
    """

    b: Tensor | None

    def __init__(self, obs_dim: int, latent_dim: int, bias: bool = False) -> None:
        super().__init__(obs_dim, latent_dim)
        self.B = nn.Parameter(torch.randn(obs_dim, latent_dim) * math.sqrt(2.0 / latent_dim))
        self.b = nn.Parameter(torch.zeros(obs_dim)) if bias else None

    def forward(self, z: Tensor) -> Tensor:
        """``B z + b``."""
        out = z @ self.B.T
        return out if self.b is None else out + self.b

    def _centred(self, x: Tensor) -> Tensor:
        return x if self.b is None else x - self.b

    def init_state(self, x: Tensor) -> Tensor:
        """``pinv(B)(x − b)``."""
        return self._centred(x) @ torch.linalg.pinv(self.B).T

    def forcing_signal(self, x: Tensor) -> Tensor:
        """``pinv(B)(x − b)`` without a graph."""
        with torch.no_grad():
            return self._centred(x) @ torch.linalg.pinv(self.B).T

    def regularization(self) -> Tensor:
        """``(1 − s_max/s_min)²`` of ``B``'s singular values."""
        s = torch.linalg.svdvals(self.B)
        return (1 - s.max() / s.min()).square()


OBSERVATION_NAMES = ("identity", "affine")


def make_observation(name: str, obs_dim: int, latent_dim: int, bias: bool = False) -> ObservationModel:
    """Build an observation model by name (one of ``OBSERVATION_NAMES``); ``bias`` is for ``affine`` only."""
    cls = lookup({"identity": IdentityObservation, "affine": AffineObservation}, name, "observation model")
    if cls is AffineObservation:
        return AffineObservation(obs_dim, latent_dim, bias=bias)
    if bias:
        raise ValueError("model.obs_bias=true needs model.observation=affine (the identity model has no bias)")
    return cls(obs_dim, latent_dim)

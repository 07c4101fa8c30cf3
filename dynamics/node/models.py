"""Vector fields and models of the NODE tasks (shapes follow RegNeuralDE.jl, scaled down; see each docstring)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynamics.node.regularizers import RegSpec
from dynamics.node.solve import CountingFunc, SolverSettings, solve
from dynamics.node.types import SolveOutput


class TimeMLPField(CountingFunc):
    """``f(t, y) = tanh(W2 [tanh(W1 [y, t]), t])``: the MNIST NODE field of Pal et al. 2021 (785->100->784, tanh).

    Time is concatenated at both layers as in RegNeuralDE.jl; ``out_tanh`` bounds the field as the reference does.
    """

    def __init__(self, dim: int, hidden: int, out_tanh: bool = True) -> None:
        super().__init__()
        self.l1 = nn.Linear(dim + 1, hidden)
        self.l2 = nn.Linear(hidden + 1, dim)
        self.out_tanh = out_tanh

    def field(self, t: Tensor, y: Tensor) -> Tensor:
        """Evaluate the field."""
        tt = t.to(y.dtype).expand(*y.shape[:-1], 1)
        h = torch.tanh(self.l1(torch.cat([y, tt], dim=-1)))
        out = self.l2(torch.cat([h, tt], dim=-1))
        return torch.tanh(out) if self.out_tanh else out


class CubicField(CountingFunc):
    """``f(y) = W2 tanh(W1 y^3)``: the spiral model of torchdiffeq's ``examples/ode_demo.py`` (2->50->2)."""

    def __init__(self, dim: int = 2, hidden: int = 50) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)

    def field(self, t: Tensor, y: Tensor) -> Tensor:
        """Evaluate the field."""
        return self.net(y**3)


class LatentField(CountingFunc):
    """Latent-ODE field ``tanh`` MLP (RegNeuralDE.jl's PhysioNet field, fewer layers): ``latent -> hidden -> latent``."""

    def __init__(self, latent: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, latent)
        )

    def field(self, t: Tensor, y: Tensor) -> Tensor:
        """Evaluate the field."""
        return self.net(y)


class ODEClassifier(nn.Module):
    """Classification NODE: ``x -> ODE on [0, t1] -> linear head`` (Pal et al. 2021 MNIST NODE, scaled down).

    The 784->10 head on the 784-d state is the reference's; the same layout is used for digits (64-d).
    ``out_tanh=False`` gives the 2023 paper's field (LocalRegNeuralDE.jl: linear output layer).
    """

    t: Tensor

    def __init__(self, dim: int, hidden: int, n_classes: int, t1: float = 1.0, out_tanh: bool = True) -> None:
        super().__init__()
        self.func = TimeMLPField(dim, hidden, out_tanh)
        self.head = nn.Linear(dim, n_classes)
        self.register_buffer("t", torch.tensor([0.0, t1]))

    def forward(
        self, x: Tensor, settings: SolverSettings, reg: RegSpec | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, SolveOutput]:
        """Return logits and the solve's output (penalty, counters)."""
        out = solve(self.func, x, self.t, settings, reg, generator)
        return self.head(out.ys[-1]), out


class LatentODE(nn.Module):
    """Latent ODE for irregular series (Rubanova et al. 2019 layout; RegNeuralDE.jl's PhysioNet model, scaled down).

    A GRU runs backwards in time over ``[values * mask, mask, dt]`` of the union grid, giving ``q(z0)``; the latent
    path solves the ODE on the grid, a linear decoder maps it to observations. Deviation from the reference: a GRU
    encoder instead of an ODE-RNN encoder, and a synthetic data set instead of PhysioNet.
    """

    def __init__(self, obs_dim: int, latent: int, hidden: int, rnn_hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(2 * obs_dim + 1, rnn_hidden, batch_first=True)
        self.to_z0 = nn.Linear(rnn_hidden, 2 * latent)
        self.func = LatentField(latent, hidden)
        self.decoder = nn.Linear(latent, obs_dim)

    def forward(
        self,
        t: Tensor,
        values: Tensor,
        mask: Tensor,
        settings: SolverSettings,
        reg: RegSpec | None = None,
        generator: torch.Generator | None = None,
        sample: bool = True,
    ) -> tuple[Tensor, Tensor, SolveOutput]:
        """Return (predictions (batch, time, obs), KL(q(z0) || N(0, I)) per sample, solve output)."""
        dt = torch.diff(t, prepend=t[:1]).expand(values.shape[0], -1).unsqueeze(-1)
        inp = torch.cat([values * mask, mask, dt], dim=-1).flip(1)
        _, h = self.gru(inp)
        mean, logstd = self.to_z0(h[-1]).chunk(2, dim=-1)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device) if sample else 0.0
        z0 = mean + torch.exp(logstd) * noise
        out = solve(self.func, z0, t, settings, reg, generator)
        pred = self.decoder(out.ys).transpose(0, 1)
        kl = 0.5 * (mean.pow(2) + torch.exp(2 * logstd) - 1 - 2 * logstd).sum(-1)
        return pred, kl, out

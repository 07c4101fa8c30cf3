"""What the data's own dynamics cost the solver: NFE (and fit) of the TRUE latent-task ODE and spiral SDE.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_node_true_nfe.py

Latent task (``task=latent``): each test series is ``x(t) = a exp(-d t) (cos(w t + p), sin(w t + p))``, i.e. the
linear ODE ``x' = [[-d, -w], [w, -d]] x``. Solving it for the 128 test series of a seed with dopri5 (float64, the
whole test batch in one solve as the model's evaluation does, same grid) gives the NFE an exact model needs in the
data's own coordinates at each tolerance. The draws of ``irregular_series`` are replayed from the seed, and the
reconstructed series are checked against the task's data, so a change of the generator fails here loudly.

SDE task (``task=sde``): the true spiral SDE (drift ``y^3 A``, diffusion ``0.2 y``) through the task's evaluation
(200 paths, Brownian entropy 12345, step doubling at tol 0.1): its test moment loss is the metric's floor from
Monte-Carlo and discretization error, its NFE what the true dynamics cost (the true drift blows up from ``dt0 = 1``,
so ``dt0`` = 0.05 and 0.01 are shown).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torchsde
from torchdiffeq import odeint

from dynamics.node.data import irregular_series
from dynamics.node.sde import _TrueSpiralSDE, sdeint_reg, spiral_sde_moments
from dynamics.node.solvers import StepRecorder


def latent_true_nfe(seed: int, tol: float, n_series: int = 512, n_grid: int = 50) -> tuple[int, float]:
    """NFE of dopri5 on the true ODE of the test series of ``seed``, and the max error against the task's data.

    At ``tol <= 1e-8`` the error must be below 1e-5 (float32 data), or the replayed draws are not the task's.
    """
    n_all = n_series + n_series // 4
    data = irregular_series(n_all, n_grid, 0.5, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)  # replay the draws of irregular_series, in its order
    rng.uniform(0.0, 5.0, n_grid - 1)
    amp = rng.uniform(0.5, 1.5, (n_all, 1))
    damp = rng.uniform(0.05, 0.3, (n_all, 1))[n_series:, 0]
    freq = rng.uniform(0.8, 2.0, (n_all, 1))[n_series:, 0]
    assert amp.shape[0] == n_all
    d, w = torch.tensor(damp), torch.tensor(freq)
    nfe = 0

    def field(_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal nfe
        nfe += 1
        return torch.stack([-d * y[:, 0] - w * y[:, 1], w * y[:, 0] - d * y[:, 1]], -1)

    with torch.no_grad():
        ys = odeint(field, data.values[n_series:, 0].double(), data.t.double(), rtol=tol, atol=tol, method="dopri5")
    err = (ys.transpose(0, 1) - data.values[n_series:].double()).abs().max().item()
    if tol <= 1e-8 and err > 1e-5:
        raise RuntimeError(f"replayed parameters do not reproduce the task's series (max error {err:.2g})")
    return nfe, err


class _Counting(_TrueSpiralSDE):
    nfe = 0

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return super().f(t, y)

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return super().g(t, y)


def sde_true(dt0: float, paths: int = 200, entropy: int = 12345, tol: float = 0.1) -> tuple[float, int, int, int]:
    """Test moment loss, NFE, accepted and rejected steps of the true spiral SDE through the task's evaluation."""
    ts, mean, var = spiral_sde_moments()
    model = _Counting()
    y0 = torch.tensor([[2.0, 0.0]]).expand(paths, 2)
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(paths, 2), entropy=entropy, levy_area_approximation="space-time")
    rec = StepRecorder(record_errors=False)
    with torch.no_grad():
        ys = sdeint_reg(model, y0, ts, rec, bm=bm, method="srk", dt=dt0, rtol=tol, atol=tol)
    loss = (ys.mean(1) - mean).pow(2).mean() + (ys.var(1) - var).pow(2).mean()
    return loss.item(), model.nfe, rec.accepted, rec.rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tols", type=float, nargs="+", default=[1e-6, 1e-5, 1e-4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| latent task, true ODE | " + " | ".join(f"NFE at tol {t:g}" for t in args.tols) + " |")
    print("|---|" + "---|" * len(args.tols))
    for seed in args.seeds:
        latent_true_nfe(seed, 1e-9)  # checks the replayed parameters against the task's data
        print(f"| seed {seed} (128 test series) | " + " | ".join(str(latent_true_nfe(seed, t)[0]) for t in args.tols) + " |")
    print("\n| SDE task, true SDE (200 paths, entropy 12345, tol 0.1) | test moment loss | NFE (acc/rej) |")
    print("|---|---|---|")
    for dt0 in (0.05, 0.01):
        loss, nfe, acc, rej = sde_true(dt0)
        print(f"| dt0 = {dt0:g} | {loss:.4f} | {nfe} ({acc}/{rej}) |")


if __name__ == "__main__":
    main()

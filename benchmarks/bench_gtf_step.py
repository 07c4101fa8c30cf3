"""Speed of one GTF training step: fused forced-BPTT backward vs a straightforward eager-autograd baseline.

Both steps use the same clipped shPLRNN, the same batch and the same RAdam update; the baseline below is the
plain loop a first implementation would write (per-step autograd graph, stack, MSE, backward). Timings are
medians over repeats of the process CPU time (wall time on CUDA), measured in the same process, single-threaded, and
reported as a ratio.

    OMP_NUM_THREADS=1 python benchmarks/bench_gtf_step.py [--device cpu|cuda] [--batch 16] [--seq-len 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dynamics.dsr.data import load_system
from dynamics.dsr.forcing import gtf_alpha_sequence
from dynamics.dsr.models import LatentModel, ShallowPLRNN
from dynamics.dsr.observation import IdentityObservation, ObservationModel
from dynamics.dsr.rollout import forced_rollout
from dynamics.dsr.train import gtf_loss, sample_batch
from dynamics.dsr.types import GTFBatch


def eager_baseline_step(
    model: LatentModel, obs_model: ObservationModel, batch: GTFBatch, alpha: float, optimizer: torch.optim.Optimizer
) -> float:
    """Straightforward eager GTF step (the reference the issue asks to beat)."""
    z = obs_model.init_state(batch.obs[:, 0])
    preds = []
    for t in range(batch.forcing.shape[1]):
        z = model(z)
        preds.append(z)
        z = (1 - alpha) * z + alpha * batch.forcing[:, t]
    loss = (obs_model(torch.stack(preds, 1)) - batch.obs[:, 1:]).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def fused_step(
    model: LatentModel, obs_model: ObservationModel, batch: GTFBatch, alpha: float, optimizer: torch.optim.Optimizer
) -> float:
    """The package's step (``dynamics.dsr.train.gtf_loss`` with the fused backward, NumPy loops on CPU)."""
    a = gtf_alpha_sequence(alpha, batch.forcing.shape[1], batch.obs.device).to(batch.obs.dtype)
    loss = gtf_loss(model, obs_model, batch, a, torch.ones(model.latent_dim, device=batch.obs.device))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def fused_torch_step(
    model: LatentModel, obs_model: ObservationModel, batch: GTFBatch, alpha: float, optimizer: torch.optim.Optimizer
) -> float:
    """The fused backward with torch-op loops (the code path used on CUDA)."""
    a = gtf_alpha_sequence(alpha, batch.forcing.shape[1], batch.obs.device).to(batch.obs.dtype)
    z1 = obs_model.init_state(batch.obs[:, 0])
    pred = forced_rollout(model, z1, batch.forcing, a, torch.ones(model.latent_dim, device=batch.obs.device), backend="torch")
    loss = (obs_model(pred) - batch.obs[:, 1:]).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def time_steps(
    steps: list[Callable[..., float]],
    model_init: Any,
    make_models: Callable[[], tuple[LatentModel, ObservationModel]],
    batch: GTFBatch,
    repeats: int,
    device: torch.device,
) -> list[float]:
    """Median time of each step function, interleaved round by round so load drifts hit all alike."""
    runs = []
    for step in steps:
        model, obs_model = make_models()
        model.load_state_dict(model_init)
        opt = torch.optim.RAdam(model.parameters(), lr=1e-3)
        for _ in range(3):
            step(model, obs_model, batch, 0.2, opt)
        runs.append((step, model, obs_model, opt))
    clock = time.perf_counter if device.type == "cuda" else time.process_time  # CPU time: robust to a shared machine
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for i, (step, model, obs_model, opt) in enumerate(runs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = clock()
            step(model, obs_model, batch, 0.2, opt)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[i].append(clock() - t0)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    data = load_system("lorenz63", n_train=20_000, n_test=1000)
    train = torch.as_tensor(data.train, dtype=torch.float32, device=device)
    torch.manual_seed(0)

    def make_models():
        return ShallowPLRNN(3, args.hidden).to(device), IdentityObservation(3, 3).to(device)

    model, obs = make_models()
    batch = sample_batch(train, obs, args.batch, args.seq_len, np.random.default_rng(0))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    steps = [eager_baseline_step, fused_torch_step] + ([fused_step] if device.type == "cpu" else [])
    t_eager, t_torch, *rest = time_steps(steps, init, make_models, batch, args.repeats, device)
    t_fused = rest[0] if rest else float("nan")
    print(
        f"clipped shPLRNN M=3 L={args.hidden} S={args.batch} T={args.seq_len} device={device} threads=1: "
        f"eager {t_eager * 1e3:.1f} ms/step | fused (numpy loops) {t_fused * 1e3:.1f} ms/step, "
        f"speed-up {t_eager / t_fused:.2f}x | fused (torch loops) {t_torch * 1e3:.1f} ms/step, "
        f"speed-up {t_eager / t_torch:.2f}x"
    )


if __name__ == "__main__":
    main()

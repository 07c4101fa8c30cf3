"""The NODE tasks behind one small interface: batches, a training loss, and an evaluation with test NFE and timing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dynamics.node.config import TaskConfig
from dynamics.node.data import irregular_series, load_digits_split, load_mnist_split, spiral_trajectory
from dynamics.node.models import CubicField, LatentODE, ODEClassifier
from dynamics.node.regularizers import RegSpec
from dynamics.node.sde import SDETask
from dynamics.node.solve import SolverSettings, solve
from dynamics.node.timing import median_time
from dynamics.node.types import ClassBatch, SolveOutput, SolveStats
from envs.common.registry import check_choice

TASKS = ("digits", "mnist", "spiral", "latent", "sde")


class Task(Protocol):
    """What ``dynamics.node.train`` needs from a task."""

    n_batches: int

    @property
    def model(self) -> nn.Module:
        """The trained module (its vector field counts evaluations in ``nfe``)."""
        ...

    def batches(self, epoch: int) -> Iterator[Any]:
        """Training batches of one epoch."""
        ...

    def loss(
        self, batch: Any, settings: SolverSettings, reg: RegSpec, gen: torch.Generator
    ) -> tuple[Tensor, dict[str, float], SolveOutput]:
        """Task loss, metrics of the batch, and the solve output (penalty, counters)."""
        ...

    def evaluate(self, settings: SolverSettings, gen: torch.Generator, timing: bool = True) -> dict[str, float]:
        """Test metrics with the regularizer off; includes ``test_nfe`` and (with ``timing``) ``predict_time_s``."""
        ...


def _stats_dict(stats: SolveStats, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}nfe": float(stats.nfe),
        f"{prefix}accepted": float(stats.accepted),
        f"{prefix}rejected": float(stats.rejected),
    }


class ClassificationTask:
    """Digits (sklearn, 1437/360) or MNIST (local files) with a NODE classifier; test NFE on the whole test set."""

    def __init__(self, cfg: TaskConfig, device: torch.device, seed: int) -> None:
        if cfg.name == "digits":
            self.train_set, self.test_set = load_digits_split(seed=0)
        else:
            self.train_set, self.test_set = load_mnist_split(cfg.data_dir)
        self.train_set = ClassBatch(self.train_set.x.to(device), self.train_set.y.to(device))
        self.test_set = ClassBatch(self.test_set.x.to(device), self.test_set.y.to(device))
        n_classes = int(self.train_set.y.max().item()) + 1
        self.model = ODEClassifier(self.train_set.x.shape[1], cfg.hidden, n_classes, cfg.t1, cfg.out_tanh).to(device)
        self.cfg = cfg
        self.device = device
        self.rng = np.random.default_rng(seed)
        self.n_batches = -(-len(self.train_set.y) // cfg.batch_size)

    def batches(self, epoch: int) -> Iterator[ClassBatch]:
        """Shuffled minibatches."""
        n = len(self.train_set.y)
        order = torch.as_tensor(self.rng.permutation(n), device=self.device)
        for start in range(0, n, self.cfg.batch_size):
            idx = order[start : start + self.cfg.batch_size]
            yield ClassBatch(self.train_set.x[idx], self.train_set.y[idx])

    def loss(
        self, batch: ClassBatch, settings: SolverSettings, reg: RegSpec, gen: torch.Generator
    ) -> tuple[Tensor, dict[str, float], SolveOutput]:
        """Cross-entropy and accuracy."""
        logits, out = self.model(batch.x, settings, reg, gen)
        acc = (logits.argmax(-1) == batch.y).float().mean().item()
        return F.cross_entropy(logits, batch.y), {"accuracy": acc}, out

    @torch.no_grad()
    def evaluate(self, settings: SolverSettings, gen: torch.Generator, timing: bool = True) -> dict[str, float]:
        """Train/test accuracy, test NFE and steps (one solve of the full test set), median prediction time."""
        logits, out = self.model(self.test_set.x, settings, None, gen)
        train_logits, _ = self.model(self.train_set.x, settings, None, gen)
        metrics = {
            "test_accuracy": (logits.argmax(-1) == self.test_set.y).float().mean().item(),
            "train_accuracy": (train_logits.argmax(-1) == self.train_set.y).float().mean().item(),
            **_stats_dict(out.stats, "test_"),
        }
        if timing:
            metrics["predict_time_s"] = median_time(
                lambda: self.model(self.test_set.x, settings, None, gen), self.cfg.timing_repeats, self.device
            )
        return metrics


class SpiralTask:
    """Spiral fitting of torchdiffeq's ``examples/ode_demo.py``: segments of the ground truth, L1 loss."""

    def __init__(self, cfg: TaskConfig, device: torch.device, seed: int) -> None:
        t, y = spiral_trajectory(cfg.n_points)
        self.t, self.y = t.to(device), y.to(device)
        self.model = CubicField().to(device)
        self.n_batches = cfg.iters_per_epoch
        self.cfg = cfg
        self.device = device
        self.rng = np.random.default_rng(seed)

    def batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """``iters_per_epoch`` batches of random segments: (t, y0 (batch, 2), targets (time, batch, 2))."""
        n, m = self.cfg.n_points, self.cfg.segment_len
        for _ in range(self.cfg.iters_per_epoch):
            s = torch.as_tensor(self.rng.choice(n - m, self.cfg.batch_size, replace=False), device=self.device)
            targets = torch.stack([self.y[s + i] for i in range(m)], dim=0)
            yield self.t[:m], self.y[s], targets

    def loss(
        self, batch: tuple[Tensor, Tensor, Tensor], settings: SolverSettings, reg: RegSpec, gen: torch.Generator
    ) -> tuple[Tensor, dict[str, float], SolveOutput]:
        """Mean absolute error of the segments."""
        t, y0, targets = batch
        out = solve(self.model, y0, t, settings, reg, gen)
        return (out.ys - targets).abs().mean(), {}, out

    @torch.no_grad()
    def evaluate(self, settings: SolverSettings, gen: torch.Generator, timing: bool = True) -> dict[str, float]:
        """L1 error of the whole trajectory from y0 = [2, 0], its NFE and median time."""
        y0 = self.y[:1]
        out = solve(self.model, y0, self.t, settings, None, gen)
        metrics = {"test_l1": (out.ys[:, 0] - self.y).abs().mean().item(), **_stats_dict(out.stats, "test_")}
        if timing:
            metrics["predict_time_s"] = median_time(
                lambda: solve(self.model, y0, self.t, settings, None, gen), self.cfg.timing_repeats, self.device
            )
        return metrics


class LatentTask:
    """Latent ODE on irregular synthetic series: masked MSE on observed points (+ KL); test MSE on all points."""

    def __init__(self, cfg: TaskConfig, device: torch.device, seed: int) -> None:
        rng = np.random.default_rng(seed)
        data = irregular_series(cfg.n_series + cfg.n_series // 4, cfg.n_grid, cfg.obs_prob, rng)
        n = cfg.n_series
        self.t = data.t.to(device)
        self.train_values, self.test_values = data.values[:n].to(device), data.values[n:].to(device)
        self.train_mask, self.test_mask = data.mask[:n].to(device), data.mask[n:].to(device)
        self.model = LatentODE(data.values.shape[-1], cfg.latent, cfg.hidden, cfg.rnn_hidden).to(device)
        self.cfg = cfg
        self.device = device
        self.rng = rng
        self.n_batches = -(-n // cfg.batch_size)

    def batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Shuffled minibatches of (values, mask) on the shared grid."""
        order = torch.as_tensor(self.rng.permutation(len(self.train_values)), device=self.device)
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start : start + self.cfg.batch_size]
            yield self.train_values[idx], self.train_mask[idx]

    def loss(
        self, batch: tuple[Tensor, Tensor], settings: SolverSettings, reg: RegSpec, gen: torch.Generator
    ) -> tuple[Tensor, dict[str, float], SolveOutput]:
        """Masked MSE of the observed points plus ``kl_weight`` x KL."""
        values, mask = batch
        pred, kl, out = self.model(self.t, values, mask, settings, reg, gen)
        mse = ((pred - values) ** 2 * mask).sum() / mask.sum()
        return mse + self.cfg.kl_weight * kl.mean(), {"masked_mse": mse.item()}, out

    @torch.no_grad()
    def evaluate(self, settings: SolverSettings, gen: torch.Generator, timing: bool = True) -> dict[str, float]:
        """Test MSE on all grid points (observed and not) from the posterior mean, test NFE, median time."""

        def predict() -> tuple[Tensor, Tensor, SolveOutput]:
            return self.model(self.t, self.test_values, self.test_mask, settings, None, gen, sample=False)

        pred, _, out = predict()
        metrics = {
            "test_mse": ((pred - self.test_values) ** 2).mean().item(),
            "test_observed_mse": (((pred - self.test_values) ** 2 * self.test_mask).sum() / self.test_mask.sum()).item(),
            **_stats_dict(out.stats, "test_"),
        }
        if timing:
            metrics["predict_time_s"] = median_time(predict, self.cfg.timing_repeats, self.device)
        return metrics


def make_task(cfg: TaskConfig, device: torch.device, seed: int) -> Task:
    """Build the task named ``cfg.name``."""
    check_choice(cfg.name, TASKS, "task")
    if cfg.name in ("digits", "mnist"):
        return ClassificationTask(cfg, device, seed)
    if cfg.name == "spiral":
        return SpiralTask(cfg, device, seed)
    if cfg.name == "latent":
        return LatentTask(cfg, device, seed)
    return SDETask(cfg, device, seed)

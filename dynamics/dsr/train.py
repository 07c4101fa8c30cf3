"""GTF training of PLRNNs (Hess et al., ICML 2023, Sec. 3-4 and Algorithm 1).

One parameter update: draw ``S`` random windows of ``T̃ + 1`` rows (uniform starts, with replacement), compute the
forcing signals outside the graph, update α on α-update steps, run the forced rollout from ``z_1 = init_state(x_1)``
and minimise the MSE of ``O(z_t)`` against ``x_t`` plus ``λ_lat`` and ``λ_obs`` penalties with RAdam; the learning
rate decays exponentially per epoch from ``lr`` to ``lr_end``. A non-finite loss or parameter stops training with a
message and the last good checkpoint is kept.

Checkpoints: ``checkpoints/last.pt`` at every monitoring epoch and, with ``keep_best``, ``checkpoints/best.pt`` whenever
the selection score improves. The selection score is ``D_stsp`` of a protocol-style free run against the last
``select_len`` rows of the TRAINING series (:func:`selection_score`); the test series is only logged (``eval/``), never
used to choose a model. Deviation: the paper keeps the last model of each run; it has no model selection.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from dynamics.dsr import metrics
from dynamics.dsr.data import check_series, load_system
from dynamics.dsr.evaluate import generate
from dynamics.dsr.forcing import FORCING_METHODS, AlphaController, gtf_alpha_sequence, stf_alpha_sequence
from dynamics.dsr.models import LatentModel, make_model
from dynamics.dsr.observation import ObservationModel, make_observation
from dynamics.dsr.rollout import forced_rollout, forced_rollout_autograd
from dynamics.dsr.types import DSRData, GTFBatch
from rl.common.device import resolve_device
from rl.common.io import atomic_torch_save
from rl.common.registry import check_choice, lookup
from rl.common.runs import prepare_run_dir
from rl.common.seeding import seed_everything
from rl.common.tensorboard import log_config, make_writer

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def load_data(cfg: DictConfig) -> DSRData:
    """The run's data, from ``cfg.system``."""
    s = cfg.system
    params = OmegaConf.to_container(s.parameters) if s.parameters is not None else {}
    return load_system(
        s.name,
        source=s.source,
        data_dir=s.data_dir,
        n_train=s.n_train,
        n_test=s.n_test,
        noise_std=s.noise_std,
        standardize=s.standardize,
        parameters=params,  # type: ignore[arg-type]
        seed=cfg.seed,
    )


def build_models(cfg: DictConfig, obs_dim: int) -> tuple[LatentModel, ObservationModel]:
    """Latent and observation model from ``cfg.model`` (fresh initialisation)."""
    m = cfg.model
    model = make_model(m.name, m.latent_dim, hidden_dim=m.hidden_dim, n_bases=m.n_bases)
    obs_model = make_observation(m.observation, obs_dim, m.latent_dim)
    return model, obs_model


def check_config(cfg: DictConfig, data: DSRData) -> None:
    """Validate the training config against the data at the boundary."""
    check_choice(cfg.forcing.method, FORCING_METHODS, "forcing method")
    check_choice(cfg.dtype, DTYPES, "dtype")
    if not 0.0 <= cfg.forcing.alpha <= 1.0:
        raise ValueError(f"forcing.alpha must be in [0, 1], got {cfg.forcing.alpha}")
    for key in ("epochs", "batches_per_epoch", "batch_size", "seq_len"):
        if cfg[key] < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
    check_series(data.train, f"{data.name} training data", min_rows=cfg.seq_len + 1)


def sample_batch(
    train: torch.Tensor, obs_model: ObservationModel, batch_size: int, seq_len: int, rng: np.random.Generator
) -> GTFBatch:
    """``S`` windows of ``T̃ + 1`` rows with uniform random starts (with replacement) and their forcing signals."""
    starts = torch.as_tensor(rng.integers(0, train.shape[0] - seq_len, batch_size), device=train.device)
    idx = starts[:, None] + torch.arange(seq_len + 1, device=train.device)
    obs = train[idx]
    return GTFBatch(obs, obs_model.forcing_signal(obs[:, 1:]))


def gtf_loss(
    model: LatentModel,
    obs_model: ObservationModel,
    batch: GTFBatch,
    alpha: torch.Tensor,
    mask: torch.Tensor,
    fused: bool = True,
) -> torch.Tensor:
    """Forced-rollout MSE of one batch (no regularisation)."""
    z1 = obs_model.init_state(batch.obs[:, 0])
    rollout = forced_rollout if fused else forced_rollout_autograd
    pred = rollout(model, z1, batch.forcing, alpha, mask)
    return (obs_model(pred) - batch.obs[:, 1:]).square().mean()


def lr_decay(lr: float, lr_end: float, epochs: int) -> float:
    """Per-epoch factor of the exponential schedule ``lr(e) = lr · (lr_end/lr)^(e/E)``."""
    if lr <= 0 or lr_end <= 0:
        raise ValueError(f"learning rates must be positive, got lr={lr}, lr_end={lr_end}")
    return float((lr_end / lr) ** (1.0 / epochs))


def params_finite(*modules: torch.nn.Module) -> bool:
    """True if every parameter is finite."""
    return all(bool(torch.isfinite(p).all()) for m in modules for p in m.parameters())


def _figures(test: np.ndarray, gen: np.ndarray, sigma: float) -> tuple[Any, Any]:
    fig_att = plt.figure(figsize=(8, 4))
    dims = min(3, test.shape[1])
    for i, (x, title) in enumerate(((test, "true"), (gen, "generated"))):
        if dims == 3:
            ax = fig_att.add_subplot(1, 2, i + 1, projection="3d")
            ax.plot(x[:, 0], x[:, 1], x[:, 2], lw=0.3)
        else:
            ax = fig_att.add_subplot(1, 2, i + 1)
            ax.plot(x[:, 0], x[:, min(1, dims - 1)], lw=0.3)
        ax.set_title(title)
    fig_ps, ax = plt.subplots(figsize=(6, 3.5))
    n = min(test.shape[0], gen.shape[0])
    k = min(n // 2, 2000)
    ax.semilogy(metrics.smoothed_spectrum(test[:n], sigma)[:k, 0], label="true")
    ax.semilogy(metrics.smoothed_spectrum(gen[:n], sigma)[:k, 0], label="generated")
    ax.set_xlabel("frequency bin")
    ax.set_title("smoothed power spectrum, dim 0")
    ax.legend()
    return fig_att, fig_ps


def monitor(
    writer: SummaryWriter, model: LatentModel, obs_model: ObservationModel, data: DSRData, eval_len: int, step: int
) -> dict[str, float]:
    """Monitoring metrics on the test series (shorter than the protocol when ``eval_len`` > 0) and figures."""
    test = data.test[:eval_len] if eval_len > 0 else data.test
    gen = generate(model, obs_model, test[0], test.shape[0])
    out = {
        "d_stsp": metrics.state_space_divergence(test, gen),
        "d_h": metrics.power_spectrum_distance(test, gen),
        "pe20": metrics.prediction_error(model, obs_model, test, n=20) if test.shape[0] > 20 else float("nan"),
    }
    for key, value in out.items():
        writer.add_scalar(f"eval/{key}", value, step)
    if np.all(np.isfinite(gen)):
        fig_att, fig_ps = _figures(test, gen, 20.0)
        writer.add_figure("eval/attractor", fig_att, step)
        writer.add_figure("eval/power_spectrum", fig_ps, step)
    return out


def selection_score(model: LatentModel, obs_model: ObservationModel, train: np.ndarray, select_len: int) -> float:
    """Model-selection score from the training series only: ``D_stsp`` against its last ``select_len`` rows.

    The free run follows the protocol (``⌊1.25 T⌋`` steps from the window's first row, the first ``⌊0.25 T⌋``
    dropped) with ``T`` the window length; ``select_len`` 0 or beyond the series uses the whole training series.
    Non-finite scores (a diverged model) count as ``inf``, so they never win.
    """
    ref = train[-select_len:] if 0 < select_len < train.shape[0] else train
    gen = generate(model, obs_model, ref[0], ref.shape[0])
    if not np.all(np.isfinite(gen)):
        return math.inf
    score = metrics.state_space_divergence(ref, gen)
    return score if math.isfinite(score) else math.inf


def save_checkpoint(path: Path, model: LatentModel, obs_model: ObservationModel, data: DSRData, extra: dict[str, Any]) -> None:
    """Atomic checkpoint with the data standardisation, for inversion."""
    state = {
        "model": model.state_dict(),
        "obs_model": obs_model.state_dict(),
        "data_mean": data.mean,
        "data_std": data.std,
        **extra,
    }
    atomic_torch_save(state, path)


def resolve_checkpoint(run_dir: Path, checkpoint: str) -> str:
    """File name in ``run_dir/checkpoints`` for ``auto`` (``best.pt`` if present, else ``last.pt``), ``best``, ``last``.

    Any other value is taken as a file name.
    """
    if checkpoint == "auto":
        return "best.pt" if (run_dir / "checkpoints" / "best.pt").is_file() else "last.pt"
    if checkpoint in ("best", "last"):
        return f"{checkpoint}.pt"
    return checkpoint


def load_run(
    run_dir: Path, checkpoint: str = "last.pt", device: str = "cpu"
) -> tuple[LatentModel, ObservationModel, DSRData, dict[str, Any]]:
    """Rebuild a run's models (from its ``config.yaml`` and checkpoint) and its data.

    ``checkpoint`` is resolved by :func:`resolve_checkpoint`; the file used is returned in the state as
    ``checkpoint_file``.
    """
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert isinstance(cfg, DictConfig)
    checkpoint = resolve_checkpoint(run_dir, checkpoint)
    path = run_dir / "checkpoints" / checkpoint
    if not path.exists():
        raise ValueError(f"no checkpoint {path}; available: {sorted(p.name for p in path.parent.glob('*.pt'))}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    data = load_data(cfg)
    model, obs_model = build_models(cfg, data.train.shape[1])
    model.load_state_dict(state["model"])
    obs_model.load_state_dict(state["obs_model"])
    state["checkpoint_file"] = checkpoint
    dev, dtype = resolve_device(device), lookup(DTYPES, cfg.dtype, "dtype")
    return model.to(dev, dtype), obs_model.to(dev, dtype), data, state


def train(cfg: DictConfig) -> dict[str, float]:
    """Train a PLRNN with GTF (or sparse TF) as configured; returns the last monitoring metrics and loss."""
    rng = seed_everything(cfg.seed)
    data = load_data(cfg)
    check_config(cfg, data)
    device, dtype = resolve_device(cfg.device), DTYPES[cfg.dtype]
    model, obs_model = build_models(cfg, data.train.shape[1])
    model.to(device, dtype)
    obs_model.to(device, dtype)
    run = prepare_run_dir(cfg)
    writer = make_writer(run.root)
    log_config(writer, cfg)
    params = [*model.parameters(), *obs_model.parameters()]
    optimizer = torch.optim.RAdam(params, lr=cfg.lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=lr_decay(cfg.lr, cfg.lr_end, cfg.epochs))
    train_t = torch.as_tensor(data.train, dtype=dtype, device=device)
    f = cfg.forcing
    controller = AlphaController(f.alpha_method, f.alpha, f.gamma, f.update_every)
    mask = obs_model.forced_units(f.partial).to(device, dtype)
    stf_alpha = stf_alpha_sequence(f.tau, cfg.seq_len, device).to(dtype) if f.method == "stf" else None
    n_updates, start, status, result = 0, time.process_time(), "done", {}
    ckpt, best_ckpt, best_score, best_epoch = run.checkpoints / "last.pt", run.checkpoints / "best.pt", math.inf, 0
    bar = tqdm(range(cfg.epochs), desc="gtf", disable=not cfg.progress, dynamic_ncols=True)
    for epoch in bar:
        epoch_loss = 0.0
        for _ in range(cfg.batches_per_epoch):
            batch = sample_batch(train_t, obs_model, cfg.batch_size, cfg.seq_len, rng)
            if stf_alpha is None:
                alpha_val = controller.update(n_updates, model, batch.forcing)
                alpha = gtf_alpha_sequence(alpha_val, cfg.seq_len, device).to(dtype)
            else:
                alpha_val, alpha = float("nan"), stf_alpha
            loss = gtf_loss(model, obs_model, batch, alpha, mask, fused=cfg.fused_backward)
            total = loss
            if cfg.lambda_lat > 0:
                total = total + cfg.lambda_lat * model.regularization()
            if cfg.lambda_obs > 0:
                total = total + cfg.lambda_obs * obs_model.regularization()
            if not torch.isfinite(total):
                status = f"non-finite loss at update {n_updates} (epoch {epoch}); stopped, last good checkpoint kept"
                break
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            n_updates += 1
            if not params_finite(model, obs_model):
                status = f"non-finite parameters after update {n_updates} (epoch {epoch}); stopped, last good checkpoint kept"
                break
            epoch_loss += loss.item()
        if status != "done":
            break
        scheduler.step()
        epoch_loss /= cfg.batches_per_epoch
        writer.add_scalar("train/loss", epoch_loss, n_updates)
        writer.add_scalar("train/lr", scheduler.get_last_lr()[0], n_updates)
        writer.add_scalar("dynamics/gtf_alpha", alpha_val, n_updates)
        bar.set_postfix(loss=f"{epoch_loss:.4g}", alpha=f"{alpha_val:.3f}")
        result = {"loss": epoch_loss, "alpha": alpha_val, "epoch": epoch + 1}
        last_epoch = epoch + 1 == cfg.epochs
        over_budget = cfg.time_budget_s > 0 and time.process_time() - start > cfg.time_budget_s
        if (cfg.eval_every > 0 and (epoch + 1) % cfg.eval_every == 0) or last_epoch or over_budget:
            result.update(monitor(writer, model, obs_model, data, cfg.eval_len, n_updates))
            extra = {
                "epoch": epoch + 1,
                "n_updates": n_updates,
                "alpha": controller.alpha,
                "optimizer": optimizer.state_dict(),
            }
            save_checkpoint(ckpt, model, obs_model, data, extra)
            if cfg.keep_best:
                score = selection_score(model, obs_model, data.train, cfg.select_len)
                writer.add_scalar("select/d_stsp_train", score, n_updates)
                if score < best_score:
                    best_score, best_epoch = score, epoch + 1
                    save_checkpoint(best_ckpt, model, obs_model, data, {**extra, "select_d_stsp_train": score})
                result["select_d_stsp_train"] = score
        if over_budget:
            status = f"CPU-time budget of {cfg.time_budget_s:.0f} s reached after epoch {epoch + 1}"
            break
    bar.close()
    writer.add_text("train/status", status, n_updates)
    writer.close()
    result["train_cpu_seconds"] = time.process_time() - start
    if best_epoch > 0:
        result.update(best_epoch=best_epoch, best_select_d_stsp_train=best_score)
    if status != "done":
        tqdm.write(f"train_gtf: {status}")
    result["nan"] = float(status.startswith("non-finite"))
    return {k: float(v) for k, v in result.items() if not math.isnan(float(v)) or k == "alpha"}

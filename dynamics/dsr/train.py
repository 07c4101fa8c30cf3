"""GTF training of PLRNNs (Hess et al., ICML 2023, Sec. 3-4 and Algorithm 1).

One parameter update: draw ``S`` random windows of ``T̃ + 1`` rows (uniform starts, with replacement), compute the
forcing signals outside the graph, update α on α-update steps, run the forced rollout from ``z_1 = init_state(x_1)``
and minimise the MSE of ``O(z_t)`` against ``x_t`` plus ``λ_lat`` and ``λ_obs`` penalties with RAdam; the learning
rate decays exponentially per epoch from ``lr`` to ``lr_end``. A non-finite loss or parameter stops training with a
message (saying whether a checkpoint from an earlier epoch exists). Options of the reference: fresh Gaussian noise on
every batch (``teacher_noise``), per-parameter gradient-norm clipping (``grad_clip_norm``), MAR and AR-convergence
penalties, external inputs (``system.inputs_train``) and an Affine bias (``model.obs_bias``).

The data's origin (:func:`dynamics.dsr.data.load_system` provenance) is written to ``data.json`` and into every
checkpoint; :func:`load_run` re-reads the recorded files (not the config's paths re-resolved against the code
checkout) and refuses data whose checksums differ.

Checkpoints: ``checkpoints/last.pt`` at every monitoring epoch and, with ``keep_best``, ``checkpoints/best.pt`` whenever
the selection score improves (an option; the paper scores the last model, the default of ``eval_gtf``). The
selection score is ``D_stsp`` of a protocol-style free run against the last
``select_len`` rows of the TRAINING series (:func:`selection_score`); the test series is only logged (``eval/``), never
used to choose a model. With ``select_holdout`` those rows are held out of training (:func:`fit_rows`), so the score
is measured on unseen data. Deviation: the paper keeps the last model of each run; it has no model selection.
"""

from __future__ import annotations

import json
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
from dynamics.dsr.data import check_provenance, check_series, load_system
from dynamics.dsr.forcing import FORCING_METHODS, AlphaController, gtf_alpha_sequence, stf_alpha_sequence
from dynamics.dsr.models import LatentModel, make_model
from dynamics.dsr.observation import ObservationModel, make_observation
from dynamics.dsr.rollout import forced_rollout, forced_rollout_autograd, generate
from dynamics.dsr.types import DSRData, GTFBatch
from envs.common.device import resolve_device
from envs.common.io import atomic_torch_save, atomic_write_text, load_state_file
from envs.common.registry import check_choice, lookup
from envs.common.runs import prepare_run_dir
from envs.common.seeding import seed_everything
from envs.common.tensorboard import log_config, make_writer

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
        inputs_train=s.get("inputs_train"),
        inputs_test=s.get("inputs_test"),
        train_file=s.get("train_file"),
        test_file=s.get("test_file"),
    )


def build_models(cfg: DictConfig, obs_dim: int, n_inputs: int = 0) -> tuple[LatentModel, ObservationModel]:
    """Latent and observation model from ``cfg.model`` (fresh initialisation); ``n_inputs`` external inputs."""
    m = cfg.model
    model = make_model(m.name, m.latent_dim, hidden_dim=m.hidden_dim, n_bases=m.n_bases, n_inputs=n_inputs)
    obs_model = make_observation(m.observation, obs_dim, m.latent_dim, bias=bool(m.get("obs_bias", False)))
    return model, obs_model


def n_inputs_of(data: DSRData) -> int:
    """Number of external-input columns (0 without inputs)."""
    return 0 if data.inputs_train is None else int(data.inputs_train.shape[1])


def check_config(cfg: DictConfig, data: DSRData) -> None:
    """Validate the training config against the data at the boundary."""
    check_choice(cfg.forcing.method, FORCING_METHODS, "forcing method")
    check_choice(cfg.dtype, DTYPES, "dtype")
    if not 0.0 <= cfg.forcing.alpha <= 1.0:
        raise ValueError(f"forcing.alpha must be in [0, 1], got {cfg.forcing.alpha}")
    for key in ("epochs", "batches_per_epoch", "batch_size", "seq_len"):
        if cfg[key] < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
    for key in ("lambda_lat", "lambda_obs", "lambda_ar", "mar_lambda", "grad_clip_norm", "teacher_noise"):
        if cfg[key] < 0:
            raise ValueError(f"{key} must be >= 0, got {cfg[key]}")
    if not 0.0 <= cfg.mar_ratio <= 1.0:
        raise ValueError(f"mar_ratio must be in [0, 1], got {cfg.mar_ratio}")
    check_series(data.train, f"{data.name} training data", min_rows=cfg.seq_len + 1)
    if cfg.get("select_holdout", False):
        if not 0 < cfg.select_len < data.train.shape[0]:
            raise ValueError(
                f"select_holdout needs 0 < select_len < {data.train.shape[0]} (the training rows), got {cfg.select_len}"
            )
        check_series(data.train[: fit_rows(cfg, data)], f"{data.name} training data before the held-out tail", cfg.seq_len + 1)


def fit_rows(cfg: DictConfig, data: DSRData) -> int:
    """Rows of the training series that batches are drawn from: all, or those before the held-out selection tail."""
    n = data.train.shape[0]
    return n - int(cfg.select_len) if cfg.get("select_holdout", False) else n


def sample_batch(
    train: torch.Tensor,
    obs_model: ObservationModel,
    batch_size: int,
    seq_len: int,
    rng: np.random.Generator,
    inputs: torch.Tensor | None = None,
    noise_std: float = 0.0,
) -> GTFBatch:
    """``S`` windows of ``T̃ + 1`` rows with uniform random starts (with replacement) and their forcing signals.

    ``noise_std`` > 0 adds fresh ``N(0, noise_std²)`` noise to the windows before the forcing signals are computed
    (the reference's ``add_gaussian_noise!`` on the batch: teacher signal, targets and ``x_1``). ``inputs``: the
    external-input series aligned with ``train``; the batch carries its rows for steps ``2..T̃+1``.
    """
    starts = torch.as_tensor(rng.integers(0, train.shape[0] - seq_len, batch_size), device=train.device)
    idx = starts[:, None] + torch.arange(seq_len + 1, device=train.device)
    obs = train[idx]
    if noise_std > 0:
        obs = obs + noise_std * torch.as_tensor(rng.standard_normal(tuple(obs.shape)), dtype=obs.dtype, device=obs.device)
    s = None if inputs is None else inputs[idx][:, 1:]
    return GTFBatch(obs, obs_model.forcing_signal(obs[:, 1:]), s)


def regularization(model: LatentModel, obs_model: ObservationModel, cfg: DictConfig) -> torch.Tensor | None:
    """The penalties of the reference's ``regularization_loss`` plus the AR-convergence option, or ``None``.

    MAR (``mar_ratio`` > 0) replaces the ``lambda_lat`` penalty, as in the reference.
    """
    terms = []
    if cfg.mar_ratio > 0:
        terms.append(cfg.mar_lambda * model.mar_penalty(cfg.mar_ratio))
    elif cfg.lambda_lat > 0:
        terms.append(cfg.lambda_lat * model.regularization())
    if cfg.lambda_obs > 0:
        terms.append(cfg.lambda_obs * obs_model.regularization())
    if cfg.lambda_ar > 0:
        terms.append(cfg.lambda_ar * model.ar_convergence_penalty())
    return sum(terms[1:], start=terms[0]) if terms else None


def clip_grad_norms(params: list[torch.nn.Parameter], max_norm: float) -> None:
    """Scale each parameter's gradient to norm ``≤ max_norm`` separately (Flux ``ClipNorm``, per array)."""
    for p in params:
        if p.grad is not None:
            torch.nn.utils.clip_grad_norm_(p, max_norm)


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
    if fused:
        pred = forced_rollout(model, z1, batch.forcing, alpha, mask, inputs=batch.inputs)
    else:
        pred = forced_rollout_autograd(model, z1, batch.forcing, alpha, mask, inputs=batch.inputs)
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
    inputs = None if data.inputs_test is None else data.inputs_test[: test.shape[0]]
    gen = generate(model, obs_model, test[0], test.shape[0], inputs)
    pe = metrics.prediction_error(model, obs_model, test, n=20, inputs=inputs) if test.shape[0] > 20 else float("nan")
    out = {
        "d_stsp": metrics.state_space_divergence(test, gen),
        "d_h": metrics.power_spectrum_distance(test, gen),
        "pe20": pe,
    }
    for key, value in out.items():
        writer.add_scalar(f"eval/{key}", value, step)
    if np.all(np.isfinite(gen)):
        fig_att, fig_ps = _figures(test, gen, 20.0)
        writer.add_figure("eval/attractor", fig_att, step)
        writer.add_figure("eval/power_spectrum", fig_ps, step)
    return out


def selection_score(
    model: LatentModel, obs_model: ObservationModel, train: np.ndarray, select_len: int, inputs: np.ndarray | None = None
) -> float:
    """Model-selection score from the training series only: ``D_stsp`` against its last ``select_len`` rows.

    The free run follows the protocol (``⌊1.25 T⌋`` steps from the window's first row, the first ``⌊0.25 T⌋``
    dropped) with ``T`` the window length; ``select_len`` 0 or beyond the series uses the whole training series.
    Non-finite scores (a diverged model) count as ``inf``, so they never win.
    """
    ref = train[-select_len:] if 0 < select_len < train.shape[0] else train
    s = None if inputs is None else inputs[-ref.shape[0] :]
    gen = generate(model, obs_model, ref[0], ref.shape[0], s)
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
        "data_provenance": data.provenance,
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
    run_dir: Path, checkpoint: str = "last.pt", device: str = "cpu", trusted: bool = False
) -> tuple[LatentModel, ObservationModel, DSRData, dict[str, Any]]:
    """Rebuild a run's models (from its ``config.yaml`` and checkpoint) and its data.

    ``checkpoint`` is resolved by :func:`resolve_checkpoint`; the file used is returned in the state as
    ``checkpoint_file``. The data are the run's recorded data: files are read from the folder recorded at training
    time (not the config's ``data_dir`` re-resolved against this checkout) and their checksums must match the record.
    The checkpoint is read weights-only (:func:`envs.common.io.load_state_file`): reading it never runs code from it;
    ``trusted`` reads an old-format checkpoint anyway (unpickling it, which runs any code it names).

    Raises:
        envs.common.io.UnsafeStateFileError: the checkpoint is not weights-only (an old format, or a crafted file);
            the message says how to convert it.
    """
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert isinstance(cfg, DictConfig)
    checkpoint = resolve_checkpoint(run_dir, checkpoint)
    path = run_dir / "checkpoints" / checkpoint
    if not path.exists():
        raise ValueError(f"no checkpoint {path}; available: {sorted(p.name for p in path.parent.glob('*.pt'))}")
    state = load_state_file(path, map_location="cpu", trusted=trusted)
    recorded = state.get("data_provenance")
    if recorded and recorded.get("source") == "file":
        cfg.system.source = "file"
        cfg.system.data_dir = str(Path(recorded["train_file"]).parent)
        if cfg.system.get("train_file"):  # a system of one's own: the recorded absolute paths
            cfg.system.train_file, cfg.system.test_file = recorded["train_file"], recorded["test_file"]
    elif recorded and recorded.get("source") == "simulate":
        cfg.system.source = "simulate"
    data = load_data(cfg)
    check_provenance(data, recorded)
    model, obs_model = build_models(cfg, data.train.shape[1], n_inputs_of(data))
    model.load_state_dict(state["model"])
    obs_model.load_state_dict(state["obs_model"])
    state["checkpoint_file"] = checkpoint
    dev, dtype = resolve_device(device), lookup(DTYPES, cfg.dtype, "dtype")
    return model.to(dev, dtype), obs_model.to(dev, dtype), data, state


def _kept(saved_epoch: int) -> str:
    """What the NaN stop leaves behind: the last checkpoint's epoch, or that none was written."""
    if saved_epoch:
        return f"checkpoints/last.pt from epoch {saved_epoch} kept"
    return "no checkpoint was written (none before the first monitoring epoch)"


def train(cfg: DictConfig) -> dict[str, float]:
    """Train a PLRNN with GTF (or sparse TF) as configured; returns the last monitoring metrics and loss."""
    rng = seed_everything(cfg.seed)
    data = load_data(cfg)
    check_config(cfg, data)
    device, dtype = resolve_device(cfg.device), DTYPES[cfg.dtype]
    model, obs_model = build_models(cfg, data.train.shape[1], n_inputs_of(data))
    model.to(device, dtype)
    obs_model.to(device, dtype)
    run = prepare_run_dir(cfg)
    atomic_write_text(run.root / "data.json", json.dumps(data.provenance, indent=2))
    writer = make_writer(run.root)
    log_config(writer, cfg)
    writer.add_text("data/provenance", json.dumps(data.provenance), 0)
    params = [*model.parameters(), *obs_model.parameters()]
    optimizer = torch.optim.RAdam(params, lr=cfg.lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=lr_decay(cfg.lr, cfg.lr_end, cfg.epochs))
    n_fit = fit_rows(cfg, data)
    train_t = torch.as_tensor(data.train[:n_fit], dtype=dtype, device=device)
    inputs_t = None if data.inputs_train is None else torch.as_tensor(data.inputs_train[:n_fit], dtype=dtype, device=device)
    select_on = "holdout" if cfg.get("select_holdout", False) else "train"
    f = cfg.forcing
    controller = AlphaController(f.alpha_method, f.alpha, f.gamma, f.update_every)
    mask = obs_model.forced_units(f.partial).to(device, dtype)
    stf_alpha = stf_alpha_sequence(f.tau, cfg.seq_len, device).to(dtype) if f.method == "stf" else None
    n_updates, start, status, result, saved_epoch = 0, time.process_time(), "done", {}, 0
    ckpt, best_ckpt, best_score, best_epoch = run.checkpoints / "last.pt", run.checkpoints / "best.pt", math.inf, 0
    bar = tqdm(range(cfg.epochs), desc="gtf", disable=not cfg.progress, dynamic_ncols=True)
    for epoch in bar:
        epoch_loss = 0.0
        for _ in range(cfg.batches_per_epoch):
            batch = sample_batch(train_t, obs_model, cfg.batch_size, cfg.seq_len, rng, inputs_t, cfg.teacher_noise)
            if stf_alpha is None:
                alpha_val = controller.update(n_updates, model, batch.forcing)
                alpha = gtf_alpha_sequence(alpha_val, cfg.seq_len, device).to(dtype)
            else:
                alpha_val, alpha = float("nan"), stf_alpha
            loss = gtf_loss(model, obs_model, batch, alpha, mask, fused=cfg.fused_backward)
            penalty = regularization(model, obs_model, cfg)
            total = loss if penalty is None else loss + penalty
            if not torch.isfinite(total):
                status = f"non-finite loss at update {n_updates} (epoch {epoch + 1}); stopped, {_kept(saved_epoch)}"
                break
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.grad_clip_norm > 0:
                clip_grad_norms(params, cfg.grad_clip_norm)
            optimizer.step()
            n_updates += 1
            if not params_finite(model, obs_model):
                status = f"non-finite parameters after update {n_updates} (epoch {epoch + 1}); stopped, {_kept(saved_epoch)}"
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
            saved_epoch = epoch + 1
            if cfg.keep_best or select_on == "holdout":
                score = selection_score(model, obs_model, data.train, cfg.select_len, data.inputs_train)
                writer.add_scalar(f"select/d_stsp_{select_on}", score, n_updates)
                if cfg.keep_best and score < best_score:
                    best_score, best_epoch = score, epoch + 1
                    save_checkpoint(best_ckpt, model, obs_model, data, {**extra, f"select_d_stsp_{select_on}": score})
                result[f"select_d_stsp_{select_on}"] = score
        if over_budget:
            status = f"CPU-time budget of {cfg.time_budget_s:.0f} s reached after epoch {epoch + 1}"
            break
    bar.close()
    writer.add_text("train/status", status, n_updates)
    writer.close()
    result["train_cpu_seconds"] = time.process_time() - start
    if best_epoch > 0:
        result.update({"best_epoch": best_epoch, f"best_select_d_stsp_{select_on}": best_score})
    if status != "done":
        tqdm.write(f"train_gtf: {status}")
    result["nan"] = float(status.startswith("non-finite"))
    return {k: float(v) for k, v in result.items() if not math.isnan(float(v)) or k == "alpha"}

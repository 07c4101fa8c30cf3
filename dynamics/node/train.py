"""Training loop of ``scripts/train_node.py``: one task, one regularizer, TensorBoard, atomic checkpoints, tqdm."""

from __future__ import annotations

import json
import time
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from dynamics.node.regularizers import CoefSchedule, RegSpec, check_regularizer
from dynamics.node.solve import SolverSettings
from dynamics.node.tasks import make_task, sync
from rl.common import atomic_write_text, log_config, make_writer, prepare_run_dir, resolve_device, seed_everything
from rl.common.io import atomic_torch_save
from rl.common.registry import check_choice

OPTIMIZERS = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax, "rmsprop": torch.optim.RMSprop}


def build_reg(cfg: DictConfig, adjoint: bool) -> RegSpec:
    """Validated ``RegSpec`` from ``cfg.reg`` (refuses global penalties under the adjoint, with the reason)."""
    r = cfg.reg
    check_regularizer(r.name, r.agg, r.local_mode, adjoint)
    return RegSpec(r.name, r.agg, r.local_mode, r.kinetic, r.jacobian, r.stiff_weight)


def build_schedule(cfg: DictConfig, steps_per_epoch: int) -> CoefSchedule:
    """Coefficient schedule; the default horizon is the run's number of epochs (or of optimizer steps)."""
    r = cfg.reg
    check_choice(r.schedule_unit, ("epoch", "step"), "schedule unit")
    default = cfg.task.epochs if r.schedule_unit == "epoch" else cfg.task.epochs * steps_per_epoch
    return CoefSchedule(r.schedule, float(r.coef), r.coef_final, int(r.horizon or default))


def build_solver(cfg: DictConfig) -> SolverSettings:
    """``SolverSettings`` from ``cfg.solver`` (unknown method names list the valid ones)."""
    s = cfg.solver
    return SolverSettings(s.method, float(s.rtol), float(s.atol), bool(s.adjoint), bool(s.detach_dt))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train one model; returns the final metrics (also written to ``metrics.json`` in the run folder).

    Logged per optimizer step: ``train/loss``, ``train/task_loss``, ``reg/value``, ``reg/coef``, ``train/nfe_forward``,
    ``train/nfe_backward``, ``train/steps_accepted``, ``train/steps_rejected`` (and task metrics); per epoch: ``eval/*``
    (test metric, ``eval/test_nfe``, steps, ``eval/predict_time_s``) and ``time/epoch_s``, ``time/train_s``.
    """
    settings = build_solver(cfg)
    reg = build_reg(cfg, settings.adjoint)
    check_choice(cfg.task.optimizer, OPTIMIZERS, "optimizer")
    device = resolve_device(cfg.device)
    seed_everything(int(cfg.seed))
    task = make_task(cfg.task, device, int(cfg.seed))
    gen = torch.Generator().manual_seed(int(cfg.seed))
    run = prepare_run_dir(cfg)
    writer = make_writer(run.root)
    log_config(writer, cfg)
    optimizer = OPTIMIZERS[cfg.task.optimizer](task.model.parameters(), lr=float(cfg.task.lr))
    steps_per_epoch = min(task.n_batches, cfg.task.max_batches) if cfg.task.max_batches else task.n_batches
    schedule = build_schedule(cfg, steps_per_epoch)
    func = _vector_field(task.model)

    step, train_time = 0, 0.0
    metrics: dict[str, Any] = {}
    bar = tqdm(range(cfg.task.epochs), desc=f"{cfg.task.name}/{reg.name}", disable=not cfg.progress)
    for epoch in bar:
        task.model.train()
        epoch_nfe, epoch_start = [], time.perf_counter()
        sync(device)
        for b, batch in enumerate(task.batches(epoch)):
            if cfg.task.max_batches and b >= cfg.task.max_batches:
                break
            coef = schedule(epoch if cfg.reg.schedule_unit == "epoch" else step)
            task_loss, batch_metrics, out = task.loss(batch, settings, reg, gen)
            loss = task_loss if out.penalty is None else task_loss + coef * out.penalty
            optimizer.zero_grad(set_to_none=True)
            nfe_before_backward = func.nfe
            loss.backward()
            optimizer.step()
            step += 1
            epoch_nfe.append(out.stats.nfe)
            scalars = {
                "train/loss": loss.item(),
                "train/task_loss": task_loss.item(),
                "reg/value": 0.0 if out.penalty is None else out.penalty.item(),
                "reg/coef": coef,
                "train/nfe_forward": out.stats.nfe,
                "train/nfe_backward": func.nfe - nfe_before_backward,
                "train/steps_accepted": out.stats.accepted,
                "train/steps_rejected": out.stats.rejected,
                **{f"train/{k}": v for k, v in batch_metrics.items()},
            }
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, step)
        sync(device)
        epoch_time = time.perf_counter() - epoch_start
        train_time += epoch_time
        last = epoch + 1 == cfg.task.epochs
        if not last and (epoch + 1) % max(1, cfg.task.eval_every):
            bar.set_postfix({"train_nfe": f"{sum(epoch_nfe) / max(1, len(epoch_nfe)):.3g}"})
            writer.add_scalar("time/epoch_s", epoch_time, step)
            writer.add_scalar("time/train_s", train_time, step)
            continue
        task.model.eval()
        metrics = task.evaluate(settings, gen, timing=last)
        metrics.update(
            epoch=epoch + 1,
            train_time_s=train_time,
            train_nfe_forward_mean=sum(epoch_nfe) / max(1, len(epoch_nfe)),
        )
        for key, value in metrics.items():
            if key not in ("epoch",):
                writer.add_scalar(f"eval/{key}", value, step)
        writer.add_scalar("time/epoch_s", epoch_time, step)
        writer.add_scalar("time/train_s", train_time, step)
        bar.set_postfix({k: f"{metrics[k]:.3g}" for k in ("test_nfe", "train_nfe_forward_mean") if k in metrics})
        if cfg.checkpoint:
            state = {"model": task.model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1, "step": step}
            state["config"] = OmegaConf.to_container(cfg, resolve=True)
            atomic_torch_save(state, run.checkpoints / "last.pt")
    writer.close()
    metrics.update(task=cfg.task.name, reg=reg.name, seed=int(cfg.seed))
    atomic_write_text(run.root / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def _vector_field(model: torch.nn.Module) -> Any:
    """The module whose ``nfe`` counts evaluations (the model itself or its ``func``)."""
    return model if hasattr(model, "nfe") else model.func

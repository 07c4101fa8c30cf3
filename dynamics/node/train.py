"""Training loop of ``scripts/train_node.py``: one task, one regularizer, TensorBoard, atomic checkpoints, tqdm.

``checkpoints/last.pt`` (model and optimizer state dicts, epoch, step, resolved config) is written weights-only; read
it with :func:`envs.common.io.load_state_file`, which never runs code from the file.
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from dynamics.node.config import SolverConfig
from dynamics.node.regularizers import CoefSchedule, RegSpec, check_regularizer
from dynamics.node.solve import SolverSettings, check_solver_regularizer
from dynamics.node.tasks import make_task
from dynamics.node.timing import sync
from envs.common import atomic_write_text, log_config, make_writer, prepare_run_dir, resolve_device, seed_everything
from envs.common.io import atomic_torch_save
from envs.common.registry import check_choice

#: the regularizer of warm-up steps (``reg.warmup``): a plain vanilla step.
VANILLA = RegSpec("none")
OPTIMIZERS = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}


def build_reg(cfg: DictConfig, adjoint: bool) -> RegSpec:
    """Validated ``RegSpec`` from ``cfg.reg`` (refuses global penalties under the adjoint, with the reason)."""
    r = cfg.reg
    check_regularizer(r.name, r.agg, r.local_mode, adjoint)
    return RegSpec(
        r.name, r.agg, r.local_mode, r.kinetic, r.jacobian, r.stiff_weight, float(r.steer_b), int(r.taylor_order),
        bool(r.get("local_k1_grad", False)),
    )  # fmt: skip


def check_combination(cfg: DictConfig, reg: RegSpec) -> None:
    """Refuse at launch, before any data is made, what would fail (or be ignored) later.

    ``task=sde`` takes only the regularizers its step-doubling solver records, and runs torchsde's SRK with
    ``task.sde_dt`` / ``task.sde_tol``: a ``solver`` group that differs from the default would be ignored, so it is
    refused. Stiffness penalties need dopri5's two stages at ``t + dt``.
    """
    if cfg.task.name == "sde":
        from dynamics.node.sde import SDE_REGULARIZERS

        if reg.name not in SDE_REGULARIZERS:
            raise ValueError(f"task=sde supports reg in {list(SDE_REGULARIZERS)}, got reg={reg.name!r}")
        default = SolverConfig()
        changed = {k: cfg.solver[k] for k in ("method", "rtol", "atol", "adjoint") if cfg.solver[k] != getattr(default, k)}
        if changed:
            raise ValueError(
                f"task=sde runs torchsde's SRK with task.sde_dt and task.sde_tol and ignores the solver group, "
                f"but solver settings were changed: {changed}; drop them (set task.sde_tol / task.sde_dt instead)"
            )
        return
    check_solver_regularizer(cfg.solver.method, reg.name)


def check_warmup(cfg: DictConfig, total: int | None = None) -> None:
    """Refuse a ``reg.warmup`` that is negative, delays ``reg=none``, or covers the whole run (``total`` units).

    Without ``total`` (before the task exists) only an epoch-unit warm-up is checked against ``task.epochs``.
    """
    r = cfg.reg
    warmup = int(r.get("warmup", 0))
    if warmup < 0:
        raise ValueError(f"reg.warmup must be >= 0 {r.schedule_unit}s, got {warmup}")
    if warmup and r.name == "none":
        raise ValueError(f"reg.warmup={warmup} needs a regularizer to delay; reg=none has none")
    if total is None and r.schedule_unit == "epoch":
        total = int(cfg.task.epochs)
    if total is not None and warmup >= total:
        raise ValueError(
            f"reg.warmup={warmup} {r.schedule_unit}s leaves no regularized training: the run has {total}; "
            f"choose 0 <= reg.warmup < {total}"
        )


def build_schedule(cfg: DictConfig, steps_per_epoch: int) -> CoefSchedule:
    """Coefficient schedule; the default horizon is the run's epochs (or optimizer steps) after the warm-up."""
    r = cfg.reg
    check_choice(r.schedule_unit, ("epoch", "step"), "schedule unit")
    total = cfg.task.epochs if r.schedule_unit == "epoch" else cfg.task.epochs * steps_per_epoch
    warmup = int(r.get("warmup", 0))
    check_warmup(cfg, total)
    return CoefSchedule(r.schedule, float(r.coef), r.coef_final, int(r.horizon or max(1, total - warmup)), warmup)


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
    reg = build_reg(cfg, bool(cfg.solver.adjoint))
    check_combination(cfg, reg)
    check_warmup(cfg)
    check_choice(cfg.reg.schedule_unit, ("epoch", "step"), "schedule unit")
    settings = build_solver(cfg)
    check_choice(cfg.task.optimizer, OPTIMIZERS, "optimizer")
    if cfg.task.inv_decay < 0:
        raise ValueError(f"task.inv_decay must be >= 0, got {cfg.task.inv_decay}")
    device = resolve_device(cfg.device)
    seed_everything(int(cfg.seed))
    task = make_task(cfg.task, device, int(cfg.seed))
    gen = torch.Generator().manual_seed(int(cfg.seed))
    run = prepare_run_dir(cfg)
    writer = make_writer(run.root)
    log_config(writer, cfg)
    optimizer = build_optimizer(cfg, task.model.parameters())
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
            when = epoch if cfg.reg.schedule_unit == "epoch" else step
            coef = schedule(when)
            task_loss, batch_metrics, out = task.loss(batch, settings, VANILLA if schedule.warming(when) else reg, gen)
            loss = task_loss if out.penalty is None else task_loss + coef * out.penalty
            optimizer.zero_grad(set_to_none=True)
            nfe_before_backward = func.nfe
            loss.backward()
            if cfg.task.inv_decay:
                _scale_grads(task.model, 1.0 / (1.0 + float(cfg.task.inv_decay) * (step + 1)))
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


def build_optimizer(cfg: DictConfig, params: Any) -> torch.optim.Optimizer:
    """The optimizer of ``cfg.task`` (``sgd`` gets ``task.momentum``)."""
    if cfg.task.optimizer == "sgd":
        return torch.optim.SGD(params, lr=float(cfg.task.lr), momentum=float(cfg.task.momentum))
    return OPTIMIZERS[cfg.task.optimizer](params, lr=float(cfg.task.lr))


def _scale_grads(model: torch.nn.Module, factor: float) -> None:
    """Multiply every gradient by ``factor`` (Flux's ``InvDecay`` applied before the optimizer)."""
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(factor)


def _vector_field(model: torch.nn.Module) -> Any:
    """The module whose ``nfe`` counts evaluations (the model itself or its ``func``)."""
    return model if hasattr(model, "nfe") else model.func

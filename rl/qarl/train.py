"""``train(cfg)``: the testable body of ``scripts/train_qarl.py``."""

from __future__ import annotations

import time
from pathlib import Path

import torch as th
from omegaconf import DictConfig
from tqdm.auto import tqdm

from rl.common import log_config, make_writer, prepare_run_dir, resolve_device, seed_everything
from rl.common.runs import RunDir, command_line
from rl.qarl.checkpoint import find_run
from rl.qarl.sac import LossNotFiniteError
from rl.qarl.trainer import QARLTrainer


class TrainingError(RuntimeError):
    """Training stopped on an error the user must act on (diverged losses)."""


def _run_dir(cfg: DictConfig) -> tuple[RunDir, Path | None]:
    """The run folder to write to and, when resuming, the checkpoint to start from."""
    if cfg.resume:
        root, saved, checkpoint = find_run(cfg.resume)
        if saved.env.name != cfg.env.name or saved.algo.name != cfg.algo.name:
            raise ValueError(
                f"resume={cfg.resume!r} is a {saved.env.name}/{saved.algo.name} run; "
                f"got env={cfg.env.name} algo={cfg.algo.name}"
            )
        with (root / "command.txt").open("a") as fh:
            fh.write(f"# resumed: {command_line()}\n")
        return RunDir(root.resolve()), checkpoint
    return prepare_run_dir(cfg), None


def train(cfg: DictConfig) -> dict[str, float]:
    """Train QARL (or a baseline, ``cfg.algo``) and return the last evaluation's returns.

    Writes TensorBoard logs and checkpoints into the run directory; Ctrl-C saves a checkpoint and returns;
    a non-finite loss raises :class:`TrainingError` and keeps the last good checkpoint.
    """
    run, checkpoint = _run_dir(cfg)
    seed_everything(int(cfg.seed))
    if cfg.torch_threads:
        th.set_num_threads(int(cfg.torch_threads))
    trainer = QARLTrainer(cfg, run, resolve_device(cfg.device))
    if checkpoint is not None:
        trainer.load(checkpoint)
        print(f"resumed {run.root} from {checkpoint.name} (iteration {trainer.state.iteration})")
    else:
        writer = make_writer(run.root)
        log_config(writer, cfg)
        writer.close()
    budget = cfg.budget
    total = int(budget.iterations)
    # with a step cap the run ends on env steps, so the bar (and its ETA) counts steps; else iterations
    by_steps = budget.max_env_steps is not None
    bar = tqdm(
        total=int(budget.max_env_steps) if by_steps else total,
        initial=trainer.state.env_steps if by_steps else trainer.state.iteration,
        desc=f"{cfg.algo.name} {cfg.env.name}",
        unit="step" if by_steps else "it",
        disable=not cfg.progress,
    )
    try:
        while trainer.state.iteration < total:
            start, steps_before = time.perf_counter(), trainer.state.env_steps
            stats = trainer.iteration()
            elapsed = time.perf_counter() - start
            trainer.state.wall_time += elapsed
            stats["time/env_steps_per_second"] = (trainer.state.env_steps - steps_before) / max(elapsed, 1e-9)
            stats["time/iteration"] = trainer.state.iteration
            it = trainer.state.iteration
            capped = budget.max_env_steps is not None and trainer.state.env_steps >= int(budget.max_env_steps)
            last = it == total or capped
            if it % int(budget.eval_every) == 0 or last:
                stats |= trainer.eval_stats()
            trainer.log(stats)
            if it % int(budget.checkpoint_every) == 0 or last:
                trainer.save()
            bar.update(min(trainer.state.env_steps, bar.total) - bar.n if by_steps else 1)
            bar.set_postfix(it=it, steps=trainer.state.env_steps, ret=f"{stats['rollout/protagonist_return']:.1f}")
            if capped:
                print(f"\nreached budget.max_env_steps={budget.max_env_steps} after {it} iterations")
                break
    except KeyboardInterrupt:
        bar.close()
        path = trainer.save()
        print(f"\ninterrupted: checkpoint saved to {path}; continue with resume={run.root}")
    except (LossNotFiniteError, FloatingPointError) as e:
        bar.close()
        trainer.close()
        good = trainer.checkpoints.latest()
        kept = f"the last good checkpoint is {good}" if good else "no checkpoint had been written yet"
        raise TrainingError(f"training diverged: {e}; {kept}") from e
    bar.close()
    trainer.close()
    print(f"TensorBoard logs: tensorboard --logdir {run.tensorboard}")
    return dict(trainer.state.last_eval)

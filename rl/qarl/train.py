"""``train(cfg)``: the testable body of ``scripts/train_qarl.py``."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import torch as th
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from envs.common import atomic_write_text, log_config, make_writer, prepare_run_dir, resolve_device, seed_everything
from envs.common.runs import RunDir, command_line
from rl.qarl.checkpoint import NotARunError
from rl.qarl.interrupts import StopRequested, StopSignals, TrainingInterrupted
from rl.qarl.sac import LossNotFiniteError
from rl.qarl.setup import DONE_FILE, Setup, current_explicit_keys, discard_hydra_output_dir, last_eval, prepare
from rl.qarl.trainer import QARLTrainer


class TrainingError(RuntimeError):
    """Training stopped on an error the user must act on (diverged losses)."""


def _open_run(setup: Setup) -> RunDir:
    """Create (fresh run) or reopen (resume) the run folder; only called once every check has passed."""
    if setup.checkpoint is None:
        return prepare_run_dir(setup.cfg, setup.root)
    assert setup.root is not None
    return RunDir(setup.root)


def _mark_resumed(run: RunDir, cfg: DictConfig) -> None:
    """After a successful resume: note it in ``command.txt``, keep ``config.yaml`` current, drop the done marker."""
    with (run.root / "command.txt").open("a") as fh:
        fh.write(f"# resumed: {command_line()}\n")
    atomic_write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))
    (run.root / DONE_FILE).unlink(missing_ok=True)


def _write_done(run: RunDir, trainer: QARLTrainer) -> None:
    """Mark a run that completed its budget (``done.json``; interrupted or failed runs never have it)."""
    import json

    done = {
        "iterations": trainer.state.iteration,
        "protagonist_steps": trainer.state.protagonist_steps,
        "env_steps_total": trainer.state.env_steps,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(run.root / DONE_FILE, json.dumps(done, indent=1) + "\n")


def train(cfg: DictConfig) -> dict[str, float]:
    """Train QARL (or a baseline, ``cfg.algo``) and return the last evaluation's returns.

    Every check runs before anything is written (:func:`rl.qarl.setup.prepare`). Writes TensorBoard logs and
    checkpoints into the run directory, and ``done.json`` when the budget is complete. A resume of a run that has
    completed the budget writes nothing and returns the run's last evaluation.

    Raises:
        TrainingInterrupted: SIGINT/SIGTERM (or submitit's preemption signal) arrived; the state of the last
            completed iteration was checkpointed first.
        TrainingError: a non-finite loss; the last good checkpoint is kept.
    """
    try:
        setup = prepare(cfg, changed=current_explicit_keys(cfg) if cfg.resume else None)
    except (ValueError, NotARunError):
        discard_hydra_output_dir()  # a multirun job's folder, made by the launcher before these checks
        raise
    if setup.complete is not None:  # a resume at a budget the run has completed: write nothing
        print(setup.complete)
        return last_eval(setup)
    cfg = setup.cfg
    seed_everything(int(cfg.seed))
    if cfg.torch_threads:
        th.set_num_threads(int(cfg.torch_threads))
    device = resolve_device(cfg.device)
    run = _open_run(setup)
    trainer = QARLTrainer(cfg, run, device)
    print(trainer.update_mode.describe())
    if setup.checkpoint is not None:
        trainer.load(setup.checkpoint, verify=False)  # prepare verified it before anything was written
        _mark_resumed(run, cfg)
        print(f"resumed {run.root} from {setup.checkpoint.name} (iteration {trainer.state.iteration})")
    else:
        writer = make_writer(run.root)
        log_config(writer, cfg)
        writer.close()
    try:
        with StopSignals() as signals:
            trainer.should_stop = lambda: signals.requested
            finished = _loop(cfg, trainer, signals)
    except (LossNotFiniteError, FloatingPointError) as e:
        trainer.close()
        good = trainer.checkpoints.latest()
        kept = f"the last good checkpoint is {good}" if good else "no checkpoint had been written yet"
        raise TrainingError(f"training diverged: {e}; {kept}") from e
    trainer.close()
    if finished:
        _write_done(run, trainer)
        from envs.common.tensorboard import log_hparams  # HParams dashboard: config + final evaluation

        log_hparams(run.tensorboard / "hparams", cfg, dict(trainer.state.last_eval))
    print(f"TensorBoard logs: tensorboard --logdir {run.tensorboard}")
    return dict(trainer.state.last_eval)


def _loop(cfg: DictConfig, trainer: QARLTrainer, signals: StopSignals) -> bool:
    """Run iterations until the budget is spent (returns True) or a signal stops the run (raises)."""
    budget = cfg.budget
    total = int(budget.iterations)
    cap = int(budget.max_env_steps) if budget.max_env_steps is not None else None

    def capped() -> bool:
        return cap is not None and trainer.state.protagonist_steps >= cap

    # with a step cap the run ends on protagonist steps, so the bar (and its ETA) counts them; else iterations
    bar = tqdm(
        total=cap if cap is not None else total,
        initial=min(trainer.state.protagonist_steps, cap) if cap is not None else trainer.state.iteration,
        desc=f"{cfg.algo.name} {cfg.env.name}",
        unit="step" if cap is not None else "it",
        disable=not cfg.progress,
    )
    try:
        while trainer.state.iteration < total and not capped():
            if signals.requested:
                raise StopRequested
            start, steps_before = time.perf_counter(), trainer.state.env_steps
            stats = trainer.iteration()
            elapsed = time.perf_counter() - start
            trainer.state.wall_time += elapsed
            stats["time/env_steps_per_second"] = (trainer.state.env_steps - steps_before) / max(elapsed, 1e-9)
            stats["time/iteration"] = trainer.state.iteration
            it = trainer.state.iteration
            last = it == total or capped()
            if it % int(budget.eval_every) == 0 or last:
                stats |= trainer.eval_stats()
            trainer.log(stats)
            if it % int(budget.checkpoint_every) == 0 or last:
                trainer.save()
            bar.update(min(trainer.state.protagonist_steps, cap) - bar.n if cap is not None else 1)
            bar.set_postfix(it=it, steps=trainer.state.protagonist_steps, ret=f"{stats['rollout/protagonist_return']:.1f}")
            if capped():
                print(f"\nreached budget.max_env_steps={cap} protagonist steps after {it} iterations")
    except StopRequested:
        bar.close()
        trainer.rollback()  # an interrupted iteration is undone: the checkpoint is the last completed one
        latest = trainer.checkpoints.latest()
        path = latest if latest is not None and latest.name == f"iter_{trainer.state.iteration:06d}" else trainer.save()
        assert signals.received is not None
        print(
            f"\ninterrupted by signal {signals.received}: checkpoint {path} (iteration {trainer.state.iteration}); "
            f"continue with resume={trainer.run.root}"
        )
        trainer.close()
        signals.forward()  # under submitit: its handler requeues the job and exits
        raise TrainingInterrupted(signals.received, path) from None
    bar.close()
    return True

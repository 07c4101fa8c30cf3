"""The process pool of the evaluation: each worker loads a run's policies once and runs :class:`~rl.robustness.tasks.Task` s.

A failing task is recorded with its error and does not stop the others.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.adversarial.demo import make_game
from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.episodes import run_episodes
from envs.adversarial.policies import SupportsPredict
from envs.adversarial.specs import get_env_spec
from rl.qarl.checkpoint import QARLPolicies, load_policies
from rl.qarl.modes import resolve_mode
from rl.robustness.best_response import Greedy
from rl.robustness.tasks import SWEEPS, Task, TaskResult


# ------------------------------------------------------------------------------------------ workers
class Evaluator:
    """Policies and game of one run, loaded once per worker; runs :class:`Task` s."""

    def __init__(
        self,
        run_dir: str | Path,
        horizon: int | None = None,
        device: str = "cpu",
        attackers: Sequence[str] = (),
        greedy_attackers: bool = True,
    ) -> None:
        from stable_baselines3 import SAC

        self.key = (str(run_dir), horizon, device, tuple(attackers), greedy_attackers)
        self.greedy_attackers = greedy_attackers
        self.policies: QARLPolicies = load_policies(run_dir, device=device)
        self.attackers: list[Any] = [SAC.load(path, device=device) for path in attackers]
        cfg = self.policies.config
        self.mode = resolve_mode(cfg.algo)
        self.spec = get_env_spec(cfg.env.name)
        self.mass_body = self.spec.mass_body
        env_cfg = dict(cfg.env)
        env_cfg["max_episode_steps"] = int(horizon if horizon is not None else cfg.budget.horizon)
        self.game: AdversarialMujocoEnv = make_game(env_cfg)
        expected = int(np.prod(self.game.observation_space.shape or ())) + (0 if self.mode.context == "none" else 1)
        got = self.policies.protagonist.observation_space.shape
        if got != (expected,):
            raise ValueError(
                f"the protagonist of {run_dir} observes shape {got}, but env={cfg.env.name} with algo={cfg.algo.name} "
                f"gives ({expected},): the run's config does not match its checkpoint"
            )
        adversary = self.policies.adversary
        # a force adversary acts on the game's adversary space (MixedNE-LD's and CAT's perturb actions instead)
        self.force_adversary = adversary is not None and adversary.action_space.shape == self.game.adversary_action_space.shape

    def __call__(self, task: Task) -> TaskResult:
        """Run one task; an exception is returned as the task's error, not raised."""
        start, cpu = time.perf_counter(), time.process_time()
        try:
            adversary: SupportsPredict | None = {"adversary": self.policies.adversary}.get(task.kind)
            if task.kind == "best_response":
                adversary = self.attackers[task.j]
                if self.greedy_attackers:
                    adversary = Greedy(adversary)
            perturbed = task.kind == "grid" or task.kind in SWEEPS
            # factors of the nominal model (gymnasium envs) or the official absolute values (dm_control envs)
            only = SWEEPS.get(task.kind)
            perturbation = self.spec.grid_options(task.mass_factor, task.friction_factor, only) if perturbed else None
            out = run_episodes(self.game, self.policies.protagonist, self.mode.context, task.seeds, adversary, perturbation)
            return TaskResult(
                task,
                tuple(map(float, out.returns)),
                tuple(map(int, out.lengths)),
                None,
                time.perf_counter() - start,
                time.process_time() - cpu,
            )
        except Exception as e:
            error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
            return TaskResult(task, (), (), error, time.perf_counter() - start, time.process_time() - cpu)


_WORKER: Evaluator | None = None


_WORKER_ERROR: str | None = None


def _init_worker(run_dir: str, horizon: int | None, device: str, attackers: tuple[str, ...] = (), greedy: bool = True) -> None:
    """Pool initializer: one torch thread, load the policies once (a forked worker reuses the parent's copy)."""
    global _WORKER, _WORKER_ERROR
    import torch as th

    th.set_num_threads(1)
    if _WORKER is not None and _WORKER.key == (run_dir, horizon, device, tuple(attackers), greedy):
        return
    try:
        _WORKER = Evaluator(run_dir, horizon, device, attackers, greedy)
    except Exception as e:  # reported by every task rather than respawning the worker forever
        _WORKER_ERROR = f"loading {run_dir} failed: {type(e).__name__}: {e}"


def _run_task(task: Task) -> TaskResult:
    if _WORKER is None:
        return TaskResult(task, (), (), _WORKER_ERROR or "worker not initialised", 0.0)
    return _WORKER(task)


def run_tasks(
    run_dir: str | Path,
    tasks: Sequence[Task],
    workers: int,
    horizon: int | None = None,
    device: str = "cpu",
    mp_context: str = "fork",
    progress: bool = True,
    desc: str = "grid",
    attackers: Sequence[str] = (),
    evaluator: Evaluator | None = None,
    greedy_attackers: bool = True,
) -> list[TaskResult]:
    """Run ``tasks`` on ``workers`` processes (in this process when ``workers == 1``), with a progress bar.

    The policies are loaded here first (or ``evaluator`` is given), so that a broken run fails once with a clear
    message (not once per task); forked workers inherit that copy, other start methods load their own in the pool
    initializer.
    """
    from tqdm.auto import tqdm

    global _WORKER
    attackers = tuple(str(a) for a in attackers)
    if evaluator is None:
        evaluator = Evaluator(str(run_dir), horizon, device, attackers, greedy_attackers)
    results: list[TaskResult] = []
    bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress)
    try:
        if workers <= 1:
            iterator: Iterator[TaskResult] = map(evaluator, tasks)
            for result in iterator:
                results.append(result)
                bar.update(1)
        else:
            _WORKER = evaluator
            ctx = mp.get_context(mp_context)
            initargs = (str(run_dir), horizon, device, attackers, evaluator.greedy_attackers)
            with ctx.Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
                for result in pool.imap_unordered(_run_task, tasks, chunksize=1):
                    results.append(result)
                    bar.update(1)
    finally:
        _WORKER = None
        evaluator.game.close()
        bar.close()
    return results

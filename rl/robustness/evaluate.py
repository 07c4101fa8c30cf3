"""Robustness of a trained QARL run: nominal return, return under attack, and a mass x friction grid (specs/qarl.md §8).

For each run the protagonist is evaluated (sampled actions, undiscounted returns,
:func:`envs.adversarial.episodes.run_episodes`)

* on the nominal model with zero force (``eval_episodes`` episodes),
* against its own adversary (``attack=co_trained``, the paper's protocol): the co-trained force adversary at
  temperature 0, or for the action adversaries the official final evaluation (MixedNE-LD against its co-trained
  action adversary at its training ``delta``, CAT against the MAS attack at its target budget); "n/a" for ``sac``,
* against fresh best-response adversaries trained against the frozen protagonist (``attack=best_response``,
  :mod:`rl.robustness.best_response`; beyond the paper's protocol, and the same for every method including ``sac``):
  ``best_response.seeds`` SAC attackers, each with its own seed, and the fixed strategies of
  :mod:`rl.robustness.fixed_attacks` (constant pushes, bang-bang on the velocity), all on the same episodes; the
  best found attack is the lowest return over them,
* on an ``n x n`` grid of mass factor (of the env's ``mass_body``) x friction factor (sliding friction of every
  geom), factors of the nominal model over the per-env ranges of :mod:`envs.adversarial.specs`, with no adversary,
* on the spec's 1-D sweeps: ``sweep_size`` values of each factor over the same range, the other one nominal.

Every episode is a separate piece of work with its own seed, derived from ``(seed, kind, i, j)`` with NumPy's
``SeedSequence``, so results do not depend on the number of workers or on the order in which they finish. The work
runs in a process pool whose initializer loads the policies once per worker (one torch thread each). A failing
cell is recorded with its error and does not stop the others.

Deviation from the paper's code: factors of the gymnasium nominal model instead of absolute DeepMind Control values
(the spec's table gives the equivalent factors).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from envs.common.registry import check_choice
from rl.robustness.best_response import AttackSettings, get_attackers, settings_from_config
from rl.robustness.fixed_attacks import describe
from rl.robustness.output import log_to_tensorboard, write_results
from rl.robustness.result import RobustnessResult, summary_line
from rl.robustness.runs import find_runs, inspect_run, locked
from rl.robustness.tasks import ATTACKS, SWEEPS, make_grid, make_tasks, sweep_values
from rl.robustness.workers import Evaluator, run_tasks

RESULTS_LOCK = ".robustness.lock"  # in the run folder, held while an evaluation writes its results


def evaluate_run(
    run_dir: str | Path,
    grid_size: int = 11,
    episodes_per_cell: int = 1,
    eval_episodes: int = 20,
    seed: int = 0,
    workers: int | None = None,
    horizon: int | None = None,
    env: str | None = None,
    mass_range: Sequence[float] | None = None,
    friction_range: Sequence[float] | None = None,
    device: str = "cpu",
    mp_context: str = "fork",
    progress: bool = True,
    attack: str = "co_trained",
    best_response: AttackSettings | None = None,
    sweep_size: int = 0,
    sweep_episodes: int | None = None,
    weights_only: bool = False,
) -> RobustnessResult:
    """Evaluate one run: nominal, under attack, on the mass x friction grid and on the 1-D sweeps.

    Args:
        run_dir: a ``train_qarl`` run directory.
        grid_size: cells per axis.
        episodes_per_cell: episodes in each grid cell (the paper: 1).
        eval_episodes: episodes of the nominal and adversary evaluations (the paper: 20).
        seed: base of every episode's seed.
        workers: processes (``None``: all cores available to this process).
        horizon: episode truncation (``None``: the run's ``budget.horizon``).
        env: if given, the env the run must have been trained on.
        mass_range: ``[low, high]`` mass factors (default: the env spec's).
        friction_range: ``[low, high]`` friction factors (default: the env spec's).
        device: torch device of the policies.
        mp_context: multiprocessing start method.
        progress: show a progress bar.
        attack: ``co_trained`` (the run's own adversary: its force adversary at temperature 0, MixedNE-LD's
            action adversary at ``delta``, CAT's MAS attack at the target budget; skipped for ``sac``),
            ``best_response`` (fresh SAC adversaries, see :mod:`rl.robustness.best_response`, and the fixed
            strategies), ``both`` or ``none``.
        best_response: the attackers' settings (default :class:`AttackSettings` ``()``: 2 seeds, fixed strategies on).
        sweep_size: points of each 1-D sweep (0: no sweeps; the spec: 11).
        sweep_episodes: episodes per sweep point (``None``: ``episodes_per_cell``).
        weights_only: build the players (and best-response adversaries) from the run's config and read only network
            parameters from the SB3 zips (:func:`rl.qarl.checkpoint.load_policies`); ``False``: SB3's ``load``,
            which unpickles objects stored in the zips (runs code from them).
    """
    sweep_episodes = int(episodes_per_cell if sweep_episodes is None else sweep_episodes)
    for name, value in (
        ("episodes_per_cell", episodes_per_cell),
        ("eval_episodes", eval_episodes),
        ("sweep_episodes", sweep_episodes),
    ):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    check_choice(attack, ATTACKS, "attack")
    check_choice(mp_context, mp.get_all_start_methods(), "mp_context")
    info = inspect_run(run_dir, env)
    grid = make_grid(info.env, grid_size, mass_range, friction_range)
    sweeps = sweep_values(info.env, sweep_size, mass_range, friction_range)
    start = time.perf_counter()
    eval_horizon = int(horizon if horizon is not None else info.config.budget.horizon)
    settings = None
    learned: list[dict[str, Any]] = []  # one entry per saved SAC attacker: seed, budget, path
    if attack in ("best_response", "both"):
        settings = best_response if best_response is not None else AttackSettings()
        for attacker_seed in settings.attacker_seeds:
            paths, trained = get_attackers(
                info.root, replace(settings, seed=attacker_seed), eval_horizon, device, progress, weights_only
            )
            learned += [{"seed": attacker_seed, "budget": k, "path": p} for k, p in paths.items()]
            where, done = next(iter(paths.values())).parent, "trained" if trained else "reused"
            print(f"{info.label}: best-response adversary (seed {attacker_seed}) {done}: {where}")
    greedy = settings.deterministic if settings is not None else True
    fixed = settings is not None and settings.fixed
    evaluator = Evaluator(str(info.root), horizon, device, [str(a["path"]) for a in learned], greedy, weights_only, fixed)
    co_trained = attack in ("co_trained", "both") and (evaluator.force_adversary or evaluator.action_adversary is not None)
    tasks = make_tasks(
        grid,
        int(episodes_per_cell),
        int(eval_episodes),
        int(seed),
        co_trained,
        len(evaluator.attackers),
        sweeps,
        sweep_episodes,
    )
    n_workers = max(1, min(int(workers) if workers else len(os.sched_getaffinity(0)), len(tasks)))
    results = run_tasks(
        info.root,
        tasks,
        n_workers,
        horizon,
        device,
        mp_context,
        progress,
        desc=info.label,
        attackers=[str(a["path"]) for a in learned],
        evaluator=evaluator,
    )
    seconds = time.perf_counter() - start

    nominal: dict[int, tuple[float, ...]] = {}
    attacked: dict[int, tuple[float, ...]] = {}
    by_attacker: list[dict[int, tuple[float, ...]]] = [{} for _ in evaluator.attackers]
    cells: list[list[list[float]]] = [[[] for _ in grid.friction_factors] for _ in grid.mass_factors]
    sweep_returns: dict[str, list[list[float]]] = {name: [[] for _ in values] for name, values in sweeps.items()}
    failures: list[dict[str, Any]] = []
    for r in results:
        t = r.task
        if r.error is not None:
            failures.append(
                {
                    "kind": t.kind,
                    "i": t.i,
                    "j": t.j,
                    "mass_factor": t.mass_factor,
                    "friction_factor": t.friction_factor,
                    "error": r.error,
                }
            )
        elif t.kind == "nominal":
            nominal[t.i] = r.returns
        elif t.kind == "adversary":
            attacked[t.i] = r.returns
        elif t.kind == "best_response":
            by_attacker[t.j][t.i] = r.returns
        elif t.kind in SWEEPS:
            sweep_returns[SWEEPS[t.kind]][t.i] = list(r.returns)
        else:
            cells[t.i][t.j] = list(r.returns)
    attacker_returns = [[v for i in sorted(e) for v in e[i]] for e in by_attacker]
    records = [
        {
            "name": f"sac_s{a['seed']}@{a['budget']}",
            "kind": "sac",
            "seed": a["seed"],
            "budget": a["budget"],
            "path": str(a["path"]),
            "returns": returns,
        }
        for a, returns in zip(learned, attacker_returns[: len(learned)], strict=True)
    ]
    records += [
        {"name": name, "kind": "fixed", "description": describe(name), "returns": returns}
        for name, returns in zip(evaluator.fixed_names, attacker_returns[len(learned) :], strict=True)
    ]
    by_budget: dict[int, list[float]] = {}  # every seed's episodes, seed-major
    for record in records[: len(learned)]:
        by_budget.setdefault(record["budget"], []).extend(record["returns"])
    return RobustnessResult(
        run=str(info.root),
        env=info.env,
        algo=info.algo,
        seed=info.seed,
        checkpoint=info.checkpoint.name,
        env_steps=info.env_steps,
        horizon=int(horizon if horizon is not None else info.config.budget.horizon),
        mass_body=grid.mass_body,
        mass_factors=[float(v) for v in grid.mass_factors],
        friction_factors=[float(v) for v in grid.friction_factors],
        episodes_per_cell=int(episodes_per_cell),
        nominal_returns=[v for k in sorted(nominal) for v in nominal[k]],
        adversary_returns=[v for k in sorted(attacked) for v in attacked[k]] if co_trained else None,
        grid_returns=cells,
        failures=sorted(failures, key=lambda f: (f["kind"], f["i"], f["j"])),
        seconds=seconds,
        cpu_seconds=sum(r.cpu_seconds for r in results),
        env_steps_evaluated=sum(sum(r.lengths) for r in results),
        attack=attack,
        best_response_steps=settings.steps if settings is not None else None,
        best_response_returns=dict(sorted(by_budget.items())) if settings else None,
        best_response_dir=str(Path(learned[0]["path"]).parent) if learned else None,
        best_response_settings=asdict(settings) if settings is not None else None,
        sweep_factors={name: [float(v) for v in values] for name, values in sweeps.items()},
        sweep_returns=sweep_returns,
        attackers=records if settings is not None else None,
    )


def evaluate(cfg: DictConfig) -> tuple[list[RobustnessResult], dict[str, str]]:
    """The body of ``scripts/eval_robustness.py``: evaluate every run matched by ``cfg.run`` and write its results.

    Several evaluations of one run may run at once (e.g. ``-m attack=best_response,both`` under the joblib
    launcher): each attacker is trained once under its folder's lock (:func:`rl.robustness.best_response.get_attackers`)
    and each evaluation writes its results and TensorBoard summaries holding ``<run>/.robustness.lock``, so the files
    are those of one evaluation, whole (the later one's).

    Returns:
        The results, and the runs that could not be evaluated with the reason (a single run given
        explicitly raises instead).
    """
    import torch as th

    th.set_num_threads(1)  # the work is in the pool's processes, one torch thread each
    check_choice(str(cfg.attack), ATTACKS, "attack")
    settings_from_config(cfg.best_response)  # bad attacker settings fail before anything runs
    if int(cfg.sweep_size) < 0:
        raise ValueError(f"sweep_size must be a non-negative integer (0: no sweeps), got {cfg.sweep_size!r}")
    if cfg.sweep_episodes is not None and int(cfg.sweep_episodes) < 1:
        raise ValueError(f"sweep_episodes must be a positive integer (or null), got {cfg.sweep_episodes!r}")
    runs = find_runs(cfg.run)
    results: list[RobustnessResult] = []
    errors: dict[str, str] = {}
    for run in runs:
        try:
            result = evaluate_run(
                run,
                grid_size=int(cfg.grid_size),
                episodes_per_cell=int(cfg.episodes_per_cell),
                eval_episodes=int(cfg.eval_episodes),
                seed=int(cfg.seed),
                workers=cfg.workers,
                horizon=cfg.horizon,
                env=cfg.expect_env,
                mass_range=cfg.mass_range,
                friction_range=cfg.friction_range,
                device=str(cfg.device),
                mp_context=str(cfg.mp_context),
                progress=bool(cfg.progress),
                attack=str(cfg.attack),
                best_response=settings_from_config(cfg.best_response),
                sweep_size=int(cfg.sweep_size),
                sweep_episodes=cfg.sweep_episodes,
                weights_only=bool(cfg.get("weights_only", False)),
            )
        except ValueError as e:  # NotARunError included
            if len(runs) == 1:
                raise
            errors[str(run)] = str(e)
            print(f"skipped {run}: {e}")
            continue
        out = Path(cfg.out) / run.parent.name / run.name if cfg.out and len(runs) > 1 else Path(cfg.out or run / "robustness")
        with locked(Path(result.run) / RESULTS_LOCK, f"writing the results of {result.run}"):
            write_results(result, out)  # the files of one result, whole (a later evaluation's replace them)
            if cfg.tensorboard:
                log_to_tensorboard(result, cfg)  # one HParams session: neither deletes the other's mid-write
        print(summary_line(result) + f" -> {out}")
        for failure in result.failures:
            print(
                f"  failed {failure['kind']} cell ({failure['i']}, {failure['j']}) mass x{failure['mass_factor']:.3g} "
                f"friction x{failure['friction_factor']:.3g}: {failure['error'].splitlines()[0]}"
            )
        results.append(result)
    return results, errors

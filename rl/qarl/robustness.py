"""Robustness of a trained QARL run: nominal return, return under attack, and a mass x friction grid (specs/qarl.md §8).

For each run the protagonist is evaluated (sampled actions, undiscounted returns, :func:`rl.qarl.evaluation.run_episodes`)

* on the nominal model with zero force (``eval_episodes`` episodes),
* against its co-trained adversary at temperature 0 (``attack=co_trained``, the paper's protocol; "n/a" for methods
  without a force adversary),
* against a fresh best-response adversary trained against the frozen protagonist (``attack=best_response``,
  :mod:`rl.qarl.best_response`; beyond the paper's protocol, and the same for every method including ``sac``),
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

import json
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from omegaconf import DictConfig

from envs.adversarial.demo import make_game
from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.policies import SupportsPredict
from envs.adversarial.specs import get_env_spec
from rl.common.registry import check_choice
from rl.qarl.best_response import AttackSettings, Greedy, get_attackers, load_attacker, settings_from_config
from rl.qarl.checkpoint import NotARunError, QARLPolicies, find_run, glob_run_dirs, load_policies
from rl.qarl.evaluation import run_episodes
from rl.qarl.modes import resolve_mode

# appended kinds keep the seeds of the older ones unchanged
KINDS = ("nominal", "adversary", "grid", "best_response", "sweep_mass", "sweep_friction")
ATTACKS = ("co_trained", "best_response", "both", "none")
SWEEPS = {"sweep_mass": "mass", "sweep_friction": "friction"}


class Grid(NamedTuple):
    """The mass x friction grid: factors of the nominal model."""

    mass_factors: np.ndarray
    friction_factors: np.ndarray
    mass_body: str


def make_grid(
    env: str,
    size: int = 11,
    mass_range: Sequence[float] | None = None,
    friction_range: Sequence[float] | None = None,
) -> Grid:
    """The ``size x size`` grid of ``env``; ranges default to the env's spec (``mass_factors``, ``friction_factors``)."""
    spec = get_env_spec(env)
    if int(size) < 1:
        raise ValueError(f"grid size must be a positive integer, got {size!r}")
    ranges = []
    for name, given, default in (
        ("mass_range", mass_range, spec.mass_factors),
        ("friction_range", friction_range, spec.friction_factors),
    ):
        low, high = (float(v) for v in (given if given is not None else default))
        if not (np.isfinite(low) and np.isfinite(high)) or low > high:
            raise ValueError(f"{name} must be [low, high] with low <= high, got {[low, high]}")
        ranges.append(np.linspace(low, high, int(size)))
    return Grid(ranges[0], ranges[1], spec.mass_body)


def episode_seeds(seed: int, kind: str, i: int, j: int, episodes: int) -> np.ndarray:
    """Deterministic reset seeds of the work item ``(kind, i, j)`` (independent of workers and scheduling)."""
    entropy = [int(seed), KINDS.index(kind), int(i), int(j)]
    return np.random.SeedSequence(entropy).generate_state(int(episodes), dtype=np.uint32).astype(np.int64)


class Task(NamedTuple):
    """One piece of parallel work: some episodes of one kind and, for the grid, one cell."""

    kind: str
    i: int
    j: int
    mass_factor: float
    friction_factor: float
    seeds: tuple[int, ...]


class TaskResult(NamedTuple):
    """A finished task: its returns, or the error that stopped it."""

    task: Task
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    error: str | None
    seconds: float
    cpu_seconds: float = 0.0


def sweep_values(
    env: str, size: int, mass_range: Sequence[float] | None = None, friction_range: Sequence[float] | None = None
) -> dict[str, np.ndarray]:
    """The 1-D sweeps (specs/qarl.md §8): ``size`` values of each grid axis over its range (``{}`` for 0)."""
    if int(size) < 0:
        raise ValueError(f"sweep_size must be a non-negative integer, got {size!r}")
    if int(size) == 0:
        return {}
    axes = make_grid(env, int(size), mass_range, friction_range)
    return {"mass": axes.mass_factors, "friction": axes.friction_factors}


def make_tasks(
    grid: Grid,
    episodes_per_cell: int,
    eval_episodes: int,
    seed: int,
    adversary: bool,
    attackers: int = 0,
    sweeps: dict[str, np.ndarray] | None = None,
    sweep_episodes: int = 1,
) -> list[Task]:
    """All work of one run.

    Nominal, co-trained-adversary and best-response episodes are one task each (they are long; the best-response
    episodes of every attacker budget ``j`` share the seeds ``(best_response, k)``), then the grid cells, then the
    1-D sweep points.
    """
    tasks: list[Task] = []
    for kind in ("nominal", "adversary") if adversary else ("nominal",):
        seeds = episode_seeds(seed, kind, 0, 0, eval_episodes)
        tasks += [Task(kind, k, 0, 1.0, 1.0, (int(s),)) for k, s in enumerate(seeds)]
    for j in range(int(attackers)):
        seeds = episode_seeds(seed, "best_response", 0, 0, eval_episodes)
        tasks += [Task("best_response", k, j, 1.0, 1.0, (int(s),)) for k, s in enumerate(seeds)]
    for i, mass in enumerate(grid.mass_factors):
        for j, friction in enumerate(grid.friction_factors):
            seeds = episode_seeds(seed, "grid", i, j, episodes_per_cell)
            tasks.append(Task("grid", i, j, float(mass), float(friction), tuple(int(s) for s in seeds)))
    for kind, name in SWEEPS.items():
        for i, value in enumerate((sweeps or {}).get(name, ())):
            seeds = episode_seeds(seed, kind, i, 0, sweep_episodes)
            mass, friction = (float(value), 1.0) if name == "mass" else (1.0, float(value))
            tasks.append(Task(kind, i, 0, mass, friction, tuple(int(s) for s in seeds)))
    return tasks


@dataclass
class RunInfo:
    """What the evaluation needs to know about a run, read without loading any network."""

    root: Path
    config: DictConfig
    checkpoint: Path
    env: str
    algo: str
    seed: int
    env_steps: int

    @property
    def label(self) -> str:
        """``env/algo/s<seed>``."""
        return f"{self.env}/{self.algo}/s{self.seed}"


def inspect_run(run_dir: str | Path, env: str | None = None) -> RunInfo:
    """Check that ``run_dir`` is a finished run with both checkpoints it needs (and of ``env``, if given)."""
    root, cfg, checkpoint = find_run(run_dir)
    if not (checkpoint / "protagonist.zip").exists():
        raise NotARunError(f"{str(root)!r}: checkpoint {checkpoint.name} has no protagonist.zip")
    mode = resolve_mode(cfg.algo)
    if mode.adversary and not (checkpoint / "adversary.zip").exists():
        raise NotARunError(
            f"{str(root)!r}: algo={cfg.algo.name} needs an adversary but {checkpoint.name} has no adversary.zip"
        )
    if env is not None and env != cfg.env.name:
        get_env_spec(env)  # an unknown name gets the list of valid ones
        raise ValueError(
            f"{str(root)!r} was trained on env={cfg.env.name}, not env={env}; a policy is only evaluated on its own env"
        )
    state = json.loads((checkpoint / "state.json").read_text())
    steps = int(state.get("trainer", {}).get("env_steps", 0))
    return RunInfo(root, cfg, checkpoint, str(cfg.env.name), str(cfg.algo.name), int(cfg.seed), steps)


def find_runs(patterns: str | Sequence[str]) -> list[Path]:
    """Run folders matching glob patterns; a folder that is not a run is searched for runs below it.

    Raises:
        NotARunError: when a pattern matches nothing or no run is found.
    """

    def is_run(path: Path) -> bool:
        return (path / "config.yaml").exists() and (path / "checkpoints").is_dir()

    return glob_run_dirs(patterns, is_run, "run directory (a folder with config.yaml and checkpoints/)")


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
        weights_only: bool = False,
    ) -> None:
        self.key = (str(run_dir), horizon, device, tuple(attackers), greedy_attackers, weights_only)
        self.greedy_attackers, self.weights_only = greedy_attackers, weights_only
        self.policies: QARLPolicies = load_policies(run_dir, device=device, weights_only=weights_only)
        cfg = self.policies.config
        self.mode = resolve_mode(cfg.algo)
        self.spec = get_env_spec(cfg.env.name)
        self.mass_body = self.spec.mass_body
        env_cfg = dict(cfg.env)
        env_cfg["max_episode_steps"] = int(horizon if horizon is not None else cfg.budget.horizon)
        self.game: AdversarialMujocoEnv = make_game(env_cfg)
        self.attackers: list[Any] = [
            load_attacker(path, self.policies.protagonist, self.mode.context, env_cfg, device, weights_only)
            for path in attackers
        ]
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


def _init_worker(
    run_dir: str,
    horizon: int | None,
    device: str,
    attackers: tuple[str, ...] = (),
    greedy: bool = True,
    weights_only: bool = False,
) -> None:
    """Pool initializer: one torch thread, load the policies once (a forked worker reuses the parent's copy)."""
    global _WORKER, _WORKER_ERROR
    import torch as th

    th.set_num_threads(1)
    if _WORKER is not None and _WORKER.key == (run_dir, horizon, device, tuple(attackers), greedy, weights_only):
        return
    try:
        _WORKER = Evaluator(run_dir, horizon, device, attackers, greedy, weights_only)
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
    weights_only: bool = False,
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
        evaluator = Evaluator(str(run_dir), horizon, device, attackers, greedy_attackers, weights_only)
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
            initargs = (str(run_dir), horizon, device, attackers, evaluator.greedy_attackers, evaluator.weights_only)
            with ctx.Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
                for result in pool.imap_unordered(_run_task, tasks, chunksize=1):
                    results.append(result)
                    bar.update(1)
    finally:
        _WORKER = None
        evaluator.game.close()
        bar.close()
    return results


# ------------------------------------------------------------------------------------------ results
@dataclass
class RobustnessResult:
    """Everything :func:`evaluate_run` measured for one run (JSON-serialisable with :meth:`to_json`)."""

    run: str
    env: str
    algo: str
    seed: int
    checkpoint: str
    env_steps: int
    horizon: int
    mass_body: str
    mass_factors: list[float]
    friction_factors: list[float]
    episodes_per_cell: int
    nominal_returns: list[float]
    adversary_returns: list[float] | None
    grid_returns: list[list[list[float]]]  # [mass][friction] -> episode returns ([] when the cell failed)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    env_steps_evaluated: int = 0
    attack: str = "co_trained"
    best_response_steps: int | None = None
    best_response_returns: dict[int, list[float]] | None = None  # attacker budget -> episode returns
    best_response_dir: str | None = None
    best_response_settings: dict[str, Any] | None = None
    sweep_factors: dict[str, list[float]] = field(default_factory=dict)  # "mass"/"friction" -> values
    sweep_returns: dict[str, list[list[float]]] = field(default_factory=dict)  # -> [point] -> episode returns

    @property
    def return_nominal(self) -> float:
        """Mean nominal return."""
        return float(np.mean(self.nominal_returns)) if self.nominal_returns else float("nan")

    @property
    def return_vs_adversary(self) -> float | None:
        """Mean return against the temperature-0 adversary (``None`` without one)."""
        if self.adversary_returns is None:
            return None
        return float(np.mean(self.adversary_returns)) if self.adversary_returns else float("nan")

    @property
    def return_vs_best_response(self) -> float | None:
        """Mean return against the best-response adversary at the main budget (``None`` when not evaluated)."""
        if self.best_response_returns is None or self.best_response_steps is None:
            return None
        returns = self.best_response_returns.get(self.best_response_steps, [])
        return float(np.mean(returns)) if returns else float("nan")

    @property
    def best_response_by_budget(self) -> dict[int, float]:
        """Mean return against the attacker saved at each budget."""
        return {k: float(np.mean(v)) if v else float("nan") for k, v in sorted((self.best_response_returns or {}).items())}

    def sweep_mean(self, name: str) -> np.ndarray:
        """Mean return at each point of the ``mass`` or ``friction`` sweep; NaN where it failed."""
        return np.array([np.mean(r) if r else np.nan for r in self.sweep_returns.get(name, [])], dtype=float)

    def sweep_average(self, name: str) -> float:
        """Mean over the points of one sweep that finished (NaN without the sweep)."""
        values = self.sweep_mean(name)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    @property
    def grid_mean(self) -> np.ndarray:
        """Mean return of each cell, ``(n_mass, n_friction)``; NaN where the cell failed."""
        return np.array([[np.mean(c) if c else np.nan for c in row] for row in self.grid_returns], dtype=float)

    @property
    def grid_average(self) -> float:
        """Mean over the cells that finished."""
        grid = self.grid_mean
        return float(np.nanmean(grid)) if np.isfinite(grid).any() else float("nan")

    def to_json(self) -> dict[str, Any]:
        """A plain dict with the raw returns and the summaries."""
        data = dict(self.__dict__)
        data |= {
            "return_nominal": self.return_nominal,
            "return_vs_adversary": self.return_vs_adversary,
            "return_vs_best_response": self.return_vs_best_response,
            "best_response_by_budget": {str(k): v for k, v in self.best_response_by_budget.items()},
            "best_response_returns": (
                None if self.best_response_returns is None else {str(k): v for k, v in self.best_response_returns.items()}
            ),
            "grid_average": self.grid_average,
            "grid_mean": [[None if np.isnan(v) else float(v) for v in row] for row in self.grid_mean],
            "sweep_mean": {n: [None if np.isnan(v) else float(v) for v in self.sweep_mean(n)] for n in self.sweep_factors},
            "sweep_mass_average": self.sweep_average("mass"),
            "sweep_friction_average": self.sweep_average("friction"),
        }
        return data


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
        attack: ``co_trained`` (the run's own adversary at temperature 0; skipped for methods without a force
            adversary), ``best_response`` (a fresh SAC adversary, see :mod:`rl.qarl.best_response`), ``both`` or
            ``none``.
        best_response: the attacker's settings (default :class:`AttackSettings` ``()``).
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
    attackers: dict[int, Path] = {}
    settings = None
    if attack in ("best_response", "both"):
        settings = best_response if best_response is not None else AttackSettings()
        attackers, trained = get_attackers(info.root, settings, eval_horizon, device, progress, weights_only)
        where = next(iter(attackers.values())).parent
        print(f"{info.label}: best-response adversary {'trained' if trained else 'reused'}: {where}")
    greedy = settings.deterministic if settings is not None else True
    evaluator = Evaluator(str(info.root), horizon, device, [str(p) for p in attackers.values()], greedy, weights_only)
    co_trained = attack in ("co_trained", "both") and evaluator.force_adversary
    tasks = make_tasks(
        grid, int(episodes_per_cell), int(eval_episodes), int(seed), co_trained, len(attackers), sweeps, sweep_episodes
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
        attackers=[str(p) for p in attackers.values()],
        evaluator=evaluator,
    )
    seconds = time.perf_counter() - start

    nominal: dict[int, tuple[float, ...]] = {}
    attacked: dict[int, tuple[float, ...]] = {}
    budgets = list(attackers)
    best: dict[int, dict[int, tuple[float, ...]]] = {k: {} for k in budgets}
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
            best[budgets[t.j]][t.i] = r.returns
        elif t.kind in SWEEPS:
            sweep_returns[SWEEPS[t.kind]][t.i] = list(r.returns)
        else:
            cells[t.i][t.j] = list(r.returns)
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
        best_response_returns={k: [v for i in sorted(e) for v in e[i]] for k, e in best.items()} if settings else None,
        best_response_dir=str(next(iter(attackers.values())).parent) if attackers else None,
        best_response_settings=asdict(settings) if settings is not None else None,
        sweep_factors={name: [float(v) for v in values] for name, values in sweeps.items()},
        sweep_returns=sweep_returns,
    )


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write one CSV table atomically (:func:`rl.common.io.atomic_write_text`)."""
    import csv
    import io

    from rl.common.io import atomic_write_text

    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def write_results(result: RobustnessResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``robustness.json``, ``grid.csv`` (one row per episode) and ``heatmap.png`` into ``out_dir``."""
    from rl.common.io import atomic_write_text
    from rl.qarl.plots import heatmap_figure, sweep_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "robustness.json", "csv": out / "grid.csv", "heatmap": out / "heatmap.png"}
    if result.sweep_factors:
        paths |= {"sweeps_csv": out / "sweeps.csv", "sweeps": out / "sweeps.png"}
    atomic_write_text(paths["json"], json.dumps(result.to_json(), indent=1))
    errors = {(f["i"], f["j"]): f["error"].splitlines()[0] for f in result.failures if f["kind"] == "grid"}
    grid_rows: list[list[Any]] = []
    for i, mass in enumerate(result.mass_factors):
        for j, friction in enumerate(result.friction_factors):
            returns = result.grid_returns[i][j]
            if not returns:
                grid_rows.append([i, j, mass, friction, "", "", errors.get((i, j), "")])
            grid_rows.extend([i, j, mass, friction, k, value, ""] for k, value in enumerate(returns))
    _write_csv(
        paths["csv"],
        ["mass_index", "friction_index", "mass_factor", "friction_factor", "episode", "return", "error"],
        grid_rows,
    )
    import matplotlib.pyplot as plt

    fig = heatmap_figure(result)
    fig.savefig(paths["heatmap"], dpi=110)
    plt.close(fig)
    if result.sweep_factors:
        errors = {(f["kind"], f["i"]): f["error"].splitlines()[0] for f in result.failures if f["kind"] in SWEEPS}
        kinds = {name: kind for kind, name in SWEEPS.items()}
        sweep_rows: list[list[Any]] = []
        for name, values in result.sweep_factors.items():
            for i, value in enumerate(values):
                first, second = (str(value), "") if name == "mass" else ("", str(value))  # "": nominal
                returns = result.sweep_returns[name][i]
                if not returns:
                    sweep_rows.append([name, i, first, second, "", "", errors.get((kinds[name], i), "")])
                sweep_rows.extend([name, i, first, second, k, ret, ""] for k, ret in enumerate(returns))
        _write_csv(
            paths["sweeps_csv"],
            ["metric", "index", "mass_factor", "friction_factor", "episode", "return", "error"],
            sweep_rows,
        )
        fig = sweep_figure(result)
        fig.savefig(paths["sweeps"], dpi=110)
        plt.close(fig)
    return paths


def robustness_metrics(result: RobustnessResult) -> dict[str, float]:
    """The summaries of a result as ``robustness/<name>`` scalars (what was not evaluated is left out)."""
    values: dict[str, float | None] = {
        "return_nominal": result.return_nominal,
        "return_vs_adversary": result.return_vs_adversary,
        "return_vs_best_response": result.return_vs_best_response,
        "grid_average": result.grid_average,
    }
    for name in result.sweep_factors:
        values[f"sweep_{name}_average"] = result.sweep_average(name)
    return {f"robustness/{k}": float(v) for k, v in values.items() if v is not None}


def log_to_tensorboard(result: RobustnessResult, settings: DictConfig | None = None) -> None:
    """Add the summaries, heatmap and sweeps to the run's own TensorBoard (``robustness/`` tags, at its env steps).

    Also writes a TensorBoard HParams session (the run's config, the evaluation ``settings`` under ``eval.``, and
    the summaries) into ``<run>/tensorboard/hparams_robustness``.
    """
    import matplotlib.pyplot as plt
    from omegaconf import OmegaConf

    from rl.common import make_writer
    from rl.common.tensorboard import log_hparams
    from rl.qarl.plots import heatmap_figure, sweep_figure

    writer = make_writer(result.run)
    step = result.env_steps
    metrics = robustness_metrics(result)
    for tag, value in metrics.items():
        writer.add_scalar(tag, value, step)
    for budget, value in result.best_response_by_budget.items():
        writer.add_scalar("robustness/return_vs_best_response_by_budget", value, budget)
    writer.add_figure("robustness/heatmap", heatmap_figure(result), step, close=True)
    if result.sweep_factors:
        writer.add_figure("robustness/sweeps", sweep_figure(result), step, close=True)
    plt.close("all")
    writer.close()
    run_cfg = OmegaConf.load(Path(result.run) / "config.yaml")
    assert isinstance(run_cfg, DictConfig)
    hp: dict[str, Any] = {str(k): v for k, v in OmegaConf.to_container(run_cfg, resolve=True).items()}  # type: ignore[union-attr]
    if settings is not None:
        hp["eval"] = OmegaConf.to_container(settings, resolve=True)
    log_hparams(Path(result.run) / "tensorboard" / "hparams_robustness", hp, metrics)


def summary_line(result: RobustnessResult) -> str:
    """One line: the three numbers of a run."""
    attacked, best = result.return_vs_adversary, result.return_vs_best_response
    vs = f"{attacked:.1f}" if attacked is not None else "n/a"
    text = f"{result.env}/{result.algo}/s{result.seed}: nominal {result.return_nominal:.1f}, vs co-trained adversary {vs}"
    if best is not None:
        by_budget = ", ".join(f"{k}: {v:.1f}" for k, v in result.best_response_by_budget.items())
        text += f", vs best response {best:.1f} (by attacker budget {by_budget})"
    text += f", grid average {result.grid_average:.1f}"
    for name in result.sweep_factors:
        text += f", {name} sweep average {result.sweep_average(name):.1f}"
    return text + f" ({len(result.failures)} failed, {result.seconds:.1f} s)"


def evaluate(cfg: DictConfig) -> tuple[list[RobustnessResult], dict[str, str]]:
    """The body of ``scripts/eval_robustness.py``: evaluate every run matched by ``cfg.run`` and write its results.

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
        write_results(result, out)
        if cfg.tensorboard:
            log_to_tensorboard(result, cfg)
        print(summary_line(result) + f" -> {out}")
        for failure in result.failures:
            print(
                f"  failed {failure['kind']} cell ({failure['i']}, {failure['j']}) mass x{failure['mass_factor']:.3g} "
                f"friction x{failure['friction_factor']:.3g}: {failure['error'].splitlines()[0]}"
            )
        results.append(result)
    return results, errors

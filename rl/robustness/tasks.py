"""The evaluation's units of work: the mass x friction grid, the 1-D sweeps and one seeded task per episode batch.

Every episode has its own seed, derived from ``(seed, kind, i, j)`` with NumPy's ``SeedSequence``, so results do not
depend on the number of workers or on the order in which they finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from envs.adversarial.specs import get_env_spec

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

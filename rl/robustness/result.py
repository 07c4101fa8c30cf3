"""The robustness of one run as data: :class:`RobustnessResult`, its headline metrics and its one-line summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


# ------------------------------------------------------------------------------------------ results
@dataclass
class RobustnessResult:
    """Everything :func:`~rl.robustness.evaluate.evaluate_run` measured for one run (JSON: :meth:`to_json`)."""

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

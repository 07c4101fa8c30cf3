"""The report's figures: learning curves, seed-mean heat maps, sweeps, performance and robustness profiles."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from rl.robustness.report.groups import Report, score_columns
from rl.robustness.report.records import METRIC_TITLES
from rl.robustness.report.stats import performance_profiles


def plot_performance_profiles(
    report: Report, metrics_: Sequence[str], reps: int, path: Path, groups: Sequence[str] | None = None, label: str = ""
) -> bool:
    """Performance profiles (rliable; fraction of runs x envs above a normalised score), one panel per metric.

    ``groups``: the groups of one aggregate (:func:`~rl.robustness.report.groups.aggregate_sets`; default: every
    group, for a report of one setting); ``label`` names its setting in the titles.
    """
    import matplotlib.pyplot as plt

    from rl.robustness.plots import plt as _agg  # noqa: F401  (selects the Agg backend)

    groups = list(groups if groups is not None else report.envs)
    panels = []
    for metric in metrics_:
        columns, _ = score_columns(report, metric, groups)
        columns = {k: v for k, v in columns.items() if v and all(c.size and np.isfinite(c).all() for c in v)}
        if groups and columns:
            panels.append((metric, columns))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), layout="constrained", squeeze=False)
    for ax, (metric, columns) in zip(axes[0], panels, strict=True):
        values = np.concatenate([c for v in columns.values() for c in v])
        taus = np.linspace(min(0.0, values.min()), max(1.0, values.max()), 41)
        profiles, cis = performance_profiles(columns, taus, reps)
        for method, profile in profiles.items():
            line = ax.plot(taus, profile, label=method)[0]
            ax.fill_between(taus, cis[method][0], cis[method][1], color=line.get_color(), alpha=0.2)
        ax.set_xlabel("normalised score tau")
        ax.set_ylabel("fraction of runs with score > tau")
        ax.set_title(f"performance profile: {METRIC_TITLES[metric]}" + (f" [{label}]" if label else ""), fontsize=9)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _grid_cells(report: Report, group: str, method: str) -> np.ndarray:
    """(seeds, cells): the grid-mean return of every cell of each of the method's runs that has a grid."""
    return np.array([np.array(r.grid["grid_mean"], dtype=float).ravel() for r in report.runs_of(group, method) if r.grid])


def robustness_profiles(report: Report, group: str, levels: int = 41) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method: return levels and the fraction of grid cells (all seeds' cells) whose return exceeds each."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cells = {method: _grid_cells(report, group, method) for method in report.methods(group)}
    cells = {m: c for m, c in cells.items() if c.size}
    if not cells:
        return out
    finite = np.concatenate([c[np.isfinite(c)] for c in cells.values()])
    if finite.size == 0:
        return out
    taus = np.linspace(float(finite.min()), float(finite.max()), levels)
    for method, c in cells.items():
        out[method] = (taus, np.array([float(np.mean(np.nan_to_num(c, nan=-np.inf) > t)) for t in taus]))
    return out


def plot_robustness_profile(report: Report, group: str, reps: int, path: Path) -> bool:
    """Fraction of grid cells above each return level, per method, with a stratified-bootstrap band over seeds."""
    import matplotlib.pyplot as plt

    from rl.robustness.plots import plt as _agg  # noqa: F401  (selects the Agg backend)

    profiles = robustness_profiles(report, group)
    if not profiles:
        return False
    fig, ax = plt.subplots(figsize=(5.2, 3.8), layout="constrained")
    for method, (taus, fraction) in profiles.items():
        line = ax.plot(taus, fraction, label=method)[0]
        cells = _grid_cells(report, group, method)
        if len(cells) > 1 and np.isfinite(cells).all():
            _, cis = performance_profiles({method: list(cells.T)}, taus, reps)  # cells resampled over seeds
            ax.fill_between(taus, cis[method][0], cis[method][1], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("return level")
    ax.set_ylabel("fraction of grid cells above it")
    ax.set_title(f"{group}: robustness profile", fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_learning_curves(report: Report, env: str, tags: Sequence[str], points: int, path: Path) -> bool:
    """Mean and confidence band over seeds of each tag against protagonist env steps; ``False`` if nothing to draw."""
    import matplotlib.pyplot as plt

    from rl.robustness.plots import plt as _agg  # noqa: F401  (selects the Agg backend)

    fig, axes = plt.subplots(1, len(tags), figsize=(5 * len(tags), 3.6), layout="constrained", squeeze=False)
    drawn = False
    methods = report.methods(env)
    colour = {algo: f"C{i % 10}" for i, algo in enumerate(methods)}  # one colour per method in every panel
    for ax, tag in zip(axes[0], tags, strict=True):
        for algo in methods:
            curves = [r.curves[tag] for r in report.runs_of(env, algo) if tag in r.curves and len(r.curves[tag][0])]
            if not curves:
                continue
            lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
            steps = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
            ys = np.array([np.interp(steps, s, v) for s, v in curves])
            mean = ys.mean(axis=0)
            ax.plot(steps, mean, label=f"{algo} ({len(curves)})", color=colour[algo])
            if len(curves) > 1:
                t = float(stats.t.ppf(0.5 + report.confidence / 2.0, len(curves) - 1))
                half = t * ys.std(axis=0, ddof=1) / math.sqrt(len(curves))
                ax.fill_between(steps, mean - half, mean + half, color=colour[algo], alpha=0.2)
            drawn = True
        # training scalars are logged at the protagonist's env steps, so methods compare at equal protagonist samples
        ax.set_xlabel("protagonist env steps")
        ax.set_ylabel("return")
        ax.set_title(f"{env}: {tag}", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if drawn:
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def plot_heatmaps(report: Report, env: str, path: Path) -> bool:
    """Seed-mean grid of each method side by side, on one colour scale; ``False`` if no run has a grid."""
    import matplotlib.pyplot as plt

    from rl.robustness.plots import draw_heatmap

    panels = []
    env_name = report.env_of(env)
    for algo in report.methods(env):
        grids = [r.grid for r in report.runs_of(env, algo) if r.grid is not None]
        if not grids:
            continue
        axes_of = [(tuple(g["mass_factors"]), tuple(g["friction_factors"])) for g in grids]
        grids = [g for g, a in zip(grids, axes_of, strict=True) if a == axes_of[0]]  # seeds on the same grid only
        stack = np.array([[[np.nan if v is None else v for v in row] for row in g["grid_mean"]] for g in grids], dtype=float)
        with np.errstate(all="ignore"):
            mean = np.nanmean(stack, axis=0) if np.isfinite(stack).any() else stack[0]
        panels.append((algo, len(grids), mean, grids[0]))
    if not panels:
        return False
    finite = [p[2][np.isfinite(p[2])] for p in panels]
    values = np.concatenate(finite) if any(len(f) for f in finite) else np.array([0.0])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 0.8, 3.8), layout="constrained", squeeze=False)
    images = []
    for ax, (algo, n, mean, g) in zip(axes[0], panels, strict=True):
        title = f"{algo}: mean of {n} seed(s), grid avg {np.nanmean(mean):.1f}"
        images.append(
            draw_heatmap(
                ax, mean, g["mass_factors"], g["friction_factors"], title, g["mass_body"], values.min(), values.max(), env_name
            )
        )
    fig.suptitle(env, fontsize=10)
    fig.colorbar(images[-1], ax=list(axes[0]), label="return")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_sweeps(report: Report, group: str, path: Path) -> bool:
    """Seed-mean 1-D sweeps (mass, friction) of each method; ``False`` if no run has sweeps."""
    import matplotlib.pyplot as plt

    from rl.robustness.plots import grid_axis_labels

    names = ("mass", "friction")
    mass_body = next((r.grid["mass_body"] for r in report.runs_in(group) if r.grid), "torso")
    mass_label, second_label, _ = grid_axis_labels(report.env_of(group), mass_body)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained", squeeze=False)
    drawn = False
    for ax, name in zip(axes[0], names, strict=True):
        for method in report.methods(group):
            sweeps = [r.sweeps for r in report.runs_of(group, method) if r.sweeps and name in r.sweeps["factors"]]
            if not sweeps:
                continue
            factors = sweeps[0]["factors"][name]
            sweeps = [s for s in sweeps if s["factors"][name] == factors]
            ys = np.array([[np.nan if v is None else v for v in s["mean"][name]] for s in sweeps], dtype=float)
            with warnings.catch_warnings():  # a point that failed in every seed stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(ys, axis=0)
            ax.plot(factors, mean, marker="o", label=f"{method} ({len(sweeps)})")
            drawn = True
        ax.set_xlabel(mass_label if name == "mass" else second_label)
        ax.set_ylabel("return")
        ax.set_title(f"{group}: {name} sweep", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if drawn:
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn

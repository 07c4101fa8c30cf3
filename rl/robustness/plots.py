"""Matplotlib figures of QARL results (Agg backend, no display needed): robustness heatmaps and learning curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from rl.robustness.result import RobustnessResult


MAX_TICKS = 5


def grid_axis_labels(env: str, mass_body: str) -> tuple[str, str, bool]:
    """Labels of the robustness grid's (mass, second) axes for ``env``, and whether its values are factors.

    Gymnasium envs perturb by factors of the nominal model; the dm_control family sets the official absolute values
    (kg, or the second body's mass instead of friction for cartpole, pendulum, acrobot, ball_in_cup and reacher).
    An env this registry does not know gets factor labels.
    """
    from envs.adversarial.specs import get_env_spec

    try:
        spec = get_env_spec(env)
    except (KeyError, ValueError):
        return f"{mass_body} mass factor", "friction factor (all geoms)", True  # the wording of spec.grid_labels
    mass_label, second_label = spec.grid_labels
    return mass_label, second_label, not spec.grid_absolute


def set_factor_ticks(axis: Any, factors: Sequence[float], max_ticks: int = MAX_TICKS) -> None:
    """At most ``max_ticks`` evenly spread cell ticks (first and last included), small and, on x, slanted.

    Eleven ``.2g`` labels on a 4-inch panel ran into each other ("0.280.460.64..."); five fit any panel width
    the report uses.
    """
    n = len(factors)
    if n == 0:
        return
    ticks = sorted({round(float(k)) for k in np.linspace(0, n - 1, min(n, max_ticks))})
    axis.set_ticks(ticks, labels=[f"{factors[k]:.3g}" for k in ticks])
    axis.set_tick_params(labelsize=7)
    if axis.axis_name == "x":
        for label in axis.get_ticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")


def draw_heatmap(
    ax: Axes,
    grid: np.ndarray,
    mass_factors: Sequence[float],
    friction_factors: Sequence[float],
    title: str,
    mass_body: str,
    vmin: float | None = None,
    vmax: float | None = None,
    env: str = "",
) -> Any:
    """Draw a ``(mass, friction)`` grid of mean returns, one square per cell; failed (NaN) cells are grey.

    Axis labels follow ``env`` (:func:`grid_axis_labels`). For factor grids the nominal model (factors 1, 1) is
    marked with a red cross when it lies inside the grid; absolute (dm_control) grids get no cross.
    """
    mass_label, second_label, relative = grid_axis_labels(env, mass_body)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.8")
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    for axis, factors in ((ax.xaxis, friction_factors), (ax.yaxis, mass_factors)):
        set_factor_ticks(axis, factors)
    if relative and len(friction_factors) and len(mass_factors):
        inside = [min(f) <= 1.0 <= max(f) for f in (friction_factors, mass_factors)]
        if all(inside):
            x = np.interp(1.0, friction_factors, np.arange(len(friction_factors)))
            y = np.interp(1.0, mass_factors, np.arange(len(mass_factors)))
            ax.plot([x], [y], marker="+", color="red", markersize=10)
    ax.set_xlabel(second_label)
    ax.set_ylabel(mass_label)
    ax.set_title(title, fontsize=9)
    return image


def heatmap_figure(result: RobustnessResult) -> Figure:
    """The grid-mean return of one run."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    title = f"{result.env} {result.algo} seed {result.seed}: grid mean {result.grid_average:.1f}"
    image = draw_heatmap(
        ax, result.grid_mean, result.mass_factors, result.friction_factors, title, result.mass_body, env=result.env
    )
    fig.colorbar(image, ax=ax, label="return")
    return fig


def sweep_figure(result: RobustnessResult) -> Figure:
    """The 1-D sweeps of one run: mean return against the mass factor and against the friction factor."""
    names = list(result.sweep_factors)
    fig, axes = plt.subplots(
        1, max(1, len(names)), figsize=(4.2 * max(1, len(names)), 3.4), layout="constrained", squeeze=False
    )
    mass_label, second_label, relative = grid_axis_labels(result.env, result.mass_body)
    for ax, name in zip(axes[0], names, strict=False):
        ax.plot(result.sweep_factors[name], result.sweep_mean(name), marker="o")
        if relative:
            ax.axvline(1.0, color="red", lw=0.8, ls=":")
        ax.set_xlabel(mass_label if name == "mass" else second_label)
        ax.set_ylabel("return")
        ax.set_title(f"{result.env} {result.algo} seed {result.seed}: {name} sweep", fontsize=9)
    return fig

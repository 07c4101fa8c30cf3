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

    from rl.qarl.robustness import RobustnessResult


def draw_heatmap(
    ax: Axes,
    grid: np.ndarray,
    mass_factors: Sequence[float],
    friction_factors: Sequence[float],
    title: str,
    mass_body: str,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Any:
    """Draw a ``(mass, friction)`` grid of mean returns, one square per cell; failed (NaN) cells are grey.

    The nominal model (factors 1, 1) is marked with a red cross when it lies inside the grid.
    """
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.8")
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    for axis, factors in ((ax.xaxis, friction_factors), (ax.yaxis, mass_factors)):
        step = max(1, len(factors) // 6)
        ticks = list(range(0, len(factors), step))
        axis.set_ticks(ticks, labels=[f"{factors[k]:.2g}" for k in ticks])
    if len(friction_factors) and len(mass_factors):
        inside = [min(f) <= 1.0 <= max(f) for f in (friction_factors, mass_factors)]
        if all(inside):
            x = np.interp(1.0, friction_factors, np.arange(len(friction_factors)))
            y = np.interp(1.0, mass_factors, np.arange(len(mass_factors)))
            ax.plot([x], [y], marker="+", color="red", markersize=10)
    ax.set_xlabel("friction factor (all geoms)")
    ax.set_ylabel(f"mass factor ({mass_body})")
    ax.set_title(title, fontsize=9)
    return image


def heatmap_figure(result: RobustnessResult) -> Figure:
    """The grid-mean return of one run."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    title = f"{result.env} {result.algo} seed {result.seed}: grid mean {result.grid_average:.1f}"
    image = draw_heatmap(ax, result.grid_mean, result.mass_factors, result.friction_factors, title, result.mass_body)
    fig.colorbar(image, ax=ax, label="return")
    return fig

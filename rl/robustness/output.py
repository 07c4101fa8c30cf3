"""Writing a :class:`~rl.robustness.result.RobustnessResult`: ``robustness.json``, CSV tables, figures and TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rl.robustness.result import RobustnessResult, robustness_metrics
from rl.robustness.tasks import SWEEPS


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write one CSV table atomically (:func:`envs.common.io.atomic_write_text`)."""
    import csv
    import io

    from envs.common.io import atomic_write_text

    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def write_results(result: RobustnessResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``robustness.json``, ``grid.csv`` (one row per episode) and ``heatmap.png`` into ``out_dir``."""
    from envs.common.io import atomic_write_text
    from rl.robustness.plots import heatmap_figure, sweep_figure

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


def log_to_tensorboard(result: RobustnessResult, settings: DictConfig | None = None) -> None:
    """Add the summaries, heatmap and sweeps to the run's own TensorBoard (``robustness/`` tags, at its env steps).

    Also writes a TensorBoard HParams session (the run's config, the evaluation ``settings`` under ``eval.``, and
    the summaries) into ``<run>/tensorboard/hparams_robustness``.
    """
    import matplotlib.pyplot as plt
    from omegaconf import OmegaConf

    from envs.common import make_writer
    from envs.common.tensorboard import log_hparams
    from rl.robustness.plots import heatmap_figure, sweep_figure

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

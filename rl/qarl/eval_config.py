"""Config schemas of ``scripts/eval_robustness.py`` and ``scripts/report_qarl.py`` (Hydra ConfigStore)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from rl.common.config import RunConfig


@dataclass
class EvalRobustnessConfig(RunConfig):
    """``scripts/eval_robustness.py``: robustness of trained runs (specs/qarl.md §8).

    Attributes:
        run: a run directory, a glob, or a folder holding runs (``runs/train_qarl/Hopper__qarl__s0/*``).
        expect_env: if set, the env every run must have been trained on (a mismatch is an error).
        grid_size: cells per axis of the mass x friction grid.
        episodes_per_cell: episodes per grid cell (the paper: 1).
        eval_episodes: episodes of the nominal and adversary evaluations (the paper: 20).
        mass_range: ``[low, high]`` mass factors (``null``: the env spec's range).
        friction_range: ``[low, high]`` friction factors (``null``: the env spec's range).
        horizon: episode truncation (``null``: the run's ``budget.horizon``).
        workers: processes (``null``: all cores).
        mp_context: multiprocessing start method (``fork``, ``forkserver``, ``spawn``).
        out: results folder (``null``: ``<run>/robustness``); with several runs, ``<out>/<run name>``.
        tensorboard: also log the summaries and heatmap to the run's TensorBoard.
        progress: show the progress bar.
    """

    run: str = "???"
    expect_env: str | None = None
    grid_size: int = 11
    episodes_per_cell: int = 1
    eval_episodes: int = 20
    mass_range: list[float] | None = None
    friction_range: list[float] | None = None
    horizon: int | None = None
    workers: int | None = None
    mp_context: str = "fork"
    out: str | None = None
    tensorboard: bool = True
    progress: bool = True


@dataclass
class ReportQARLConfig(RunConfig):
    """``scripts/report_qarl.py``: a table per env and method over seeds, learning curves and heatmaps.

    Attributes:
        runs: run folders or globs (folders holding runs are searched).
        out: report folder (``null``: the Hydra run folder, ``runs/report_qarl/<name>/<date>``).
        source: where the three numbers come from: ``robustness`` (the robustness JSON; runs without one are
            skipped with a warning), ``tensorboard`` (the last ``eval/`` scalars; no grid average) or ``auto``
            (the JSON when present, else TensorBoard).
        confidence: the confidence level of the Student-t interval.
        curve_tags: TensorBoard scalars drawn as learning curves (x: training env steps).
        curve_points: points of the common step grid the seeds are interpolated on.
    """

    runs: list[str] = field(default_factory=lambda: ["runs/train_qarl"])
    out: str | None = None
    source: str = "auto"
    confidence: float = 0.95
    curve_tags: list[str] = field(default_factory=lambda: ["eval/return_nominal", "eval/return_vs_adversary"])
    curve_points: int = 50


def register_configs() -> None:
    """Store the schemas of ``eval_robustness`` and ``report_qarl`` in Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name="base_eval_robustness", node=EvalRobustnessConfig)
    cs.store(name="base_report_qarl", node=ReportQARLConfig)

"""Writing the report: `report.md`, CSV and figures (:func:`write_report`) and the `report_qarl` entry point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from envs.common.io import atomic_write_text
from envs.common.registry import check_choice
from rl.qarl.modes import ALGOS
from rl.robustness.report.compare import comparison_markdown, cost_markdown
from rl.robustness.report.figures import (
    plot_heatmaps,
    plot_learning_curves,
    plot_performance_profiles,
    plot_robustness_profile,
    plot_sweeps,
)
from rl.robustness.report.groups import Report, aggregate_sets, build_report
from rl.robustness.report.markdown import _slug, markdown, rliable_markdown, write_csv
from rl.robustness.report.records import METRICS, SOURCES, find_report_runs

"""Config keys (and key prefixes) that do not define the experiment: runs differing only in these are compared."""


def write_report(
    report: Report,
    out: Path,
    curve_tags: Sequence[str],
    curve_points: int,
    bootstrap_reps: int = 2000,
    primary_metric: str = "grid_average",
    compare_to: str | None = None,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv`` and the figures (learning curves, heatmaps, sweeps, profiles) into ``out``.

    ``compare_to``: a method set against each other method per metric (:mod:`.compare`); ``None``: no such section.
    """
    check_choice(primary_metric, METRICS, "primary_metric")
    if compare_to is not None:
        check_choice(compare_to, ALGOS, "compare_to")
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, list[str]] = {}
    for group in report.envs:
        slug = _slug(group)
        names = []
        for prefix, draw in (
            ("learning_curves", lambda p, g=group: plot_learning_curves(report, g, curve_tags, curve_points, p)),
            ("heatmaps", lambda p, g=group: plot_heatmaps(report, g, p)),
            ("sweeps", lambda p, g=group: plot_sweeps(report, g, p)),
            ("robustness_profile", lambda p, g=group: plot_robustness_profile(report, g, bootstrap_reps, p)),
        ):
            name = f"{prefix}_{slug}.png"
            if draw(out / name):
                names.append(name)
        images[group] = names
    extra = comparison_markdown(report, compare_to, bootstrap_reps) if compare_to is not None else []
    extra += rliable_markdown(report, bootstrap_reps, primary_metric)
    profile_metrics = [m for m in ("return_nominal", primary_metric) if any(s[m].n for s in report.table.values())]
    sets = aggregate_sets(report)
    for label, groups in sets:  # one figure per aggregate: groups that differ in the env alone
        name = "performance_profiles.png" if len(sets) == 1 else f"performance_profiles_{_slug(label)}.png"
        if plot_performance_profiles(report, list(dict.fromkeys(profile_metrics)), bootstrap_reps, out / name, groups, label):
            extra += [f"![performance profiles{' ' + label if label else ''}]({name})", ""]
    extra += cost_markdown(report)
    write_csv(report, out / "report.csv")
    atomic_write_text(out / "report.md", markdown(report, images, extra))
    return {"markdown": out / "report.md", "csv": out / "report.csv"}


def report(cfg: DictConfig) -> Report:
    """The body of ``scripts/report_qarl.py``."""
    from envs.common.runs import hydra_output_dir

    if int(cfg.curve_points) < 2:
        raise ValueError(f"curve_points must be at least 2, got {cfg.curve_points!r}")
    if int(cfg.bootstrap_reps) < 100:
        raise ValueError(f"bootstrap_reps must be at least 100, got {cfg.bootstrap_reps!r}")
    check_choice(str(cfg.primary_metric), METRICS, "primary_metric")
    check_choice(str(cfg.source), SOURCES, "source")
    compare_to = None if cfg.get("compare_to") is None else str(cfg.compare_to)
    if compare_to is not None:
        check_choice(compare_to, ALGOS, "compare_to")
    roots = find_report_runs(list(cfg.runs))
    result = build_report(roots, str(cfg.source), float(cfg.confidence), bool(cfg.include_unfinished))
    if not result.records:
        raise ValueError("no run could be reported: " + "; ".join(result.skipped))
    out = Path(cfg.out) if cfg.out else hydra_output_dir()
    if out is None:
        raise ValueError("no output folder: set out=... (or run inside a Hydra app)")
    paths = write_report(
        result,
        out,
        list(cfg.curve_tags),
        int(cfg.curve_points),
        int(cfg.bootstrap_reps),
        str(cfg.primary_metric),
        compare_to,
    )
    print(paths["markdown"].read_text())
    for line in result.skipped:
        print(f"skipped {line}")
    print(f"report written to {out}")
    return result

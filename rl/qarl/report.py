"""The QARL results report: runs gathered into a table per env and method over seeds, with plots.

For each ``train_qarl`` run the report reads its config (env, method, seed), its TensorBoard scalars (learning
curves; the last ``eval/`` values) and, when present, ``robustness/robustness.json`` written by
``scripts/eval_robustness.py``. Per env and method it gives the mean and the Student-t confidence interval over
seeds (``t_{(1+c)/2, n-1} * s / sqrt(n)``, s the sample standard deviation; specs/qarl.md §8) of the nominal
return, the return against the temperature-0 adversary and the grid average, and draws learning curves (mean and
band over seeds on a common env-step grid) and the seed-mean heatmaps of the methods side by side.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from rl.common.io import atomic_write_text
from rl.common.registry import check_choice
from rl.qarl.checkpoint import glob_run_dirs
from rl.qarl.modes import ALGOS

METRICS = ("return_nominal", "return_vs_adversary", "grid_average")
METRIC_TITLES = {"return_nominal": "nominal", "return_vs_adversary": "vs adversary (alpha=0)", "grid_average": "grid average"}
SOURCES = ("auto", "robustness", "tensorboard")
TB_TAGS = {"return_nominal": "eval/return_nominal", "return_vs_adversary": "eval/return_vs_adversary"}


@dataclass
class RunRecord:
    """What the report knows about one run."""

    root: Path
    env: str
    algo: str
    seed: int
    values: dict[str, float]
    source: str
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    grid: dict[str, Any] | None = None


@dataclass
class Summary:
    """Mean and confidence half-width over seeds of one metric."""

    mean: float
    half_width: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "-"
        if self.n == 1 or not math.isfinite(self.half_width):
            return f"{self.mean:.1f} (1 seed)"
        return f"{self.mean:.1f} ± {self.half_width:.1f}"


def student_t_interval(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean and Student-t half-width of ``values`` (NaNs dropped); the half-width is NaN with fewer than 2 values."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Summary(float("nan"), float("nan"), 0)
    if len(x) == 1:
        return Summary(float(x[0]), float("nan"), 1)
    t = float(stats.t.ppf(0.5 + confidence / 2.0, len(x) - 1))
    return Summary(float(x.mean()), t * float(x.std(ddof=1)) / math.sqrt(len(x)), len(x))


# ------------------------------------------------------------------------------------------ reading
def find_report_runs(patterns: str | Sequence[str]) -> list[Path]:
    """``train_qarl`` run folders (``config.yaml`` + ``tensorboard/``) matching the patterns or below them.

    Raises:
        ValueError: when a pattern matches nothing or no run is found.
    """

    def is_run(path: Path) -> bool:
        if path.name == ".hydra" or not (path / "config.yaml").exists() or not (path / "tensorboard").is_dir():
            return False
        cfg = OmegaConf.load(path / "config.yaml")
        return isinstance(cfg, DictConfig) and cfg.get("script") == "train_qarl"

    return glob_run_dirs(patterns, is_run, "train_qarl run (a folder with config.yaml and tensorboard/)")


def read_scalars(tensorboard: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of a TensorBoard folder (all event files) as ``tag -> (steps, values)``, sorted by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    merged: dict[str, dict[int, float]] = {}
    for events in sorted(tensorboard.glob("**/events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            merged.setdefault(tag, {}).update({int(e.step): float(e.value) for e in acc.Scalars(tag)})
    return {
        tag: (np.array(sorted(points), dtype=float), np.array([points[s] for s in sorted(points)], dtype=float))
        for tag, points in merged.items()
    }


def read_run(root: Path, source: str = "auto") -> RunRecord | None:
    """Read one run; ``None`` when ``source='robustness'`` and it has no robustness JSON."""
    check_choice(source, SOURCES, "source")
    cfg = OmegaConf.load(root / "config.yaml")
    assert isinstance(cfg, DictConfig)
    curves = read_scalars(root / "tensorboard")
    robustness = root / "robustness" / "robustness.json"
    grid = None
    if source != "tensorboard" and robustness.exists():
        data = json.loads(robustness.read_text())
        values = {m: float(data[m]) if data.get(m) is not None else float("nan") for m in METRICS}
        grid = {k: data[k] for k in ("grid_mean", "mass_factors", "friction_factors", "mass_body")}
        used = "robustness"
    elif source == "robustness":
        return None
    else:
        values = {m: float(curves[tag][1][-1]) if tag in curves else float("nan") for m, tag in TB_TAGS.items()}
        values["grid_average"] = float("nan")
        used = "tensorboard"
    return RunRecord(root, str(cfg.env.name), str(cfg.algo.name), int(cfg.seed), values, used, curves, grid)


# ------------------------------------------------------------------------------------------ the report
@dataclass
class Report:
    """The gathered runs and the table ``(env, algo) -> metric -> Summary``."""

    records: list[RunRecord]
    table: dict[tuple[str, str], dict[str, Summary]]
    skipped: list[str]
    confidence: float

    @property
    def envs(self) -> list[str]:
        """Envs in the report, sorted."""
        return sorted({env for env, _ in self.table})

    def methods(self, env: str) -> list[str]:
        """Methods of ``env`` in the README's order (unknown names last)."""
        names = {algo for e, algo in self.table if e == env}
        return sorted(names, key=lambda a: (ALGOS.index(a) if a in ALGOS else len(ALGOS), a))

    def runs_of(self, env: str, algo: str) -> list[RunRecord]:
        """The runs of one cell of the table, by seed."""
        return sorted((r for r in self.records if r.env == env and r.algo == algo), key=lambda r: r.seed)


def build_report(roots: Sequence[Path], source: str = "auto", confidence: float = 0.95) -> Report:
    """Read the runs and summarise each (env, method) over its seeds."""
    records, skipped = [], []
    for root in roots:
        record = read_run(root, source)
        if record is None:
            skipped.append(f"{root}: no robustness/robustness.json (run scripts/eval_robustness.py run={root})")
        else:
            records.append(record)
    table: dict[tuple[str, str], dict[str, Summary]] = {}
    for key in sorted({(r.env, r.algo) for r in records}):
        group = [r for r in records if (r.env, r.algo) == key]
        table[key] = {m: student_t_interval([r.values[m] for r in group], confidence) for m in METRICS}
    return Report(records, table, skipped, confidence)


def write_csv(report: Report, path: Path) -> None:
    """One row per (env, method): seeds, and mean, half-width and count of each metric."""
    rows = []
    for (env, algo), summaries in report.table.items():
        row: dict[str, Any] = {"env": env, "algo": algo, "seeds": " ".join(str(r.seed) for r in report.runs_of(env, algo))}
        for metric, s in summaries.items():
            row |= {f"{metric}_mean": s.mean, f"{metric}_ci": s.half_width, f"{metric}_n": s.n}
        rows.append(row)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        fields = ["env", "algo", "seeds"] + [f"{m}_{k}" for m in METRICS for k in ("mean", "ci", "n")]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def markdown(report: Report, images: dict[str, list[str]]) -> str:
    """The report as markdown: one table per env, then its figures."""
    level = round(100 * report.confidence)
    lines = [
        "# QARL results",
        "",
        f"Mean ± {level}% Student-t confidence half-width over seeds. Nominal and vs-adversary returns and the grid "
        "average come from `robustness/robustness.json` where a run has one, else from the run's last `eval/` "
        "TensorBoard scalars (no grid average).",
        "",
    ]
    for env in report.envs:
        lines += [
            f"## {env}",
            "",
            "| method | seeds | nominal | vs adversary (alpha=0) | grid average | source |",
            "|---|---|---|---|---|---|",
        ]
        for algo in report.methods(env):
            runs = report.runs_of(env, algo)
            s = report.table[(env, algo)]
            sources = "/".join(sorted({r.source for r in runs}))
            seeds = ", ".join(str(r.seed) for r in runs)
            lines.append(
                f"| {algo} | {seeds} | {s['return_nominal']} | {s['return_vs_adversary']} | {s['grid_average']} | {sources} |"
            )
        lines.append("")
        lines += [f"![{name}]({name})" for name in images.get(env, [])]
        lines.append("")
    if report.skipped:
        lines += ["Skipped runs:", ""] + [f"- {s}" for s in report.skipped] + [""]
    return "\n".join(lines)


def plot_learning_curves(report: Report, env: str, tags: Sequence[str], points: int, path: Path) -> bool:
    """Mean and confidence band over seeds of each tag against training env steps; ``False`` if nothing to draw."""
    import matplotlib.pyplot as plt

    from rl.qarl.plots import plt as _agg  # noqa: F401  (selects the Agg backend)

    fig, axes = plt.subplots(1, len(tags), figsize=(5 * len(tags), 3.6), layout="constrained", squeeze=False)
    drawn = False
    for ax, tag in zip(axes[0], tags, strict=True):
        for algo in report.methods(env):
            curves = [r.curves[tag] for r in report.runs_of(env, algo) if tag in r.curves and len(r.curves[tag][0])]
            if not curves:
                continue
            lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
            steps = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
            ys = np.array([np.interp(steps, s, v) for s, v in curves])
            mean = ys.mean(axis=0)
            line = ax.plot(steps, mean, label=f"{algo} ({len(curves)})")[0]
            if len(curves) > 1:
                t = float(stats.t.ppf(0.5 + report.confidence / 2.0, len(curves) - 1))
                half = t * ys.std(axis=0, ddof=1) / math.sqrt(len(curves))
                ax.fill_between(steps, mean - half, mean + half, color=line.get_color(), alpha=0.2)
            drawn = True
        ax.set_xlabel("training env steps")
        ax.set_ylabel("return")
        ax.set_title(f"{env}: {tag}", fontsize=9)
        ax.legend(fontsize=8)
    if drawn:
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def plot_heatmaps(report: Report, env: str, path: Path) -> bool:
    """Seed-mean grid of each method side by side, on one colour scale; ``False`` if no run has a grid."""
    import matplotlib.pyplot as plt

    from rl.qarl.plots import draw_heatmap

    panels = []
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
        title = f"{env} {algo}: mean of {n} seed(s), grid avg {np.nanmean(mean):.1f}"
        images.append(
            draw_heatmap(ax, mean, g["mass_factors"], g["friction_factors"], title, g["mass_body"], values.min(), values.max())
        )
    fig.colorbar(images[-1], ax=list(axes[0]), label="return")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(report: Report, out: Path, curve_tags: Sequence[str], curve_points: int) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv``, ``learning_curves_<env>.png`` and ``heatmaps_<env>.png``."""
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, list[str]] = {}
    for env in report.envs:
        names = []
        if plot_learning_curves(report, env, curve_tags, curve_points, out / f"learning_curves_{env}.png"):
            names.append(f"learning_curves_{env}.png")
        if plot_heatmaps(report, env, out / f"heatmaps_{env}.png"):
            names.append(f"heatmaps_{env}.png")
        images[env] = names
    write_csv(report, out / "report.csv")
    atomic_write_text(out / "report.md", markdown(report, images))
    return {"markdown": out / "report.md", "csv": out / "report.csv"}


def report(cfg: DictConfig) -> Report:
    """The body of ``scripts/report_qarl.py``."""
    from rl.common.runs import hydra_output_dir

    if int(cfg.curve_points) < 2:
        raise ValueError(f"curve_points must be at least 2, got {cfg.curve_points!r}")
    roots = find_report_runs(list(cfg.runs))
    result = build_report(roots, str(cfg.source), float(cfg.confidence))
    if not result.records:
        raise ValueError("no run could be reported: " + "; ".join(result.skipped))
    out = Path(cfg.out) if cfg.out else hydra_output_dir()
    if out is None:
        raise ValueError("no output folder: set out=... (or run inside a Hydra app)")
    paths = write_report(result, out, list(cfg.curve_tags), int(cfg.curve_points))
    print(paths["markdown"].read_text())
    for line in result.skipped:
        print(f"skipped {line}")
    print(f"report written to {out}")
    return result

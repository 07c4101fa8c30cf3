"""The QARL results report: runs gathered into a table per experiment and method over seeds, with plots.

For each ``train_qarl`` run the report reads its config, its ``done.json`` (written only by a run that completed its
budget), its TensorBoard scalars (learning curves; the last ``eval/`` values) and, when present,
``robustness/robustness.json`` written by ``scripts/eval_robustness.py``.

Which runs are compared: runs are keyed by everything that defines the experiment, i.e. the whole resolved config
except the seed and the settings that do not change what is trained (:data:`IGNORED_KEYS`: run names and folders,
progress bars, devices, checkpoint and evaluation cadence). Runs of one env whose settings differ get separate
tables, headed by the keys that differ; runs of one method that differ in their ``algo.*`` switches get separate
rows. Within one experiment each seed counts once: the latest finished run (a note names the others). Unfinished
runs (no ``done.json``: interrupted, still running or failed) are skipped unless ``include_unfinished``, and every
skipped run is listed with the reason.

Per table and method the report gives the mean and the Student-t confidence interval over seeds
(``t_{(1+c)/2, n-1} * s / sqrt(n)``, s the sample standard deviation; specs/qarl.md §8) of the nominal return,
the return against the co-trained temperature-0 adversary, against a fresh best-response adversary, the grid
average and the 1-D sweep averages; next to it the field's statistics from ``rliable`` (Agarwal et al., 2021):
the interquartile mean with a stratified-bootstrap confidence interval, the probability of improvement between
methods and performance profiles over seeds x envs, and a robustness profile (the fraction of grid cells whose
return exceeds a level). Plots: learning curves (x: protagonist env steps), seed-mean heatmaps and sweeps.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
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

METRICS = (
    "return_nominal",
    "return_vs_adversary",
    "return_vs_best_response",
    "grid_average",
    "sweep_mass_average",
    "sweep_friction_average",
)
METRIC_TITLES = {
    "return_nominal": "nominal",
    "return_vs_adversary": "vs co-trained adversary (alpha=0)",
    "return_vs_best_response": "vs best response",
    "grid_average": "grid average",
    "sweep_mass_average": "mass sweep average",
    "sweep_friction_average": "friction sweep average",
}
SOURCES = ("auto", "robustness", "tensorboard")
TB_TAGS = {"return_nominal": "eval/return_nominal", "return_vs_adversary": "eval/return_vs_adversary"}
IGNORED_KEYS = (
    "seed",
    "name",
    "script",
    "run_dir",
    "resume",
    "progress",
    "device",
    "torch_threads",
    "save_replay_buffer",
    "budget.eval_every",
    "budget.eval_episodes",
    "budget.checkpoint_every",
    "budget.keep_checkpoints",
    "budget.keep_full",
)
"""Config keys (and key prefixes) that do not define the experiment: runs differing only in these are compared."""


@dataclass
class RunRecord:
    """What the report knows about one run.

    Attributes:
        group: the table it belongs to (the env, plus the settings that set it apart from other runs of the env).
        method: its row (the algo, plus ``algo.*`` switches that set it apart from other runs of the same algo).
        experiment: the flattened config that defines the experiment (:func:`experiment_of`).
        done: the run's ``done.json`` (``None``: it did not complete its budget).
    """

    root: Path
    env: str
    algo: str
    seed: int
    values: dict[str, float]
    source: str
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    grid: dict[str, Any] | None = None
    experiment: dict[str, str] = field(default_factory=dict)
    done: dict[str, Any] | None = None
    group: str = ""
    method: str = ""
    sweeps: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """The run completed its budget (it has a ``done.json``)."""
        return self.done is not None


@dataclass
class Summary:
    """Mean and confidence half-width over seeds of one metric."""

    mean: float
    half_width: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a"
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
    """``train_qarl`` run folders (a ``config.yaml`` of ``script: train_qarl``) matching the patterns or below them.

    Runs that failed before writing anything else are found too, so that the report can list them as skipped.

    Raises:
        ValueError: when a pattern matches nothing or no run is found.
    """

    def is_run(path: Path) -> bool:
        if path.name == ".hydra" or not (path / "config.yaml").exists():
            return False
        try:
            cfg = OmegaConf.load(path / "config.yaml")
        except Exception:  # an unreadable config.yaml is not a run we can report on
            return False
        return isinstance(cfg, DictConfig) and cfg.get("script") == "train_qarl"

    return glob_run_dirs(patterns, is_run, "train_qarl run (a folder with a config.yaml of script train_qarl)")


def experiment_of(cfg: DictConfig) -> dict[str, str]:
    """The flattened config minus :data:`IGNORED_KEYS`: what defines the experiment (values as text)."""
    from rl.common.tensorboard import flatten_config

    flat = flatten_config(cfg)
    return {k: str(v) for k, v in sorted(flat.items()) if not any(k == i or k.startswith(i + ".") for i in IGNORED_KEYS)}


def read_done(root: Path) -> dict[str, Any] | None:
    """The run's ``done.json`` (written when it completed its budget), or ``None``."""
    path = root / "done.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished_time(record: RunRecord) -> float:
    """When the run finished, as a POSIX time (``done.json``'s ``finished_at``, else its modification time)."""
    from datetime import datetime

    path = record.root / "done.json"
    value = (record.done or {}).get("finished_at")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return path.stat().st_mtime if path.exists() else (record.root / "config.yaml").stat().st_mtime


def read_scalars(tensorboard: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of a TensorBoard folder (all event files but HParams sessions) as ``tag -> (steps, values)``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    merged: dict[str, dict[int, float]] = {}
    for events in sorted(tensorboard.glob("**/events.out.tfevents.*")):
        if any(part.startswith("hparams") for part in events.relative_to(tensorboard).parts[:-1]):
            continue  # HParams sessions repeat final values at step 0 (rl.common.tensorboard.log_hparams)
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
    curves = read_scalars(root / "tensorboard") if (root / "tensorboard").is_dir() else {}
    robustness = root / "robustness" / "robustness.json"
    grid, sweeps = None, None
    if source != "tensorboard" and robustness.exists():
        data = json.loads(robustness.read_text())
        values = {m: float(data[m]) if data.get(m) is not None else float("nan") for m in METRICS}
        grid = {k: data[k] for k in ("grid_mean", "mass_factors", "friction_factors", "mass_body")}
        if data.get("sweep_factors"):
            sweeps = {"factors": data["sweep_factors"], "mean": data["sweep_mean"]}
        used = "robustness"
    elif source == "robustness":
        return None
    else:
        values = {m: float("nan") for m in METRICS}
        values |= {m: float(curves[tag][1][-1]) for m, tag in TB_TAGS.items() if tag in curves}
        used = "tensorboard"
    record = RunRecord(root, str(cfg.env.name), str(cfg.algo.name), int(cfg.seed), values, used, curves, grid)
    record.experiment, record.done, record.sweeps = experiment_of(cfg), read_done(root), sweeps
    return record


# ------------------------------------------------------------------------------------------ the report
@dataclass
class Report:
    """The gathered runs and the table ``(group, method) -> metric -> Summary``.

    A group is an env plus the settings that set its runs apart from other runs of that env (just the env name
    when all its runs share their settings); a method is an algo plus the ``algo.*`` switches that set it apart.
    """

    records: list[RunRecord]
    table: dict[tuple[str, str], dict[str, Summary]]
    skipped: list[str]
    confidence: float
    notes: list[str] = field(default_factory=list)

    @property
    def envs(self) -> list[str]:
        """Groups (tables) in the report, sorted."""
        return sorted({group for group, _ in self.table})

    def methods(self, group: str) -> list[str]:
        """Methods of ``group`` in the README's order (unknown names last)."""
        names = {method for g, method in self.table if g == group}

        def order(method: str) -> tuple[int, str]:
            algo = method.split(" ", 1)[0]
            return (ALGOS.index(algo) if algo in ALGOS else len(ALGOS), method)

        return sorted(names, key=order)

    def runs_of(self, group: str, method: str) -> list[RunRecord]:
        """The runs of one cell of the table, by seed."""
        return sorted((r for r in self.records if r.group == group and r.method == method), key=lambda r: r.seed)

    def runs_in(self, group: str) -> list[RunRecord]:
        """Every run of ``group``, all methods."""
        return [r for r in self.records if r.group == group]

    def env_of(self, group: str) -> str:
        """The env every run of ``group`` ran on (``group`` itself when the group has no runs)."""
        return next((r.env for r in self.runs_in(group)), group)

    def settings(self, group: str) -> dict[str, str]:
        """The experiment settings every run of ``group`` shares (``algo.*`` excluded)."""
        runs = self.runs_in(group)
        shared = dict(runs[0].experiment) if runs else {}
        for r in runs[1:]:
            shared = {k: v for k, v in shared.items() if r.experiment.get(k) == v}
        return {k: v for k, v in shared.items() if not k.startswith("algo.")}


def _differing(experiments: Sequence[dict[str, str]]) -> list[str]:
    """Keys whose value is not the same in every experiment (missing counts as a value)."""
    keys = sorted({k for e in experiments for k in e})
    return [k for k in keys if len({e.get(k, "-") for e in experiments}) > 1]


def _label(base: str, experiment: dict[str, str], keys: Sequence[str]) -> str:
    if not keys:
        return base
    return f"{base} [" + ", ".join(f"{k}={experiment.get(k, '-')}" for k in keys) + "]"


def assign_groups(records: Sequence[RunRecord]) -> None:
    """Set each record's ``group`` (table) and ``method`` (row) from the settings that differ between runs."""
    for env in sorted({r.env for r in records}):
        runs = [r for r in records if r.env == env]
        settings = [{k: v for k, v in r.experiment.items() if not k.startswith("algo.")} for r in runs]
        keys = _differing(settings)
        for r, setting in zip(runs, settings, strict=True):
            r.group = _label(env, setting, keys)
        for group in {r.group for r in runs}:
            for algo in {r.algo for r in runs if r.group == group}:
                same = [r for r in runs if r.group == group and r.algo == algo]
                algo_keys = [k for k in _differing([r.experiment for r in same]) if k != "algo.name"]
                for r in same:
                    r.method = _label(algo, r.experiment, algo_keys)


def build_report(
    roots: Sequence[Path], source: str = "auto", confidence: float = 0.95, include_unfinished: bool = False
) -> Report:
    """Read the runs, key them by experiment, keep one run per seed, and summarise each (group, method).

    Args:
        roots: ``train_qarl`` run folders.
        source: where the numbers come from (:data:`SOURCES`).
        confidence: level of the Student-t interval.
        include_unfinished: also report runs without ``done.json`` (marked unfinished); by default they are skipped.
    """
    check_choice(source, SOURCES, "source")
    records, skipped, notes = [], [], []
    for root in roots:
        try:
            record = read_run(root, source)
        except Exception as e:  # a broken run is listed, not fatal
            skipped.append(f"{root}: unreadable ({type(e).__name__}: {e})")
            continue
        if record is None:
            skipped.append(f"{root}: no robustness/robustness.json (run scripts/eval_robustness.py run={root})")
        elif not record.finished and not (root / "checkpoints" / "latest").exists():
            skipped.append(f"{root}: failed or stopped before its first checkpoint (no done.json, no checkpoint)")
        elif not record.finished and not include_unfinished:
            skipped.append(
                f"{root}: unfinished (no done.json: interrupted, still running or failed; include_unfinished=true "
                "reports it anyway)"
            )
        else:
            records.append(record)
    # one run per seed and experiment: the latest finished one
    kept: list[RunRecord] = []
    by_key: dict[tuple[str, int], list[RunRecord]] = {}
    for r in records:
        by_key.setdefault((json.dumps(r.experiment, sort_keys=True), r.seed), []).append(r)
    for (_, seed), same in by_key.items():
        same.sort(key=lambda r: (r.finished, finished_time(r), str(r.root)))
        latest = same[-1]
        kept.append(latest)
        for r in same[:-1]:
            skipped.append(
                f"{r.root}: duplicate of seed {seed} of the same experiment; the latest finished run {latest.root} is used"
            )
        if len(same) > 1:
            notes.append(
                f"{latest.env}/{latest.algo} seed {seed}: {len(same)} runs, the latest finished one is used ({latest.root})"
            )
    assign_groups(kept)
    for r in kept:
        if not r.finished:
            notes.append(f"{r.group}/{r.method} seed {r.seed}: unfinished run reported ({r.root})")
    table: dict[tuple[str, str], dict[str, Summary]] = {}
    for key in sorted({(r.group, r.method) for r in kept}):
        cell = [r for r in kept if (r.group, r.method) == key]
        table[key] = {m: student_t_interval([r.values[m] for r in cell], confidence) for m in METRICS}
    return Report(kept, table, skipped, confidence, notes)


def _slug(text: str) -> str:
    """A file-name-safe version of a group label."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return "_".join(part for part in keep.split("_") if part)[:120]


def write_csv(report: Report, path: Path) -> None:
    """One row per (group, method): env, seeds, and mean, half-width and count of each metric."""
    rows = []
    for (group, method), summaries in report.table.items():
        runs = report.runs_of(group, method)
        row: dict[str, Any] = {
            "group": group,
            "env": runs[0].env,
            "algo": runs[0].algo,
            "method": method,
            "seeds": " ".join(str(r.seed) for r in runs),
            "finished": " ".join("yes" if r.finished else "no" for r in runs),
        }
        for metric, s in summaries.items():
            row |= {f"{metric}_mean": s.mean, f"{metric}_ci": s.half_width, f"{metric}_n": s.n}
        rows.append(row)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        fields = ["group", "env", "algo", "method", "seeds", "finished"]
        fields += [f"{m}_{k}" for m in METRICS for k in ("mean", "ci", "n")]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ rliable statistics
@dataclass
class Interval:
    """A point estimate with a bootstrap confidence interval."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n == 0 or not math.isfinite(self.value):
            return "n/a"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.value:.1f} ({self.n} seed{'s' if self.n > 1 else ''}, no interval)"
        return f"{self.value:.1f} [{self.low:.1f}, {self.high:.1f}]"


def _bootstrap_seeded(seed: int) -> Any:
    """Seed NumPy's global generator (rliable's stratified bootstrap draws from it) and restore it afterwards."""
    import contextlib

    @contextlib.contextmanager
    def scope() -> Any:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)

    return scope()


def iqm_intervals(scores: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> list[Interval]:
    """Interquartile mean of each column of a ``(runs, k)`` matrix with its stratified-bootstrap interval (rliable).

    The columns are separate quantities (metrics) measured on the same runs: rliable's stratified bootstrap resamples
    the runs of each column independently, and the function returns the IQM per column (rliable's
    ``aggregate_iqm``, a 25% trimmed mean, applied to each column), so one bootstrap serves all of them.
    """
    from rliable import library as rly
    from rliable import metrics

    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.size == 0:
        return [Interval(float("nan"), float("nan"), float("nan"), 0) for _ in range(scores.shape[-1] if scores.ndim else 0)]
    out = [Interval(float("nan"), float("nan"), float("nan"), 0)] * scores.shape[1]
    good = [k for k in range(scores.shape[1]) if np.isfinite(scores[:, k]).all()]
    if not good:
        return out
    x = scores[:, good]
    values = [float(metrics.aggregate_iqm(x[:, [k]])) for k in range(x.shape[1])]
    if x.shape[0] < 2:
        for k, v in zip(good, values, strict=True):
            out[k] = Interval(v, float("nan"), float("nan"), x.shape[0])
        return out
    with _bootstrap_seeded(seed):
        _, intervals = rly.get_interval_estimates(
            {"x": x},
            lambda a: stats.trim_mean(a, proportiontocut=0.25, axis=0),
            reps=reps,
            confidence_interval_size=confidence,
        )
    for col, (k, v) in enumerate(zip(good, values, strict=True)):
        out[k] = Interval(v, float(intervals["x"][0, col]), float(intervals["x"][1, col]), x.shape[0])
    return out


def iqm_interval(scores: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Interquartile mean over all entries of a ``(runs, tasks)`` matrix and its stratified-bootstrap interval."""
    from rliable import library as rly
    from rliable import metrics

    scores = np.asarray(scores, dtype=float)
    if scores.size == 0 or not np.isfinite(scores).all():
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    value = float(metrics.aggregate_iqm(scores))
    if scores.shape[0] < 2:
        return Interval(value, float("nan"), float("nan"), scores.shape[0])
    with _bootstrap_seeded(seed):
        _, intervals = rly.get_interval_estimates(
            {"x": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps, confidence_interval_size=confidence
        )
    return Interval(value, float(intervals["x"][0, 0]), float(intervals["x"][1, 0]), scores.shape[0])


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks, as rliable's ``metrics.probability_of_improvement``, with array operations.

    The statistic is the Mann-Whitney U over ``n m`` (ties count one half); the bootstrap calls it thousands of
    times, and scipy's version costs milliseconds per call (a test checks both agree).
    """
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return np.array([float(np.mean(greater + 0.5 * ties))])


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """P(X > Y) averaged over tasks, with rliable's stratified-bootstrap interval; ``x``, ``y``: (runs, tasks)."""
    from rliable import library as rly

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if min(x.shape[0], y.shape[0]) < 1 or x.shape[1] != y.shape[1]:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    value = float(_improvement(x, y)[0])
    if min(x.shape[0], y.shape[0]) < 2:
        return Interval(value, float("nan"), float("nan"), 1)
    with _bootstrap_seeded(seed):
        _, intervals = rly.get_interval_estimates({"p": [x, y]}, _improvement, reps=reps, confidence_interval_size=confidence)
    return Interval(value, float(intervals["p"][0, 0]), float(intervals["p"][1, 0]), min(len(x), len(y)))


def score_matrices(report: Report, metric: str) -> tuple[dict[str, np.ndarray], list[str], str]:
    """Per method present in every group, a ``(seeds, groups)`` matrix of ``metric`` normalised per group.

    Each group's scores are divided by the largest seed-mean nominal return of any method in that group (so 1 is
    the best nominal return there), which puts envs with different reward scales on one axis. A method with fewer
    seeds in one group uses its first ``n`` seeds everywhere (``n`` its smallest count); the note says so.
    """
    groups = report.envs
    methods = sorted(m for m in {m for _, m in report.table} if all((g, m) in report.table for g in groups))
    matrices: dict[str, np.ndarray] = {}
    notes = []
    for method in methods:
        columns = []
        for group in groups:
            scale = max(abs(report.table[(group, m)]["return_nominal"].mean) for m in methods if (group, m) in report.table)
            scale = scale if math.isfinite(scale) and scale > 0 else 1.0
            columns.append([r.values[metric] / scale for r in report.runs_of(group, method)])
        n = min((len(c) for c in columns), default=0)
        if any(len(c) != n for c in columns):
            notes.append(f"{method}: first {n} seeds per env")
        matrices[method] = np.array([c[:n] for c in columns], dtype=float).T.reshape(n, len(groups))
    return matrices, groups, "; ".join(notes)


def rliable_markdown(report: Report, reps: int, primary: str) -> list[str]:
    """The rliable section: IQM [CI] per table and method, aggregate IQM and probability of improvement."""
    level = round(100 * report.confidence)
    lines = [
        "## Field-standard statistics (rliable)",
        "",
        f"Interquartile mean over seeds with its {level}% stratified-bootstrap interval ({reps} resamples; rliable, "
        "Agarwal et al. 2021), next to the mean ± Student-t interval above. With fewer than 4 seeds the IQM is close "
        "to the median and its interval is wide: read it with the seed count.",
        "",
    ]
    shown = [m for m in METRICS if any(s[m].n for s in report.table.values())]
    for group in report.envs:
        lines += [f"### {group}", "", "| method | seeds | " + " | ".join(METRIC_TITLES[m] for m in shown) + " |"]
        lines.append("|---|---|" + "---|" * len(shown))
        for method in report.methods(group):
            runs = report.runs_of(group, method)
            cells = iqm_intervals(np.array([[r.values[m] for m in shown] for r in runs]), reps, report.confidence)
            lines.append(f"| {method} | {len(runs)} | " + " | ".join(map(str, cells)) + " |")
        lines.append("")
    for metric in [m for m in shown if m in (primary, "return_nominal")]:
        matrices, groups, note = score_matrices(report, metric)
        matrices = {k: v for k, v in matrices.items() if v.size and np.isfinite(v).all()}
        if not groups or not matrices:
            continue
        lines += [
            f"### {METRIC_TITLES[metric]}: over seeds x envs ({', '.join(groups)})",
            "",
            "Scores divided by the best seed-mean nominal return in each env. " + (f"Note: {note}." if note else ""),
            "",
            "| method | IQM (normalised) |",
            "|---|---|",
        ]
        lines += [f"| {m} | {iqm_interval(v, reps, report.confidence)} |" for m, v in matrices.items()]
        names = list(matrices)
        if len(names) > 1:
            lines += ["", f"Probability of improvement P(row > column), {METRIC_TITLES[metric]}:", ""]
            lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
            pairs = {
                (a, b): probability_of_improvement(matrices[a], matrices[b], reps, report.confidence)
                for i, a in enumerate(names)
                for b in names[i + 1 :]
            }
            for a in names:
                row = []
                for b in names:
                    if a == b:
                        row.append("-")
                    elif (a, b) in pairs:
                        p = pairs[(a, b)]
                        row.append(f"{p.value:.2f} [{p.low:.2f}, {p.high:.2f}]" if p.n > 1 else f"{p.value:.2f}")
                    else:  # P(b > a) = 1 - P(a > b): ties count one half on both sides
                        p = pairs[(b, a)]
                        row.append(
                            f"{1 - p.value:.2f} [{1 - p.high:.2f}, {1 - p.low:.2f}]" if p.n > 1 else f"{1 - p.value:.2f}"
                        )
                lines.append(f"| {a} | " + " | ".join(row) + " |")
        lines.append("")
    return lines


def plot_performance_profiles(report: Report, metrics_: Sequence[str], reps: int, path: Path) -> bool:
    """Performance profiles (rliable; fraction of runs x envs above a normalised score), one panel per metric."""
    import matplotlib.pyplot as plt
    from rliable import library as rly

    from rl.qarl.plots import plt as _agg  # noqa: F401  (selects the Agg backend)

    panels = []
    for metric in metrics_:
        matrices, groups, _ = score_matrices(report, metric)
        matrices = {k: v for k, v in matrices.items() if v.size and np.isfinite(v).all()}
        if groups and matrices:
            panels.append((metric, matrices))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), layout="constrained", squeeze=False)
    for ax, (metric, matrices) in zip(axes[0], panels, strict=True):
        values = np.concatenate([v.ravel() for v in matrices.values()])
        taus = np.linspace(min(0.0, values.min()), max(1.0, values.max()), 41)
        with _bootstrap_seeded(0):
            profiles, cis = rly.create_performance_profile(matrices, taus, reps=reps)
        for method, profile in profiles.items():
            line = ax.plot(taus, profile, label=method)[0]
            ax.fill_between(taus, cis[method][0], cis[method][1], color=line.get_color(), alpha=0.2)
        ax.set_xlabel("normalised score tau")
        ax.set_ylabel("fraction of runs with score > tau")
        ax.set_title(f"performance profile: {METRIC_TITLES[metric]}", fontsize=9)
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
    from rliable import library as rly

    from rl.qarl.plots import plt as _agg  # noqa: F401  (selects the Agg backend)

    profiles = robustness_profiles(report, group)
    if not profiles:
        return False
    fig, ax = plt.subplots(figsize=(5.2, 3.8), layout="constrained")
    for method, (taus, fraction) in profiles.items():
        line = ax.plot(taus, fraction, label=method)[0]
        cells = _grid_cells(report, group, method)
        if len(cells) > 1 and np.isfinite(cells).all():
            with _bootstrap_seeded(0):
                _, cis = rly.create_performance_profile({method: cells}, taus, reps=reps)
            ax.fill_between(taus, cis[method][0], cis[method][1], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("return level")
    ax.set_ylabel("fraction of grid cells above it")
    ax.set_title(f"{group}: robustness profile", fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def markdown(report: Report, images: dict[str, list[str]], extra: Sequence[str] = ()) -> str:
    """The report as markdown: one table per group, its figures, the rliable section, notes and skipped runs."""
    level = round(100 * report.confidence)
    lines = [
        "# QARL results",
        "",
        f"Mean ± {level}% Student-t confidence half-width over seeds (one run per seed: the latest finished). Numbers "
        "come from `robustness/robustness.json` where a run has one, else from the run's last `eval/` TensorBoard "
        "scalars (nominal and co-trained adversary only). n/a: not evaluated, or the method has no force adversary.",
        "",
    ]
    for group in report.envs:
        settings = report.settings(group)
        budget = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in settings.items() if k.startswith("budget."))
        lines += [f"## {group}", "", f"Budget: {budget or 'not recorded'}.", ""]
        lines += [
            "| method | seeds | protagonist steps | " + " | ".join(METRIC_TITLES[m] for m in METRICS) + " | source |",
            "|---|---|---|" + "---|" * len(METRICS) + "---|",
        ]
        for method in report.methods(group):
            runs = report.runs_of(group, method)
            s = report.table[(group, method)]
            sources = "/".join(sorted({r.source for r in runs}))
            seeds = ", ".join(str(r.seed) + ("" if r.finished else " (unfinished)") for r in runs)
            steps = [int(r.done["protagonist_steps"]) for r in runs if r.done and "protagonist_steps" in r.done]
            steps_text = "-" if not steps else str(steps[0]) if len(set(steps)) == 1 else f"{min(steps)}-{max(steps)}"
            cells = " | ".join(str(s[m]) for m in METRICS)
            lines.append(f"| {method} | {seeds} | {steps_text} | {cells} | {sources} |")
        lines.append("")
        lines += [f"![{name}]({name})" for name in images.get(group, [])]
        lines.append("")
    lines += list(extra)
    if report.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in report.notes] + [""]
    if report.skipped:
        lines += ["Skipped runs:", ""] + [f"- {s}" for s in report.skipped] + [""]
    return "\n".join(lines)


def plot_learning_curves(report: Report, env: str, tags: Sequence[str], points: int, path: Path) -> bool:
    """Mean and confidence band over seeds of each tag against protagonist env steps; ``False`` if nothing to draw."""
    import matplotlib.pyplot as plt

    from rl.qarl.plots import plt as _agg  # noqa: F401  (selects the Agg backend)

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

    from rl.qarl.plots import draw_heatmap

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

    from rl.qarl.plots import grid_axis_labels

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


def write_report(
    report: Report,
    out: Path,
    curve_tags: Sequence[str],
    curve_points: int,
    bootstrap_reps: int = 2000,
    primary_metric: str = "grid_average",
) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv`` and the figures (learning curves, heatmaps, sweeps, profiles) into ``out``."""
    check_choice(primary_metric, METRICS, "primary_metric")
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
    extra = rliable_markdown(report, bootstrap_reps, primary_metric)
    profile_metrics = [m for m in ("return_nominal", primary_metric) if any(s[m].n for s in report.table.values())]
    if plot_performance_profiles(
        report, list(dict.fromkeys(profile_metrics)), bootstrap_reps, out / "performance_profiles.png"
    ):
        extra += ["![performance profiles](performance_profiles.png)", ""]
    write_csv(report, out / "report.csv")
    atomic_write_text(out / "report.md", markdown(report, images, extra))
    return {"markdown": out / "report.md", "csv": out / "report.csv"}


def report(cfg: DictConfig) -> Report:
    """The body of ``scripts/report_qarl.py``."""
    from rl.common.runs import hydra_output_dir

    if int(cfg.curve_points) < 2:
        raise ValueError(f"curve_points must be at least 2, got {cfg.curve_points!r}")
    if int(cfg.bootstrap_reps) < 100:
        raise ValueError(f"bootstrap_reps must be at least 100, got {cfg.bootstrap_reps!r}")
    check_choice(str(cfg.primary_metric), METRICS, "primary_metric")
    check_choice(str(cfg.source), SOURCES, "source")
    roots = find_report_runs(list(cfg.runs))
    result = build_report(roots, str(cfg.source), float(cfg.confidence), bool(cfg.include_unfinished))
    if not result.records:
        raise ValueError("no run could be reported: " + "; ".join(result.skipped))
    out = Path(cfg.out) if cfg.out else hydra_output_dir()
    if out is None:
        raise ValueError("no output folder: set out=... (or run inside a Hydra app)")
    paths = write_report(
        result, out, list(cfg.curve_tags), int(cfg.curve_points), int(cfg.bootstrap_reps), str(cfg.primary_metric)
    )
    print(paths["markdown"].read_text())
    for line in result.skipped:
        print(f"skipped {line}")
    print(f"report written to {out}")
    return result

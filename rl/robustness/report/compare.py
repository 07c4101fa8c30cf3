"""Per metric, one method against the others: difference of means, probability of improvement and a plain verdict.

The question a comparison asks (specs/qarl.md §9: "QARL beats RARL and recent baselines ... in both performance and
robustness") is per metric and per pair of methods. For each metric and each other method of a table this module gives

- the difference of the seed means, ``reference - other``, with its Welch (unequal-variance Student-t) confidence
  interval, and the same difference relative to the other method's mean (the paper reports relative gains: "+4.2%
  performance, +48.7% robustness versus SAC");
- rliable's probability of improvement P(reference > other) with its stratified-bootstrap interval (:mod:`.stats`);
- a verdict from the Welch interval: ``ahead`` (it lies above 0), ``behind`` (below 0) or ``not resolved`` (it
  contains 0: these seeds cannot tell the two apart). A verdict needs 2 seeds of each method.

It also gives what the runs cost (:func:`cost_markdown`): the training wall time the trainer recorded (summed over
resumes; one thread per run, so close to its CPU time on an unloaded core) and the evaluation's wall time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from rl.robustness.report.groups import Report
from rl.robustness.report.records import METRIC_TITLES, METRICS
from rl.robustness.report.stats import Interval, probability_of_improvement

VERDICTS = ("ahead", "behind", "not resolved", "n/a")


@dataclass
class Difference:
    """``mean(x) - mean(y)`` with its Welch confidence interval (NaN bounds with fewer than 2 values on a side)."""

    value: float
    low: float
    high: float
    relative: float  # value / |mean(y)|, NaN when mean(y) is 0
    n_x: int
    n_y: int

    @property
    def verdict(self) -> str:
        """``ahead`` / ``behind`` when the interval excludes 0, ``not resolved`` when it contains it, else ``n/a``."""
        if min(self.n_x, self.n_y) < 2 or not (math.isfinite(self.low) and math.isfinite(self.high)):
            return "n/a"
        if self.low > 0:
            return "ahead"
        if self.high < 0:
            return "behind"
        return "not resolved"

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.value:+.1f} (no interval)"
        return f"{self.value:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def welch_difference(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> Difference:
    """Difference of means of ``x`` and ``y`` (NaNs dropped) with the Welch-Satterthwaite Student-t interval.

    Raises:
        ValueError: when ``confidence`` is not in (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    a = np.asarray([v for v in x if math.isfinite(v)], dtype=float)
    b = np.asarray([v for v in y if math.isfinite(v)], dtype=float)
    if len(a) == 0 or len(b) == 0:
        return Difference(float("nan"), float("nan"), float("nan"), float("nan"), len(a), len(b))
    value = float(a.mean() - b.mean())
    relative = value / abs(float(b.mean())) if b.mean() != 0 else float("nan")
    if min(len(a), len(b)) < 2:
        return Difference(value, float("nan"), float("nan"), relative, len(a), len(b))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:  # identical constants on both sides: the difference is exact
        return Difference(value, value, value, relative, len(a), len(b))
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) * se
    return Difference(value, value - half, value + half, relative, len(a), len(b))


@dataclass
class ComparisonRow:
    """One metric, the reference method against one other method."""

    metric: str
    other: str
    difference: Difference
    improvement: Interval


def comparison_rows(report: Report, group: str, reference: str, reps: int = 2000) -> list[ComparisonRow]:
    """One row per (metric, other method) of ``group``: the difference, P(reference > other) and the verdict."""
    methods = report.methods(group)
    if reference not in methods:
        return []
    ref = report.runs_of(group, reference)
    rows: list[ComparisonRow] = []
    for metric in METRICS:
        x = [r.values[metric] for r in ref]
        if not any(math.isfinite(v) for v in x):
            continue
        for other in methods:
            if other == reference:
                continue
            y = [r.values[metric] for r in report.runs_of(group, other)]
            if not any(math.isfinite(v) for v in y):
                continue
            diff = welch_difference(x, y, report.confidence)
            xs = np.array([[v] for v in x if math.isfinite(v)])
            ys = np.array([[v] for v in y if math.isfinite(v)])
            poi = probability_of_improvement(xs, ys, reps, report.confidence)
            rows.append(ComparisonRow(metric, other, diff, poi))
    return rows


def comparison_markdown(report: Report, reference: str, reps: int = 2000) -> list[str]:
    """The per-metric comparison of ``reference`` with every other method, one table per group (``[]``: none)."""
    level = round(100 * report.confidence)
    lines: list[str] = []
    for group in report.envs:
        rows = comparison_rows(report, group, reference, reps)
        if not rows:
            continue
        if not lines:
            lines = [
                f"## {reference} against each method, per metric",
                "",
                f"Difference of the seed means ({reference} - other) with its {level}% Welch interval, the same "
                f"difference relative to the other method's mean, and P({reference} > other) with its {level}% "
                "stratified-bootstrap interval (rliable). Verdict from the Welch interval: **ahead** / **behind** when it "
                "excludes 0, *not resolved* when it contains 0 (these seeds cannot tell the two apart), n/a with fewer "
                "than 2 seeds on a side.",
                "",
            ]
        lines += [
            f"### {group}",
            "",
            f"| metric | against | seeds | difference [{level}% CI] | relative | P({reference} > other) | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            diff, poi = row.difference, row.improvement
            rel = f"{100 * diff.relative:+.1f}%" if math.isfinite(diff.relative) else "n/a"
            if not math.isfinite(poi.value):
                p = "n/a"
            elif math.isfinite(poi.low) and math.isfinite(poi.high):
                p = f"{poi.value:.2f} [{poi.low:.2f}, {poi.high:.2f}]"
            else:
                p = f"{poi.value:.2f}"
            verdict = f"**{diff.verdict}**" if diff.verdict in ("ahead", "behind") else diff.verdict
            lines.append(
                f"| {METRIC_TITLES[row.metric]} | {row.other} | {diff.n_x} vs {diff.n_y} | {diff} | {rel} | {p} | {verdict} |"
            )
        lines.append("")
    return lines


def cost_markdown(report: Report) -> list[str]:
    """What the runs cost: training and evaluation wall hours per method, and in all (``[]``: nothing recorded)."""
    rows = []
    total_train = total_eval = 0.0
    for group in report.envs:
        for method in report.methods(group):
            runs = report.runs_of(group, method)
            train = [r.train_seconds for r in runs if r.train_seconds is not None]
            evaluation = [r.eval_seconds for r in runs if r.eval_seconds is not None]
            if not train and not evaluation:
                continue
            total_train, total_eval = total_train + sum(train), total_eval + sum(evaluation)
            per_run = f"{np.mean(train) / 60:.0f} min" if train else "n/a"
            per_eval = f"{np.mean(evaluation) / 60:.1f} min" if evaluation else "n/a"
            rows.append(
                f"| {group} | {method} | {len(train)} | {per_run} | {sum(train) / 3600:.2f} | {len(evaluation)} "
                f"| {per_eval} | {sum(evaluation) / 3600:.2f} |"
            )
    if not rows:
        return []
    return [
        "## Cost",
        "",
        "Training: the wall time of the iterations as the trainer records it (summed over resumes; one thread per run, "
        "so about its CPU time when the run has a core to itself). Evaluation: the robustness evaluation's wall time "
        "(it includes training the learned attackers when that call trained them).",
        "",
        "| table | method | trained runs | training per run | training h | evaluated runs | evaluation per run "
        "| evaluation h |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"In all: {total_train / 3600:.2f} h of training and {total_eval / 3600:.2f} h of evaluation "
        f"({(total_train + total_eval) / 3600:.2f} h).",
        "",
    ]

"""The report's text: the markdown tables, the rliable statistics and the CSV of every run."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rl.robustness.report.groups import Report, score_matrices
from rl.robustness.report.records import METRIC_TITLES, METRICS
from rl.robustness.report.stats import iqm_interval, iqm_intervals, probability_of_improvement


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

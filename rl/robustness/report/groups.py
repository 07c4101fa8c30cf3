"""Grouping runs into experiments (tables) and methods (rows): :class:`Report` and :func:`build_report`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envs.common.registry import check_choice
from rl.qarl.modes import ALGOS
from rl.robustness.report.records import METRICS, SOURCES, RunRecord, finished_time, read_run
from rl.robustness.report.stats import Summary, student_t_interval


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

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
the return against the run's own adversary (the co-trained force adversary at temperature 0, MixedNE-LD's
action adversary at its delta, CAT's MAS attack at its target budget), against the fresh best-response adversaries
(mean over their seeds), against the best found attack (the lowest over every attacker, each listed in a detail
table), the grid average and the 1-D sweep averages; next to it the field's statistics from ``rliable`` (Agarwal et al., 2021):
the interquartile mean with a stratified-bootstrap confidence interval, the probability of improvement between
methods and performance profiles over seeds x envs, and a robustness profile (the fraction of grid cells whose
return exceeds a level). The aggregates over seeds x envs take only tables that differ in the env alone (one
aggregate per shared setting) and every seed (each env weighs the same; :mod:`.stats`). Plots: learning curves
(x: protagonist env steps), seed-mean heatmaps and sweeps.

Modules: :mod:`.records` (one run), :mod:`.groups` (experiments and methods), :mod:`.stats` (intervals, IQM,
probability of improvement), :mod:`.compare` (one method against the others per metric, with a verdict; the cost
table), :mod:`.markdown` (tables), :mod:`.figures` (plots), :mod:`.write` (the entry point).
"""

from rl.robustness.report.figures import robustness_profiles
from rl.robustness.report.groups import Report, build_report
from rl.robustness.report.records import METRICS, RunRecord, find_report_runs, read_run, read_scalars
from rl.robustness.report.stats import (
    Interval,
    Summary,
    iqm_interval,
    iqm_intervals,
    probability_of_improvement,
    student_t_interval,
)
from rl.robustness.report.write import report, write_report

__all__ = [
    "METRICS",
    "Interval",
    "Report",
    "RunRecord",
    "Summary",
    "build_report",
    "find_report_runs",
    "iqm_interval",
    "iqm_intervals",
    "probability_of_improvement",
    "read_run",
    "read_scalars",
    "report",
    "robustness_profiles",
    "student_t_interval",
    "write_report",
]

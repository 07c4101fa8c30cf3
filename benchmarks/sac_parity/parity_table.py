"""Issue 22's learning-parity table: does each SAC update mode learn like SB3's eager fp32 update?

Reads the runs of ``benchmarks/sac_parity/run_parity.sh`` (``runs/sac_parity/<task>/<mode>/<run>/progress.csv``) and
writes ``benchmarks/results/sac_parity.md`` and ``.csv``: per task, algorithm and mode, over seeds, the final
evaluation return (the mean of the last ``--final`` evaluations, each of 5 nominal episodes, so one noisy evaluation
does not decide it) and the area under the learning curve (the nominal evaluation return averaged over the run's
protagonist steps, trapezoids on each run's own evaluation steps, divided by the span), then the difference of the
means against the ``reference`` mode (SB3's own update) with its 95% bootstrap interval (seeds resampled with
replacement within each mode, independently: the runs of two modes are not paired, their trajectories part after a
few updates). A mode "learns like eager fp32" on a task when every interval contains 0 or lies above it.

    .venv/bin/python benchmarks/sac_parity/parity_table.py [--runs runs/sac_parity] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reproduce import fingerprint  # noqa: E402

from rl.qarl.progress import read_progress  # noqa: E402

BASELINE = "reference"
MODES = {
    "reference": "SB3 eager fp32 (sac.engine=reference)",
    "fp32c": "fast, compiled, fp32",
    "bf16": "fast, compiled, bf16",
}
TAG = "eval/return_nominal"


@dataclass
class Run:
    """One finished run's learning curve and its two parity metrics."""

    task: str
    mode: str
    algo: str
    seed: int
    steps: np.ndarray
    returns: np.ndarray
    final: float
    auc: float


def load_run(path: Path, task: str, mode: str, budget: int, final: int) -> Run | None:
    """The run in ``path`` if it reached ``budget`` protagonist steps, else None (unfinished runs are left out)."""
    curves = read_progress(path / "progress.csv")
    if TAG not in curves:
        return None
    steps, returns = curves[TAG]
    if len(steps) < 2 or steps[-1] < 0.9 * budget:
        return None
    _, algo, seed = path.name.split("__")
    span = float(steps[-1] - steps[0])
    auc = float(np.trapezoid(returns, steps) / span)
    return Run(task, mode, algo, int(seed.lstrip("s")), steps, returns, float(np.mean(returns[-final:])), auc)


def bootstrap_diff(x: np.ndarray, y: np.ndarray, reps: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of mean(x) - mean(y), each resampled with replacement on its own."""
    rng = np.random.default_rng(seed)
    bx = rng.choice(x, size=(reps, len(x))).mean(axis=1)
    by = rng.choice(y, size=(reps, len(y))).mean(axis=1)
    lo, hi = np.percentile(bx - by, [2.5, 97.5])
    return float(lo), float(hi)


def verdict(lo: float, hi: float) -> str:
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "CI contains 0"


BUDGETS = {"InvertedPendulum": 10_000, "dmc_walker_walk": 40_000}


def load_all(root: Path, final: int) -> list[Run]:
    """Every finished run under ``root`` (``<task>/<mode>/<task>__<algo>__s<seed>``)."""
    runs: list[Run] = []
    for task, budget in BUDGETS.items():
        for mode in MODES:
            for path in sorted((root / task / mode).glob(f"{task}__*__s*")):
                run = load_run(path, task, mode, budget, final)
                if run is not None:
                    runs.append(run)
    return runs


def summarize(runs: list[Run]) -> list[dict[str, object]]:
    """One row per task, algorithm and mode: means, SDs and, against the baseline, the difference and its CI."""
    rows = []
    for task in BUDGETS:
        for algo in ("qarl", "sac"):
            base = [r for r in runs if (r.task, r.algo, r.mode) == (task, algo, BASELINE)]
            for mode in MODES:
                group = [r for r in runs if (r.task, r.algo, r.mode) == (task, algo, mode)]
                if group:
                    rows.append(_row(task, algo, mode, group, base))
    return rows


def _row(task: str, algo: str, mode: str, group: list[Run], base: list[Run]) -> dict[str, object]:
    row: dict[str, object] = {"task": task, "algo": algo, "mode": mode, "seeds": len(group)}
    for metric in ("final", "auc"):
        x = np.array([getattr(r, metric) for r in group])
        row[f"{metric}_mean"] = float(x.mean())
        row[f"{metric}_sd"] = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
        if mode != BASELINE and len(base) > 1 and len(group) > 1:
            y = np.array([getattr(r, metric) for r in base])
            lo, hi = bootstrap_diff(x, y)
            row[f"{metric}_diff"] = float(x.mean() - y.mean())
            row[f"{metric}_lo"], row[f"{metric}_hi"] = lo, hi
            row[f"{metric}_verdict"] = verdict(lo, hi)
    return row


def plot_curves(runs: list[Run], path: Path) -> None:
    """Mean nominal evaluation return over seeds (band: min to max) per task, algorithm and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, a) for t in BUDGETS for a in ("qarl", "sac") if any((r.task, r.algo) == (t, a) for r in runs)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (task, algo) in zip(axes[0], panels, strict=True):
        for mode, label in MODES.items():
            group = [r for r in runs if (r.task, r.algo, r.mode) == (task, algo, mode)]
            if not group:
                continue
            grid = np.linspace(max(r.steps[0] for r in group), min(r.steps[-1] for r in group), 50)
            ys = np.array([np.interp(grid, r.steps, r.returns) for r in group])
            ax.plot(grid, ys.mean(axis=0), label=f"{label} ({len(group)})")
            ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), alpha=0.15)
        ax.set_title(f"{task}, {algo}")
        ax.set_xlabel("protagonist env steps")
        ax.set_ylabel("nominal evaluation return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "sac_parity")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--final", type=int, default=3, help="evaluations averaged into the final return")
    args = parser.parse_args(argv)
    runs = load_all(args.runs, args.final)
    if not runs:
        print(f"no finished runs under {args.runs}", file=sys.stderr)
        return 1
    rows = summarize(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for row in rows for k in row}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    with open(args.out / "sac_parity.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    with open(args.out / "sac_parity_runs.csv", "w", newline="") as fh:
        plain = csv.writer(fh)
        plain.writerow(["task", "mode", "algo", "seed", "final", "auc", "last_step"])
        for r in runs:
            plain.writerow([r.task, r.mode, r.algo, r.seed, f"{r.final:.3f}", f"{r.auc:.3f}", int(r.steps[-1])])
    m = fingerprint()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    trained = args.runs / "commits.txt"  # written by run_parity.sh at every launch: the code that trained
    shas = sorted({ln[:7] for ln in trained.read_text().split() if len(ln) == 40} if trained.exists() else set())
    lines = [
        "# SAC update modes: learning parity against SB3's eager fp32 update",
        "",
        f"Generated {dt.date.today()} at commit {commit.strip()} by `python benchmarks/sac_parity/parity_table.py` "
        f"from the runs of `bash benchmarks/sac_parity/run_parity.sh` (trained at commit {', '.join(shas) or 'unknown'}); "
        "machine: "
        f"{m['cpu_model']}, torch {m['packages'].get('torch')}, numpy {m['packages'].get('numpy')}.",
        "",
        "final: the mean nominal evaluation return of the last 3 evaluations (5 episodes each); AUC: the nominal "
        "evaluation return averaged over the run's protagonist steps. diff: the mode's mean minus the reference's, "
        "with its 95% bootstrap interval (seeds resampled within each mode).",
        "",
        "| task | algo | mode | seeds | final (mean ± sd) | diff [95% CI] | AUC (mean ± sd) | diff [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [str(row["task"]), str(row["algo"]), MODES[str(row["mode"])], str(row["seeds"])]
        for metric in ("final", "auc"):
            cells.append(f"{row[f'{metric}_mean']:.1f} ± {row[f'{metric}_sd']:.1f}")
            if f"{metric}_diff" in row:
                cells.append(
                    f"{row[f'{metric}_diff']:+.1f} [{row[f'{metric}_lo']:+.1f}, {row[f'{metric}_hi']:+.1f}]"
                    f" {row[f'{metric}_verdict']}"
                )
            else:
                cells.append("baseline" if row["mode"] == BASELINE else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    plot_curves(runs, args.out / "sac_parity.png")
    lines += ["", "![learning curves per mode (mean over seeds, band: min to max)](sac_parity.png)"]
    (args.out / "sac_parity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

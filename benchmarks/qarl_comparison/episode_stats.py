"""Per-episode view of a comparison: how often each method's walker falls, not only its mean return (issue 25).

A seed's score is a mean over episodes, and on walker-walk the episodes are bimodal: a run that walks scores ~350-490
of 500, one that falls early ~30-110. Two methods with the same mean can differ in how often they fall, and a method
that walks faster but falls more often can have the lower mean. This script reads the committed robustness JSONs and
gives, per method and episode set (nominal, vs the co-trained adversary, the 11 x 11 grid cells, the best found
attack), the number of episodes, the median, and the fraction of episodes below ``--threshold`` (default: half the
horizon's return, 250), with every seed's episodes pooled and the per-seed fractions listed.

    python benchmarks/qarl_comparison/episode_stats.py benchmarks/qarl_comparison/dmc_walker_walk_150k/runs \
        --out benchmarks/qarl_comparison/dmc_walker_walk_150k/episodes.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ORDER = ("qarl", "rarl", "sac", "fixed_temp", "force_curriculum", "mixedne_ld", "cat")


def episode_sets(data: dict) -> dict[str, list[float]]:
    """The episode returns of one robustness JSON, by set (sets the evaluation did not run are left out)."""
    sets = {"nominal": list(data.get("nominal_returns") or [])}
    if data.get("adversary_returns"):
        sets["vs own adversary"] = list(data["adversary_returns"])
    cells = [v for row in data.get("grid_returns") or [] for cell in row for v in (cell or [])]
    if cells:
        sets["grid cells"] = cells
    best = data.get("best_found_attack")
    attackers = {a["name"]: a["returns"] for a in data.get("attackers") or []}
    if isinstance(best, dict) and best.get("name") in attackers:
        sets["best found attack"] = list(attackers[best["name"]])
    elif isinstance(best, str) and best in attackers:
        sets["best found attack"] = list(attackers[best])
    return {k: [float(v) for v in vs if v is not None] for k, vs in sets.items()}


def collect(root: Path) -> dict[str, dict[int, dict[str, list[float]]]]:
    """``method -> seed -> set -> returns`` from every ``*/robustness/robustness.json`` under ``root``."""
    out: dict[str, dict[int, dict[str, list[float]]]] = {}
    for path in sorted(root.glob("*/robustness/robustness.json")):
        data = json.loads(path.read_text())
        out.setdefault(str(data["algo"]), {})[int(data["seed"])] = episode_sets(data)
    return out


def table(runs: dict[str, dict[int, dict[str, list[float]]]], threshold: float) -> str:
    """The markdown table: per method and set, episodes, median and the fraction below ``threshold``."""
    lines = [
        f"Episodes below {threshold:g} (a fall, on walker-walk) per method and episode set, every seed's episodes "
        "pooled; the per-seed fractions in brackets (seed order).",
        "",
        "| method | episodes of | seeds | episodes | median return | below threshold | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    methods = sorted(runs, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))
    names = ("nominal", "vs own adversary", "best found attack", "grid cells")
    for method in methods:
        for name in names:
            seeds = {s: sets[name] for s, sets in sorted(runs[method].items()) if sets.get(name)}
            if not seeds:
                continue
            pooled = np.array([v for vs in seeds.values() for v in vs])
            per_seed = ", ".join(f"{np.mean(np.array(vs) < threshold):.2f}" for vs in seeds.values())
            lines.append(
                f"| {method} | {name} | {len(seeds)} | {len(pooled)} | {np.median(pooled):.1f} "
                f"| {np.mean(pooled < threshold):.2f} | [{per_seed}] |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="folder holding the runs (each with robustness/robustness.json)")
    parser.add_argument("--threshold", type=float, default=250.0, help="a return below it counts as a fall")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        parser.error(f"runs: no such folder: {args.runs}")
    runs = collect(args.runs)
    if not runs:
        parser.error(f"runs: no */robustness/robustness.json under {args.runs}")
    text = table(runs, args.threshold)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

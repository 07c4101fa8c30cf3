"""EBIM greedy at knife-edge rates (issue 15): R equal to the entropy of a partition on the greedy's own path.

For each source (uniform and Dirichlet, n = 2..100) and each partition the greedy can visit, set ``R`` to that
partition's ``entropy()`` and count how often the returned ``H(T)`` exceeds ``R`` and how many bits are lost
against ``R`` (exact arithmetic returns the partition itself, losing nothing). ``--old FILE`` also runs an older
``ebim.py`` (e.g. ``git show 4470544:envs/coding/ebim.py > /tmp/old_ebim.py``) on the same rates.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_ebim_knife_edge.py --old /tmp/old_ebim.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from envs.coding.ebim import ebim_greedy
from envs.coding.entropy import entropy


def load_greedy(path: str) -> Callable[..., Any]:
    """``ebim_greedy`` of the module file at ``path``."""
    spec = importlib.util.spec_from_file_location("old_ebim", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ebim_greedy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--old", default=None, help="an older ebim.py to compare")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file (benchmarks/reproduce.py)")
    args = parser.parse_args()
    impls: dict[str, Callable[..., Any]] = {"current": ebim_greedy}
    if args.old:
        impls["old"] = load_greedy(args.old)
    rng = np.random.default_rng(args.seed)
    stats = {k: {"rates": 0, "over": 0, "max_over": 0.0, "state_rates": 0, "lossy": 0, "max_loss": 0.0} for k in impls}
    for trial in range(args.sources):
        n = int(rng.integers(2, 101))
        p = np.full(n, 1 / n) if trial % 2 == 0 else rng.dirichlet(np.full(n, rng.choice([0.3, 1.0, 3.0])))
        order = np.argsort(-p, kind="stable")
        for j in range(1, n):
            state = [p[order[:j]].sum(), *p[order[j:]]]
            paired = [*state[:-2], state[-2] + state[-1]] if len(state) > 2 else state
            for masses, is_state in ((state, True), (paired, False)):
                r = min(entropy(masses), float(np.log2(n)))
                for name, fn in impls.items():
                    s = stats[name]
                    h = entropy(fn(p, r).masses) if name != "current" else fn(p, r).entropy
                    s["rates"] += 1
                    s["over"] += h > r
                    s["max_over"] = max(s["max_over"], h - r)
                    if is_state:
                        s["state_rates"] += 1
                        s["lossy"] += r - h > 1e-9
                        s["max_loss"] = max(s["max_loss"], r - h)
    print("| code | rates | H(T) > R | max excess (bits) | R = a state's entropy | lost > 1e-9 bits | max loss (bits) |")
    print("|---|---|---|---|---|---|---|")
    for name, s in stats.items():
        print(f"| {name} | {s['rates']} | {s['over']} | {s['max_over']:.2g} | {s['state_rates']} | {s['lossy']} "
              f"| {s['max_loss']:.3g} |")  # fmt: skip
    if args.json:
        rows = [
            {"code": name, **{k: v.item() if hasattr(v, "item") else v for k, v in s.items()}} for name, s in stats.items()
        ]
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

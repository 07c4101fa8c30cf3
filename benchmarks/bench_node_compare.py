"""Vanilla vs regularized training over seeds (digits headline; also spiral, latent, sde), one run at a time.

    nice -n 10 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/bench_node_compare.py \
        --seeds 0 1 2 --regs none error --out runs/bench_node_digits

Each run is ``dynamics.node.train.train`` on the composed ``configs/train_node.yaml`` (same code path as the script).
A method is a reg group name with optional per-method overrides after ``@``, e.g. ``taynode@reg.coef=0.5`` or
``error@reg.coef=0.03@reg.agg=sum``; it is labelled by the whole string. Finished runs (their ``metrics.json``) are
reused, so an interrupted sweep resumes where it stopped.
Methods alternate within each seed so that machine load drifts hit both alike. Writes ``results.json`` and
``table.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from dynamics.node.config import register_configs
from dynamics.node.train import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--regs", nargs="+", default=["none", "error"])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--extra", nargs="*", default=[], help="more Hydra overrides for every run")
    parser.add_argument("--out", default="runs/bench_node_digits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    register_configs()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        for seed in args.seeds:
            for method in args.regs:
                reg, *own = method.split("@")
                overrides = [
                    f"task={args.task}",
                    f"reg={reg}",
                    f"seed={seed}",
                    f"device={args.device}",
                    f"task.epochs={args.epochs}",
                    "progress=false",
                    *args.extra,
                    *own,
                ]
                run_dir = out / f"{args.task}__{method.replace('@', '__').replace('=', '-')}__s{seed}"
                overrides.append(f"run_dir={run_dir}")
                if (run_dir / "metrics.json").exists():
                    metrics = json.loads((run_dir / "metrics.json").read_text())
                else:
                    cfg = compose(config_name="train_node", overrides=overrides)
                    start = time.perf_counter()
                    metrics = train(cfg)
                    metrics["wall_s"] = time.perf_counter() - start
                metrics["reg"] = method
                results.append(metrics)
                print(json.dumps(metrics), flush=True)
                (out / "results.json").write_text(json.dumps(results, indent=2))
    metric = next(k for k in ("test_accuracy", "test_l1", "test_mse", "test_moment_loss") if k in results[0])
    scale = 100.0 if metric == "test_accuracy" else 1.0
    lines = [
        f"| seed | method | {metric} | test NFE | test steps acc/rej | train fwd NFE | predict ms | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in results:
        lines.append(
            f"| {m['seed']} | {m['reg']} | {scale * m[metric]:.4g} | {m['test_nfe']:.0f} | "
            f"{m['test_accepted']:.0f}/{m['test_rejected']:.0f} | {m['train_nfe_forward_mean']:.1f} | "
            f"{1000 * m['predict_time_s']:.1f} | {m['train_time_s']:.1f} |"
        )
    lines.append("")
    lines.append(f"| method | mean {metric} | mean test NFE | mean predict ms | mean train s |")
    lines.append("|---|---|---|---|---|")
    for reg in args.regs:
        ms = [m for m in results if m["reg"] == reg]
        lines.append(
            f"| {reg} | {statistics.mean(scale * m[metric] for m in ms):.4g} | "
            f"{statistics.mean(m['test_nfe'] for m in ms):.1f} | "
            f"{statistics.mean(1000 * m['predict_time_s'] for m in ms):.1f} | "
            f"{statistics.mean(m['train_time_s'] for m in ms):.1f} |"
        )
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines.append("")
    lines.append(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} thread, "
        f"torch {torch.__version__}, git {rev}, date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Plot a QARL run's curriculum from its TensorBoard logs and print a markdown summary.

    python benchmarks/plot_qarl_curriculum.py runs/train_qarl/curriculum_InvertedPendulum/<date> \
        --out benchmarks/qarl_curriculum_InvertedPendulum.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run: Path) -> dict[str, tuple[list[int], list[float]]]:
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    ea.Reload()
    return {tag: ([e.step for e in ea.Scalars(tag)], [e.value for e in ea.Scalars(tag)]) for tag in ea.Tags()["scalars"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    s = scalars(args.run)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    steps, mean = s["curriculum/distribution_mean"]
    axes[0].plot(steps, mean, label="teacher mean alpha")
    axes[0].plot(*s["curriculum/temperature_mean"], ".", alpha=0.5, label="sampled alpha (iteration mean)")
    axes[0].set_yscale("log")
    axes[0].set_title("adversary temperature")
    axes[0].legend()
    axes[1].plot(*s["curriculum/performance"], "o-", label="performance estimate (discounted)")
    axes[1].plot(*s["curriculum/threshold"], "--", label="threshold xi")
    axes[1].set_title("teacher's performance vs threshold")
    axes[1].legend()
    axes[2].plot(*s["rollout/protagonist_return"], label="training return")
    for tag in ("eval/return_nominal", "eval/return_vs_adversary"):
        if tag in s:
            axes[2].plot(*s[tag], "o-", label=tag.split("/")[1])
    axes[2].set_title("protagonist return")
    axes[2].legend()
    # since issue 10 the TensorBoard step counts the protagonist's env steps; older runs logged all env steps
    pro = s.get("time/protagonist_steps")
    xlabel = "protagonist env steps" if pro is not None and pro[0] == [int(v) for v in pro[1]] else "env steps"
    for ax in axes:
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    nu_steps, nu = s["curriculum/nu"]
    print(f"| {xlabel} | {steps[-1]} |\n|---|---|")
    print(f"| nu: first -> last | {nu[0]:.2f} -> {nu[-1]:.2f} |")
    print(f"| mean alpha: first -> last | {mean[0]:.5f} -> {mean[-1]:.5f} |")
    first_move = next((st for st, v in zip(nu_steps, nu, strict=True) if v < nu[0]), None)
    print(f"| first curriculum step at env step | {first_move} |")
    reached = next((st for st, v in zip(nu_steps, nu, strict=True) if v <= 1.0), None)
    print(f"| target reached at env step | {reached} |")
    for tag in ("eval/return_nominal", "eval/return_vs_adversary"):
        if tag in s:
            print(f"| last {tag} | {s[tag][1][-1]:.1f} |")


if __name__ == "__main__":
    main()

"""Where an SDE model's fit goes: path variance against the truth and diffusion scale, from trained checkpoints.

    python benchmarks/bench_node_sde_diffusion.py runs/reproduce/node23_sde/sde

For every run folder ``<dir>/sde__*`` (``bench_node_compare.py --task sde``, checkpoints on), the model's
``checkpoints/last.pt`` is simulated through the task's evaluation (200 paths, Brownian entropy 12345, its own
``sde_dt`` / ``sde_tol`` / ``sde_facmax``) and two numbers are printed: the ratio of the model's path variance to
the true variance (summed over both coordinates, averaged over the 29 times after t = 0; 1 is right) and the mean
``|g(y)|`` of its diffusion on its own states. The step-doubling error estimate contains the diffusion's strong
error, so a penalty on it pulls ``g``, and with it the path variance, down.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchsde
from omegaconf import OmegaConf

from dynamics.node.sde import sdeint_reg
from dynamics.node.solvers import StepRecorder
from dynamics.node.tasks import make_task
from envs.common.io import load_state_file


def variance_and_diffusion(run: Path, paths: int = 200, entropy: int = 12345) -> tuple[float, float]:
    """(model variance / true variance, mean |g|) of the SDE model saved in ``run``."""
    state = load_state_file(run / "checkpoints" / "last.pt")
    cfg = OmegaConf.create(state["config"])
    if cfg.task.name != "sde":
        raise ValueError(f"{run} is a task={cfg.task.name!r} run, not task=sde")
    task = make_task(cfg.task, torch.device("cpu"), int(cfg.seed))
    model = task.model  # type: ignore[attr-defined]
    model.load_state_dict(state["model"])
    y0 = torch.tensor([[2.0, 0.0]]).expand(paths, 2)
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(paths, 2), entropy=entropy, levy_area_approximation="space-time")
    t = cfg.task
    with torch.no_grad():
        ys = sdeint_reg(model, y0, task.ts, StepRecorder(record_errors=False), bm=bm, method="srk",  # type: ignore[attr-defined]
                        dt=t.sde_dt, rtol=t.sde_tol, atol=t.sde_tol, facmax=t.sde_facmax)  # fmt: skip
        ratio = (ys.var(1).sum(-1)[1:] / task.var.sum(-1)[1:]).mean().item()  # type: ignore[attr-defined]
        g = model.g(0.0, ys.reshape(-1, 2)).abs().mean().item()
    return ratio, g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a bench_node_compare.py --task sde output folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = sorted(p for p in args.folder.glob("sde__*") if (p / "checkpoints" / "last.pt").is_file())
    if not runs:
        raise SystemExit(f"no sde__*/checkpoints/last.pt under {args.folder}")
    print("| run | model variance / true variance | mean abs(g) |\n|---|---|---|")
    for run in runs:
        ratio, g = variance_and_diffusion(run)
        print(f"| {run.name} | {ratio:.3f} | {g:.3f} |")


if __name__ == "__main__":
    main()

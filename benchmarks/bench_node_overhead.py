"""Instrumentation overhead: forward+backward of the instrumented solver (regularizer off) vs torchdiffeq's dopri5.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_node_overhead.py --reps 40

Same model (digits NODE, 64->100->64 tanh field, batch 128), same inputs, same run; variants interleaved in a
rotating order within each repetition; reports median times and the ratio of medians to plain dopri5 (target
<= 1.05 for ``solve(reg=none)``). Also shown for information: the recorder with stiffness on, and ERNODE's penalty.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torchdiffeq import odeint

from dynamics.node.models import ODEClassifier
from dynamics.node.regularizers import RegSpec
from dynamics.node.solve import SolverSettings
from dynamics.node.solvers import StepRecorder
from dynamics.node.tasks import sync


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = ODEClassifier(64, 100, 10).to(device)
    # scale the field so that the solve takes a realistic number of steps (~40 NFE, as trained digits models do)
    with torch.no_grad():
        model.func.l2.weight.mul_(4.0)
    x = torch.rand(args.batch, 64, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    t = model.t
    settings = SolverSettings(rtol=args.tol, atol=args.tol)

    def plain():
        ys = odeint(model.func, x, t, rtol=args.tol, atol=args.tol, method="dopri5")
        torch.nn.functional.cross_entropy(model.head(ys[-1]), y).backward()

    def raw_reg():
        ys = odeint(model.func, x, t, rtol=args.tol, atol=args.tol, method="dopri5_reg", options={"recorder": StepRecorder()})
        torch.nn.functional.cross_entropy(model.head(ys[-1]), y).backward()

    def raw_reg_grad_dt():
        ys = odeint(
            model.func,
            x,
            t,
            rtol=args.tol,
            atol=args.tol,
            method="dopri5_reg",
            options={"recorder": StepRecorder(), "detach_dt": False},
        )
        torch.nn.functional.cross_entropy(model.head(ys[-1]), y).backward()

    def solve_off():
        logits, _ = model(x, settings, RegSpec("none"))
        torch.nn.functional.cross_entropy(logits, y).backward()

    def stiff_recorded():
        rec = StepRecorder(stiffness=True)
        ys = odeint(model.func, x, t, rtol=args.tol, atol=args.tol, method="dopri5_reg", options={"recorder": rec})
        torch.nn.functional.cross_entropy(model.head(ys[-1]), y).backward()

    def ernode_on():
        logits, out = model(x, settings, RegSpec("error"))
        (torch.nn.functional.cross_entropy(logits, y) + out.penalty).backward()

    variants = {
        "dopri5 (torchdiffeq)": plain,
        "dopri5_reg raw odeint": raw_reg,
        "dopri5_reg detach_dt=False": raw_reg_grad_dt,
        "solve(reg=none)": solve_off,
        "dopri5_reg + stiffness": stiff_recorded,
        "solve(reg=error)": ernode_on,
    }
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    model.func.nfe = 0
    plain()
    nfe = model.func.nfe
    for fn in variants.values():  # warm-up
        fn()
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            model.zero_grad(set_to_none=True)
            sync(device)
            start = time.perf_counter()
            variants[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times[names[0]])
    rows = {n: {"median_ms": 1000 * statistics.median(v), "ratio": statistics.median(v) / base} for n, v in times.items()}
    print(f"forward NFE per solve: {nfe}; batch {args.batch}; tol {args.tol}; reps {args.reps}; threads {args.threads}")
    print("| variant | median ms | ratio to dopri5 |")
    print("|---|---|---|")
    for n, r in rows.items():
        print(f"| {n} | {r['median_ms']:.2f} | {r['ratio']:.3f} |")
    print(json.dumps({"nfe": nfe, "rows": rows}))


if __name__ == "__main__":
    main()

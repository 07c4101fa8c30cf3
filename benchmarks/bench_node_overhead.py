"""Instrumentation and regularizer cost: forward+backward time and graph memory of one digits-NODE solve.

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_node_overhead.py --reps 40

Same model (digits NODE, 64->100->64 tanh field, batch 128), same inputs, same run; variants interleaved in a
rotating order within each repetition; reports median times and the ratio of medians to plain dopri5 (target
<= 1.05 for ``solve(reg=none)``), the NFE, and the peak heap growth during the forward pass (glibc ``mallinfo2``
sampled after every field evaluation; CPU only): the graph memory the recorder may add to.
``--variants`` picks a subset by name prefix (e.g. ``--variants dopri5 "solve(reg=taynode"``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F
from torchdiffeq import odeint

from dynamics.node.models import ODEClassifier
from dynamics.node.regularizers import RegSpec
from dynamics.node.solve import SolverSettings
from dynamics.node.solvers import StepRecorder
from dynamics.node.timing import sync


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def _heap_bytes() -> int:
    """Bytes in use in glibc's heap plus its mmapped blocks (where torch's CPU tensors live)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def forward_peak_bytes(model: ODEClassifier, forward: Callable[[], Tensor]) -> int:
    """Peak of process heap in use during ``forward()`` above its start, sampled after every field evaluation.

    Linux/glibc and CPU only (``mallinfo2``). Per-step graphs that a recorder keeps until the solve returns raise
    this peak; graphs dropped after each step do not.
    """
    func = model.func
    field = func.field
    peak = 0

    def sampled(t: Tensor, y: Tensor) -> Tensor:
        nonlocal peak
        out = field(t, y)
        peak = max(peak, _heap_bytes())
        return out

    gc.collect()
    start = _heap_bytes()
    func.field = sampled  # type: ignore[method-assign]
    try:
        loss = forward()
        peak = max(peak, _heap_bytes())
    finally:
        del func.field
    del loss
    return peak - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="*", default=None, help="name prefixes of the variants to run")
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
    gen = torch.Generator().manual_seed(0)

    def raw(method: str, **options: object) -> Callable[[], Tensor]:
        def forward() -> Tensor:
            opts = None if method == "dopri5" else {"recorder": StepRecorder(), **options}
            ys = odeint(model.func, x, t, rtol=args.tol, atol=args.tol, method=method, options=opts)
            return F.cross_entropy(model.head(ys[-1]), y)

        return forward

    def stiff_recorded() -> Tensor:
        rec = StepRecorder(record_errors=False, stiffness=True)
        ys = odeint(model.func, x, t, rtol=args.tol, atol=args.tol, method="dopri5_reg", options={"recorder": rec})
        return F.cross_entropy(model.head(ys[-1]), y)

    def solved(reg: RegSpec) -> Callable[[], Tensor]:
        def forward() -> Tensor:
            logits, out = model(x, settings, reg, gen)
            loss = F.cross_entropy(logits, y)
            return loss if out.penalty is None else loss + out.penalty

        return forward

    variants: dict[str, Callable[[], Tensor]] = {
        "dopri5 (torchdiffeq)": raw("dopri5"),
        "dopri5_reg raw odeint": raw("dopri5_reg"),
        "dopri5_reg detach_dt=False": raw("dopri5_reg", detach_dt=False),
        "solve(reg=none)": solved(RegSpec("none")),
        "dopri5_reg + stiffness": stiff_recorded,
        "solve(reg=error)": solved(RegSpec("error")),
        "solve(reg=stiffness)": solved(RegSpec("stiffness", agg="max")),
        "solve(reg=local_error)": solved(RegSpec("local_error")),
        "solve(reg=steer)": solved(RegSpec("steer")),
        "solve(reg=rnode)": solved(RegSpec("rnode")),
        "solve(reg=taynode, K=1)": solved(RegSpec("taynode", taylor_order=1)),
        "solve(reg=taynode, K=2)": solved(RegSpec("taynode", taylor_order=2)),
        "solve(reg=taynode, K=3)": solved(RegSpec("taynode", taylor_order=3)),
    }
    if args.variants:
        keep = [n for n in variants if n == "dopri5 (torchdiffeq)" or any(n.startswith(p) for p in args.variants)]
        variants = {n: variants[n] for n in keep}
    names = list(variants)
    nfe: dict[str, int] = {}
    memory: dict[str, int] = {}
    for name, fn in variants.items():  # warm-up, NFE and graph memory
        model.func.nfe = 0
        fn().backward()
        nfe[name] = model.func.nfe
        memory[name] = forward_peak_bytes(model, fn) if device.type == "cpu" else 0
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            model.zero_grad(set_to_none=True)
            sync(device)
            start = time.perf_counter()
            variants[name]().backward()
            sync(device)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times[names[0]])
    rows = {
        n: {
            "median_ms": 1000 * statistics.median(v),
            "ratio": statistics.median(v) / base,
            "nfe_fwd_bwd": nfe[n],
            "saved_mb": memory[n] / 2**20,
            "saved_ratio": memory[n] / max(1, memory[names[0]]),
        }
        for n, v in times.items()
    }
    print(f"batch {args.batch}; tol {args.tol}; reps {args.reps}; threads {args.threads}")
    print("| variant | median ms | ratio to dopri5 | NFE (fwd+bwd) | forward peak MB | memory ratio |")
    print("|---|---|---|---|---|---|")
    for n, r in rows.items():
        print(
            f"| {n} | {r['median_ms']:.2f} | {r['ratio']:.3f} | {r['nfe_fwd_bwd']} | {r['saved_mb']:.2f} | "
            f"{r['saved_ratio']:.3f} |"
        )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()

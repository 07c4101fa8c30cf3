"""The registry of ``benchmarks/reproduce.py``: every table it backs, with its command, checked values and renderer.

A job's ``cpu_s`` is the CPU time its recorded run took (or, for a job not yet rerun, the README's figure); jobs
under two CPU-minutes are the ``--quick`` set. Record fields: ``seed``/``method``/``setup`` identify a NODE run
(``method`` is the ``bench_node_compare.py`` method string), ``*_pct`` are percentages, times are seconds.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reproduce import Job, load_results

NODE = "{py} benchmarks/bench_node_compare.py"
MCG = "{py} scripts/run_mcg.py"
GTF1 = "{py} benchmarks/bench_gtf_table1.py"
NODE_VALUES = ("test_nfe", "test_accepted", "test_rejected", "train_nfe_forward_mean")
NODE_TIMINGS = ("predict_time_s", "train_time_s")
MCG_VALUES = ("accuracy", "accuracy_se", "mdp_return", "return_se", "length")
GTF_VALUES = ("failed", "epoch", "d_stsp", "d_h", "pe", "lyapunov")
GTF_MAD_SPECS = {"d_stsp_mad": ".2f", "d_h_mad": ".3f", "pe_mad": ".1e"}


# ------------------------------------------------------------------------------------------------------ formatting


def num(v: Any) -> float:
    """A value as a float (values transcribed from the README are strings as printed)."""
    return float(v.replace(",", "")) if isinstance(v, str) else float(v)


def fmt(v: Any, spec: str) -> str:
    """A value in a table cell: as printed when transcribed, else formatted with ``spec``."""
    if v is None:
        return "—"
    return v if isinstance(v, str) else format(v, spec)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "---") -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def median_mad(xs: Sequence[float]) -> tuple[float, float]:
    """Median and (unscaled) median absolute deviation."""
    med = statistics.median(xs)
    return med, statistics.median(abs(x - med) for x in xs)


def mean(recs: Sequence[dict], field: str) -> float:
    """Mean of one field over records."""
    return statistics.mean(num(r[field]) for r in recs)


def pick(doc: dict, **match: Any) -> list[dict]:
    """The records whose fields equal ``match``."""
    return [r for r in doc["records"] if all(r.get(k) == v for k, v in match.items())]


def one(doc: dict, **match: Any) -> dict:
    """The single record matching ``match``."""
    found = pick(doc, **match)
    if len(found) != 1:
        raise KeyError(f"{doc['job']}: {len(found)} records match {match}")
    return found[0]


# ------------------------------------------------------------------------------------------------------ collectors


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def collect_node(out: Path) -> list[dict]:
    """Records of every ``bench_node_compare.py`` sweep under ``out`` (one sub-folder per set-up)."""
    records = []
    for path in sorted(out.glob("*/results.json")):
        for m in json.loads(path.read_text()):
            rec: dict[str, Any] = {"setup": path.parent.name, "seed": m["seed"], "method": m["reg"]}
            for key in ("test_accuracy", "train_accuracy"):
                if key in m:
                    rec[f"{key}_pct"] = 100 * m[key]
            for key in (
                "test_l1",
                "test_mse",
                "test_moment_loss",
                "test_mean_loss",
                "test_var_loss",
                *NODE_VALUES,
                *NODE_TIMINGS,
            ):
                if key in m:
                    rec[key] = _clean(m[key])
            records.append(rec)
    return records


def collect_mcg(out: Path) -> list[dict]:
    """Records of every ``run_mcg.py`` run under ``out``: its rate sweep and its message sweep."""
    records = []
    for run in sorted(p for p in out.iterdir() if (p / "rate_sweep.csv").is_file()):
        for sweep, x, who in (("rate", "rate_fraction", "encoder"), ("messages", "n_messages", "sender")):
            with open(run / f"{sweep}_sweep.csv") as fh:
                for row in csv.DictReader(fh):
                    rec: dict[str, Any] = {"run": run.name, "sweep": sweep, "x": float(row[x]), "who": row[who]}
                    rec.update({k: float(row[k]) for k in MCG_VALUES})
                    records.append(rec)
    return records


def collect_gtf(out: Path) -> list[dict]:
    """Records of ``bench_gtf_table1.py`` sweeps under ``out`` (``<epochs>/s<seed>/quality.json``)."""
    records = []
    for path in sorted(out.glob("*/s*/quality.json")):
        q = json.loads(path.read_text())
        rec = {"setup": path.parent.parent.name, "seed": q["seed"], **{k: _clean(q.get(k)) for k in GTF_VALUES}}
        rec.update(train_cpu_s=q["train_cpu_s"], eval_cpu_s=q.get("eval_cpu_s"))
        if "select_d_stsp_holdout" in q:
            rec["select_d_stsp_holdout"] = _clean(q["select_d_stsp_holdout"])
        records.append(rec)
    return records


def collect_json(out: Path) -> list[dict]:
    """Records a script wrote itself to ``out/records.json``."""
    return json.loads((out / "records.json").read_text())


# ------------------------------------------------------------------------------------------------------- renderers


def nfe_cell(r: dict, ratio_to: dict | None = None) -> str:
    """``44 (7/0)``, with ``(0.45x)`` against a reference record."""
    cell = f"{fmt(r['test_nfe'], '.0f')} ({fmt(r['test_accepted'], '.0f')}/{fmt(r['test_rejected'], '.0f')})"
    if ratio_to is not None and r is not ratio_to:
        cell += f" ({num(r['test_nfe']) / num(ratio_to['test_nfe']):.2f}x)"
    return cell


def timing_cells(r: dict) -> list[str]:
    """Predict ms and train s."""
    return [f"{1000 * num(r['predict_time_s']):.1f}", f"{num(r['train_time_s']):.1f}"]


def node_rows(
    doc: dict, labels: dict[str, str], metric: str, spec: str, ratio: bool = False, setup: str | None = None
) -> list[list[str]]:
    """One row per method (single-seed jobs): label, metric, test NFE, train fwd NFE, timings."""
    recs = [r for r in doc["records"] if setup is None or r["setup"] == setup]
    ref = next((r for r in recs if r["method"] == "none"), None) if ratio else None
    rows = []
    for method, label in labels.items():
        r = next(r for r in recs if r["method"] == method)
        cells = [label, fmt(r[metric], spec), nfe_cell(r, ref), fmt(r["train_nfe_forward_mean"], ".1f")]
        rows.append(cells + timing_cells(r))
    return rows


def render_node_single(labels: dict[str, str], metric: str, title: str, spec: str, ratio: bool = True) -> Callable:
    """Renderer of a one-seed NODE table."""

    def render(doc: dict) -> str:
        header = ["method", title, "test NFE (acc/rej)", "train fwd NFE", "predict ms", "train s"]
        return table(header, node_rows(doc, labels, metric, spec, ratio))

    return render


def render_node_seeds(labels: dict[str, str], metric: str, title: str, spec: str, train_acc: bool = False) -> Callable:
    """Renderer of a NODE table over seeds, with mean rows (test NFE ratio against vanilla)."""

    def render(doc: dict) -> str:
        header = ["seed", "method", *(["train acc %"] if train_acc else []), title, "test NFE (acc/rej)"]
        header += ["train fwd NFE", "predict ms", "train s"]
        rows = []
        for seed in sorted({r["seed"] for r in doc["records"]}):
            for method, label in labels.items():
                r = one(doc, seed=seed, method=method)
                acc = [fmt(r["train_accuracy_pct"], ".2f")] if train_acc else []
                nfe = nfe_cell(r)
                rows.append([str(seed), label, *acc, fmt(r[metric], spec), nfe, fmt(r["train_nfe_forward_mean"], ".1f")])
                rows[-1] += timing_cells(r)
        base = mean(pick(doc, method="none"), "test_nfe")
        for method, label in labels.items():
            rs = pick(doc, method=method)
            nfe = f"{mean(rs, 'test_nfe'):.1f}" + ("" if method == "none" else f" ({mean(rs, 'test_nfe') / base:.2f}x)")
            acc = [f"{mean(rs, 'train_accuracy_pct'):.2f}"] if train_acc else []
            cells = ["**mean**", label, *acc, f"**{mean(rs, metric):{spec}}**", f"**{nfe}**"]
            cells += [f"{mean(rs, 'train_nfe_forward_mean'):.1f}", f"{1000 * mean(rs, 'predict_time_s'):.1f}"]
            rows.append([*cells, f"{mean(rs, 'train_time_s'):.1f}"])
        return table(header, rows)

    return render


def render_node_front(
    rows_spec: Sequence[tuple[str, str, str]], metric: str, title: str, spec: str, parts: Sequence[str] = ()
) -> Callable:
    """Renderer of NODE set-ups over seeds: one row per ``(setup, method, label)``, the first row the reference.

    Cells: the metric per seed and its mean with the ratio to the reference's mean, the means of ``parts`` (fields
    that add up to the metric), test NFE per seed and its mean with the ratio, mean train forward NFE, mean train
    seconds with the ratio.
    """

    def render(doc: dict) -> str:
        seeds = sorted({r["seed"] for r in doc["records"]})
        ref_setup, ref_method, _ = rows_spec[0]
        ref = [one(doc, setup=ref_setup, method=ref_method, seed=s) for s in seeds]
        rows = []
        for setup, method, label in rows_spec:
            rs = [one(doc, setup=setup, method=method, seed=s) for s in seeds]
            ratios = [mean(rs, k) / mean(ref, k) for k in (metric, "test_nfe", "train_time_s")]
            rows.append(
                [
                    label,
                    " / ".join(fmt(r[metric], spec) for r in rs),
                    f"**{mean(rs, metric):{spec}}** ({ratios[0]:.2f}x)",
                    *(f"{mean(rs, p):{spec}}" for p in parts),
                    " / ".join(fmt(r["test_nfe"], ".0f") for r in rs),
                    f"**{mean(rs, 'test_nfe'):.1f}** ({ratios[1]:.2f}x)",
                    f"{mean(rs, 'train_nfe_forward_mean'):.1f}",
                    f"{mean(rs, 'train_time_s'):.1f} ({ratios[2]:.2f}x)",
                ]
            )
        seeds_txt = " / ".join(map(str, seeds))
        header = ["method", f"{title} (seeds {seeds_txt})", f"mean {title}", *(f"mean {p}" for p in parts)]
        header += ["test NFE (seeds)", "mean test NFE"]
        return table([*header, "mean train fwd NFE", "mean train s"], rows)

    return render


def render_node_spiral14(doc: dict) -> str:
    """Issue 14's spiral baselines: one row per method, seeds side by side."""
    labels = {
        "none": "vanilla",
        "error@reg.coef=0.03@reg.agg=sum@reg.schedule=constant": "ERNODE 0.03 sum",
        "rnode": "RNODE 0.01",
        "steer": "STEER 0.5",
        "taynode@reg.coef=0.5": "TayNODE K=2, 0.5",
    }
    seeds = sorted({r["seed"] for r in doc["records"]})
    base = mean(pick(doc, method="none"), "test_nfe")
    rows = []
    for method, label in labels.items():
        rs = [one(doc, method=method, seed=s) for s in seeds]
        nfe = f"{mean(rs, 'test_nfe'):.0f}" + ("" if method == "none" else f" ({mean(rs, 'test_nfe') / base:.2f}x)")
        rows.append(
            [
                label,
                " / ".join(fmt(r["test_l1"], ".3f") for r in rs),
                f"{mean(rs, 'test_l1'):.3f}",
                " / ".join(fmt(r["test_nfe"], ".0f") for r in rs),
                nfe,
                f"{mean(rs, 'train_nfe_forward_mean'):.1f}",
                f"{mean(rs, 'train_time_s'):.1f}",
            ]
        )
    header = ["method", "test L1 (seeds " + " / ".join(map(str, seeds)) + ")", "mean L1", "test NFE (seeds)"]
    return table([*header, "mean test NFE", "mean train fwd NFE", "mean train s"], rows)


def render_gtf_seeds(
    metric_specs: dict[str, str],
    with_lyapunov: bool = True,
    previous: str | None = None,
    previous_label: str = "same seed, 300 epochs to 1e-4 (above)",
    holdout: bool = False,
) -> Callable:
    """Renderer of a Table-1 sweep: one row per seed, failed runs named, median ± MAD over the finished ones.

    ``previous`` adds a column with D_stsp / D_H of the same seed in that job; ``holdout`` a column with the last
    model's D_stsp on the held-out tail of the training series (``select_holdout=true`` runs).
    """
    paper = {"d_stsp": "4.3 ± 0.6", "d_h": "0.34 ± 0.02", "pe": "(2.4 ± 0.1)e-3"}

    def render(doc: dict) -> str:
        keys = ["d_stsp", "d_h", "pe", *(["lyapunov"] if with_lyapunov else [])]
        header = ["seed", "D_stsp", "D_H", "PE(20)", *(["λ_max / step"] if with_lyapunov else []), "training CPU"]
        old = load_results(previous) if previous else None
        if holdout:
            header.append("D_stsp, held-out training tail")
        if old:
            header.append(previous_label)
        rows = []
        for r in sorted(doc["records"], key=lambda r: r["seed"]):
            if r["failed"]:
                cells = ["failed: non-finite loss at update 3 (cond(B) = 176 at init)", *[""] * (len(keys) - 1)]
            else:
                cells = [fmt(r[k], metric_specs[k]) for k in keys]
            row = [str(r["seed"]), *cells, f"{num(r['train_cpu_s']):.0f} s"]
            if holdout:
                row.append(fmt(r.get("select_d_stsp_holdout"), ".2f"))
            if old:
                o = one(old, seed=r["seed"])
                cross = f"{fmt(o['d_stsp'], metric_specs['d_stsp'])} / {fmt(o['d_h'], metric_specs['d_h'])}"
                row.append("failed" if o["failed"] else cross)
            rows.append(row)
        ok = [r for r in doc["records"] if not r["failed"]]
        stats = []
        for k in keys[:3]:
            med, mad = median_mad([num(r[k]) for r in ok])
            spec = metric_specs[k + "_mad"]
            stats.append(f"**{med:{spec}} ± {mad:{spec}}**")
        n_failed = len(doc["records"]) - len(ok)
        label = f"**median ± MAD** (n = {len(ok)}, {n_failed} failed run{'s' if n_failed != 1 else ''} dropped)"
        tail = [""] * (int(holdout) + int(bool(old)))
        rows.append([label, *stats, *([""] if with_lyapunov else []), "", *tail])
        rows.append(
            ["paper shPLRNN+GTF (20 runs, 100 % budget)", *paper.values(), *([""] if with_lyapunov else []), "", *tail]
        )
        return table(header, rows)

    return render


def render_eeg(doc: dict) -> str:
    """Table 1 EEG: seeds as rows, the 300- and 1000-epoch sweeps side by side."""
    header = ["seed", "D_stsp, 300 epochs", "D_H", "PE(20)", "D_stsp, 1000 epochs", "D_H", "PE(20)", "training CPU (1000)"]
    rows = []
    for seed in sorted({r["seed"] for r in doc["records"]}):
        a, b = one(doc, setup="e300", seed=seed), one(doc, setup="e1000", seed=seed)
        cells = [fmt(a["d_stsp"], "#.3g"), fmt(a["d_h"], ".3f"), fmt(a["pe"], ".3f")]
        cells += [fmt(b["d_stsp"], "#.3g"), fmt(b["d_h"], ".3f"), fmt(b["pe"], ".3f")]
        rows.append([str(seed), *cells, f"{num(b['train_cpu_s']):.0f} s"])
    stats = []
    for setup in ("e300", "e1000"):
        ok = [r for r in pick(doc, setup=setup) if not r["failed"]]
        for k in ("d_stsp", "d_h", "pe"):
            med, mad = median_mad([num(r[k]) for r in ok])
            stats.append(f"**{med:#.3g} ± {mad:#.2g}**")
    rows.append([f"**median ± MAD** (n = {len(pick(doc, setup='e1000'))})", *stats, ""])
    rows.append(["paper shPLRNN+GTF (20 runs, 5000 epochs)", *["2.1 ± 0.2", "0.11 ± 0.01", "0.55 ± 0.01"] * 2, ""])
    return table(header, rows)


def acc_cell(r: dict | None) -> str:
    """Accuracy ± standard error (the error left out when it rounds to zero)."""
    if r is None:
        return "—"
    se = f" ± {r['accuracy_se']:.2f}" if round(r["accuracy_se"], 2) > 0 else ""
    acc = f"{r['accuracy']:.3f}"
    return f"{acc[:-1] if acc.endswith('0') else acc}{se}"


def _rate(doc: dict, run: str, c: float, who: str) -> dict | None:
    found = [r for r in doc["records"] if r["run"] == run and r["sweep"] == "rate" and r["x"] == c and r["who"] == who]
    return found[0] if found else None


def render_mcg_stateless(doc: dict) -> str:
    """The stateless referential game: EBIM and UQ against the rate, uniform and skewed prior."""
    spec = {
        1.0: "1.00 / — / 0.50 / —",
        0.5: "0.87 / 0.03 / 0.67 / 0.04",
        0.25: "0.13 / 0.01 / 0.45 / 0.00",
        0.15: "0.04 / 0.00",
    }
    rows = []
    for c in (1.0, 0.75, 0.5, 0.25, 0.15):
        if c == 1.0:
            cells = [acc_cell(_rate(doc, "stateless_uniform", 1.0, "none")), "—", "—"]
            cells += [acc_cell(_rate(doc, "stateless_skewed", 1.0, "none")), "—"]
        else:
            cells = [
                acc_cell(_rate(doc, "stateless_uniform", c, "greedy")),
                acc_cell(_rate(doc, "stateless_uniform", c, "uniform")),
            ]
            cells += [acc_cell(_rate(doc, "stateless_uniform_hybrid", c, "uniform"))]
            cells += [
                acc_cell(_rate(doc, "stateless_skewed", c, "greedy")),
                acc_cell(_rate(doc, "stateless_skewed", c, "uniform")),
            ]
        rows.append([f"{c:g}" + (" (MEME)" if c == 1.0 else ""), *cells, spec.get(c, "—")])
    header = ["c (R = c·H(M))", "EBIM, uniform π", "UQ (authors')", "UQ hybrid", "EBIM, π = [.7,.1,.1,.1]"]
    return table([*header, "UQ (authors'), same π", "spec (EBIM / UQ / EBIM skewed / UQ skewed)"], rows)


def render_mcg_gridworld(doc: dict) -> str:
    """The authors' grid world at two temperatures: MEME, EBIM, UQ and the UQ hybrid against the rate."""
    exact = {"gridworld_m5": ("−5", "0.321"), "gridworld_m4.5": ("−4.5", "0.268")}
    rows = []
    for run, (tau, exact_return) in exact.items():
        full = _rate(doc, run, 1.0, "none")
        assert full is not None
        cells = [f"{full['mdp_return']:.3f} ± {full['return_se']:.3f}", exact_return, f"{full['length']:.1f}"]
        cells.append(f"{full['accuracy']:.3g}")
        for c in (0.75, 0.5, 0.25):
            g, u = _rate(doc, run, c, "greedy"), _rate(doc, run, c, "uniform")
            cells += [f"{g['accuracy']:.3g}" if g else "—", f"{u['accuracy']:.3g}" if u else "—"]
            if c == 0.75:
                h = _rate(doc, run + "_hybrid", c, "uniform")
                cells.append(f"{h['accuracy']:.3g}" if h else "—")
        rows.append([tau, *cells])
    rows.append(["spec −5", "0.326", "", "22.2", "0.57", "0.595", "0.175", "", "0.575", "0.045", "0.455", "0.015"])
    rows.append(["spec −4.5", "0.277", "", "25.9", "0.995", "0.99", "0.205", "", "0.965", "0.025", "0.865", "0.005"])
    header = ["log τ", "return (MEME)", "exact π return", "length", "acc c = 1", "EBIM .75", "UQ .75", "UQ hybrid .75"]
    return table([*header, "EBIM .5", "UQ .5", "EBIM .25", "UQ .25"], rows)


def render_mcg_codegrid_rates(doc: dict) -> str:
    """CodeGrid at |M| = 128: EBIM and UQ against the rate."""
    rows = []
    for c in (1.0, 0.5, 0.25):
        g = _rate(doc, "codegrid", c, "none" if c == 1.0 else "greedy")
        u = _rate(doc, "codegrid", c, "uniform")
        assert g is not None
        rows.append(
            [f"{c:g}", acc_cell(g), acc_cell(u), f"{g['mdp_return']:.3f}" + (f" / {u['mdp_return']:.3f}" if u else "")]
        )
    return table(["c", "EBIM (MEME at c = 1)", "UQ (authors')", "return EBIM / UQ"], rows)


def render_mcg_messages(doc: dict) -> str:
    """MEME accuracy against |M| with the random-sender floor and MEME's return."""
    recs = [r for r in doc["records"] if r["sweep"] == "messages"]
    sizes = sorted({int(r["x"]) for r in recs})
    cell = {(int(r["x"]), r["who"]): r for r in recs}
    rows = [
        ["MEME accuracy", *[f"{cell[(m, 'meme')]['accuracy']:.3g}" for m in sizes]],
        ["random sender (floor)", *[f"{cell[(m, 'random')]['accuracy']:.3g}" for m in sizes]],
        ["return (MEME)", *[f"{cell[(m, 'meme')]['mdp_return']:.3f}" for m in sizes]],
    ]
    return table(["\\|M\\|", *map(str, sizes)], rows)


def render_ebim_knife_edge(doc: dict) -> str:
    """Current vs pre-issue-15 EBIM greedy at rates equal to partition entropies."""
    rows = []
    for r in doc["records"]:
        counts = [str(r[k]) for k in ("rates", "over")]
        rows.append(
            [r["code"], *counts, f"{r['max_over']:.2g}", str(r["state_rates"]), str(r["lossy"]), f"{r['max_loss']:.3g}"]
        )
    header = ["code", "rates", "H(T) > R", "max excess (bits)", "R = a state's entropy", "lost > 1e-9 bits", "max loss (bits)"]
    return table(header, rows)


# ---------------------------------------------------------------------------------------------------------- jobs

SDE_ERR = "error@reg.coef=0.2@reg.agg=sum@reg.schedule=constant"
SDE_ERR05 = "error@reg.coef=0.05@reg.agg=sum@reg.schedule=constant"
SDE_WARM03 = "error@reg.coef=0.03@reg.agg=sum@reg.schedule=constant@reg.warmup=10"
SDE_WARM10 = "error@reg.coef=0.1@reg.agg=sum@reg.schedule=constant@reg.warmup=10"
LAT_ERR = "error@reg.coef=0.1@reg.schedule=constant@reg.warmup=20"
LAT_ERR_COLD = "error@reg.coef=0.1@reg.schedule=constant"
LAT_ERR_LOOSE = "error@reg.coef=0.01@reg.schedule=constant@reg.warmup=20"
MCG_STATELESS = "mcg_mdp=stateless episodes=100 'message_sizes=[64]'"
MCG_GRID = "mcg_mdp=gridworld episodes=200 'rate_fractions=[1.0,0.75,0.5,0.25]' 'message_sizes=[8]'"


def _jobs() -> list[Job]:
    node_job = dict(collect=collect_node, key=("setup", "seed", "method"), timings=NODE_TIMINGS)
    mcg_job = dict(collect=collect_mcg, key=("run", "sweep", "x", "who"), values=MCG_VALUES, rtol=0.1)
    gtf_job = dict(collect=collect_gtf, key=("setup", "seed"), values=GTF_VALUES, timings=("train_cpu_s", "eval_cpu_s"))
    ecg = "--preset ecg_gtf --seeds {seeds} --budget-s"
    return [
        # ---------------------------------------------------------------- neural ODEs / SDEs (dynamics/node)
        Job(
            name="node7_digits",
            section="Digits headline: vanilla vs ERNODE, 3 seeds (issue 7)",
            commands=(f"{NODE} --task digits --seeds {{seeds}} --regs none error --epochs 60 --out {{out}}/digits",),
            values=("train_accuracy_pct", "test_accuracy_pct", *NODE_VALUES),
            render=render_node_seeds(
                {"none": "vanilla", "error": "ERNODE 10->1"}, "test_accuracy_pct", "test acc %", ".2f", True
            ),
            seeds=(0, 1, 2),
            cpu_s=135,
            **node_job,
        ),
        Job(
            name="node7_spiral",
            section="Spiral, 600 iterations (issue 7)",
            commands=(
                f"{NODE} --task spiral --seeds 0 --regs none error --epochs 12 --extra reg.coef=0.03 reg.agg=sum "
                "reg.schedule=constant solver.rtol=1e-5 solver.atol=1e-5 --out {out}/spiral",
            ),
            values=("test_l1", *NODE_VALUES),
            render=render_node_single({"none": "vanilla", "error": "ERNODE 0.03"}, "test_l1", "test L1 (t in [0, 25])", ".3f"),
            cpu_s=25,
            **node_job,
        ),
        Job(
            name="node7_latent",
            section="Latent ODE, 20 epochs (issue 7)",
            commands=(
                f"{NODE} --task latent --seeds 0 --regs none error --epochs 20 --out {{out}}/a",
                f"{NODE} --task latent --seeds 0 --regs error --epochs 20 --extra reg.coef=1 reg.coef_final=0.1 "
                "--out {out}/b",
                f"{NODE} --task latent --seeds 0 --regs error --epochs 20 --extra reg.coef=0.1 reg.coef_final=0.01 "
                "--out {out}/c",
                f"{NODE} --task latent --seeds 0 --regs error --epochs 20 --extra reg.coef=0.01 reg.schedule=constant "
                "--out {out}/d",
            ),
            values=("test_mse", *NODE_VALUES),
            render=lambda doc: table(
                ["method", "test MSE", "test NFE (acc/rej)", "train fwd NFE", "predict ms", "train s"],
                [
                    [label, fmt(r["test_mse"], ".4f"), nfe_cell(r), fmt(r["train_nfe_forward_mean"], ".1f"), *timing_cells(r)]
                    for setup, method, label in (
                        ("a", "none", "vanilla"),
                        ("a", "error", "ERNODE 10 -> 1 (mean)"),
                        ("b", "error", "ERNODE 1 -> 0.1"),
                        ("c", "error", "ERNODE 0.1 -> 0.01"),
                        ("d", "error", "ERNODE 0.01 constant"),
                    )
                    for r in [one(doc, setup=setup, method=method)]
                ],
            ),
            cpu_s=60,
            **node_job,
        ),
        Job(
            name="node7_sde",
            section="Neural SDE, dt0 = 0.05 (issue 7)",
            commands=(
                f"{NODE} --task sde --seeds {{seeds}} --regs none error --epochs 5 --extra reg.coef=0.2 reg.agg=sum "
                "reg.schedule=constant task.sde_dt=0.05 --out {out}/sde",
            ),
            values=("test_moment_loss", *NODE_VALUES),
            render=render_node_seeds(
                {"none": "vanilla", "error": "ERNODE 0.2 sum"}, "test_moment_loss", "test moment loss", ".4f"
            ),
            seeds=(0, 1),
            cpu_s=300,
            **node_job,
        ),
        Job(
            name="node14_digits_local",
            section="Local ERNODE re-measured, digits seed 0, 20 epochs (issue 14)",
            commands=(
                f"{NODE} --task digits --seeds 0 --regs local_error local_error@reg.local_mode=biased local_stiffness "
                "local_error@reg.coef=25@reg.coef_final=10 local_stiffness@reg.coef=1e-4 --epochs 20 --out {out}/digits",
            ),
            values=("test_accuracy_pct", *NODE_VALUES),
            render=render_node_single(
                {
                    "local_error": "local ERNODE 2.5 -> 1 per step, unbiased",
                    "local_error@reg.local_mode=biased": "local ERNODE 2.5 -> 1, biased (heuristic step)",
                    "local_error@reg.coef=25@reg.coef_final=10": "local ERNODE 25 -> 10, unbiased",
                    "local_stiffness": "local SRNODE 1e-5 (new default)",
                    "local_stiffness@reg.coef=1e-4": "local SRNODE 1e-4",
                },
                "test_accuracy_pct",
                "test acc %",
                ".2f",
                ratio=False,
            ),
            cpu_s=60,
            **node_job,
        ),
        Job(
            name="node14_digits_baselines",
            section="Baselines next to ERNODE: digits, 3 seeds, 20 epochs (issue 14)",
            commands=(
                f"{NODE} --task digits --seeds {{seeds}} --regs none error rnode steer taynode --epochs 20 "
                "--out {out}/digits",
            ),
            values=("test_accuracy_pct", *NODE_VALUES),
            render=render_node_seeds(
                {"none": "vanilla", "error": "ERNODE", "rnode": "RNODE", "steer": "STEER", "taynode": "TayNODE K=2"},
                "test_accuracy_pct",
                "test acc %",
                ".2f",
            ),
            seeds=(0, 1, 2),
            cpu_s=170,
            **node_job,
        ),
        Job(
            name="node14_spiral",
            section="Baselines on the spiral: 3 seeds, 300 iterations (issue 14)",
            commands=(
                f"{NODE} --task spiral --seeds {{seeds}} --regs none error@reg.coef=0.03@reg.agg=sum@reg.schedule=constant "
                "rnode steer taynode@reg.coef=0.5 --epochs 6 --extra solver.rtol=1e-5 solver.atol=1e-5 --out {out}/spiral",
            ),
            values=("test_l1", *NODE_VALUES),
            render=render_node_spiral14,
            seeds=(0, 1, 2),
            cpu_s=110,
            **node_job,
        ),
        Job(
            name="node14_latent",
            section="Latent ODE: is there an ERNODE coefficient that cuts NFE at an equal fit? (issue 14)",
            commands=(
                f"{NODE} --task latent --seeds 0 --regs none error@reg.coef=0.03@reg.schedule=constant --epochs 20 "
                "--out {out}/latent",
            ),
            values=("test_mse", *NODE_VALUES),
            render=render_node_single(
                {"none": "vanilla", "error@reg.coef=0.03@reg.schedule=constant": "ERNODE 0.03 constant"},
                "test_mse",
                "test MSE",
                ".4f",
                ratio=False,
            ),
            cpu_s=25,
            **node_job,
        ),
        Job(
            name="node14_sde",
            section="Neural SDE: a first step that lets regularization show (issue 14)",
            commands=(f"{NODE} --task sde --seeds 0 --regs none {SDE_ERR} --epochs 5 --out {{out}}/sde",),
            values=("test_moment_loss", *NODE_VALUES),
            render=render_node_single(
                {"none": "vanilla", SDE_ERR: "ERNODE 0.2 sum"}, "test_moment_loss", "test moment loss", ".4f"
            ),
            cpu_s=50,
            **node_job,
        ),
        Job(
            name="node14_sde_facmax5",
            section="Neural SDE: a first step that lets regularization show (issue 14)",
            commands=(
                f"{NODE} --task sde --seeds 0 --regs none {SDE_ERR} {SDE_ERR05} --epochs 5 --extra task.sde_facmax=5 "
                "--out {out}/sde_facmax5",
            ),
            values=("test_moment_loss", *NODE_VALUES),
            render=render_node_single(
                {"none": "vanilla", SDE_ERR: "ERNODE 0.2 sum", SDE_ERR05: "ERNODE 0.05 sum"},
                "test_moment_loss",
                "test moment loss",
                ".4f",
            ),
            cpu_s=75,
            **node_job,
        ),
        Job(
            name="node23_latent",
            section="Latent ODE: warm-up, 40 epochs, two tolerances, 3 seeds (issue 23)",
            commands=(
                f"{NODE} --task latent --seeds {{seeds}} --regs none {LAT_ERR} {LAT_ERR_COLD} --epochs 40 "
                "--out {out}/tol1e-6",
                f"{NODE} --task latent --seeds {{seeds}} --regs none {LAT_ERR_LOOSE} --epochs 40 "
                "--extra solver.rtol=1e-4 solver.atol=1e-4 --out {out}/tol1e-4",
            ),
            values=("test_mse", *NODE_VALUES),
            render=render_node_front(
                [
                    ("tol1e-6", "none", "vanilla, tol 1e-6"),
                    ("tol1e-6", LAT_ERR, "ERNODE 0.1, warm-up 20 epochs, tol 1e-6"),
                    ("tol1e-6", LAT_ERR_COLD, "ERNODE 0.1, no warm-up, tol 1e-6"),
                    ("tol1e-4", "none", "vanilla, tol 1e-4"),
                    ("tol1e-4", LAT_ERR_LOOSE, "ERNODE 0.01, warm-up 20 epochs, tol 1e-4"),
                ],
                "test_mse",
                "test MSE",
                ".4f",
            ),
            seeds=(0, 1, 2),
            cpu_s=265,
            **node_job,
        ),
        Job(
            name="node23_sde",
            section="Neural SDE: warm-up, 1000 iterations, 3 seeds (issue 23)",
            commands=(
                f"{NODE} --task sde --seeds {{seeds}} --regs none {SDE_WARM03} {SDE_WARM10} --epochs 20 "
                "--extra task.timing_repeats=2 --out {out}/sde",
            ),
            values=("test_moment_loss", "test_mean_loss", "test_var_loss", *NODE_VALUES),
            render=render_node_front(
                [
                    ("sde", "none", "vanilla"),
                    ("sde", SDE_WARM03, "ERNODE 0.03 sum, warm-up 500 it."),
                    ("sde", SDE_WARM10, "ERNODE 0.1 sum, warm-up 500 it."),
                ],
                "test_moment_loss",
                "test moment loss",
                ".4f",
                parts=("test_mean_loss", "test_var_loss"),
            ),
            seeds=(0, 1, 2),
            cpu_s=900,
            **node_job,
        ),
        Job(
            name="node23_digits_k1",
            section="Local regularizers with and without k1 on the graph: digits, 3 seeds, 20 epochs (issue 23)",
            commands=(
                f"{NODE} --task digits --seeds {{seeds}} --regs none local_error local_error@reg.local_k1_grad=true "
                "local_stiffness local_stiffness@reg.local_k1_grad=true --epochs 20 --out {out}/digits",
            ),
            values=("test_accuracy_pct", *NODE_VALUES),
            render=render_node_front(
                [
                    ("digits", "none", "vanilla"),
                    ("digits", "local_error", "local ERNODE 2.5 -> 1 per step, `local_k1_grad=false`"),
                    ("digits", "local_error@reg.local_k1_grad=true", "local ERNODE, `local_k1_grad=true`"),
                    ("digits", "local_stiffness", "local SRNODE 1e-5, `local_k1_grad=false`"),
                    ("digits", "local_stiffness@reg.local_k1_grad=true", "local SRNODE, `local_k1_grad=true`"),
                ],
                "test_accuracy_pct",
                "test acc %",
                ".2f",
            ),
            seeds=(0, 1, 2),
            cpu_s=160,
            **node_job,
        ),
        # ---------------------------------------------------------------------------- GTF Table 1 (dynamics/dsr)
        Job(
            name="table1_ecg_6pct",
            section="Issue 13: Table 1 (ECG) at 6 % of a paper run",
            commands=(f"{GTF1} {ecg} 480 --epochs 300 --lr-end 1e-4 --out {{out}}/e300",),
            render=render_gtf_seeds({"d_stsp": ".2f", "d_h": ".3f", "pe": ".2e", "lyapunov": ".3f", **GTF_MAD_SPECS}),
            seeds=(1, 2, 3, 4, 5, 6),
            cpu_s=1800,
            **gtf_job,
        ),
        Job(
            name="table1_ecg_12pct",
            section="Issue 13: Table 1 (ECG) at 12 % of a paper run",
            commands=(f"{GTF1} {ecg} 800 --epochs 600 --lr-end 1e-5 --out {{out}}/e600",),
            render=render_gtf_seeds(
                {"d_stsp": ".2f", "d_h": ".3f", "pe": ".2e", **GTF_MAD_SPECS}, with_lyapunov=False, previous="table1_ecg_6pct"
            ),
            seeds=(1, 2, 3, 4, 5, 6),
            cpu_s=2700,
            **gtf_job,
        ),
        Job(
            name="table1_ecg_6pct_holdout",
            section="Issue 23: Table 1 (ECG) at 6 %, schedule and model chosen without the test series",
            commands=(f"{GTF1} {ecg} 480 --epochs 300 --lr-end 1e-4 --out {{out}}/e300h select_holdout=true",),
            render=render_gtf_seeds(
                {"d_stsp": ".2f", "d_h": ".3f", "pe": ".2e", "lyapunov": ".3f", **GTF_MAD_SPECS},
                previous="table1_ecg_6pct",
                previous_label="same seed, old protocol (above): D_stsp / D_H",
                holdout=True,
            ),
            seeds=(1, 2, 3, 4, 5, 6),
            cpu_s=1130,
            **gtf_job,
        ),
        Job(
            name="table1_eeg",
            section="Issue 13: Table 1 (EEG), 5 seeds at 6 % and 20 % of a paper run",
            commands=(
                f"{GTF1} --preset eeg_gtf --seeds {{seeds}} --epochs 300 --lr-end 1e-5 --budget-s 700 --out {{out}}/e300",
                f"{GTF1} --preset eeg_gtf --seeds {{seeds}} --epochs 1000 --lr-end 1e-5 --budget-s 900 --out {{out}}/e1000",
            ),
            render=render_eeg,
            seeds=(1, 2, 3, 4, 5),
            cpu_s=3000,
            **gtf_job,
        ),
        # ------------------------------------------------------------------------------ Markov coding games (envs/coding)
        Job(
            name="mcg_stateless",
            section="Stateless referential game (issue 15)",
            commands=(
                f"{MCG} {MCG_STATELESS} 'rate_fractions=[1.0,0.75,0.5,0.25,0.15]' hydra.run.dir={{out}}/stateless_uniform",
                f"{MCG} {MCG_STATELESS} 'mcg_mdp.action_probs=[0.7,0.1,0.1,0.1]' 'rate_fractions=[1.0,0.75,0.5,0.25]' "
                "hydra.run.dir={out}/stateless_skewed",
                f"{MCG} {MCG_STATELESS} compress_when=above_rate 'encoders=[uniform]' 'rate_fractions=[0.75,0.5,0.25,0.15]' "
                "hydra.run.dir={out}/stateless_uniform_hybrid",
            ),
            render=render_mcg_stateless,
            cpu_s=20,
            **mcg_job,
        ),
        Job(
            name="mcg_gridworld",
            section="Authors' grid world (issue 15)",
            commands=(
                f"{MCG} {MCG_GRID} mcg_mdp.log_temperature=-5 hydra.run.dir={{out}}/gridworld_m5",
                f"{MCG} {MCG_GRID} mcg_mdp.log_temperature=-4.5 hydra.run.dir={{out}}/gridworld_m4.5",
                f"{MCG} {MCG_GRID} mcg_mdp.log_temperature=-5 compress_when=above_rate 'encoders=[uniform]' "
                "'rate_fractions=[0.75]' hydra.run.dir={out}/gridworld_m5_hybrid",
                f"{MCG} {MCG_GRID} mcg_mdp.log_temperature=-4.5 compress_when=above_rate 'encoders=[uniform]' "
                "'rate_fractions=[0.75]' hydra.run.dir={out}/gridworld_m4.5_hybrid",
            ),
            render=render_mcg_gridworld,
            cpu_s=50,
            **mcg_job,
        ),
        Job(
            name="mcg_codegrid_rates",
            section="CodeGrid rate sweep at |M| = 128 (issue 15)",
            commands=(
                f"{MCG} mcg_mdp=codegrid mcg_mdp.log_temperature=-2 episodes=200 'rate_fractions=[1.0,0.5,0.25]' "
                "'message_sizes=[8]' hydra.run.dir={out}/codegrid",
            ),
            render=render_mcg_codegrid_rates,
            cpu_s=10,
            **mcg_job,
        ),
        Job(
            name="mcg_messages_gridworld",
            section="MEME accuracy against |M|, grid world (issue 5)",
            commands=(
                f"{MCG} mcg_mdp=gridworld mcg_mdp.log_temperature=-5 episodes=200 'rate_fractions=[1.0]' "
                "'message_sizes=[8,32,128,512]' hydra.run.dir={out}/gridworld_m5",
            ),
            render=render_mcg_messages,
            cpu_s=15,
            **mcg_job,
        ),
        Job(
            name="mcg_messages_codegrid",
            section="MEME accuracy against |M|, CodeGrid (issue 5)",
            commands=(
                f"{MCG} mcg_mdp=codegrid mcg_mdp.log_temperature=-2 episodes=200 'rate_fractions=[1.0,0.5,0.25]' "
                "'message_sizes=[8,32,64,128,256]' hydra.run.dir={out}/codegrid",
            ),
            render=render_mcg_messages,
            cpu_s=10,
            **mcg_job,
        ),
        Job(
            name="ebim_knife_edge",
            section="EBIM at knife-edge rates (issue 15)",
            commands=(
                "git show 4470544:envs/coding/ebim.py > {out}/old_ebim.py",
                "{py} benchmarks/bench_ebim_knife_edge.py --old {out}/old_ebim.py --json {out}/records.json",
            ),
            collect=collect_json,
            key=("code",),
            values=("rates", "over", "max_over", "state_rates", "lossy", "max_loss"),
            render=render_ebim_knife_edge,
            cpu_s=10,
        ),
    ]


JOBS: dict[str, Job] = {job.name: job for job in _jobs()}

"""The paper's evaluation protocol (Hess et al. 2023, Sec. 5; GTF code ``src/evaluation.jl``).

From the first test point generate ``⌊1.25 T⌋`` free steps, drop the first ``⌊0.25 T⌋``, and compare the remaining
``T`` with the test series: ``D_stsp`` (30 bins, or GMM for ``N ≥ 6``), ``D_H`` (σ = 20) and ``PE(20)`` on the test
series; across runs report median ± MAD (unscaled). A run with any non-finite paper metric is dropped whole from the
summary, as the reference's ``compute_summary_stats`` drops NaN rows. The paper scores each run's LAST model
(``find_latest_model``), so that is the default here. With external inputs the reference generates ``T`` steps driven
by the test inputs and drops nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from dynamics.dsr import metrics
from dynamics.dsr.models import LatentModel
from dynamics.dsr.observation import ObservationModel
from dynamics.dsr.rollout import generate
from dynamics.dsr.train import load_run
from dynamics.dsr.types import Metrics
from envs.common.io import atomic_write_text

PAPER_METRICS = ("d_stsp", "d_h", "pe")


def evaluate_model(
    model: LatentModel,
    obs_model: ObservationModel,
    test: np.ndarray,
    *,
    pe_steps: int = 20,
    n_bins: int = 30,
    spectrum_sigma: float = 20.0,
    lyapunov_steps: int = 10_000,
    gmm_precision: str = "float32",
    inputs: np.ndarray | None = None,
    gmm_seed: int = 0,
) -> tuple[Metrics, np.ndarray]:
    """Run the protocol on one model; returns the metrics and the kept generated series.

    ``gmm_precision`` and ``gmm_seed`` (its Monte-Carlo samples) apply to ``D_stsp`` from 6 dimensions on
    (``float32``: the reference's, for Table 1).
    ``inputs``: the test series' external inputs, or ``None``. A model with non-finite parameters scores NaN.
    """
    if not all(bool(torch.isfinite(p).all()) for m in (model, obs_model) for p in m.parameters()):
        return Metrics(float("nan"), float("nan"), float("nan"), float("nan")), np.full_like(test, np.nan)
    x_gen = generate(model, obs_model, test[0], test.shape[0], inputs)
    d_stsp = metrics.state_space_divergence(test, x_gen, n_bins=n_bins, gmm_precision=gmm_precision, gmm_seed=gmm_seed)
    d_h = metrics.power_spectrum_distance(test, x_gen, sigma=spectrum_sigma)
    pe = metrics.prediction_error(model, obs_model, test, n=pe_steps, inputs=inputs)
    lyap = float("nan")
    if lyapunov_steps > 0 and inputs is None:
        param = next(model.parameters())
        z1 = obs_model.init_state(torch.as_tensor(test[0], dtype=param.dtype, device=param.device))
        lyap = metrics.max_lyapunov(model, z1, steps=lyapunov_steps)
    return Metrics(d_stsp, d_h, pe, lyap), x_gen


def median_mad(values: list[float]) -> tuple[float, float, int]:
    """Median and unscaled median absolute deviation over the finite values, and how many there were."""
    arr = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    med = float(np.median(arr))
    return med, float(np.median(np.abs(arr - med))), int(arr.size)


def summarize(rows: list[dict[str, Any]], keys: tuple[str, ...] = (*PAPER_METRICS, "lyapunov")) -> dict[str, Any]:
    """Median ± MAD per metric over the runs whose paper metrics (D_stsp, D_H, PE) are all finite.

    A failed run (NaN in any of them) is dropped whole, as the reference drops NaN rows; ``failed`` counts them.
    """
    ok = [row for row in rows if all(np.isfinite(row[k]) for k in PAPER_METRICS)]
    out: dict[str, Any] = {"runs": len(rows), "failed": len(rows) - len(ok)}
    for key in keys:
        med, mad, n = median_mad([row[key] for row in ok])
        out[key] = {"median": med, "mad": mad, "n": n}
    return out


def metrics_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of per-run metrics (with the checkpoint scored and its epoch) plus a median ± MAD row."""
    keys = ("d_stsp", "d_h", "pe", "lyapunov")
    lines = ["| run | checkpoint (epoch) | D_stsp | D_H | PE | λ_max (per step) |", "|---|---|---|---|---|---|"]
    for row in rows:
        ckpt = f"{row.get('checkpoint', '?')} ({row.get('epoch', '?')})"
        lines.append(f"| {row['run']} | {ckpt} | " + " | ".join(f"{row[k]:.4g}" for k in keys) + " |")
    stats = summarize(rows, keys)
    cells = [f"{stats[k]['median']:.4g} ± {stats[k]['mad']:.2g} (n={stats[k]['n']})" for k in keys]
    lines.append(f"| median ± MAD ({stats['failed']} failed runs dropped) | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def evaluate_runs(cfg: DictConfig) -> list[dict[str, Any]]:
    """``scripts/eval_gtf.py``: evaluate each run directory's checkpoint and write ``metrics.{json,md}``.

    ``cfg.checkpoint`` ``last`` (default, as the paper) scores ``last.pt``; ``best`` the model selected on training
    data; ``auto`` ``best.pt`` when the run has one. Each row records the file, its epoch and the data's provenance;
    the data are the run's recorded data (a mismatch is refused by :func:`dynamics.dsr.train.load_run`).
    """
    if not cfg.runs:
        raise ValueError("no runs given: pass runs=[path/to/run_dir,...]")
    rows = []
    for run in cfg.runs:
        model, obs_model, data, state = load_run(Path(str(run)), checkpoint=cfg.checkpoint, device=cfg.device)
        test = data.test[: cfg.n_test] if cfg.n_test > 0 else data.test
        inputs = None if data.inputs_test is None else data.inputs_test[: test.shape[0]]
        result, _ = evaluate_model(
            model,
            obs_model,
            test,
            pe_steps=cfg.pe_steps,
            n_bins=cfg.n_bins,
            spectrum_sigma=cfg.spectrum_sigma,
            lyapunov_steps=cfg.lyapunov_steps,
            gmm_precision=cfg.gmm_precision,
            inputs=inputs,
            gmm_seed=int(cfg.get("seed", 0)),
        )
        ckpt = {"checkpoint": state["checkpoint_file"], "epoch": int(state.get("epoch", -1))}
        extra = {
            "test_rows": int(test.shape[0]),
            "gmm_precision": cfg.gmm_precision,
            "gmm_seed": int(cfg.get("seed", 0)),
            "data": data.provenance,
        }
        rows.append({"run": str(run), **ckpt, **result._asdict(), **extra})
    out = Path(str(cfg.output)) if cfg.output else Path(str(cfg.runs[0])) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    payload = {"rows": rows, "summary": summary, "config": OmegaConf.to_container(cfg)}
    atomic_write_text(out / "metrics.json", json.dumps(payload, indent=2))
    atomic_write_text(out / "metrics.md", metrics_table(rows))
    return rows

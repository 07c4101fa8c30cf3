"""The paper's evaluation protocol (Hess et al. 2023, Sec. 5; GTF code ``src/evaluation.jl``).

From the first test point generate ``⌊1.25 T⌋`` free steps, drop the first ``⌊0.25 T⌋``, and compare the remaining
``T`` with the test series: ``D_stsp`` (30 bins, or GMM for ``N ≥ 6``), ``D_H`` (σ = 20) and ``PE(20)`` on the test
series; across runs report median ± MAD (unscaled), NaN runs excluded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from dynamics.dsr import metrics
from dynamics.dsr.models import LatentModel
from dynamics.dsr.observation import ObservationModel
from dynamics.dsr.rollout import free_run
from dynamics.dsr.types import Metrics
from rl.common.io import atomic_write_text


@torch.no_grad()
def generate(model: LatentModel, obs_model: ObservationModel, x1: np.ndarray, length: int) -> np.ndarray:
    """Protocol generation: ``⌊1.25 length⌋`` free steps from ``x1``, the first ``⌊0.25 length⌋`` dropped."""
    param = next(model.parameters())
    z1 = obs_model.init_state(torch.as_tensor(np.asarray(x1), dtype=param.dtype, device=param.device))
    total, drop = math.floor(1.25 * length), math.floor(0.25 * length)
    z = free_run(model, z1, total)[drop:]
    return obs_model(z).cpu().numpy().astype(np.float64)


def evaluate_model(
    model: LatentModel,
    obs_model: ObservationModel,
    test: np.ndarray,
    *,
    pe_steps: int = 20,
    n_bins: int = 30,
    spectrum_sigma: float = 20.0,
    lyapunov_steps: int = 10_000,
) -> tuple[Metrics, np.ndarray]:
    """Run the protocol on one model; returns the metrics and the kept generated series."""
    x_gen = generate(model, obs_model, test[0], test.shape[0])
    d_stsp = metrics.state_space_divergence(test, x_gen, n_bins=n_bins)
    d_h = metrics.power_spectrum_distance(test, x_gen, sigma=spectrum_sigma)
    pe = metrics.prediction_error(model, obs_model, test, n=pe_steps)
    lyap = float("nan")
    if lyapunov_steps > 0:
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


def metrics_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of per-run metrics (with the checkpoint scored and its epoch) plus a median ± MAD row."""
    keys = ["d_stsp", "d_h", "pe", "lyapunov"]
    lines = ["| run | checkpoint (epoch) | D_stsp | D_H | PE | λ_max (per step) |", "|---|---|---|---|---|---|"]
    for row in rows:
        ckpt = f"{row.get('checkpoint', '?')} ({row.get('epoch', '?')})"
        lines.append(f"| {row['run']} | {ckpt} | " + " | ".join(f"{row[k]:.4g}" for k in keys) + " |")
    stats = [median_mad([row[k] for row in rows]) for k in keys]
    lines.append("| median ± MAD | | " + " | ".join(f"{m:.4g} ± {d:.2g} (n={n})" for m, d, n in stats) + " |")
    return "\n".join(lines) + "\n"


def evaluate_runs(cfg: DictConfig) -> list[dict[str, Any]]:
    """``scripts/eval_gtf.py``: evaluate each run directory's checkpoint and write ``metrics.{json,md}``.

    ``cfg.checkpoint`` ``auto`` scores ``best.pt`` (selected on training data) when the run has one, else ``last.pt``;
    each row records the file and its epoch.
    """
    from dynamics.dsr.train import load_run

    if not cfg.runs:
        raise ValueError("no runs given: pass runs=[path/to/run_dir,...]")
    rows = []
    for run in cfg.runs:
        model, obs_model, data, state = load_run(Path(str(run)), checkpoint=cfg.checkpoint, device=cfg.device)
        test = data.test[: cfg.n_test] if cfg.n_test > 0 else data.test
        result, _ = evaluate_model(
            model,
            obs_model,
            test,
            pe_steps=cfg.pe_steps,
            n_bins=cfg.n_bins,
            spectrum_sigma=cfg.spectrum_sigma,
            lyapunov_steps=cfg.lyapunov_steps,
        )
        ckpt = {"checkpoint": state["checkpoint_file"], "epoch": int(state.get("epoch", -1))}
        rows.append({"run": str(run), **ckpt, **result._asdict(), "test_rows": int(test.shape[0])})
    out = Path(str(cfg.output)) if cfg.output else Path(str(cfg.runs[0])) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps({"rows": rows, "config": OmegaConf.to_container(cfg)}, indent=2))
    atomic_write_text(out / "metrics.md", metrics_table(rows))
    return rows

"""Evaluation measures of DSR (Hess et al. 2023, Sec. 5 and App.; GTF code ``src/measures/``).

- :func:`state_space_divergence` (``D_stsp``): KL divergence of occupation measures, by binning (30 bins per
  dimension, range from the true data ± 0.1σ, Laplace smoothing 1e-5) below 6 dimensions and by a Gaussian-mixture
  Monte-Carlo estimate (σ² = 1, 1000 samples, first 10⁴ points) from 6 on; the GMM densities are evaluated in float32
  from summed squared differences with underflowing samples dropped, as the reference does (``precision="float64"``:
  exact, nothing dropped).
- :func:`power_spectrum_distance` (``D_H``): mean Hellinger distance of Gaussian-smoothed (σ = 20 bins) power
  spectra of the z-scored series.
- :func:`prediction_error` (``PE(n)``): MSE of ``n``-step free predictions from every data-inferred start.
- :func:`max_lyapunov` : the model's largest Lyapunov exponent along a free orbit, from its analytic Jacobians
  (finite-length bias ``ln|c₁|/steps``: about −3 % at 2000 steps for ``M = 3``).

All take plain ``(T, N)`` arrays and work on any pair of trajectories.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.special import logsumexp

from dynamics.dsr.models import LatentModel
from dynamics.dsr.observation import ObservationModel
from envs.common.registry import check_choice


def _as_pair(x_true: np.ndarray, x_gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x_true = np.asarray(x_true, dtype=np.float64)
    x_gen = np.asarray(x_gen, dtype=np.float64)
    if x_true.ndim != 2 or x_gen.ndim != 2 or x_true.shape[1] != x_gen.shape[1]:
        raise ValueError(f"need two (T, N) arrays with the same N, got {x_true.shape} and {x_gen.shape}")
    return x_true, x_gen


def state_space_divergence_binning(x_true: np.ndarray, x_gen: np.ndarray, n_bins: int = 30, eps: float = 1e-5) -> float:
    """``D_stsp`` by binning; generated points outside the true range are dropped (NaN if none is left).

    Sparse over occupied cells: all ``n_bins^N`` cells count, but empty ones are summed in closed form.
    """
    x_true, x_gen = _as_pair(x_true, x_gen)
    if not np.all(np.isfinite(x_gen)):
        return float("nan")
    sd = x_true.std(0)
    lo = x_true.min(0) - 0.1 * sd
    hi = x_true.max(0) + 0.1 * sd
    width = np.where(hi > lo, hi - lo, 1.0)

    def cells(x: np.ndarray) -> np.ndarray:
        inside = np.all((x >= lo) & (x <= hi), axis=1)
        idx = np.clip(((x[inside] - lo) / width * n_bins).astype(np.int64), 0, n_bins - 1)
        return np.ravel_multi_index(idx.T, (n_bins,) * x.shape[1])

    c_true, c_gen = cells(x_true), cells(x_gen)
    if c_gen.size == 0:
        return float("nan")
    n_cells = float(n_bins) ** x_true.shape[1]
    keys, inverse = np.unique(np.concatenate([c_true, c_gen]), return_inverse=True)
    h_true = np.bincount(inverse[: c_true.size], minlength=keys.size).astype(np.float64)
    h_gen = np.bincount(inverse[c_true.size :], minlength=keys.size).astype(np.float64)
    z_true = h_true.sum() + eps * n_cells
    z_gen = h_gen.sum() + eps * n_cells
    p = (h_true + eps) / z_true
    q = (h_gen + eps) / z_gen
    empty = n_cells - keys.size
    p0, q0 = eps / z_true, eps / z_gen
    return float(np.sum(p * np.log(p / q)) + empty * p0 * np.log(p0 / q0))


def _log_mixture_density(points: np.ndarray, centres: np.ndarray, var: float) -> np.ndarray:
    """Log density of an equal-weight isotropic Gaussian mixture at ``points``, in chunks."""
    n = centres.shape[1]
    out = np.empty(points.shape[0])
    c2 = np.sum(centres**2, axis=1)
    for i in range(0, points.shape[0], 250):
        pts = points[i : i + 250]
        d2 = np.sum(pts**2, axis=1)[:, None] - 2 * pts @ centres.T + c2[None, :]
        out[i : i + 250] = logsumexp(-0.5 * np.maximum(d2, 0) / var, axis=1)
    return out - np.log(centres.shape[0]) - 0.5 * n * np.log(2 * np.pi * var)


GMM_PRECISIONS = ("float32", "float64")


def _mixture_density_float32(points: np.ndarray, centres: np.ndarray, var: float) -> np.ndarray:
    """The reference's ``gmm_likelihood_diagonal_Σ`` in float32: ``mean_t exp(−½‖s − μ_t‖²/σ²) / σ^N``.

    ``‖s − μ_t‖²`` is summed from the float32 differences, one dimension at a time, as the reference's
    ``(samples[i, n] − μ[t, n])^2`` does; expanding it as ``‖s‖² − 2 s·μ + ‖μ‖²`` loses float32 precision on data with
    large offsets (``D_stsp`` 0.07511 instead of 0.07369 at an offset of 1000). Terms below float32's smallest
    subnormal (``‖s − μ_t‖²/σ² ≳ 207``) underflow to 0, so a sample far from every centre gets density exactly 0.
    """
    pts, mu_t = points.astype(np.float32), np.ascontiguousarray(centres.T, dtype=np.float32)
    inv = np.float32(1.0 / var)
    out = np.empty(pts.shape[0], dtype=np.float32)
    for i in range(0, pts.shape[0], 250):
        p = pts[i : i + 250]
        d2 = np.zeros((p.shape[0], mu_t.shape[1]), dtype=np.float32)
        diff = np.empty_like(d2)
        for k in range(mu_t.shape[0]):
            np.subtract(p[:, k, None], mu_t[k][None, :], out=diff)
            np.multiply(diff, diff, out=diff)
            d2 += diff
        out[i : i + 250] = np.exp(np.float32(-0.5) * d2 * inv).sum(1, dtype=np.float32) / np.float32(mu_t.shape[1])
    return out / np.float32(np.sqrt(var) ** centres.shape[1])


def state_space_divergence_gmm(
    x_true: np.ndarray,
    x_gen: np.ndarray,
    var: float = 1.0,
    n_samples: int = 1000,
    max_points: int = 10_000,
    seed: int = 0,
    precision: str = "float32",
) -> float:
    """One-sided Monte-Carlo KL between Gaussian mixtures centred on the two series (σ² = ``var``).

    ``precision="float32"`` (default) is the reference's computation (GTF code ``stsp_measure.jl``): densities in
    float32, samples where either density underflows to 0 dropped (``filter_outliers``). For poorly fitting models
    many samples underflow under ``q`` and are dropped, so its values are smaller than the exact ones (EEG vs a
    constant model: about 13 against 27); use it to compare with the paper. ``precision="float64"`` evaluates the
    log densities exactly (log-sum-exp), so nothing underflows and no sample is dropped.
    """
    check_choice(precision, GMM_PRECISIONS, "GMM precision")
    x_true, x_gen = _as_pair(x_true, x_gen)
    if not np.all(np.isfinite(x_gen)):
        return float("nan")
    p_c, q_c = x_true[:max_points], x_gen[:max_points]
    rng = np.random.default_rng(seed)
    samples = p_c[rng.integers(0, p_c.shape[0], n_samples)] + np.sqrt(var) * rng.standard_normal((n_samples, p_c.shape[1]))
    if precision == "float32":
        p = _mixture_density_float32(samples, p_c, var)
        q = _mixture_density_float32(samples, q_c, var)
        keep = (p > 0) & (q > 0)
        if not keep.any():
            return float("nan")
        return float(np.mean(np.log(p[keep].astype(np.float64)) - np.log(q[keep].astype(np.float64))))
    log_p = _log_mixture_density(samples, p_c, var)
    log_q = _log_mixture_density(samples, q_c, var)
    ok = np.isfinite(log_p) & np.isfinite(log_q)
    return float(np.mean(log_p[ok] - log_q[ok])) if ok.any() else float("nan")


def state_space_divergence(
    x_true: np.ndarray,
    x_gen: np.ndarray,
    n_bins: int = 30,
    gmm_var: float = 1.0,
    gmm_precision: str = "float32",
    gmm_seed: int = 0,
) -> float:
    """``D_stsp``: binning for ``N < 6``, GMM Monte Carlo otherwise (``gmm_precision``, ``gmm_seed``: the GMM's)."""
    x_true, x_gen = _as_pair(x_true, x_gen)
    if x_true.shape[1] < 6:
        return state_space_divergence_binning(x_true, x_gen, n_bins)
    return state_space_divergence_gmm(x_true, x_gen, gmm_var, seed=gmm_seed, precision=gmm_precision)


def smoothed_spectrum(x: np.ndarray, sigma: float = 20.0) -> np.ndarray:
    """Per-dimension normalised, Gaussian-smoothed power spectra of the z-scored series, ``(F, N)``."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)
    power = np.abs(np.fft.rfft(z, axis=0)) ** 2
    smooth = np.clip(gaussian_filter1d(power, sigma, axis=0, mode="reflect", truncate=4.0), 0, None)
    total = smooth.sum(0)
    return smooth / np.where(total > 0, total, 1.0)


def power_spectrum_distance(x_true: np.ndarray, x_gen: np.ndarray, sigma: float = 20.0) -> float:
    """``D_H``: mean over dimensions of the Hellinger distance ``‖√p − √q‖₂/√2`` of smoothed spectra.

    The two series must have the same length (``D_H`` depends on it; the reference asserts equal sizes).
    """
    x_true, x_gen = _as_pair(x_true, x_gen)
    if x_true.shape[0] != x_gen.shape[0]:
        raise ValueError(
            f"D_H needs series of equal length, got {x_true.shape[0]} and {x_gen.shape[0]} rows; "
            "generate as many steps as the reference series has"
        )
    if not np.all(np.isfinite(x_gen)):
        return float("nan")
    p, q = smoothed_spectrum(x_true, sigma), smoothed_spectrum(x_gen, sigma)
    return float(np.mean(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=0) / 2.0)))


@torch.no_grad()
def prediction_error(
    model: LatentModel,
    obs_model: ObservationModel,
    x: np.ndarray,
    n: int = 20,
    chunk: int = 20_000,
    inputs: np.ndarray | None = None,
) -> float:
    """``PE(n)``: from ``init_state(x_t)`` for every ``t ≤ T − n``, ``n`` free steps; MSE against ``x_{t+n}``.

    With external ``inputs`` (aligned with ``x``), step ``k`` from start ``t`` uses ``s_{t+k}`` (reference).
    """
    if x.shape[0] <= n:
        raise ValueError(f"PE({n}) needs more than {n} rows, got {x.shape[0]}")
    param = next(model.parameters())
    xt = torch.as_tensor(np.asarray(x), dtype=param.dtype, device=param.device)
    st = None if inputs is None else torch.as_tensor(np.asarray(inputs), dtype=param.dtype, device=param.device)
    total, count = 0.0, 0
    for i in range(0, xt.shape[0] - n, chunk):
        j = min(i + chunk, xt.shape[0] - n)
        z = obs_model.init_state(xt[i:j])
        for k in range(1, n + 1):
            z = model(z, None if st is None else st[i + k : j + k])
        total += float((obs_model(z) - xt[i + n : j + n]).square().sum())
        count += (j - i) * xt.shape[1]
    return total / count


@torch.no_grad()
def max_lyapunov(model: LatentModel, z1: torch.Tensor, steps: int = 10_000, transient: int = 1000) -> float:
    """Largest Lyapunov exponent per step: mean ``log‖J v‖`` with renormalisation along a free orbit.

    The start vector ``v = 1/√M`` is not aligned with the leading direction, so the estimate is low by about
    ``ln|c₁| / steps`` (``c₁`` its overlap with that direction, ~``1/√M``): for ``M = 3`` and a Lorenz-63-like
    0.0091 per step, −3.0 % at 2000 steps (the ECG/EEG benchmark scripts' ``lyapunov_steps=2000``) and −0.6 % at the
    default 10 000 (tests/test_dsr_metrics.py).
    """
    z = z1.reshape(-1)
    for _ in range(transient):
        z = model(z)
    v = torch.ones_like(z) / z.numel() ** 0.5
    acc = 0.0
    for _ in range(steps):
        v = model.jacobian(z) @ v
        norm = float(v.norm())
        if not np.isfinite(norm) or norm == 0.0:
            return float("nan") if not np.isfinite(norm) else float("-inf")
        acc += np.log(norm)
        v = v / norm
        z = model(z)
    return float(acc / steps)

"""DSR metrics: D_stsp (binning and GMM), D_H, PE(n) and the maximal Lyapunov exponent (spec gtf.md §6, §11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamics.dsr import metrics
from dynamics.dsr.data import DEFAULT_DATA_DIR, REPO_ROOT, simulate
from dynamics.dsr.evaluate import generate, median_mad, metrics_table, summarize
from dynamics.dsr.models import ShallowPLRNN
from dynamics.dsr.observation import IdentityObservation
from dynamics.dsr.rollout import free_run

DATA = REPO_ROOT / DEFAULT_DATA_DIR


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)


@pytest.fixture(scope="module")
def lorenz() -> dict[str, np.ndarray]:
    true = simulate("lorenz63", 8000, seed=0)
    scale = (true.mean(0), true.std(0))
    out = {"true": true, "other": simulate("lorenz63", 8000, seed=5)}
    out["rho22"] = simulate("lorenz63", 8000, seed=0, parameters={"rho": 22.0})
    return {k: (v - scale[0]) / scale[1] for k, v in out.items()}


def test_dstsp_binning_zero_for_identical_and_grows_with_perturbation(lorenz) -> None:
    x = lorenz["true"]
    assert metrics.state_space_divergence(x, x) == pytest.approx(0.0, abs=1e-12)
    same_system = metrics.state_space_divergence(x, lorenz["other"])
    perturbed = metrics.state_space_divergence(x, lorenz["rho22"])
    assert 0 < same_system < perturbed and perturbed > 2 * same_system


def test_dstsp_binning_matches_dense_histogram() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3000, 2)), 0.8 * rng.standard_normal((3000, 2)) + 0.3
    lo, hi = x.min(0) - 0.1 * x.std(0), x.max(0) + 0.1 * x.std(0)
    edges = [np.linspace(lo[i], hi[i], 11) for i in range(2)]
    hx, _ = np.histogramdd(x, bins=edges)
    hy, _ = np.histogramdd(y, bins=edges)
    p, q = (hx + 1e-5) / (hx.sum() + 1e-5 * 100), (hy + 1e-5) / (hy.sum() + 1e-5 * 100)
    assert metrics.state_space_divergence_binning(x, y, n_bins=10) == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-9)


def test_dstsp_gmm_zero_for_identical_and_grows_with_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((800, 7))
    assert metrics.state_space_divergence(x, x) == pytest.approx(0.0, abs=1e-12)
    small = metrics.state_space_divergence(x, x + 0.2)
    large = metrics.state_space_divergence(x, x + 1.0)
    assert 0 < small < large


def test_dstsp_nan_when_everything_leaves_the_range(lorenz) -> None:
    assert np.isnan(metrics.state_space_divergence(lorenz["true"], lorenz["true"] + 100.0))


def test_dh_zero_for_identical_spectra_and_positive_otherwise(lorenz) -> None:
    x = lorenz["true"]
    assert metrics.power_spectrum_distance(x, x) == 0.0  # exactly
    assert metrics.power_spectrum_distance(x, 3.0 * x + 1.0) == pytest.approx(0.0, abs=1e-7)  # z-scored first
    assert metrics.power_spectrum_distance(x, lorenz["rho22"]) > metrics.power_spectrum_distance(x, lorenz["other"]) > 0


def perfect_pair(steps: int = 600) -> tuple[ShallowPLRNN, IdentityObservation, np.ndarray]:
    torch.manual_seed(0)
    model, obs = ShallowPLRNN(3, 20).double(), IdentityObservation(3, 3).double()
    with torch.no_grad():
        model.W1.mul_(3.0)
    x = free_run(model, torch.randn(3, dtype=torch.float64), steps).numpy()
    return model, obs, x


def test_pe_of_perfect_model_is_zero_and_positive_for_wrong_model() -> None:
    model, obs, x = perfect_pair()
    assert metrics.prediction_error(model, obs, x, n=20) == pytest.approx(0.0, abs=1e-20)
    with torch.no_grad():
        model.h1.add_(0.05)
    assert metrics.prediction_error(model, obs, x, n=20) > 1e-6


@pytest.mark.parametrize("a", [0.5, 0.9])
def test_lyapunov_of_linear_model(a: float) -> None:
    model = ShallowPLRNN(3, 5).double()
    with torch.no_grad():
        model.W1.zero_()
        model.A.fill_(a)
    lyap = metrics.max_lyapunov(model, torch.ones(3, dtype=torch.float64), steps=200, transient=10)
    assert lyap == pytest.approx(np.log(a), abs=1e-10)


def test_protocol_generation_length_and_median_mad() -> None:
    model, obs, x = perfect_pair(1000)
    gen = generate(model, obs, x[0], 400)
    assert gen.shape == (400, 3)
    assert np.allclose(gen, x[100:500])  # 500 generated from x_1, the first 100 dropped
    assert median_mad([1.0, 2.0, 4.0, float("nan")]) == (2.0, 1.0, 3)


@pytest.mark.skipif(not (DATA / "lorenz63_test.npy").exists(), reason="shared benchmark data absent")
def test_noise_floor_of_shared_lorenz63_data() -> None:
    train, test = np.load(DATA / "lorenz63_train.npy"), np.load(DATA / "lorenz63_test.npy")
    assert metrics.state_space_divergence(test, train) == pytest.approx(0.119, abs=0.01)
    assert metrics.power_spectrum_distance(test, train) == pytest.approx(0.070, abs=0.005)
    assert metrics.state_space_divergence(test, test[:10_000]) == pytest.approx(0.44, abs=0.03)
    assert metrics.state_space_divergence(test, np.broadcast_to(test.mean(0), test.shape)) == pytest.approx(16.4, abs=0.5)


def test_dh_refuses_unequal_lengths(lorenz) -> None:
    x = lorenz["true"]
    with pytest.raises(ValueError, match="equal length, got 8000 and 2000"):
        metrics.power_spectrum_distance(x, x[:2000])


def reference_gmm_float32(x: np.ndarray, y: np.ndarray, samples: np.ndarray) -> tuple[float, int]:
    """The GTF code's float32 GMM D_stsp written out directly (σ² = 1): densities, zero filter, mean log ratio."""
    s, x32, y32 = samples.astype(np.float32), x.astype(np.float32), y.astype(np.float32)
    p = np.exp(np.float32(-0.5) * ((s[:, None, :] - x32[None]) ** 2).sum(-1)).mean(1, dtype=np.float32)
    q = np.exp(np.float32(-0.5) * ((s[:, None, :] - y32[None]) ** 2).sum(-1)).mean(1, dtype=np.float32)
    keep = (p > 0) & (q > 0)
    return float(np.mean(np.log(p[keep].astype(np.float64)) - np.log(q[keep].astype(np.float64)))), int((~keep).sum())


def test_dstsp_gmm_float32_drops_underflowing_samples_as_the_reference() -> None:
    rng = np.random.default_rng(3)
    x = 6.0 * rng.standard_normal((400, 7))  # wide attractor
    y = np.zeros((400, 7)) + 0.1 * rng.standard_normal((400, 7))  # a collapsed model near the centre
    ref32 = metrics.state_space_divergence_gmm(x, y, precision="float32")
    exact = metrics.state_space_divergence_gmm(x, y, precision="float64")
    draw = np.random.default_rng(0)  # the function's own sample draw (seed 0)
    samples = x[draw.integers(0, 400, 1000)] + draw.standard_normal((1000, 7))
    expected, dropped = reference_gmm_float32(x, y, samples)
    assert dropped > 50  # far samples underflow under the collapsed model's mixture
    assert ref32 == pytest.approx(expected, rel=1e-4)
    assert ref32 < 0.8 * exact  # dropping them lowers the value, as the issue reports for EEG
    assert metrics.state_space_divergence(x, y) == ref32  # the reference behaviour is the default
    assert metrics.state_space_divergence(x, x) == 0.0
    with pytest.raises(ValueError, match="float32"):
        metrics.state_space_divergence_gmm(x, y, precision="half")


def test_summary_drops_failed_runs_whole() -> None:
    rows = [
        {"run": "a", "d_stsp": 1.0, "d_h": 0.1, "pe": 0.01, "lyapunov": float("nan")},
        {"run": "b", "d_stsp": 3.0, "d_h": 0.3, "pe": 0.03, "lyapunov": float("nan")},
        {"run": "c", "d_stsp": 2.0, "d_h": float("nan"), "pe": 0.02, "lyapunov": 0.0},  # failed: dropped whole
    ]
    out = summarize(rows)
    assert out["failed"] == 1 and out["d_stsp"]["n"] == 2 and out["d_stsp"]["median"] == 2.0
    assert out["pe"]["median"] == pytest.approx(0.02) and out["lyapunov"]["n"] == 0
    assert "1 failed runs dropped" in metrics_table(rows)


def test_float32_gmm_d_stsp_is_stable_under_large_offsets() -> None:
    """Issue 23: expanding ‖s − μ‖² = ‖s‖² − 2 s·μ + ‖μ‖² in float32 lost the distances at large offsets (0.07511
    instead of 0.07369 at +1000); the reference sums the squared differences, and so does the float32 path now."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10_000, 6)), 1.1 * rng.standard_normal((10_000, 6)) + 0.2
    exact = metrics.state_space_divergence_gmm(x, y, precision="float64")
    for offset in (0.0, 1000.0):
        assert metrics.state_space_divergence_gmm(x + offset, y + offset, precision="float32") == pytest.approx(
            exact, abs=1e-6
        )


def test_lyapunov_finite_length_bias_is_the_start_vectors_overlap() -> None:
    """λ_max from ``n`` steps is low by ``ln|c₁|/n`` (``c₁``: the start vector's overlap with the leading direction,
    1/√M here): at 2000 steps −3.0 % of a Lorenz-63-like 0.0091 per step for M = 3, at 10 000 steps −0.6 %."""
    model = ShallowPLRNN(3, 5).double()
    with torch.no_grad():
        model.W1.zero_()
        model.A.copy_(torch.tensor([1.0091, 0.9, 0.5], dtype=torch.float64))
    lam = np.log(1.0091)
    for steps, bias in ((2000, -0.0303), (10_000, -0.0061)):
        est = metrics.max_lyapunov(model, torch.full((3,), 0.1, dtype=torch.float64), steps=steps, transient=10)
        assert (est - lam) / lam == pytest.approx(np.log(1 / np.sqrt(3)) / steps / lam, rel=1e-6)
        assert (est - lam) / lam == pytest.approx(bias, abs=5e-4)


def test_eval_seed_sets_the_gmm_samples(tmp_path, monkeypatch) -> None:
    """``eval_gtf.py seed=`` used to be silently ignored (the GMM always drew with seed 0)."""
    from omegaconf import OmegaConf

    import dynamics.dsr.evaluate as evaluate_mod
    from dynamics.dsr.config import GTFEvalConfig
    from dynamics.dsr.types import DSRData, Metrics

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2000, 6)), 1.2 * rng.standard_normal((2000, 6))
    d = [metrics.state_space_divergence(x, y, gmm_seed=s) for s in (0, 1)]
    assert d[0] != d[1] and d[1] == metrics.state_space_divergence_gmm(x, y, seed=1)
    data = DSRData("stub", x, y, np.zeros(6), np.ones(6), None, "file", {}, None, None)
    seen: list[int] = []

    def spy(*args, **kwargs):
        seen.append(kwargs["gmm_seed"])
        return Metrics(1.0, 1.0, 1.0, float("nan")), y

    monkeypatch.setattr(evaluate_mod, "load_run", lambda *a, **k: (None, None, data, {"checkpoint_file": "last.pt"}))
    monkeypatch.setattr(evaluate_mod, "evaluate_model", spy)
    cfg = OmegaConf.structured(GTFEvalConfig)
    cfg.merge_with({"runs": [str(tmp_path)], "seed": 7, "output": str(tmp_path / "eval"), "script": "e", "name": "e"})
    rows = evaluate_mod.evaluate_runs(cfg)
    assert seen == [7] and rows[0]["gmm_seed"] == 7

"""GTF α estimate ``explog_approx`` on hard Jacobians (issue 23, item 5): Jordan blocks, singular ones, no silent 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import expm, logm

from dynamics.dsr.forcing import estimate_alpha, jacobian_norm_kappa


class FixedJacobians(torch.nn.Module):
    """A stand-in model whose Jacobians at the ``(S, T, M)`` states are given ``(S, T, M, M)`` matrices."""

    def __init__(self, jac: np.ndarray) -> None:
        super().__init__()
        self.jac = torch.as_tensor(jac, dtype=torch.float64)

    def jacobian(self, states: torch.Tensor) -> torch.Tensor:
        return self.jac


def kappa(jac: np.ndarray) -> float:
    states = torch.zeros(jac.shape[:3], dtype=torch.float64)
    return float(jacobian_norm_kappa(FixedJacobians(jac), states, "explog_approx"))  # type: ignore[arg-type]


def test_jordan_block_jacobians_give_the_geometric_mean() -> None:
    jordan = np.array([[0.9, 1.0], [0.0, 0.9]])  # defective: one eigenvector
    rng = np.random.default_rng(0)
    other = np.stack([jordan + 0.3 * np.diag(rng.uniform(0.5, 1.0, 2)) for _ in range(4)])
    jac = np.stack([np.stack([jordan] * 4), other])  # S = 2 sequences of T = 4
    expected = max(np.linalg.norm(expm(np.mean([logm(j) for j in seq], axis=0)), 2) for seq in jac)
    assert kappa(jac) == pytest.approx(expected, rel=1e-8)
    assert kappa(jac[:1]) == pytest.approx(np.linalg.norm(jordan, 2), rel=1e-8)  # geomean of equal matrices: itself


def test_singular_jacobians_give_the_limit_and_a_warning_never_a_silent_zero() -> None:
    # geomean(diag(2, 0), diag(2, 1)) is the limit diag(2, 0): kappa = 2, alpha = 0.5 (was: NaN, then alpha 0)
    jac = np.stack([np.diag([2.0, 0.0]), np.diag([2.0, 1.0])])[None]
    with pytest.warns(UserWarning, match="singular"):
        assert kappa(jac) == pytest.approx(2.0, rel=1e-6)
    rot = np.array([[np.cos(0.4), -np.sin(0.4)], [np.sin(0.4), np.cos(0.4)]])
    rank_one = np.stack([rot @ np.diag([3.0, 0.0]) @ rot.T] * 3)[None]  # the same singular matrix three times
    with pytest.warns(UserWarning, match="singular"):
        assert kappa(rank_one) == pytest.approx(3.0, rel=1e-6)
        alpha = estimate_alpha(FixedJacobians(rank_one), torch.zeros(1, 3, 2), "explog_approx")  # type: ignore[arg-type]
    assert alpha == pytest.approx(1 - 1 / 3.0, rel=1e-6)


def test_a_non_finite_estimate_is_an_error_not_alpha_zero(monkeypatch) -> None:
    import dynamics.dsr.forcing as forcing

    model, states = FixedJacobians(np.zeros((1, 3, 2, 2))), torch.zeros(1, 3, 2)
    # a Jacobian that is exactly 0 is contracting: kappa 0, and alpha 0 is the answer
    assert estimate_alpha(model, states, "batch_maximum") == 0.0  # type: ignore[arg-type]
    # a NaN kappa used to become alpha 0 without a word (`if not kappa > 0: return 0.0`)
    monkeypatch.setattr(forcing, "jacobian_norm_kappa", lambda *a: torch.tensor(float("nan")))
    with pytest.raises(RuntimeError, match=r"alpha estimate.* is non-finite"):
        estimate_alpha(model, states, "batch_maximum")  # type: ignore[arg-type]

"""The self-paced Gamma temperature curriculum of QARL (Reddi et al., ICLR 2024, arXiv:2311.01642).

The adversary's temperature alpha is drawn per episode from ``Gamma(shape=nu, rate=b)``; only ``nu`` is
optimised (SPDL-style, Klink et al. 2020). An update minimises ``KL(p_nu || mu)`` to the target ``mu = Gamma(nu_T,
b)`` subject to a KL trust region ``KL(p_nu || p_old) <= epsilon`` and an importance-sampled performance
constraint ``E_hat(nu) >= xi`` on the protagonist's discounted return. The teacher is frozen while the mean
return of its buffer is below ``xi`` (the official code comments out SPDL's performance-maximising branch, so
``nu`` never moves back towards hotter temperatures). Once ``KL(p || mu) <= kl_stop`` the target is used as is (at
the first unfrozen update whose trust region holds it).

Deviation from the official code: none intended; the optimiser call follows
``src/teachers/self_paced_gamma_teacher_fixed_beta.py``: scipy ``trust-constr`` (gtol 1e-4, xtol 1e-6) with the
objective's and both constraints' exact derivatives (the official code takes them by autograd; here in closed form)
and ``keep_feasible=True`` on the constraints and the bound, so every iterate stays inside the trust region. With
finite differences and infeasible iterates the first step from nu=50 lands at 43.39 instead of the official 43.31.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, NonlinearConstraint, minimize
from scipy.special import digamma, gammaln, polygamma


def gamma_kl(nu1: float | np.ndarray, nu2: float | np.ndarray) -> float | np.ndarray:
    """``KL(Gamma(nu1, b) || Gamma(nu2, b))`` for a shared rate ``b`` (it does not depend on ``b``)."""
    return (nu1 - nu2) * digamma(nu1) - gammaln(nu1) + gammaln(nu2)


def gamma_kl_grad(nu1: float, nu2: float) -> float:
    """``d/dnu1 KL(Gamma(nu1, b) || Gamma(nu2, b)) = (nu1 - nu2) * trigamma(nu1)``."""
    return float((nu1 - nu2) * polygamma(1, nu1))


def gamma_log_ratio(alpha: np.ndarray, nu: float, nu_old: float, rate: float) -> np.ndarray:
    """``log p_nu(alpha) - log p_nu_old(alpha)`` for Gammas with a shared ``rate``."""
    return (nu - nu_old) * np.log(rate * alpha) - gammaln(nu) + gammaln(nu_old)


@dataclass
class TeacherUpdate:
    """What one call of :meth:`SelfPacedGammaTeacher.update` did (for logging)."""

    updated: bool
    frozen: bool
    performance: float
    nu_old: float
    nu_new: float
    kl_step: float
    kl_target: float


@dataclass
class SelfPacedGammaTeacher:
    """Self-paced Gamma curriculum over the adversary's temperature (QARL, arXiv:2311.01642, §3 of specs/qarl.md).

    Attributes:
        rate: the Gamma rate b (1000 in the dm_control paper; ``1000 / c`` for a reward scale ``c``).
        nu: current shape (50 initially: mean 0.05 at b=1000).
        nu_target: target shape (1: exponential, mean 0.001 at b=1000).
        epsilon: KL trust region per update.
        threshold: xi, the performance threshold on the protagonist's discounted return.
        min_pairs: (alpha, J) pairs needed before an update; the buffer is cleared after each update.
        kl_stop: once ``KL(p || mu) <= kl_stop`` the teacher jumps to and stays at the target.
        nu_min: lower bound of nu.
    """

    rate: float = 1000.0
    nu: float = 50.0
    nu_target: float = 1.0
    epsilon: float = 0.5
    threshold: float = 10.0
    min_pairs: int = 30
    kl_stop: float = 0.01
    nu_min: float = 1e-8
    alphas: list[float] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    ever_met: bool = False

    def __post_init__(self) -> None:
        for key in ("rate", "nu", "nu_target", "epsilon"):
            value = getattr(self, key)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"teacher {key} must be positive and finite, got {value!r}")
        if self.min_pairs < 1:
            raise ValueError(f"teacher min_pairs must be >= 1, got {self.min_pairs}")

    # -------------------------------------------------------------- distribution
    @property
    def mean(self) -> float:
        """Mean temperature ``nu / b``."""
        return self.nu / self.rate

    @property
    def std(self) -> float:
        """Standard deviation ``sqrt(nu) / b``."""
        return float(np.sqrt(self.nu) / self.rate)

    @property
    def target_mean(self) -> float:
        """Mean of the target distribution."""
        return self.nu_target / self.rate

    @property
    def kl_to_target(self) -> float:
        """``KL(p_nu || mu)``."""
        return float(gamma_kl(self.nu, self.nu_target))

    @property
    def at_target(self) -> bool:
        """Whether the curriculum has reached its target."""
        return self.nu == self.nu_target

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` temperatures from the current distribution."""
        return rng.gamma(shape=self.nu, scale=1.0 / self.rate, size=n)

    # -------------------------------------------------------------- update
    def add(self, alphas: np.ndarray | list[float], returns: np.ndarray | list[float]) -> None:
        """Store (alpha, discounted protagonist return) pairs."""
        a, j = np.asarray(alphas, dtype=float).ravel(), np.asarray(returns, dtype=float).ravel()
        if a.shape != j.shape:
            raise ValueError(f"got {a.size} temperatures but {j.size} returns")
        if np.any(~np.isfinite(a)) or np.any(a <= 0) or np.any(~np.isfinite(j)):
            raise ValueError("teacher pairs must have positive finite temperatures and finite returns")
        self.alphas.extend(a.tolist())
        self.returns.extend(j.tolist())

    @property
    def ready(self) -> bool:
        """Whether the buffer holds enough pairs for an update."""
        return len(self.alphas) >= self.min_pairs

    def performance_estimate(self, nu: float) -> float:
        """Importance-sampled estimate ``E_hat(nu) = mean_i p_nu(a_i) / p_old(a_i) * J_i`` of the buffer's pairs."""
        a, j = np.asarray(self.alphas), np.asarray(self.returns)
        weights = np.exp(gamma_log_ratio(a, nu, self.nu, self.rate))
        return float(np.mean(weights * j))

    def update(self) -> TeacherUpdate:
        """Run one curriculum update on the buffered pairs, then clear the buffer."""
        nu_old = self.nu
        performance = float(np.mean(self.returns)) if self.returns else float("nan")
        frozen = not (performance >= self.threshold)
        if not frozen:
            self.ever_met = True
            if not self.at_target:
                self.nu = self._optimise()
            # close enough: the target as is, if that step too stays in the trust region (else at the next update)
            if not self.at_target and self.kl_to_target <= self.kl_stop and gamma_kl(self.nu_target, nu_old) <= self.epsilon:
                self.nu = self.nu_target
        self.alphas.clear()
        self.returns.clear()
        return TeacherUpdate(
            updated=self.nu != nu_old,
            frozen=frozen,
            performance=performance,
            nu_old=nu_old,
            nu_new=self.nu,
            kl_step=float(gamma_kl(self.nu, nu_old)),
            kl_target=self.kl_to_target,
        )

    def performance_gradient(self, nu: float) -> float:
        """``dE_hat/dnu = mean_i w_i(nu) * J_i * (log(b * a_i) - digamma(nu))`` (analytic, as the official autograd)."""
        a, j = np.asarray(self.alphas), np.asarray(self.returns)
        weights = np.exp(gamma_log_ratio(a, nu, self.nu, self.rate))
        return float(np.mean(weights * j * (np.log(self.rate * a) - digamma(nu))))

    def _optimise(self) -> float:
        nu_old = self.nu

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:  # KL(p_nu || mu) and its derivative
            return float(gamma_kl(x[0], self.nu_target)), np.array([gamma_kl_grad(x[0], self.nu_target)])

        # the official call: analytic Jacobians, feasible iterates (keep_feasible) for both constraints and the bound
        constraints = [
            NonlinearConstraint(
                lambda x: float(gamma_kl(x[0], nu_old)),
                -np.inf,
                self.epsilon,
                jac=lambda x: np.array([[gamma_kl_grad(x[0], nu_old)]]),
                keep_feasible=True,
            ),
            NonlinearConstraint(
                lambda x: self.performance_estimate(x[0]),
                self.threshold,
                np.inf,
                jac=lambda x: np.array([[self.performance_gradient(x[0])]]),
                keep_feasible=True,
            ),
        ]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = minimize(
                    objective,
                    np.array([nu_old]),
                    method="trust-constr",
                    jac=True,
                    bounds=Bounds(self.nu_min, np.inf, keep_feasible=True),
                    constraints=constraints,
                    options={"gtol": 1e-4, "xtol": 1e-6},
                )
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return nu_old
        nu_new = float(res.x[0])
        feasible = (
            np.isfinite(nu_new)
            and nu_new >= self.nu_min
            and gamma_kl(nu_new, nu_old) <= self.epsilon + 1e-6
            and self.performance_estimate(nu_new) >= self.threshold
        )
        improved = objective(np.array([nu_new]))[0] < objective(np.array([nu_old]))[0]
        if (res.success and feasible) or (feasible and improved):
            return nu_new
        return nu_old

    def summary(self) -> dict[str, float]:
        """Scalars for the ``curriculum/`` section of the logs."""
        return {
            "curriculum/nu": self.nu,
            "curriculum/distribution_mean": self.mean,
            "curriculum/distribution_std": self.std,
            "curriculum/kl_to_target": self.kl_to_target,
            "curriculum/threshold": self.threshold,
        }

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the curriculum."""
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SelfPacedGammaTeacher:
        """Rebuild a teacher saved with :meth:`state_dict`."""
        return cls(**state)

"""Preconditioned stochastic gradient Langevin dynamics (pSGLD), the optimiser of the MixedNE-LD baseline.

MixedNE-LD (Kamalaruban et al., "Robust Reinforcement Learning via Adversarial training with Langevin Dynamics",
NeurIPS 2020, arXiv:2002.06063) trains both the protagonist's and the action adversary's policies with SGLD. The
update follows the optimiser of QARL's official code (``src/mushroom_rl_extensions/utils/optimizers.py``), an
RMSprop-preconditioned SGLD (Li et al., AAAI 2016) without bias correction::

    v     <- a v + (1 - a) g**2                      (a = 0.999 in the official set-up)
    m      = sqrt(v) + eps
    lr_t   = lr * (1 - 1e-5) ** (t - 1)              (t: this parameter's step count, from 1)
    sig_t  = noise * (1 - 5e-5) ** (t - 1)
    theta <- theta - lr_t * g / m - sqrt(2) * sig_t * sqrt(lr_t / m) * xi,   xi ~ N(0, I)

(the official code draws ``N(0, 1 / (lr_t m))`` and multiplies it by ``lr_t``; the line above is the same
distribution). The agent also overwrites the group's ``noise`` after every gradient step with
:class:`LangevinNoiseSchedule`, so the noise decays twice, once per optimiser step (above) and once per fit, as in
the official ``SAC_LD.fit``. Deviation: the Gaussian draws use torch's global generator (``torch.randn_like``),
so a seeded run is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch as th
from torch.optim import Optimizer


class SGLD(Optimizer):
    """RMSprop-preconditioned SGLD with per-step decaying learning rate and noise (see the module docstring).

    Args:
        params: parameters to optimise.
        lr: initial step size (3e-4 for MixedNE-LD).
        noise: initial Langevin noise scale (1e-3 for MixedNE-LD).
        alpha: RMSprop smoothing of the squared gradients (0.999 in the official set-up).
        eps: added to the root mean square.
        lr_decay: per-step decay of the step size.
        noise_decay: per-step decay of the noise.
        add_noise: ``False`` gives plain RMSprop (without momentum or bias correction) with the decaying step.
    """

    def __init__(
        self,
        params: Iterable[th.Tensor] | Iterable[dict[str, Any]],
        lr: float = 3e-4,
        noise: float = 1e-3,
        alpha: float = 0.999,
        eps: float = 1e-8,
        lr_decay: float = 1e-5,
        noise_decay: float = 5e-5,
        add_noise: bool = True,
    ) -> None:
        for name, value in (("lr", lr), ("noise", noise), ("eps", eps)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"SGLD {name} must be finite and >= 0, got {value!r}")
        for name, value in (("alpha", alpha), ("lr_decay", lr_decay), ("noise_decay", noise_decay)):
            if not 0 <= value < 1:
                raise ValueError(f"SGLD {name} must be in [0, 1), got {value!r}")
        defaults = dict(
            lr=lr, noise=noise, alpha=alpha, eps=eps, lr_decay=lr_decay, noise_decay=noise_decay, add_noise=add_noise
        )
        super().__init__(params, defaults)

    @th.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One pSGLD step on every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with th.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = th.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                lr_t = group["lr"] * (1.0 - group["lr_decay"]) ** (t - 1)
                noise_t = group["noise"] * (1.0 - group["noise_decay"]) ** (t - 1)
                square_avg = state["square_avg"]
                square_avg.mul_(group["alpha"]).addcmul_(grad, grad, value=1.0 - group["alpha"])
                avg = square_avg.sqrt().add_(group["eps"])
                update = grad / avg * lr_t
                if group["add_noise"] and noise_t > 0:
                    update += math.sqrt(2.0) * noise_t * th.sqrt(lr_t / avg) * th.randn_like(p)
                p.sub_(update)
        return loss


@dataclass
class LangevinNoiseSchedule:
    """The per-fit decay of the Langevin noise in MixedNE-LD (official ``SAC_LD.fit``).

    After fit ``k`` (0-based) the official code sets the optimisers' noise to ``initial * (1 - decay) ** (k / 2)``,
    so the gradient step of fit ``k`` uses ``initial * (1 - decay) ** ((k - 1) / 2)`` (``initial`` for the first).

    Attributes:
        initial: the noise of the first fit (1e-3).
        decay: the per-fit decay factor (5e-5).
        fits: completed fits (gradient steps).
    """

    initial: float = 1e-3
    decay: float = 5e-5
    fits: int = 0

    @property
    def value(self) -> float:
        """The noise for the next gradient step."""
        return float(self.initial * (1.0 - self.decay) ** (max(self.fits - 1, 0) / 2))

    def step(self, *optimizers: Optimizer) -> float:
        """Count one completed fit and write the next noise into the optimisers' parameter groups."""
        self.fits += 1
        noise = self.value
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["noise"] = noise
        return noise

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the schedule."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict`."""
        self.initial, self.decay, self.fits = float(state["initial"]), float(state["decay"]), int(state["fits"])

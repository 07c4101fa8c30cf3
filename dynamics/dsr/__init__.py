"""Dynamical-systems reconstruction with PLRNNs and generalized teacher forcing (Hess et al., ICML 2023).

Public API: models (:func:`make_model`), observation models (:func:`make_observation`), the forced rollout with a
fused backward (:func:`forced_rollout`), α schedules (:class:`AlphaController`), data (:func:`load_system`), metrics
(:mod:`dynamics.dsr.metrics`) and training (:func:`dynamics.dsr.train.train`).
"""

from dynamics.dsr.data import load_system, simulate
from dynamics.dsr.forcing import AlphaController, estimate_alpha, stf_alpha_sequence
from dynamics.dsr.models import PLRNN, LatentModel, ShallowPLRNN, make_model
from dynamics.dsr.observation import AffineObservation, IdentityObservation, make_observation
from dynamics.dsr.rollout import forced_rollout, forced_rollout_autograd, free_run
from dynamics.dsr.types import DSRData, GTFBatch, Metrics

__all__ = [
    "PLRNN",
    "AffineObservation",
    "AlphaController",
    "DSRData",
    "GTFBatch",
    "IdentityObservation",
    "LatentModel",
    "Metrics",
    "ShallowPLRNN",
    "estimate_alpha",
    "forced_rollout",
    "forced_rollout_autograd",
    "free_run",
    "load_system",
    "make_model",
    "make_observation",
    "simulate",
    "stf_alpha_sequence",
]

"""QARL: quantal adversarial RL with a self-paced temperature curriculum (arXiv:2311.01642), on stable-baselines3."""

from rl.qarl.checkpoint import NotARunError, QARLPolicies, load_policies
from rl.qarl.interrupts import TrainingInterrupted
from rl.qarl.modes import ALGOS, Mode, resolve_mode
from rl.qarl.sac import QARLSAC, LossNotFiniteError, PerSampleTemperatureSAC
from rl.qarl.teacher import SelfPacedGammaTeacher, gamma_kl
from rl.qarl.train import TrainingError, train

__all__ = [
    "ALGOS",
    "QARLSAC",
    "LossNotFiniteError",
    "Mode",
    "NotARunError",
    "PerSampleTemperatureSAC",
    "QARLPolicies",
    "SelfPacedGammaTeacher",
    "TrainingError",
    "TrainingInterrupted",
    "gamma_kl",
    "load_policies",
    "resolve_mode",
    "train",
]

"""Markov coding games with minimum-entropy coupling (MEME) and rate limits (MEC-B).

Algorithms (numpy): greedy minimum-entropy coupling (:mod:`envs.coding.mec`), EBIM encoders
(:mod:`envs.coding.ebim`), MEC-B (:mod:`envs.coding.mecb`). Games: tabular MDPs (:mod:`envs.coding.mdp`), the
senders and receiver (:mod:`envs.coding.agents`) and the gymnasium env (:mod:`envs.coding.env`), registered as
``rldyn/CodingGridWorld-v0``, ``rldyn/CodeGrid-v0`` and ``rldyn/ReferentialGame-v0``.
"""

from envs.coding.agents import BayesianReceiver, CouplingProtocol, ProtocolSender, RandomSender
from envs.coding.ebim import (
    Partition,
    best_deterministic,
    ebim_curve,
    ebim_envelope,
    ebim_greedy,
    encode,
    refine_down,
    refine_up,
    uniform_quantization,
)
from envs.coding.entropy import binary_entropy, entropy, mutual_information
from envs.coding.env import MarkovCodingGameEnv, make_sender
from envs.coding.mdp import TabularMDP, make_codegrid, make_gridworld, make_mdp, make_stateless, maxent_policy
from envs.coding.mec import (
    Coupling,
    exact_mec,
    greedy_mec,
    greedy_mec_dense,
    greedy_mec_rescan,
    majorization_meet,
    meet_entropy,
)
from envs.coding.mecb import MECBResult, mec_b
from envs.coding.validation import check_distribution, check_rate

__all__ = [
    "BayesianReceiver",
    "Coupling",
    "CouplingProtocol",
    "MECBResult",
    "MarkovCodingGameEnv",
    "Partition",
    "ProtocolSender",
    "RandomSender",
    "TabularMDP",
    "best_deterministic",
    "binary_entropy",
    "check_distribution",
    "check_rate",
    "ebim_curve",
    "ebim_envelope",
    "ebim_greedy",
    "encode",
    "entropy",
    "exact_mec",
    "greedy_mec",
    "greedy_mec_dense",
    "greedy_mec_rescan",
    "majorization_meet",
    "make_codegrid",
    "make_gridworld",
    "make_mdp",
    "make_sender",
    "make_stateless",
    "maxent_policy",
    "mec_b",
    "meet_entropy",
    "mutual_information",
    "refine_down",
    "refine_up",
    "uniform_quantization",
]

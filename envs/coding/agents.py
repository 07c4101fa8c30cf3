"""Senders and the Bayesian receiver of Markov coding games (MEME, MEC-B, random).

A :class:`CouplingProtocol` is the deterministic rule both sides share: given the receiver's belief ``b_t`` over
messages and the max-entropy policy's action distribution ``pi(.|s_t)``, it returns the ``|M| x |A|`` coupling
``nu`` whose action marginal is exactly ``pi(.|s_t)``.

- MEME (Sokota et al., ICML 2022, arXiv:2107.08295): ``nu = MEC(b_t, pi(.|s_t))``.
- MEC-B (Ebrahimi et al., NeurIPS 2024): with a per-step budget ``R = c H(mu)``, if ``H(b_t) > R`` the belief is
  first compressed by an EBIM encoder ``g`` (greedy or uniform quantisation) and
  ``nu(m, a) = b_t(m) P_TA[g(m), a] / p_T(g(m))`` with ``P_TA = MEC(p_T, pi(.|s_t))``; otherwise plain MEC.

The sender samples ``a_t`` from row ``m`` of ``nu`` (normalised); the receiver, seeing the intended action (the MEC-B
grid-world convention, fixed for every environment here), sets ``b_(t+1) ∝ nu(., a_t)`` and guesses
``argmax b`` (first index on ties) at the end. Both sides compute ``nu`` independently; the couplings are
deterministic functions of their inputs, so they agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.ebim import ENCODERS, encode
from envs.coding.entropy import entropy
from envs.coding.mec import greedy_mec_dense
from envs.coding.mecb import compose
from envs.coding.types import FloatArray
from envs.coding.validation import check_distribution
from rl.common.registry import check_choice

PROTOCOLS = ("meme", "mecb")
"""Coupling protocols: ``meme`` (no rate limit) and ``mecb`` (per-step EBIM compression, then MEC)."""

SENDERS = ("meme", "mecb", "random")
"""Scripted senders: the two protocol senders and the message-independent random floor."""


class CouplingProtocol:
    """The shared, deterministic step rule of sender and receiver.

    Args:
        kind: ``"meme"`` or ``"mecb"``.
        rate: per-step budget ``R`` in bits (``mecb`` only; ``None`` for ``meme``).
        encoder: ``"greedy"`` (EBIM Algorithm 1) or ``"uniform"`` (quantisation), ``mecb`` only.
        compress_always: ``mecb`` only: apply the encoder even when ``H(b_t) <= R``. The authors' code (spec §4.3)
            compresses only while ``H(b_t) > R``; then messages sharing a uniform-quantisation bin are separated
            once the belief is concentrated enough. With ``True`` the bins are never separated (the reading of
            spec §2.3 / evidence 8). No effect for the greedy encoder, which returns the identity when
            ``R >= H(b_t)``.
    """

    def __init__(
        self, kind: str = "meme", rate: float | None = None, encoder: str = "greedy", compress_always: bool = False
    ) -> None:
        self.kind = check_choice(kind, PROTOCOLS, "protocol")
        self.encoder = check_choice(encoder, ENCODERS, "encoder")
        if self.kind == "mecb" and (rate is None or not rate >= 0):
            raise ValueError(f"protocol 'mecb' needs a rate >= 0 bits, got {rate!r}")
        self.rate = None if self.kind == "meme" else float(rate)  # type: ignore[arg-type]
        self.compress_always = bool(compress_always) and self.kind == "mecb"

    def coupling(self, belief: ArrayLike, action_probs: ArrayLike) -> FloatArray:
        """``nu``: the ``(|M|, |A|)`` coupling of the belief with the action distribution."""
        b = check_distribution(belief, "belief")
        pi = check_distribution(action_probs, "action distribution")
        if self.rate is None or (entropy(b) <= self.rate and not self.compress_always):
            return greedy_mec_dense(b, pi)
        rate = min(self.rate, float(np.log2(len(b))))
        joint, _, _ = compose(b, encode(b, rate, self.encoder), pi)
        return joint

    def describe(self) -> dict[str, Any]:
        """The parameters a second party needs to rebuild the protocol."""
        return {"kind": self.kind, "rate": self.rate, "encoder": self.encoder, "compress_always": self.compress_always}


def posterior(nu: FloatArray, action: int, belief: FloatArray) -> FloatArray:
    """``b' ∝ nu(., a)``; an action the protocol never uses (a masked one) leaves the belief unchanged."""
    col = nu[:, action]
    total = col.sum()
    return belief.copy() if total <= 0 else col / total


class BayesianReceiver:
    """Tracks the belief over messages from the sender's actions and guesses the MAP message.

    Args:
        protocol: the shared step rule.
        policy: ``(S, A)`` max-entropy policy the coupling is taken with.
        prior: message prior ``mu``.
    """

    def __init__(self, protocol: CouplingProtocol, policy: FloatArray, prior: ArrayLike) -> None:
        self.protocol = protocol
        self.policy = policy
        self.prior = check_distribution(prior, "message prior")
        self.belief = self.prior.copy()

    def reset(self) -> FloatArray:
        """Start a new episode at the prior; returns a copy of the belief."""
        self.belief = self.prior.copy()
        return self.belief.copy()

    def coupling(self, state: int) -> FloatArray:
        """``nu`` for the current belief in ``state``."""
        return self.protocol.coupling(self.belief, self.policy[state])

    def update(self, state: int, action: int, nu: FloatArray | None = None) -> FloatArray:
        """Observe the sender's action in ``state``; returns a copy of the new belief.

        Args:
            state: the state the action was taken in.
            action: the observed (intended) action.
            nu: this step's coupling if the caller already computed it with :meth:`coupling`.
        """
        if nu is None:
            nu = self.coupling(state)
        self.belief = posterior(nu, action, self.belief)
        return self.belief.copy()

    def guess(self) -> int:
        """The MAP message (first index on ties)."""
        return int(np.argmax(self.belief))


class ProtocolSender:
    """A MEME or MEC-B sender: samples its action from the message's row of the coupling.

    Args:
        protocol: the shared step rule (rebuilt from the game's parameters, not shared with the receiver).
        policy: ``(S, A)`` max-entropy policy.
    """

    def __init__(self, protocol: CouplingProtocol, policy: FloatArray) -> None:
        self.protocol = protocol
        self.policy = policy

    def __call__(self, obs: Mapping[str, Any], rng: np.random.Generator) -> int:
        """Action for a game observation ``{"state", "message", "belief"}``, drawn with ``rng``."""
        nu = self.protocol.coupling(obs["belief"], self.policy[int(obs["state"])])
        row = nu[int(obs["message"])]
        return int(rng.choice(len(row), p=row / row.sum()))


class RandomSender:
    """The floor: acts by the max-entropy policy, ignoring the message (same return, chance-level decoding)."""

    def __init__(self, policy: FloatArray) -> None:
        self.policy = policy

    def __call__(self, obs: Mapping[str, Any], rng: np.random.Generator) -> int:
        """Action drawn from ``pi(.|s)`` with ``rng``."""
        return int(rng.choice(self.policy.shape[1], p=self.policy[int(obs["state"])]))

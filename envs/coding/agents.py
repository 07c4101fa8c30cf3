"""Senders and the Bayesian receiver of Markov coding games (MEME, MEC-B, random).

A :class:`CouplingProtocol` is the deterministic rule both sides share: given the receiver's belief ``b_t`` over
messages and the max-entropy policy's action distribution ``pi(.|s_t)``, it returns the ``|M| x |A|`` coupling
``nu`` whose action marginal is exactly ``pi(.|s_t)``.

- MEME (Sokota et al., ICML 2022, arXiv:2107.08295): ``nu = MEC(b_t, pi(.|s_t))``.
- MEC-B (Ebrahimi et al., NeurIPS 2024): with a per-step budget ``R = c H(mu)``, the belief is compressed by an
  EBIM encoder ``g`` and ``nu(m, a) = b_t(m) P_TA[g(m), a] / p_T(g(m))`` with ``P_TA = MEC(p_T, pi(.|s_t))``.
  As in the authors' code (spec §4.3), the greedy encoder returns the identity once ``H(b_t) <= R`` (then
  ``nu = MEC(b_t, pi)``), while uniform quantisation (their ``scalar_quant``) quantises at *every* step
  (``compress_when="always"``, the default). ``compress_when="above_rate"`` is a stronger hybrid of ours: plain
  MEC once ``H(b_t) <= R``, which lets MEC separate the messages sharing a bin later.

The sender samples ``a_t`` from row ``m`` of ``nu`` (normalised); the receiver, seeing the intended action (the MEC-B
grid-world convention, fixed for every environment here), sets ``b_(t+1) ∝ nu(., a_t)`` and guesses
``argmax b`` (first index on ties) at the end. Both sides compute ``nu`` independently; the couplings are
deterministic functions of their inputs, so they agree bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.ebim import ENCODERS, encode, exact_entropy, rate_tolerance
from envs.coding.mec import greedy_mec_dense
from envs.coding.mecb import compose
from envs.coding.types import FloatArray
from envs.coding.validation import check_distribution, check_rate, check_real
from envs.common.registry import check_choice

PROTOCOLS = ("meme", "mecb")
"""Coupling protocols: ``meme`` (no rate limit) and ``mecb`` (per-step EBIM compression, then MEC)."""

SENDERS = ("meme", "mecb", "random")
"""Scripted senders: the two protocol senders and the message-independent random floor."""

COMPRESS_WHEN = ("always", "above_rate")
"""When ``mecb`` applies its encoder: every step (the authors' rule) or only while ``H(b_t) > R`` (hybrid)."""


class CouplingProtocol:
    """The shared, deterministic step rule of sender and receiver.

    Args:
        kind: ``"meme"`` or ``"mecb"``.
        rate: per-step budget ``R`` in bits: a finite real ``>= 0`` for ``mecb``, ``None`` for ``meme``. It must
            not exceed ``log2 |M|`` of the beliefs it is used with (checked at every :meth:`coupling`).
        encoder: ``"greedy"`` (EBIM Algorithm 1) or ``"uniform"`` (quantisation), ``mecb`` only.
        compress_when: ``mecb`` only. ``"always"`` (default, the authors' code): apply the encoder at every step;
            uniform quantisation then never separates the messages of a bin, and the greedy encoder returns the
            identity (plain MEC) whenever ``H(b_t) <= R``. ``"above_rate"``: plain MEC once ``H(b_t) <= R`` for
            both encoders (identical for greedy; for uniform a much stronger hybrid than the authors' baseline).

    Raises:
        ValueError: an unknown ``kind``/``encoder``/``compress_when``, a ``mecb`` rate that is missing, not a
            real number, negative or not finite, or a rate given to ``meme``.
    """

    def __init__(
        self, kind: str = "meme", rate: float | None = None, encoder: str = "greedy", compress_when: str = "always"
    ) -> None:
        self.kind = check_choice(kind, PROTOCOLS, "protocol")
        self.encoder = check_choice(encoder, ENCODERS, "encoder")
        self.compress_when = check_choice(compress_when, COMPRESS_WHEN, "compress_when")
        if self.kind == "meme":
            if rate is not None:
                raise ValueError(f"protocol 'meme' has no rate limit; got rate={rate!r} (use protocol 'mecb')")
            self.rate: float | None = None
        else:
            if rate is None:
                raise ValueError("protocol 'mecb' needs a rate: a finite real >= 0 bits, got None")
            r = check_real(rate, "mecb rate", finite=False)
            if not (math.isfinite(r) and r >= 0.0):
                raise ValueError(f"mecb rate {rate!r} bits is outside the valid range [0, log2 |M|] (finite, >= 0)")
            self.rate = r

    def coupling(self, belief: ArrayLike, action_probs: ArrayLike) -> FloatArray:
        """``nu``: the ``(|M|, |A|)`` coupling of the belief with the action distribution.

        Raises:
            ValueError: an invalid distribution, or a ``mecb`` rate above ``log2 len(belief)``.
        """
        b = check_distribution(belief, "belief")
        pi = check_distribution(action_probs, "action distribution")
        if self.rate is None:
            return greedy_mec_dense(b, pi)
        rate = check_rate(self.rate, len(b), "mecb rate")
        if self.encoder == "greedy" or self.compress_when == "above_rate":
            if exact_entropy(b) <= rate + rate_tolerance(rate):  # the greedy encoder's identity: plain MEC
                return greedy_mec_dense(b, pi)
        joint, _, _ = compose(b, encode(b, rate, self.encoder), pi)
        return joint

    def describe(self) -> dict[str, Any]:
        """The parameters a second party needs to rebuild the protocol."""
        return {"kind": self.kind, "rate": self.rate, "encoder": self.encoder, "compress_when": self.compress_when}


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

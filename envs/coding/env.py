"""Markov coding games as a gymnasium environment (the sender is the agent; the receiver is built in)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike

from envs.coding.agents import BayesianReceiver, CouplingProtocol, ProtocolSender, RandomSender
from envs.coding.entropy import entropy
from envs.coding.mdp import TabularMDP, check_policy, make_mdp, maxent_policy
from envs.coding.types import FloatArray
from envs.coding.validation import check_distribution, check_int, check_real
from envs.common.registry import check_choice

ObsType = dict[str, Any]


class MarkovCodingGameEnv(gym.Env[ObsType, np.int64]):
    """Markov coding game ``<(S, A, T, r), M, mu, zeta>`` (Sokota et al., ICML 2022; MEC-B, NeurIPS 2024).

    At reset a message ``m ~ mu`` is drawn from ``np_random`` and shown only to the sender (the agent). The sender
    plays the wrapped MDP; a built-in Bayesian receiver watches the (intended) actions, keeps a belief over
    messages assuming the game's coupling protocol (MEME or rate-limited MEC-B, see :mod:`envs.coding.agents`),
    and guesses ``argmax b`` when the episode ends. The protocol's own sender
    (:func:`make_sender`) attains the max-entropy policy's return while transmitting the message; any other
    sender, e.g. one trained with stable-baselines3, is decoded by the same receiver.

    ## Action Space
    ``Discrete(|A|)``: the MDP action.

    ## Observation Space
    ``Dict(state=Discrete(S), message=Discrete(|M|), belief=Box(0, 1, (|M|,), float64))``: the MDP state, the
    private message and the receiver's current belief (public: both sides can compute it).

    ## Rewards
    ``r(s')`` of the MDP on every step (``info["reward_mdp"]``), plus ``zeta`` on the last step if the receiver's
    guess is right (``info["reward_bonus"]``). The discounted MDP return ``sum_t gamma^(t+1) r(s_(t+1))`` of the
    MEC-B code is reported separately as ``info["mdp_return"]``.

    ## Starting State
    The MDP's start state, the belief at the prior.

    ## Episode End
    Terminated when the MDP enters a terminal state (CodeGrid and the stateless game also terminate at their
    horizon); truncated after the MDP's ``max_steps`` (1000 in the grid world). The receiver guesses in both cases.

    ## Info
    Every step: ``reward_mdp``, ``reward_bonus``, ``mdp_return`` (discounted, so far), ``guess`` (current MAP
    message), ``posterior_entropy`` (bits), ``step_information`` (``H(pi) + H(b) - H(nu)``, the bits the step can
    carry). Last step also: ``correct`` (bool) and ``message``.

    ## Arguments
    - ``mdp``: a :class:`~envs.coding.mdp.TabularMDP` or a name (``gridworld``, ``codegrid``, ``stateless``)
      built with ``mdp_kwargs``.
    - ``n_messages`` / ``prior``: uniform over ``n_messages``, or an explicit prior ``mu``.
    - ``zeta``: bonus for a correct guess.
    - ``protocol``: ``meme`` or ``mecb``; ``rate_fraction`` ``c`` sets the MEC-B per-step budget
      ``R = c H(mu)`` bits (the authors' ``compression_rate``; the paper's rate is ``H(mu) / R``); ``encoder``:
      ``greedy`` (EBIM Algorithm 1) or ``uniform`` (quantisation); ``compress_when``: ``always`` (default, the
      authors' rule: uniform quantisation at every step) or ``above_rate`` (our hybrid: plain MEC once
      ``H(b_t) <= R``; see :class:`~envs.coding.agents.CouplingProtocol`).
    - ``log_temperature``: ``log tau`` of the max-entropy policy (soft value iteration, ``soft_iterations``
      iterations); ``policy`` overrides it with an ``(S, A)`` array or one ``(A,)`` row.

    ## Version History
    - v0: first version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        mdp: TabularMDP | str = "gridworld",
        mdp_kwargs: dict[str, Any] | None = None,
        n_messages: int = 64,
        prior: ArrayLike | None = None,
        zeta: float = 1.0,
        protocol: str = "meme",
        rate_fraction: float = 1.0,
        encoder: str = "greedy",
        compress_when: str = "always",
        log_temperature: float = -5.0,
        soft_iterations: int = 100,
        policy: ArrayLike | None = None,
    ) -> None:
        self.mdp = mdp if isinstance(mdp, TabularMDP) else make_mdp(mdp, **(mdp_kwargs or {}))
        if prior is None:
            n_m = check_int(n_messages, "n_messages", low=1)
            prior = np.full(n_m, 1.0 / n_m)
        self.prior = check_distribution(prior, "message prior")
        c = check_real(rate_fraction, "rate_fraction", finite=False)
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"rate_fraction {rate_fraction!r} is outside the valid range [0, 1] (R = c H(mu))")
        check_choice(protocol, ("meme", "mecb"), "protocol")
        self.zeta = check_real(zeta, "zeta")
        self.log_temperature = check_real(log_temperature, "log_temperature")
        if policy is None:
            self.policy = maxent_policy(self.mdp, float(np.exp(log_temperature)), soft_iterations)
        else:
            self.policy = check_policy(policy, self.mdp)
        rate = c * entropy(self.prior) if protocol == "mecb" else None
        self.protocol = CouplingProtocol(protocol, rate=rate, encoder=encoder, compress_when=compress_when)
        self.receiver = BayesianReceiver(self.protocol, self.policy, self.prior)
        n_m = len(self.prior)
        self.observation_space = spaces.Dict(
            {
                "state": spaces.Discrete(self.mdp.n_states),
                "message": spaces.Discrete(n_m),
                "belief": spaces.Box(0.0, 1.0, shape=(n_m,), dtype=np.float64),
            }
        )
        self.action_space = spaces.Discrete(self.mdp.n_actions)
        self._state = self.mdp.start
        self._message = 0
        self._t = 0
        self._return = 0.0
        self._done = True

    @property
    def n_messages(self) -> int:
        """``|M|``."""
        return len(self.prior)

    @property
    def message(self) -> int:
        """The current episode's message (the sender's private information)."""
        return self._message

    def _obs(self) -> ObsType:
        return {
            "state": np.int64(self._state),
            "message": np.int64(self._message),
            "belief": self.receiver.belief.copy(),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsType, dict[str, Any]]:
        """Draw a message from the prior and start the MDP; ``options`` may fix ``{"message": m}``."""
        super().reset(seed=seed)
        if options and "message" in options:
            m = int(options["message"])
            if not 0 <= m < self.n_messages:
                raise ValueError(f"message {m} is outside the valid range [0, {self.n_messages - 1}]")
            self._message = m
        else:
            self._message = int(self.np_random.choice(self.n_messages, p=self.prior))
        self._state, self._t, self._return, self._done = self.mdp.start, 0, 0.0, False
        self.receiver.reset()
        info = {"guess": self.receiver.guess(), "posterior_entropy": entropy(self.receiver.belief), "mdp_return": 0.0}
        return self._obs(), info

    def step(self, action: Any) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Play ``action`` in the MDP, update the receiver, and score its guess if the episode ends."""
        if self._done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        a = check_int(action, "action", low=0, high=self.mdp.n_actions - 1)  # 1.7 is an error, not action 1
        s = self._state
        nu = self.receiver.coupling(s)
        step_info = entropy(self.policy[s]) + entropy(self.receiver.belief) - entropy(nu)
        self.receiver.update(s, a, nu)
        nxt = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.transitions[s, a]))
        reward_mdp = float(self.mdp.rewards[nxt])
        self._return += self.mdp.gamma ** (self._t + 1) * reward_mdp
        self._t += 1
        self._state = nxt
        terminated = bool(self.mdp.terminal[nxt])
        truncated = bool(not terminated and self._t >= self.mdp.max_steps)
        guess = self.receiver.guess()
        info: dict[str, Any] = {
            "reward_mdp": reward_mdp,
            "reward_bonus": 0.0,
            "mdp_return": self._return,
            "guess": guess,
            "posterior_entropy": entropy(self.receiver.belief),
            "step_information": step_info,
        }
        if terminated or truncated:
            self._done = True
            correct = guess == self._message
            info.update(correct=bool(correct), message=self._message, reward_bonus=self.zeta * float(correct))
        return self._obs(), reward_mdp + info["reward_bonus"], terminated, truncated, info


def make_sender(kind: str, env: gym.Env) -> ProtocolSender | RandomSender:
    """A scripted sender for ``env``: ``"meme"`` / ``"mecb"`` (must match the game's protocol) or ``"random"``.

    The protocol sender rebuilds the step rule from the game's parameters and computes every coupling itself.
    """
    check_choice(kind, ("meme", "mecb", "random"), "sender")
    game = env.unwrapped
    if not isinstance(game, MarkovCodingGameEnv):
        raise ValueError(f"make_sender needs a MarkovCodingGameEnv, got {type(game).__name__}")
    if kind == "random":
        return RandomSender(game.policy)
    if kind != game.protocol.kind:
        raise ValueError(f"sender {kind!r} does not match the game's protocol {game.protocol.kind!r}")
    return ProtocolSender(CouplingProtocol(**game.protocol.describe()), game.policy)


def policy_row(env: gym.Env, state: int) -> FloatArray:
    """``pi(.|state)`` of the game's max-entropy policy."""
    game = env.unwrapped
    assert isinstance(game, MarkovCodingGameEnv)
    return game.policy[state].copy()

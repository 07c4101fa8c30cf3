"""Tabular MDPs for Markov coding games and their maximum-entropy policy (soft value iteration).

- :func:`make_gridworld`: the MEC-B authors' 8 x 8 grid world (goal, trap, diagonal obstacles, slip noise).
- :func:`make_codegrid`: Sokota et al.'s CodeGrid (``Simple4WayGrid`` of ``schroederdewitt/meme``), 4 x 4, horizon 8.
- :func:`make_stateless`: the referential game (no reward), a fixed number of steps.

Any :class:`TabularMDP` can be plugged into :class:`envs.coding.env.MarkovCodingGameEnv`. Rewards are on the state
entered, ``r(s')``, and the game's MDP return is ``sum_t gamma^(t+1) r(s_(t+1))`` as in the MEC-B code. A horizon
that belongs to the game (CodeGrid, stateless) is encoded by augmenting the state with the time step, so the
max-entropy policy stays stationary in the augmented state and the episode *terminates* at the horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from envs.coding.types import BoolArray, FloatArray
from envs.coding.validation import as_real_array
from envs.common.registry import lookup

# action order of both grids: 0 up, 1 right, 2 down, 3 left; (row, col) with row 0 at the top
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP with reward on entering a state.

    Attributes:
        name: short name.
        transitions: ``(S, A, S)`` ``T(s'|s, a)``; rows sum to 1.
        rewards: ``(S,)`` reward ``r(s')`` received on entering ``s'``.
        terminal: ``(S,)`` absorbing states that end the episode (``terminated=True``).
        action_mask: ``(S, A)`` actions the max-entropy policy may use (masked ones keep the agent in place).
        start: start state.
        gamma: discount of the MDP return.
        max_steps: truncation horizon (``truncated=True``) when no terminal state is reached.
        labels: human-readable name of each state.
    """

    name: str
    transitions: FloatArray
    rewards: FloatArray
    terminal: BoolArray
    action_mask: BoolArray
    start: int
    gamma: float
    max_steps: int
    labels: tuple[str, ...]

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return int(self.transitions.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions ``A``."""
        return int(self.transitions.shape[1])


def soft_value_iteration(mdp: TabularMDP, temperature: float, iterations: int = 100) -> FloatArray:
    """Soft Q-values by the MEC-B authors' soft value iteration, from ``Q = 0``.

    ``Q(s, a) <- r(s) + gamma sum_s' T(s'|s, a) V(s')`` with ``V(s) = tau log sum_a exp(Q(s, a) / tau)`` over the
    unmasked actions, and ``Q(s, .) = r(s)`` at terminal states (so a terminal's soft value carries a
    ``tau log |A|`` bonus, as in their code). ``tau`` is a temperature (``pi ∝ exp(Q / tau)``); MEME's β is its
    inverse.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations!r}")
    r = mdp.rewards
    q = np.zeros((mdp.n_states, mdp.n_actions))
    for _ in range(iterations):
        v = _soft_max(q, mdp.action_mask, temperature)
        q = r[:, None] + mdp.gamma * (mdp.transitions @ v)
        q[mdp.terminal] = r[mdp.terminal, None]
    return q


def _soft_max(q: FloatArray, mask: BoolArray, tau: float) -> FloatArray:
    z = np.where(mask, q / tau, -np.inf)
    zmax = z.max(axis=1, keepdims=True)
    return tau * (zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1)))


def maxent_policy(mdp: TabularMDP, temperature: float, iterations: int = 100) -> FloatArray:
    """``pi(a|s) = softmax(Q(s, .) / tau)`` over the unmasked actions, from :func:`soft_value_iteration`."""
    q = soft_value_iteration(mdp, temperature, iterations)
    z = np.where(mdp.action_mask, q / temperature, -np.inf)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _grid_move(rc: tuple[int, int], a: int, size: int, blocked: set[tuple[int, int]]) -> tuple[int, int]:
    r, c = rc[0] + MOVES[a][0], rc[1] + MOVES[a][1]
    if not (0 <= r < size and 0 <= c < size) or (r, c) in blocked:
        return rc
    return (r, c)


def make_gridworld(slip: float = 0.1, gamma: float = 0.95, max_steps: int = 1000, size: int = 8) -> TabularMDP:
    """The MEC-B authors' grid world (spec §4.4).

    8 x 8 cells ``(row, col)``, row 0 at the top; actions 0 up, 1 right, 2 down, 3 left. Goal ``(0, size-1)``
    (+1) and trap ``(1, size-1)`` (-1) are terminal; obstacles on the diagonal ``(i, i)``, ``i >= 1``; start
    ``(5, 4)``. The intended move happens with probability ``1 - 2 slip``, each perpendicular one with ``slip``;
    walls and obstacles mean staying put.
    """
    if not 0.0 <= slip <= 0.5:
        raise ValueError(f"slip must be in [0, 0.5], got {slip!r}")
    blocked = {(i, i) for i in range(1, size)}
    cells = [(r, c) for r in range(size) for c in range(size)]
    index = {rc: i for i, rc in enumerate(cells)}
    n = len(cells)
    trans = np.zeros((n, 4, n))
    for rc in cells:
        s = index[rc]
        for a in range(4):
            for b, prob in ((a, 1 - 2 * slip), ((a + 1) % 4, slip), ((a + 3) % 4, slip)):
                trans[s, a, index[_grid_move(rc, b, size, blocked)]] += prob
    goal, trap = index[(0, size - 1)], index[(1, size - 1)]
    rewards = np.zeros(n)
    rewards[goal], rewards[trap] = 1.0, -1.0
    terminal = np.zeros(n, dtype=bool)
    terminal[[goal, trap]] = True
    for rc in blocked:  # obstacle cells are unreachable; make them absorbing so T stays stochastic
        trans[index[rc]] = 0.0
        trans[index[rc], :, index[rc]] = 1.0
    return TabularMDP(
        name="gridworld",
        transitions=trans,
        rewards=rewards,
        terminal=terminal,
        action_mask=np.ones((n, 4), dtype=bool),
        start=index[(5, 4)],
        gamma=gamma,
        max_steps=max_steps,
        labels=tuple(f"({r},{c})" for r, c in cells),
    )


def make_codegrid(size: int = 4, horizon: int = 8, gamma: float = 1.0) -> TabularMDP:
    """Sokota et al.'s CodeGrid (spec §4.5): ``size`` x ``size``, start ``(0, 0)``, reward 1 at ``(size-1, size-1)``.

    Reaching the goal ends the episode; so does the horizon (``terminated``, since the horizon is part of the
    game). Moves into walls are masked for the max-entropy policy (a learned sender choosing one stays put).
    States are ``(cell, t)`` pairs, ``t = 0..horizon``.
    """
    if horizon < 1 or size < 2:
        raise ValueError(f"need size >= 2 and horizon >= 1, got size={size}, horizon={horizon}")
    cells = [(r, c) for r in range(size) for c in range(size)]
    goal = (size - 1, size - 1)
    states = [(rc, t) for t in range(horizon + 1) for rc in cells]
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    trans = np.zeros((n, 4, n))
    mask = np.zeros((n, 4), dtype=bool)
    rewards = np.zeros(n)
    terminal = np.zeros(n, dtype=bool)
    for (rc, t), s in index.items():
        if rc == goal and t > 0:
            rewards[s] = 1.0
        if t == horizon or (rc == goal and t > 0):
            terminal[s] = True
            trans[s, :, s] = 1.0
            mask[s] = True
            continue
        for a in range(4):
            nxt = _grid_move(rc, a, size, set())
            mask[s, a] = nxt != rc
            trans[s, a, index[(nxt, t + 1)]] = 1.0
    return TabularMDP(
        name="codegrid",
        transitions=trans,
        rewards=rewards,
        terminal=terminal,
        action_mask=mask,
        start=index[((0, 0), 0)],
        gamma=gamma,
        max_steps=horizon,
        labels=tuple(f"({r},{c})@{t}" for (r, c), t in states),
    )


def make_stateless(horizon: int = 6, n_actions: int = 4) -> TabularMDP:
    """The referential game: no reward, every action advances the clock, the episode ends after ``horizon`` steps."""
    if horizon < 1 or n_actions < 2:
        raise ValueError(f"need horizon >= 1 and n_actions >= 2, got horizon={horizon}, n_actions={n_actions}")
    n = horizon + 1
    trans = np.zeros((n, n_actions, n))
    for t in range(horizon):
        trans[t, :, t + 1] = 1.0
    trans[horizon, :, horizon] = 1.0
    terminal = np.zeros(n, dtype=bool)
    terminal[horizon] = True
    return TabularMDP(
        name="stateless",
        transitions=trans,
        rewards=np.zeros(n),
        terminal=terminal,
        action_mask=np.ones((n, n_actions), dtype=bool),
        start=0,
        gamma=1.0,
        max_steps=horizon,
        labels=tuple(f"t={t}" for t in range(n)),
    )


MDPS: dict[str, Callable[..., TabularMDP]] = {
    "gridworld": make_gridworld,
    "codegrid": make_codegrid,
    "stateless": make_stateless,
}
"""MDP factories by name."""


def make_mdp(name: str, **kwargs: object) -> TabularMDP:
    """Build a registered MDP by name (``gridworld``, ``codegrid``, ``stateless``) with its keyword arguments."""
    return lookup(MDPS, name, "MDP")(**kwargs)


def check_policy(policy: ArrayLike, mdp: TabularMDP) -> FloatArray:
    """Validate a ``(S, A)`` policy (or one ``(A,)`` row used in every state) for ``mdp``."""
    pol = as_real_array(policy, "policy")
    if pol.ndim == 1:
        pol = np.tile(pol, (mdp.n_states, 1))
    if pol.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"policy has shape {pol.shape}; expected ({mdp.n_states}, {mdp.n_actions}) or ({mdp.n_actions},)")
    if not np.isfinite(pol).all() or (pol < 0).any() or np.abs(pol.sum(axis=1) - 1).max() > 1e-8:
        raise ValueError("policy rows must be finite, non-negative and sum to 1")
    return pol

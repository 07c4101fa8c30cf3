"""Hydra schemas of ``scripts/run_mcg.py`` (stored in the ConfigStore by :func:`register_mcg_configs`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from envs.common.config import RunConfig


@dataclass
class MCGMDPConfig:
    """One game setting (``configs/mcg_mdp/<name>.yaml``); ``None`` keeps the MDP factory's default.

    Attributes:
        name: ``gridworld``, ``codegrid`` or ``stateless``.
        log_temperature: ``log tau`` of the max-entropy policy.
        n_messages: ``|M|`` of the rate sweep (uniform prior).
        slip: grid-world slip probability.
        max_steps: grid-world truncation horizon.
        horizon: CodeGrid / stateless episode length.
        action_probs: stateless only: a fixed action distribution instead of the (uniform) max-entropy policy.
    """

    name: str = "???"
    log_temperature: float = -5.0
    n_messages: int = 512
    slip: float | None = None
    max_steps: int | None = None
    horizon: int | None = None
    action_probs: list[float] | None = None


@dataclass
class EBIMCurveConfig:
    """The ``I(X;T)``-vs-rate curve for one source ``p_X``.

    Attributes:
        source: ``binomial`` (``size - 1`` trials, success ``param``), ``geometric`` (truncated to ``size``
            symbols, ratio ``param``) or ``dirichlet`` (concentration ``param``, drawn with the run's seed).
        size: alphabet size.
        param: the source's parameter.
        n_rates: rate grid points in ``(0, H(X)]``.
    """

    source: str = "binomial"
    size: int = 16
    param: float = 0.5
    n_rates: int = 30


@dataclass
class MCGConfig(RunConfig):
    """``scripts/run_mcg.py``: rate and message-space sweeps of Markov coding games, and the EBIM curve.

    Attributes:
        mcg_mdp: the game.
        ebim: the EBIM curve's source.
        zeta: bonus for a correct guess.
        episodes: episodes per point.
        rate_fractions: ``c`` of ``R = c H(mu)`` (1 = MEME, no compression).
        encoders: EBIM encoders compared below ``c = 1`` (``greedy``, ``uniform``).
        message_sizes: ``|M|`` of the MEME accuracy-vs-messages sweep (with the random-sender floor).
        compress_when: when MEC-B applies its encoder: ``always`` (default, the authors' rule; uniform
            quantisation then quantises every step) or ``above_rate`` (our hybrid: plain MEC once ``H(b_t) <= R``).
    """

    mcg_mdp: MCGMDPConfig = field(default_factory=MCGMDPConfig)
    ebim: EBIMCurveConfig = field(default_factory=EBIMCurveConfig)
    zeta: float = 1.0
    episodes: int = 50
    rate_fractions: list[float] = field(default_factory=lambda: [1.0, 0.75, 0.5, 0.25])
    encoders: list[str] = field(default_factory=lambda: ["greedy", "uniform"])
    message_sizes: list[int] = field(default_factory=lambda: [8, 32, 128, 512])
    compress_when: str = "always"


def register_mcg_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(group="mcg_mdp", name="base_mcg_mdp", node=MCGMDPConfig)
    cs.store(name="base_mcg", node=MCGConfig)

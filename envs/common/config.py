"""Structured-config schemas shared by every script, registered in Hydra's ConfigStore.

Each primary config (``configs/<script>.yaml``) starts its defaults list with a schema stored here, so a
mistyped key (``sed=3``) or a wrong type (``seed=abc``) fails at launch with Hydra's message rather than
deep inside a run. Packages add their own schemas next to their code and register them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore


@dataclass
class RunConfig:
    """Fields every script has.

    Attributes:
        script: the script's name, the first level of the run directory.
        name: the run's name, the second level of the run directory.
        seed: the seed of every generator (``envs.common.seed_everything``) and of env resets.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``.
        run_dir: for tests and callers outside Hydra; a Hydra script refuses it (its folder is ``hydra.run.dir``;
            ``envs.common.launch``).
    """

    script: str = "???"
    name: str = "???"
    seed: int = 0
    device: str = "auto"
    run_dir: str | None = None


@dataclass
class EnvConfig:
    """An adversarial MuJoCo game (``configs/env/<Name>.yaml``); ``None`` means the env's default.

    Attributes:
        name: short env name, e.g. ``Hopper`` (see ``envs.adversarial.specs``).
        bodies: bodies the adversary pushes.
        axes: world axes of the force on each body.
        force_bound: newtons per (body, axis).
        max_episode_steps: truncation horizon.
    """

    name: str = "???"
    bodies: list[str] | None = None
    axes: list[str] | None = None
    force_bound: float | None = None
    max_episode_steps: int | None = None


@dataclass
class PlayConfig(RunConfig):
    """``scripts/play_adversarial.py``: random (or zero) players against each other, logged to TensorBoard.

    Attributes:
        env: the game.
        episodes: number of episodes.
        protagonist: ``random`` or ``zero``.
        adversary: ``random`` or ``zero``.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    episodes: int = 5
    protagonist: str = "random"
    adversary: str = "random"


def register_configs() -> None:
    """Store the shared schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(group="env", name="base_env", node=EnvConfig)
    cs.store(name="base_play", node=PlayConfig)

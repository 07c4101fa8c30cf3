"""Config schemas of ``scripts/train_qarl.py`` (stored in Hydra's ConfigStore so typos fail at launch)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from rl.common.config import EnvConfig, RunConfig


@dataclass
class AlgoConfig:
    """QARL and its baselines as switches of one implementation (``configs/algo/<name>.yaml``).

    Attributes:
        name: ``qarl``, ``rarl``, ``sac``, ``fixed_temp`` or ``force_curriculum``.
        adversary: whether an adversary plays (``false``: plain SAC, zero force).
        temperature: the adversary's entropy temperature: ``curriculum`` (QARL: sampled per episode from the
            teacher, appended to the observation, used per replay sample), ``fixed`` (a constant alpha, the mean
            of the target distribution, appended likewise) or ``learned`` (SB3's automatic tuning, no input).
        force: ``constant`` (the env's bound) or ``curriculum`` (the force-curriculum baseline: the teacher's alpha
            mapped to a force budget F, actions clipped to +-F, F appended to the observation).
    """

    name: str = "???"
    adversary: bool = True
    temperature: str = "curriculum"
    force: str = "constant"


@dataclass
class SACConfig:
    """Hyperparameters of both SAC agents (specs/qarl.md §5)."""

    net_arch: list[int] = field(default_factory=lambda: [256, 256, 256])
    batch_size: int = 256
    buffer_size: int = 1_000_000
    tau: float = 0.005
    gamma: float = 0.99
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    ent_coef_lr: float = 3e-4
    train_freq: int = 3
    gradient_steps: int = 1
    learning_starts: int = 3000
    actor_learning_starts: int = 5000
    protagonist_ent_coef_init: float = 0.005


@dataclass
class CurriculumConfig:
    """The self-paced Gamma teacher (specs/qarl.md §3) and its gymnasium rescaling (§3.3).

    Temperatures are ``c`` times the dm_control ones: the Gamma rate is ``rate_dmc / c``. The threshold is
    ``xi = J_rand + threshold_fraction * (100 * c - J_rand)`` unless ``threshold`` is given; ``c`` and
    ``J_rand`` default to the env's ``reward_scale`` and ``random_return``.
    """

    nu_init: float = 50.0
    nu_target: float = 1.0
    rate_dmc: float = 1000.0
    epsilon: float = 0.5
    min_pairs: int = 30
    update_every: int = 3
    kl_stop: float = 0.01
    reward_scale: float | None = None
    random_return: float | None = None
    threshold: float | None = None
    threshold_fraction: float = 0.1


@dataclass
class BudgetConfig:
    """How long to train (``budget=paper`` or ``budget=demo``).

    Attributes:
        iterations: alternation iterations (adversary phase + protagonist phase).
        episodes_per_phase: episodes of each phase.
        horizon: episode truncation (the paper: 500 steps).
        eval_every: evaluate (nominal and against the alpha=0 adversary) every this many iterations.
        eval_episodes: episodes of each evaluation.
        checkpoint_every: checkpoint every this many iterations (and at the end and on Ctrl-C).
        keep_checkpoints: how many checkpoints to keep.
        max_env_steps: stop after the iteration in which this many training env steps are reached (``null``: no cap).
    """

    iterations: int = 200
    episodes_per_phase: int = 5
    horizon: int = 500
    eval_every: int = 5
    eval_episodes: int = 2
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    max_env_steps: int | None = None


@dataclass
class TrainQARLConfig(RunConfig):
    """``scripts/train_qarl.py``.

    Attributes:
        env: the two-player game.
        algo: the method.
        sac: both agents' SAC hyperparameters.
        curriculum: the temperature teacher.
        budget: the training budget.
        resume: a run directory to continue.
        save_replay_buffer: also checkpoint both replay buffers (large).
        progress: show the progress bar.
        torch_threads: torch CPU threads (small MLPs run fastest on one; ``null`` keeps torch's default).
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    resume: str | None = None
    save_replay_buffer: bool = False
    progress: bool = True
    torch_threads: int | None = 1


def register_configs() -> None:
    """Store the schemas of ``train_qarl`` in Hydra's ConfigStore."""
    from rl.common.config import register_configs as register_common

    register_common()
    cs = ConfigStore.instance()
    cs.store(group="algo", name="base_algo", node=AlgoConfig)
    cs.store(group="budget", name="base_budget", node=BudgetConfig)
    cs.store(name="base_train_qarl", node=TrainQARLConfig)

"""Config schemas of ``scripts/train_qarl.py`` (stored in Hydra's ConfigStore so typos fail at launch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from envs.common.config import EnvConfig, RunConfig


@dataclass
class MixedNEConfig:
    """MixedNE-LD (``algo=mixedne_ld``, arXiv:2002.06063; :mod:`rl.qarl.baselines.mixedne`): official ``sac_ld.py`` values.

    ``target`` chooses the adversary action of the critic target ``Q'(s', (1 - delta) a' + delta a'_adv)``:
    ``corrected`` (default) draws ``a'_adv`` from the adversary's policy; ``official`` draws it from the
    protagonist's policy (a second, independent sample), as the official ``SAC_LD._next_q`` does (a bug there, but
    the paper's numbers come from it; the corrected target makes MixedNE-LD more pessimistic). The paper comparison
    (``benchmarks/qarl_comparison/train_comparison.sh``) uses ``official``.

    Attributes:
        delta: weight of the adversary's action in the executed one, ``(1 - delta) a + delta a_adv``.
        sgld_lr: learning rate of both policies' SGLD (RMSprop-preconditioned Langevin) steps.
        sgld_noise: initial scale of the Langevin noise.
        sgld_alpha: RMSprop smoothing constant of the preconditioner.
        noise_decay: the noise of fit k is ``sgld_noise * (1 - noise_decay) ** (k / 2)`` (the official schedule).
        adversary_ent_coef_init: initial learned temperature of the adversary's policy.
        target: ``corrected`` or ``official`` (above).
    """

    delta: float = 0.1
    sgld_lr: float = 3e-4
    sgld_noise: float = 1e-3
    sgld_alpha: float = 0.999
    noise_decay: float = 5e-5
    adversary_ent_coef_init: float = 0.005
    target: str = "corrected"


@dataclass
class CATConfig:
    """CAT's MAS attack and budget curriculum (``algo=cat``; :mod:`rl.qarl.baselines.action_adversary`): official ``mas.py``.

    ``budget`` is the target L2 radius in normalised action units; it is 0 for the first ``start_fraction`` of the
    iterations and rises linearly to the target by ``end_fraction``. **The paper's value is not recorded:** the
    official ``MASExperiment`` takes the target from the ``--new_adv_max_force`` command-line flag (``main.py``,
    default ``None``, with which the budget curriculum cannot be built), and neither the code nor the paper gives
    the value used; the ``MAS`` agent's default budget (``mas.py``) and ``MASExperiment``'s fallback when no flag
    reaches it are 1. This project uses 1.0 (an L2 radius of 1 in normalised action units, which are the env's
    action units on DeepMind Control, where the official code runs).

    ``store_unclipped``: the replay buffer stores the unclipped perturbed action ``a + delta`` (the official
    ``MASCore`` does, MuJoCo clamping the executed control) instead of the executed ``clip(a + delta, -1, 1)``
    (default; the two differ only when the perturbation leaves the action box).

    Attributes:
        budget: target L2 radius of the MAS perturbation (normalised action units).
        lr: MAS gradient step size.
        max_steps: MAS steps after the first two, at most.
        tolerance: MAS stops once no coordinate moves by more than this.
        start_fraction: the budget is 0 until this fraction of the iterations.
        end_fraction: the budget reaches its target at this fraction of the iterations.
        store_unclipped: store ``a + delta`` unclipped (above).
    """

    budget: float = 1.0
    lr: float = 3.0
    max_steps: int = 25
    tolerance: float = 1e-3
    start_fraction: float = 0.2
    end_fraction: float = 0.8
    store_unclipped: bool = False


@dataclass
class LinearTemperatureConfig:
    """``algo=qarl_linear``: alpha falls linearly from the mean of p0 to the mean of mu between these fractions.

    Attributes:
        start_fraction: fraction of the iterations at which alpha starts to fall.
        end_fraction: fraction of the iterations at which alpha reaches the target's mean.
    """

    start_fraction: float = 0.0
    end_fraction: float = 0.6666666666666666


@dataclass
class PointTeacherConfig:
    """``algo=qarl_point``: official ``SelfPacedPointTemperatureTeacher`` values (dm_control scale, times c here).

    Attributes:
        target_dmc: target temperature.
        lower_bound_dmc: the temperature never goes below this.
        max_mse_dmc: squared step per teacher update (the step is its square root).
        stop_mse_dmc: no more steps once the squared distance to the target is at most this.
    """

    target_dmc: float = 1e-8
    lower_bound_dmc: float = 1e-8
    max_mse_dmc: float = 1e-6
    stop_mse_dmc: float = 1e-15


@dataclass
class AlgoConfig:
    """QARL and its baselines as switches of one implementation (``configs/algo/<name>.yaml``).

    Attributes:
        name: one of :data:`rl.qarl.modes.ALGOS`.
        adversary: whether an adversary plays (``false``: plain SAC, zero force).
        temperature: the adversary's entropy temperature: ``curriculum`` (QARL: sampled per episode from the
            teacher, appended to the observation, used per replay sample), ``fixed`` (a constant alpha, the mean
            of the target distribution, appended likewise), ``learned`` (SB3's automatic tuning, no input),
            ``linear`` (the ``qarl_linear`` ablation: a linear schedule, ``linear``) or ``point`` (the ``qarl_point``
            ablation: one self-paced temperature, no distribution, ``point``).
        force: ``constant`` (the env's bound) or ``curriculum`` (the force-curriculum baseline: the teacher's alpha
            mapped to a force budget F, actions clipped to +-F, F appended to the observation).
        temperature_sampling: ``episode`` (one alpha per episode) or ``iteration`` (``qarl_single``: one alpha
            drawn per iteration for all its episodes).
        protagonist_temperature: ``learned`` (automatic tuning) or ``curriculum`` (``qarl_homogeneous``: the
            protagonist also uses each sample's alpha as its temperature).
        action_adversary: ``none``, ``mixedne_ld`` (MixedNE-LD, ``mixedne``) or ``cat`` (CAT, ``cat``); these need
            ``adversary: false`` (no force adversary).
        mixedne, cat, linear, point: the settings of those methods.
    """

    name: str = "???"
    adversary: bool = True
    temperature: str = "curriculum"
    force: str = "constant"
    temperature_sampling: str = "episode"
    protagonist_temperature: str = "learned"
    action_adversary: str = "none"
    mixedne: MixedNEConfig = field(default_factory=MixedNEConfig)
    cat: CATConfig = field(default_factory=CATConfig)
    linear: LinearTemperatureConfig = field(default_factory=LinearTemperatureConfig)
    point: PointTeacherConfig = field(default_factory=PointTeacherConfig)


@dataclass
class SACConfig:
    """Hyperparameters of both SAC agents (specs/qarl.md §5), and how their update runs (:mod:`rl.qarl.update_mode`).

    ``warmup``: how each agent acts during its first ``learning_starts`` steps: ``policy`` (its own, untrained,
    stochastic policy; the official code, and the default) or ``random`` (SB3's uniformly random actions; the demo
    budgets keep it, as their measured runs did).

    ``engine``: ``fast`` (batched critics, fused optimisers, no host sync per update) or ``reference`` (SB3's own
    update). ``compile``: ``auto`` (compile when it costs < 2% of the run's estimated update time), ``true`` or
    ``false``. ``precision``: ``auto`` (bf16 for a compiled update on a CPU with bf16 matrix units, where the parity
    table measured it; fp32 elsewhere), ``fp32`` or ``bf16``.

    Attributes:
        net_arch: hidden layers of the actors and of each critic (the paper: 3 x 256).
        batch_size: replay samples per gradient step.
        buffer_size: replay capacity per agent, in transitions.
        tau: Polyak coefficient of the target critics.
        gamma: discount factor.
        actor_lr: actor learning rate (Adam).
        critic_lr: critics' learning rate (Adam).
        ent_coef_lr: learning rate of a learned temperature.
        train_freq: env steps of an agent between its updates (the paper: one update per 3 steps).
        gradient_steps: gradient steps per update.
        learning_starts: transitions in the buffer before the critics update.
        actor_learning_starts: transitions in the buffer before the actor and the temperature update.
        warmup: ``policy`` or ``random`` (above).
        protagonist_ent_coef_init: initial learned temperature of the protagonist.
        adversary_ent_coef_init: initial learned temperature of an adversary that learns its own.
        engine: ``fast`` or ``reference`` (above).
        compile: ``auto``, ``true`` or ``false`` (above).
        precision: ``auto``, ``fp32`` or ``bf16`` (above).
    """

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
    warmup: str = "policy"
    protagonist_ent_coef_init: float = 0.005
    adversary_ent_coef_init: float = 0.005
    engine: str = "fast"
    compile: str = "auto"
    precision: str = "auto"


@dataclass
class CurriculumConfig:
    """The self-paced Gamma teacher (specs/qarl.md §3) and its gymnasium rescaling (§3.3).

    Temperatures are ``c`` times the dm_control ones: the Gamma rate is ``rate_dmc / c``. The threshold is
    ``xi = J_rand + threshold_fraction * (100 * c - J_rand)`` unless ``threshold`` is given; ``c`` and
    ``J_rand`` default to the env's ``reward_scale`` and ``random_return``.

    Attributes:
        nu_init: shape of the initial Gamma distribution p0 of the adversary's temperature (the paper: 50).
        nu_target: shape of the target distribution mu (1: the rational end of the curriculum).
        rate_dmc: Gamma rate on the dm_control scale (divided by ``c`` here).
        epsilon: KL trust region of one teacher update.
        min_pairs: (alpha, return) pairs needed before a teacher update.
        update_every: iterations between teacher updates.
        kl_stop: once ``KL(p || mu)`` is at most this, the teacher moves to the target.
        reward_scale: ``c`` (``null``: the env's value).
        random_return: ``J_rand`` (``null``: the env's value).
        threshold: ``xi`` (``null``: from ``threshold_fraction``).
        threshold_fraction: the fraction in the threshold's formula (above).
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
        horizon: episode truncation of training and evaluation (the paper: 500 steps). It is the one horizon
            of ``train_qarl``: ``env.max_episode_steps`` must be left ``null`` (or equal it).
        eval_every: evaluate (nominal and against the alpha=0 adversary) every this many iterations.
        eval_episodes: episodes of each evaluation.
        checkpoint_every: checkpoint every this many iterations (and at the end and on SIGINT/SIGTERM).
        keep_checkpoints: how many checkpoints to keep.
        keep_full: which kept checkpoints hold the full resume state (replay buffers, optimisers, generators):
            ``latest`` (older ones keep policies only) or ``all``.
        max_env_steps: stop after the iteration in which the **protagonist** has taken this many training env
            steps (the same rule for every algorithm; ``null``: no cap).
    """

    iterations: int = 200
    episodes_per_phase: int = 5
    horizon: int = 500
    eval_every: int = 5
    eval_episodes: int = 2
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    keep_full: str = "latest"
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
        resume: a run directory to continue (its own ``config.yaml`` is used; see :data:`RESUME_SAFE_KEYS`), or
            ``auto``: continue the run in this job's output folder if it holds a checkpoint, else start it there
            (what a requeued cluster job needs).
        progress: show the progress bar.
        torch_threads: torch CPU threads (small MLPs run fastest on one; ``null`` keeps torch's default).
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    resume: str | None = None
    progress: bool = True
    torch_threads: int | None = 1


KEEP_FULL = ("latest", "all")
WARMUP = ("policy", "random")  # as rl.qarl.sac.WARMUP (this schema module does not import the agents)

# Keys a resume may change: they extend the budget or affect only speed, logging or checkpoint cadence
# (evaluation draws from its own seeded generators, so it never moves the training stream). The SAC update's mode
# (sac.engine/compile/precision) may change too, with a note: the continuation then rounds differently.
UPDATE_MODE_KEYS = ("sac.engine", "sac.compile", "sac.precision")
RESUME_SAFE_KEYS = (
    "budget.iterations",
    "budget.max_env_steps",
    "budget.eval_every",
    "budget.eval_episodes",
    "budget.checkpoint_every",
    "budget.keep_checkpoints",
    "budget.keep_full",
    "progress",
    "device",
    "torch_threads",
    "resume",
    "run_dir",
    *UPDATE_MODE_KEYS,
)


@dataclass(frozen=True)
class _Range:
    """A numeric field's valid range: ``low``/``high`` bounds (inclusive unless ``open_*``), integer or real."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    open_low: bool = False
    open_high: bool = False
    nullable: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
        text = f"{kind} {' and '.join(parts)}".strip()
        return text + (" (or null)" if self.nullable else "")

    def holds(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not float(value).is_integer():
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        if self.low is not None and (v < self.low or (self.open_low and v == self.low)):
            return False
        return not (self.high is not None and (v > self.high or (self.open_high and v == self.high)))


_COUNT = _Range(low=1, integer=True)
_POSITIVE = _Range(low=0, open_low=True)
SAC_RANGES = {
    "batch_size": _COUNT,
    "buffer_size": _COUNT,
    "tau": _Range(low=0, high=1, open_low=True),
    "gamma": _Range(low=0, high=1, open_high=True),
    "actor_lr": _POSITIVE,
    "critic_lr": _POSITIVE,
    "ent_coef_lr": _POSITIVE,
    "train_freq": _COUNT,
    "gradient_steps": _COUNT,
    "learning_starts": _Range(low=0, integer=True),
    "actor_learning_starts": _Range(low=0, integer=True),
    "protagonist_ent_coef_init": _POSITIVE,
    "adversary_ent_coef_init": _POSITIVE,
}
CURRICULUM_RANGES = {
    "nu_init": _POSITIVE,
    "nu_target": _POSITIVE,
    "rate_dmc": _POSITIVE,
    "epsilon": _POSITIVE,
    "min_pairs": _COUNT,
    "update_every": _COUNT,
    "kl_stop": _Range(low=0),
    "reward_scale": _Range(low=0, open_low=True, nullable=True),
    "random_return": _Range(nullable=True),
    "threshold": _Range(nullable=True),
    "threshold_fraction": _Range(low=0),
}
BUDGET_RANGES = {
    "iterations": _COUNT,
    "episodes_per_phase": _COUNT,
    "horizon": _COUNT,
    "eval_every": _COUNT,
    "eval_episodes": _COUNT,
    "checkpoint_every": _COUNT,
    "keep_checkpoints": _COUNT,
    "max_env_steps": _Range(low=1, integer=True, nullable=True),
}
TOP_RANGES = {"seed": _Range(low=0, integer=True), "torch_threads": _Range(low=1, integer=True, nullable=True)}
ENV_RANGES = {"force_bound": _Range(low=0, nullable=True), "max_episode_steps": _Range(low=1, integer=True, nullable=True)}


def _check_ranges(node: Any, ranges: dict[str, _Range], prefix: str) -> None:
    for key, rule in ranges.items():
        value = node.get(key) if node is not None else None
        if not rule.holds(value):
            raise ValueError(f"{prefix}{key}={value!r} is out of range: it must be {rule.describe()}")


def validate_train_config(cfg: Any) -> None:
    """Check every numeric field of a ``TrainQARLConfig`` (range and sign) before anything is created.

    The curriculum's fields are checked only for algorithms that use a temperature (``sac`` and ``rarl`` never
    read them). ``budget.horizon`` is the one episode horizon: a different ``env.max_episode_steps`` is refused.
    Fields that must agree: ``sac.buffer_size >= sac.batch_size``, and ``curriculum.nu_target <= nu_init`` for a
    teacher that moves nu (the curriculum only cools).

    Raises:
        ValueError: naming the key, its value and the valid range.
    """
    from rl.qarl.modes import resolve_mode  # modes imports the agents; keep this schema module light

    _check_ranges(cfg, TOP_RANGES, "")
    _check_ranges(cfg.env, ENV_RANGES, "env.")
    _check_ranges(cfg.budget, BUDGET_RANGES, "budget.")
    _check_ranges(cfg.sac, SAC_RANGES, "sac.")
    arch = list(cfg.sac.net_arch)
    if not arch or not all(_COUNT.holds(width) for width in arch):
        raise ValueError(f"sac.net_arch={arch!r} is out of range: it must be a non-empty list of integers >= 1")
    if cfg.sac.warmup not in WARMUP:
        raise ValueError(f"sac.warmup={cfg.sac.warmup!r} is not one of {list(WARMUP)}")
    if cfg.budget.keep_full not in KEEP_FULL:
        raise ValueError(f"budget.keep_full={cfg.budget.keep_full!r} is not one of {list(KEEP_FULL)}")
    if int(cfg.sac.buffer_size) < int(cfg.sac.batch_size):
        raise ValueError(
            f"sac.buffer_size={cfg.sac.buffer_size} is smaller than sac.batch_size={cfg.sac.batch_size}: each batch is "
            "drawn from the replay buffer; raise sac.buffer_size or lower sac.batch_size"
        )
    from rl.qarl.update_mode import COMPILES, ENGINES, PRECISIONS, normalise_choice

    for key, choices in (("engine", ENGINES), ("compile", COMPILES), ("precision", PRECISIONS)):
        normalise_choice(cfg.sac.get(key, "auto" if key != "engine" else "fast"), choices, f"sac.{key}")
    mode = resolve_mode(cfg.algo)
    if mode.context != "none" or mode.teacher:
        _check_ranges(cfg.curriculum, CURRICULUM_RANGES, "curriculum.")
    nu_init, nu_target = cfg.curriculum.nu_init, cfg.curriculum.nu_target
    if mode.teacher and cfg.algo.temperature != "point" and float(nu_target) > float(nu_init):
        raise ValueError(
            f"curriculum.nu_target={nu_target} is above curriculum.nu_init={nu_init}: the curriculum moves from hot "
            "to cold temperatures and never back (nu only decreases); set curriculum.nu_target <= curriculum.nu_init"
        )
    horizon, env_steps = cfg.budget.horizon, cfg.env.max_episode_steps
    if env_steps is not None and int(env_steps) != int(horizon):
        raise ValueError(
            f"env.max_episode_steps={env_steps} conflicts with budget.horizon={horizon}: train_qarl truncates "
            "training and evaluation episodes at budget.horizon; set budget.horizon (and leave env.max_episode_steps null)"
        )


def register_configs() -> None:
    """Store the schemas of ``train_qarl`` in Hydra's ConfigStore."""
    from envs.common.config import register_configs as register_common

    register_common()
    cs = ConfigStore.instance()
    cs.store(group="algo", name="base_algo", node=AlgoConfig)
    cs.store(group="budget", name="base_budget", node=BudgetConfig)
    cs.store(name="base_train_qarl", node=TrainQARLConfig)

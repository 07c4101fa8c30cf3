"""Config schemas of ``scripts/eval_robustness.py``, ``report_qarl.py`` and ``calibrate_scales.py`` (ConfigStore)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from envs.common.config import EnvConfig, RunConfig


@dataclass
class BestResponseConfig:
    """The fresh adversary of ``attack=best_response`` (plain SB3 SAC, see :mod:`rl.robustness.best_response`).

    Attributes:
        steps: its training budget (env steps against the frozen protagonist).
        snapshots: smaller budgets saved along the way and evaluated too (how stable is the number?).
        ent_coef: its entropy temperature while training: a number (fixed) or ``auto`` / ``auto_<init>``
            (SB3's learned temperature; default ``auto_0.005``, as the official code's SAC agents; a fixed 0 was
            measured to stop exploring too early, see benchmarks/README.md).
        deterministic: attack with its greedy action (the temperature-0 adversary); ``false``: sampled actions.
        learning_starts: random-action steps before the first update.
        batch_size: SAC batch size.
        learning_rate: actor and critic learning rate.
        net_arch: hidden layers (``null``: 256, 256).
        train_freq: env steps between updates.
        gradient_steps: gradient steps per update.
        seed: the first attacker's seed (it is reused when trained with the same settings before); the k-th of
            ``seeds`` attackers uses ``seed + k``.
        seeds: how many attackers are trained, each with its own seed (the issue-21 protocol: at least 2).
        fixed: also evaluate the fixed strategies (constant +-bound on each adversary entry, bang-bang on the sign
            of the attacked body's velocity, :mod:`rl.robustness.fixed_attacks`); ``return_vs_best_found_attack`` is
            the minimum over every attacker evaluated.
        engine, compile, precision: how its SAC update runs, as ``sac.engine/compile/precision`` of ``train_qarl``.
    """

    steps: int = 20_000
    snapshots: list[int] = field(default_factory=list)
    ent_coef: str = "auto_0.005"
    deterministic: bool = True
    learning_starts: int = 1000
    batch_size: int = 256
    learning_rate: float = 3e-4
    net_arch: list[int] | None = None
    train_freq: int = 1
    gradient_steps: int = 1
    seed: int = 0
    seeds: int = 2
    fixed: bool = True
    engine: str = "fast"
    compile: str = "auto"
    precision: str = "auto"


@dataclass
class EvalRobustnessConfig(RunConfig):
    """``scripts/eval_robustness.py``: robustness of trained runs (specs/qarl.md §8).

    Attributes:
        run: a run directory, a glob, or a folder holding runs (``runs/train_qarl/Hopper__qarl__s0/*``).
        expect_env: if set, the env every run must have been trained on (a mismatch is an error).
        grid_size: cells per axis of the mass x friction grid.
        episodes_per_cell: episodes per grid cell (the paper: 1).
        eval_episodes: episodes of the nominal and adversary evaluations (the paper: 20).
        mass_range: ``[low, high]`` mass factors (``null``: the env spec's range).
        friction_range: ``[low, high]`` friction factors (``null``: the env spec's range).
        horizon: episode truncation (``null``: the run's ``budget.horizon``).
        workers: processes (``null``: all cores).
        mp_context: multiprocessing start method (``fork``, ``forkserver``, ``spawn``).
        out: results folder (``null``: ``<run>/robustness``); with several runs, ``<out>/<run name>``.
        tensorboard: also log the summaries and heatmap to the run's TensorBoard (and an HParams session).
        progress: show the progress bar.
        attack: ``co_trained`` (the run's own adversary, the paper's protocol: the co-trained force adversary at
            temperature 0, MixedNE-LD's action adversary at its ``delta``, CAT's MAS attack at its target budget;
            "n/a" for ``sac``), ``best_response`` (``best_response.seeds`` fresh SAC adversaries trained against the
            frozen protagonist and the fixed strategies, for every method: ``return_vs_best_response`` is the mean
            over the learned seeds, ``return_vs_best_found_attack`` the lowest over every attacker), ``both`` or
            ``none``.
        best_response: settings of those adversaries.
        sweep_size: points of each 1-D sweep of mass and friction (the spec: 11; 0: none).
        sweep_episodes: episodes per sweep point (``null``: ``episodes_per_cell``).
        weights_only: rebuild the players (and best-response adversaries) from each run's config and read only their
            network parameters from the SB3 zips; ``false``: SB3's ``load``, which unpickles objects stored in the
            zips, i.e. runs code from the run folder (README, "Security: loading run folders").
    """

    run: str = "???"
    expect_env: str | None = None
    grid_size: int = 11
    episodes_per_cell: int = 1
    eval_episodes: int = 20
    mass_range: list[float] | None = None
    friction_range: list[float] | None = None
    horizon: int | None = None
    workers: int | None = None
    mp_context: str = "fork"
    out: str | None = None
    tensorboard: bool = True
    progress: bool = True
    attack: str = "co_trained"
    best_response: BestResponseConfig = field(default_factory=BestResponseConfig)
    sweep_size: int = 11
    sweep_episodes: int | None = None
    weights_only: bool = False


@dataclass
class ReportQARLConfig(RunConfig):
    """``scripts/report_qarl.py``: a table per env and method over seeds, learning curves and heatmaps.

    Attributes:
        runs: run folders or globs (folders holding runs are searched).
        out: report folder (``null``: the Hydra run folder, ``runs/report_qarl/<name>/<date>``).
        source: where the three numbers come from: ``robustness`` (the robustness JSON; runs without one are
            skipped with a warning), ``tensorboard`` (the last ``eval/`` scalars; no grid average) or ``auto``
            (the JSON when present, else TensorBoard).
        confidence: the confidence level of the Student-t interval.
        curve_tags: TensorBoard scalars drawn as learning curves (x: protagonist env steps).
        curve_points: points of the common step grid the seeds are interpolated on.
        include_unfinished: also report runs without ``done.json`` (marked unfinished); by default they are
            skipped and listed.
        bootstrap_reps: resamples of the stratified bootstrap (rliable's method, seeded).
        primary_metric: the metric of the probability-of-improvement table and the second performance profile.
        compare_to: the method set against every other method of a table, per metric (difference of means with its
            Welch interval, probability of improvement and a verdict; :mod:`rl.robustness.report.compare`);
            ``null``: no such section. Tables without it are left out of the section.
    """

    runs: list[str] = field(default_factory=lambda: ["runs/train_qarl"])
    out: str | None = None
    source: str = "auto"
    confidence: float = 0.95
    curve_tags: list[str] = field(default_factory=lambda: ["eval/return_nominal", "eval/return_vs_adversary"])
    curve_points: int = 50
    include_unfinished: bool = False
    bootstrap_reps: int = 2000
    primary_metric: str = "grid_average"
    compare_to: str | None = "qarl"


@dataclass
class CalibrateScalesConfig(RunConfig):
    """``scripts/calibrate_scales.py``: measure c and J_rand of a gymnasium env (specs/qarl.md §3.3, evidence 8).

    Attributes:
        env: the env (``env=Hopper``: the ``configs/env/`` group, as for training; only its name is used).
        protagonist_run: a ``train_qarl`` run whose protagonist is used (``null``: train a plain SAC one here).
        protagonist_steps: training budget of that plain SAC protagonist (env steps).
        protagonist_dir: where it is trained and checkpointed (``null``: ``runs/calibration/<env>/protagonist_s<seed>``,
            shared by later calls, which reuse or continue it).
        net_arch: its hidden layers.
        learning_starts: its random-action steps before learning.
        checkpoint_every: env steps between its checkpoints (with the replay buffer).
        horizon: episode truncation (the paper: 500).
        episodes: evaluation episodes for c.
        random_episodes: episodes for J_rand.
        gamma: discount of J_rand.
        rationality: also run the rationality check (adversaries at the means of p0 and mu).
        rationality_steps: each of those adversaries' training budget.
        rationality_reward_scale: the c whose temperatures the check uses (``null``: the c just measured; a number,
            e.g. the value in ``envs/adversarial/specs.py``, checks that value, as spec §3.3 asks when no competent
            protagonist is affordable).
        rationality_net_arch: their hidden layers.
        progress: show progress bars.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    protagonist_run: str | None = None
    protagonist_steps: int = 50_000
    protagonist_dir: str | None = None
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    learning_starts: int = 5000
    checkpoint_every: int = 10_000
    horizon: int = 500
    episodes: int = 20
    random_episodes: int = 20
    gamma: float = 0.99
    rationality: bool = False
    rationality_steps: int = 10_000
    rationality_reward_scale: float | None = None
    rationality_net_arch: list[int] = field(default_factory=lambda: [64, 64])
    progress: bool = False


def register_configs() -> None:
    """Store the schemas of ``eval_robustness``, ``report_qarl`` and ``calibrate_scales`` in Hydra's ConfigStore."""
    from envs.common.config import register_configs as register_common

    register_common()  # the env group's base_env
    cs = ConfigStore.instance()
    cs.store(name="base_eval_robustness", node=EvalRobustnessConfig)
    cs.store(name="base_report_qarl", node=ReportQARLConfig)
    cs.store(name="base_calibrate_scales", node=CalibrateScalesConfig)

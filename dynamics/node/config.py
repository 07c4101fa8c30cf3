"""Hydra schemas of ``scripts/train_node.py`` (``configs/train_node.yaml`` and groups ``task``, ``reg``, ``solver``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from envs.common.config import RunConfig


@dataclass
class TaskConfig:
    """A task and its training budget (``configs/task/<name>.yaml``); fields a task does not use are ignored.

    Attributes:
        name: ``digits``, ``mnist``, ``spiral``, ``latent`` or ``sde``.
        epochs: training epochs (spiral/sde: blocks of ``iters_per_epoch`` iterations).
        batch_size: minibatch size (spiral: segments per batch; sde: paths per batch).
        lr: learning rate.
        optimizer: ``adam``, ``adamax``, ``rmsprop`` or ``sgd`` (with ``momentum``).
        momentum: momentum of ``sgd`` (Flux's ``Momentum(lr, 0.9)`` is torch's SGD with the same lr and momentum).
        inv_decay: gradients are scaled by ``1 / (1 + inv_decay * n)`` at optimizer step ``n = 1, 2, ...`` before the
            optimizer sees them (Flux's ``Optimiser(InvDecay(g), opt)``); 0: off.
        hidden: hidden width of the vector field.
        out_tanh: ``tanh`` on the classification field's output (2021 paper: yes; 2023 paper: no, linear).
        t1: end time of the classification ODE.
        data_dir: folder of the MNIST IDX files (``task=mnist`` only; nothing is downloaded).
        iters_per_epoch: iterations per epoch of the spiral and SDE tasks.
        n_points: points of the spiral ground truth (on [0, 25]).
        segment_len: points per spiral training segment.
        n_series: train series of the latent task (test: a quarter of it).
        n_grid: union time grid of the latent task.
        obs_prob: probability that a latent-task point is observed.
        latent: latent dimension.
        rnn_hidden: GRU width of the latent encoder.
        kl_weight: weight of the KL term of the latent ODE.
        sde_dt: initial step of the adaptive SDE solver (1.0: the whole span; torchsde grows steps by <= 1.4x).
        sde_facmax: largest step growth factor per accepted SDE step (torchsde: 1.4).
        sde_tol: rtol = atol of the adaptive SDE solver (step doubling; the solver group's tolerances are for ODEs).
        sde_eval_paths: paths of the SDE evaluation.
        eval_every: evaluate every this many epochs (and always after the last); timing only after the last.
        timing_repeats: repetitions of the prediction-time measurement (median, after the last epoch).
        max_batches: stop each epoch after this many batches (0: all); for smoke runs.
    """

    name: str = "???"
    epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    inv_decay: float = 0.0
    hidden: int = 100
    out_tanh: bool = True
    t1: float = 1.0
    data_dir: str | None = None
    iters_per_epoch: int = 50
    n_points: int = 1000
    segment_len: int = 10
    n_series: int = 512
    n_grid: int = 50
    obs_prob: float = 0.5
    latent: int = 8
    rnn_hidden: int = 32
    kl_weight: float = 0.01
    sde_dt: float = 1.0
    sde_facmax: float = 1.4
    sde_tol: float = 0.1
    sde_eval_paths: int = 200
    eval_every: int = 1
    timing_repeats: int = 10
    max_batches: int = 0


@dataclass
class RegConfig:
    """A regularizer and its coefficient schedule (``configs/reg/<name>.yaml``).

    Attributes:
        name: ``none``, ``error``, ``stiffness``, ``error_stiff``, ``local_error``, ``local_stiffness``, ``rnode``,
            ``steer``, ``taynode``.
        coef: ``lambda0``.
        coef_final: ``lambda1`` of ``exp_decay``.
        schedule: ``constant`` or ``exp_decay``.
        schedule_unit: ``epoch`` (RegNeuralDE.jl) or ``step`` (LocalRegNeuralDE.jl).
        horizon: decay horizon in ``schedule_unit`` s; ``None``: the number of epochs (or of steps) after the warm-up.
        warmup: ``schedule_unit`` s at the start with the regularizer off (plain vanilla steps, no penalty computed);
            the schedule starts after them. 0: none (the references have none).
        agg: ``mean``, ``sum`` or ``max`` over accepted steps.
        local_mode: ``unbiased``, ``biased`` (both: the initial-step heuristic at t*, as the reference) or
            ``biased_taken`` (ours: the step the solver took from t*) for the local variants.
        local_k1_grad: local variants only: ``false`` (default, LocalRegNeuralDE.jl) takes ``k1 = f(t*, y*)`` of the
            extra step as a constant, so the gradient is not the penalty's; ``true`` computes ``k1`` on the graph: the
            exact gradient of the reported penalty at fixed step size.
        kinetic: RNODE kinetic-energy weight.
        jacobian: RNODE Jacobian-norm weight.
        stiff_weight: stiffness weight inside ``error_stiff``.
        steer_b: STEER half-width in units of the smallest grid spacing.
        taylor_order: TayNODE's derivative order K.
    """

    name: str = "none"
    coef: float = 0.0
    coef_final: float | None = None
    schedule: str = "constant"
    schedule_unit: str = "epoch"
    horizon: int | None = None
    warmup: int = 0
    agg: str = "mean"
    local_mode: str = "unbiased"
    local_k1_grad: bool = False
    kinetic: float = 1.0
    jacobian: float = 1.0
    stiff_weight: float = 0.1
    steer_b: float = 0.5
    taylor_order: int = 3


@dataclass
class SolverConfig:
    """Solver settings (``configs/solver/<name>.yaml``).

    Attributes:
        method: ``dopri5`` or ``bosh3`` (instrumented ``dopri5_reg`` / ``bosh3_reg``).
        rtol: relative tolerance.
        atol: absolute tolerance.
        adjoint: ``odeint_adjoint`` instead of backpropagation through the solver.
        detach_dt: no gradient through step sizes (see ``dynamics.node.solvers``).
    """

    method: str = "dopri5"
    rtol: float = 1e-6
    atol: float = 1e-6
    adjoint: bool = False
    detach_dt: bool = True


@dataclass
class NodeTrainConfig(RunConfig):
    """``scripts/train_node.py``: train a (regularized) neural ODE/SDE on one task.

    Attributes:
        task: the task and its budget.
        reg: the regularizer.
        solver: the solver.
        checkpoint: write ``checkpoints/last.pt`` (atomically) after every epoch.
        progress: show a tqdm progress bar.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    checkpoint: bool = True
    progress: bool = True


def register_configs() -> None:
    """Store the NODE schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(group="task", name="base_task", node=TaskConfig)
    cs.store(group="reg", name="base_reg", node=RegConfig)
    cs.store(group="solver", name="base_solver", node=SolverConfig)
    cs.store(name="base_train_node", node=NodeTrainConfig)

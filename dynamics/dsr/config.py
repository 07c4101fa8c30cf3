"""Hydra schemas of ``scripts/train_gtf.py`` and ``scripts/eval_gtf.py`` (groups ``system``, ``model``, ``forcing``).

Defaults follow the GTF code's ``settings/defaults.json`` (Hess et al. 2023) except where the config files say
otherwise (the short-budget Lorenz-63 settings of ``configs/train_gtf.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from envs.common.config import RunConfig


@dataclass
class SystemConfig:
    """A data set (``configs/system/<name>.yaml``).

    Attributes:
        name: a key of ``dynamics/dsr/systems.json``, or a name of one's own for data of one's own (then with
            ``train_file`` and ``test_file``).
        source: ``file`` (``auto`` is the same: the files, never simulated) or ``simulate`` (the only way to get
            simulated data); the origin used is recorded in the run (``data.json``, checkpoints) and in the metrics.
        data_dir: folder of the data files, relative to the repository root unless absolute; it must exist and hold
            the files. A file named like a shipped benchmark file must have its pinned SHA-256
            (``dynamics.dsr.data.PINNED_SHA256``), else training and evaluation refuse it.
        n_train: training rows (0: all rows of the file; more than the file has is refused).
        n_test: test rows (0: all rows of the file; more than the file has is refused).
        noise_std: observation noise on the training series (units of each dimension's std).
        standardize: z-score with training statistics; null: yes for simulations, no for files.
        parameters: simulator parameter overrides, by name.
        inputs_train: ``.npy`` file (``T_train × K``, in ``data_dir`` unless absolute) of external inputs aligned
            with the training series, or null. Gives the model the term ``C s_t`` (``K`` columns).
        inputs_test: the same for the test series (needed with ``inputs_train``).
        train_file: training series of a system of one's own (``.npy``, ``T × N``, in ``data_dir`` unless absolute);
            null for the catalogued systems, whose files are fixed.
        test_file: its test series (needed with ``train_file``).
    """

    name: str = "???"
    source: str = "file"
    data_dir: str = "../shared/data/dsr"
    n_train: int = 0
    n_test: int = 0
    noise_std: float = 0.0
    standardize: bool | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs_train: str | None = None
    inputs_test: str | None = None
    train_file: str | None = None
    test_file: str | None = None


@dataclass
class ModelConfig:
    """A latent model and its observation model (``configs/model/<name>.yaml``).

    Attributes:
        name: ``plrnn``, ``dendplrnn``, ``clipped_dendplrnn``, ``shplrnn`` or ``clipped_shplrnn``.
        latent_dim: ``M``.
        hidden_dim: ``L`` (shallow PLRNNs).
        n_bases: ``B`` (dendritic PLRNNs).
        observation: ``identity`` or ``affine``.
        obs_bias: ``affine`` with a trainable bias, ``x̂ = Bz + b`` (the reference's ``use_bias``; off by default).
    """

    name: str = "???"
    latent_dim: int = 3
    hidden_dim: int = 50
    n_bases: int = 20
    observation: str = "identity"
    obs_bias: bool = False


@dataclass
class ForcingConfig:
    """Teacher forcing (``configs/forcing/<name>.yaml``).

    Attributes:
        method: ``gtf`` (generalised teacher forcing) or ``stf`` (sparse teacher forcing baseline).
        alpha_method: ``constant`` or an adaptive estimate (``product_upper_bound``, ``arithmetic_mean``...).
        alpha: initial α (adaptive) or the constant α.
        gamma: decay of α toward lower estimates.
        update_every: parameter updates between α estimates (``k``).
        tau: sparse-TF interval.
        partial: force only the observed units (Identity with ``M > N``). Default false, as the reference
            (``settings/defaults.json`` and every paper script): all ``M`` units are interpolated toward ``[x; 0]``.
            No effect with the Affine model.
    """

    method: str = "gtf"
    alpha_method: str = "product_upper_bound"
    alpha: float = 1.0
    gamma: float = 0.999
    update_every: int = 5
    tau: int = 16
    partial: bool = False


@dataclass
class GTFTrainConfig(RunConfig):
    """``scripts/train_gtf.py``.

    Attributes:
        system: data.
        model: latent and observation model.
        forcing: teacher forcing.
        epochs: ``E``; the learning rate decays exponentially from ``lr`` to ``lr_end`` over them.
        batches_per_epoch: parameter updates per epoch.
        batch_size: ``S`` windows per batch.
        seq_len: ``T̃``; windows have ``T̃ + 1`` rows.
        lr: initial RAdam learning rate.
        lr_end: final learning rate.
        lambda_lat: latent regularisation weight.
        lambda_obs: observation regularisation weight.
        lambda_ar: weight of the AR-convergence penalty ``‖relu(A − (1 − 1e-4))‖₂`` (GTF code
            ``AR_convergence_loss``; 0: off).
        mar_ratio: manifold-attractor regularisation: share of units (the last ``⌊ratio·M⌋``) regularised; when
            > 0 it replaces the ``lambda_lat`` penalty, as in the reference.
        mar_lambda: MAR weight ``λ`` of ``‖1−A_r‖₂ + ‖W_r‖₂ + ‖h_r‖₂``.
        grad_clip_norm: clip each parameter's gradient to this norm before the optimiser (the reference's Flux
            ``ClipNorm``, per parameter array; 0: off, the paper's setting).
        teacher_noise: std of fresh Gaussian noise added to every training batch (the teacher signal, the targets
            and ``x_1``; the reference's ``gaussian_noise_level``, absolute units; 0: off).
        fused_backward: use the fused forced-BPTT backward (``False``: eager autograd, the reference).
        dtype: ``float32`` or ``float64``.
        eval_every: epochs between metric evaluations, checkpoints and figures (0: only at the end).
        eval_len: length of the generated series for the monitoring metrics (0: the whole test set).
        keep_best: also keep ``checkpoints/best.pt``, the model with the lowest selection score so far.
        select_len: rows at the end of the TRAINING series that the selection score uses (0: the whole training
            series): ``D_stsp`` of a protocol-style free run (``⌊1.25 T⌋`` steps from the window's first row, the
            first ``⌊0.25 T⌋`` dropped) against that window. The test series is never used for selection.
        select_holdout: hold those ``select_len`` rows out of training (batches are drawn from the rows before
            them), so the selection score, ``select_d_stsp_holdout``, is measured on data the model never trained on;
            it is then computed at every monitoring epoch even with ``keep_best=false`` (to choose hyperparameters
            such as the learning-rate schedule across runs). False: the tail is also trained on (``_train`` keys).
        time_budget_s: stop after this many CPU seconds of this process (0: no limit); the schedule is unchanged.
        progress: show a tqdm bar.
    """

    system: SystemConfig = field(default_factory=SystemConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    forcing: ForcingConfig = field(default_factory=ForcingConfig)
    epochs: int = 5000
    batches_per_epoch: int = 50
    batch_size: int = 16
    seq_len: int = 200
    lr: float = 1e-3
    lr_end: float = 1e-6
    lambda_lat: float = 1e-5
    lambda_obs: float = 0.0
    lambda_ar: float = 0.0
    mar_ratio: float = 0.0
    mar_lambda: float = 0.0
    grad_clip_norm: float = 0.0
    teacher_noise: float = 0.0
    fused_backward: bool = True
    dtype: str = "float32"
    eval_every: int = 25
    eval_len: int = 20_000
    keep_best: bool = True
    select_len: int = 20_000
    select_holdout: bool = False
    time_budget_s: float = 0.0
    progress: bool = True


@dataclass
class GTFEvalConfig(RunConfig):
    """``scripts/eval_gtf.py``: the paper's protocol on one or more run directories.

    Attributes:
        seed: the Monte-Carlo samples of the GMM ``D_stsp`` (``N ≥ 6``; 0 as the earlier tables); nothing else is
            random in the protocol.
        runs: run directories (each with ``config.yaml`` and ``checkpoints/last.pt``).
        checkpoint: ``last`` (default: the paper scores each run's last model), ``best`` (selected on training
            data), ``auto`` (``best.pt`` when the run has one, else ``last.pt``) or a file name inside
            ``checkpoints/``; the table says which file was scored.
        n_test: test rows used (0: all).
        pe_steps: ``n`` of ``PE(n)``.
        n_bins: bins per dimension of ``D_stsp``.
        spectrum_sigma: smoothing of ``D_H`` in frequency bins.
        lyapunov_steps: steps of the Lyapunov estimate (0: skip).
        gmm_precision: ``D_stsp`` from 6 dimensions on: ``float32`` (the reference's float32 densities with
            underflowing samples dropped; use it to compare with the paper) or ``float64`` (exact).
        output: where to write the table (default: the first run's ``eval/`` folder).
    """

    runs: list[str] = field(default_factory=list)
    checkpoint: str = "last"
    n_test: int = 0
    pe_steps: int = 20
    n_bins: int = 30
    spectrum_sigma: float = 20.0
    lyapunov_steps: int = 10_000
    gmm_precision: str = "float32"
    output: str | None = None


def register_configs() -> None:
    """Store the DSR schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(group="system", name="base_system", node=SystemConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="forcing", name="base_forcing", node=ForcingConfig)
    cs.store(name="base_train_gtf", node=GTFTrainConfig)
    cs.store(name="base_eval_gtf", node=GTFEvalConfig)

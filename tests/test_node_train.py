"""Configs (compose), the training loop (coefficient 0 == vanilla bit for bit), bad input, SDE, script smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from dynamics.node.config import register_configs
from dynamics.node.train import train
from envs.common.io import load_state_file

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TINY = ["task.epochs=1", "task.max_batches=3", "task.hidden=16", "task.timing_repeats=1", "progress=false", "device=cpu"]


def make_cfg(overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train_node", overrides=overrides)


@pytest.mark.parametrize(
    "group, options",
    [
        ("task", ["digits", "mnist", "spiral", "latent", "sde"]),
        ("reg", ["none", "error", "stiffness", "error_stiff", "local_error", "local_stiffness", "rnode", "steer", "taynode"]),
        ("solver", ["dopri5", "bosh3", "dopri5_adjoint"]),
        ("preset", ["paper2021", "paper2023"]),
    ],
)
def test_every_config_option_composes(group, options):
    for option in options:
        cfg = make_cfg([f"{group}={option}"])
        if group in ("task", "reg"):
            assert cfg[group].name == option
        elif group == "solver":
            assert cfg.solver.method in ("dopri5", "bosh3")
        assert cfg.script == "train_node"


def test_schema_rejects_typos():
    with pytest.raises(ConfigCompositionException, match="coeff"):
        make_cfg(["reg.coeff=3"])
    with pytest.raises(ConfigCompositionException):
        make_cfg(["task.epochs=many"])


def run(tmp_path, name, overrides):
    cfg = make_cfg([*TINY, *overrides, f"run_dir={tmp_path / name}"])
    metrics = train(cfg)
    return metrics, load_state_file(tmp_path / name / "checkpoints" / "last.pt")


def test_coefficient_zero_trains_exactly_like_vanilla(tmp_path):
    _, vanilla = run(tmp_path, "vanilla", ["task=digits", "reg=none"])
    _, zero = run(tmp_path, "zero", ["task=digits", "reg=error", "reg.coef=0", "reg.schedule=constant"])
    _, on = run(tmp_path, "on", ["task=digits", "reg=error"])
    assert all(torch.equal(vanilla["model"][k], zero["model"][k]) for k in vanilla["model"])
    assert not all(torch.equal(vanilla["model"][k], on["model"][k]) for k in vanilla["model"])


def test_train_writes_metrics_tensorboard_and_checkpoint(tmp_path):
    metrics, ckpt = run(tmp_path, "digits", ["task=digits", "reg=error"])
    assert ckpt["epoch"] == 1 and ckpt["step"] == 3
    assert metrics["test_nfe"] == 2 + 6 * (metrics["test_accepted"] + metrics["test_rejected"])
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["predict_time_s"] > 0
    assert json.loads((tmp_path / "digits" / "metrics.json").read_text())["reg"] == "error"
    assert list((tmp_path / "digits" / "tensorboard").glob("events.*"))
    assert not list((tmp_path / "digits" / "checkpoints").glob(".*tmp*"))


@pytest.mark.parametrize("task, reg", [("spiral", "error"), ("latent", "local_error"), ("latent", "rnode")])
def test_other_tasks_run(tmp_path, task, reg):
    extra = ["task.iters_per_epoch=2", "task.n_series=32", "task.batch_size=16", "task.n_grid=12", "task.n_points=200"]
    metrics, _ = run(tmp_path, f"{task}_{reg}", [f"task={task}", f"reg={reg}", *extra])
    assert metrics["test_nfe"] >= 8 and metrics["train_nfe_forward_mean"] > 0


def test_bad_input_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match=r"adjoint.*no_grad"):
        run(tmp_path, "adj", ["task=digits", "reg=error", "solver=dopri5_adjoint"])
    with pytest.raises(ValueError, match=r"valid choices: \['bosh3', 'dopri5'\]"):
        run(tmp_path, "solver", ["task=digits", "solver.method=tsit5"])
    with pytest.raises(ValueError, match="did you mean 'stiffness'"):
        run(tmp_path, "reg", ["task=digits", "reg.name=stifness"])
    with pytest.raises(ValueError, match="downloads nothing"):
        run(tmp_path, "mnist", ["task=mnist", f"task.data_dir={tmp_path}"])


def test_adjoint_with_local_regularizer_counts_backward_nfe(tmp_path):
    metrics, _ = run(tmp_path, "adj_local", ["task=digits", "reg=local_error", "solver=dopri5_adjoint"])
    assert metrics["test_nfe"] > 0


@pytest.mark.filterwarnings("ignore:Numerical solution is not guaranteed")
def test_sde_error_regularizer_records_graph():
    from dynamics.node.sde import SpiralSDE, sdeint_reg, step_doubling_error
    from dynamics.node.solvers import StepRecorder

    torch.manual_seed(0)
    model = SpiralSDE(hidden=8)
    rec = StepRecorder()
    ys = sdeint_reg(
        model,
        torch.tensor([[2.0, 0.0]]).expand(4, 2),
        torch.linspace(0, 1, 5),
        rec,
        method="euler",
        dt=0.1,
        rtol=0.05,
        atol=0.05,
    )
    assert ys.shape == (5, 4, 2) and rec.accepted > 0
    assert all(r.item() <= 1 for r in rec.error_ratios)
    penalty = torch.stack(rec.errors).sum()
    grads = torch.autograd.grad(penalty, list(model.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)
    assert sum(d.item() for d in rec.dts) == pytest.approx(1.0)  # linear interpolation: no overshoot past ts[-1]
    same = torch.ones(3)
    assert step_doubling_error(same, same, 0.1, 0.1).item() == pytest.approx(1e-7)  # clamp of torchsde


def test_script_smoke_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train_node.py"),
        "task=digits",
        "reg=error",
        *[o for o in TINY if o != "progress=false"],
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    assert (tmp_path / "run" / "config.yaml").exists()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_nfe"] >= 8
    assert "digits/error" in proc.stderr  # the tqdm bar


def _write_idx(path: Path, array) -> None:
    import gzip

    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def test_mnist_loader_reads_local_idx_files(tmp_path):
    import numpy as np

    from dynamics.node.data import load_mnist_split

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28))
    labels = np.array([3, 1, 4, 1, 5])
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    train_set, test_set = load_mnist_split(str(tmp_path))
    assert train_set.x.shape == (5, 784) and test_set.y.tolist() == [3, 1, 4, 1, 5]
    assert torch.allclose(train_set.x[2], torch.as_tensor(images[2].reshape(-1) / 255.0, dtype=torch.float32))


def test_presets_set_the_papers_hyperparameters():
    p21 = make_cfg(["task=mnist", "preset=paper2021"])
    assert (p21.task.optimizer, p21.task.lr, p21.task.momentum, p21.task.inv_decay) == ("sgd", 0.1, 0.9, 1e-5)
    assert (p21.task.batch_size, p21.task.epochs, p21.solver.rtol, p21.solver.atol) == (512, 75, 1.4e-8, 1.4e-8)
    assert (p21.reg.name, p21.reg.coef, p21.reg.coef_final, p21.reg.agg, p21.reg.schedule_unit) == (
        "error",
        100.0,
        10.0,
        "mean",
        "epoch",
    )
    assert p21.task.out_tanh and not p21.solver.adjoint
    p23 = make_cfg(["task=mnist", "preset=paper2023"])
    assert (p23.reg.name, p23.reg.local_mode, p23.reg.coef, p23.reg.coef_final) == ("local_error", "unbiased", 2.5, 1.0)
    assert (p23.reg.schedule_unit, p23.reg.horizon, p23.task.optimizer, p23.task.lr) == ("step", 7500, "adam", 1e-3)
    assert p23.solver.adjoint and not p23.task.out_tanh and p23.solver.rtol == 1.4e-8
    vanilla = make_cfg(["task=mnist", "preset=paper2021", "reg=none"])  # the baseline of the same preset
    assert vanilla.reg.name == "none" and vanilla.task.optimizer == "sgd"


def _write_mnist(folder: Path, n_train: int = 16, n_test: int = 8) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_mnist_paper2021_preset_trains_on_local_idx_files(tmp_path):
    """``task=mnist preset=paper2021`` end to end on tiny synthetic IDX files; InvDecay scales the SGD step."""
    _write_mnist(tmp_path / "idx")
    small = [f"task.data_dir={tmp_path / 'idx'}", "task.batch_size=8", "task.max_batches=1", "task.hidden=8"]
    deltas = {}
    for decay in (0.0, 1.0):
        overrides = ["task=mnist", "preset=paper2021", "reg=none", *small, f"task.inv_decay={decay}", "solver.rtol=1e-5"]
        overrides.append("solver.atol=1e-5")
        cfg = make_cfg([*TINY, *overrides, f"run_dir={tmp_path / str(decay)}"])
        torch.manual_seed(0)
        metrics = train(cfg)
        ckpt = load_state_file(tmp_path / str(decay) / "checkpoints" / "last.pt")
        assert metrics["test_nfe"] >= 8 and ckpt["step"] == 1
        assert "momentum_buffer" in ckpt["optimizer"]["state"][0]  # SGD with momentum
        from dynamics.node.models import ODEClassifier

        torch.manual_seed(0)
        init = ODEClassifier(784, 8, 10).state_dict()  # the same initial weights (seed_everything(0) in train)
        deltas[decay] = ckpt["model"]["head.weight"] - init["head.weight"]
    # one SGD step from a zero momentum buffer: the step is lr * g / (1 + inv_decay * 1)
    torch.testing.assert_close(deltas[1.0], 0.5 * deltas[0.0])
    assert deltas[0.0].abs().sum() > 0


def test_mnist_paper2021_preset_runs_the_regularized_loss(tmp_path):
    _write_mnist(tmp_path / "idx")
    overrides = ["task=mnist", "preset=paper2021", f"task.data_dir={tmp_path / 'idx'}", "task.batch_size=8"]
    overrides += ["task.max_batches=1", "task.hidden=8", "solver.rtol=1e-5", "solver.atol=1e-5"]
    metrics = train(make_cfg([*TINY, *overrides, f"run_dir={tmp_path / 'run'}"]))
    assert metrics["reg"] == "error" and metrics["test_nfe"] >= 8


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["task=sde", "reg=stiffness"], r"task=sde supports reg in \['none', 'error'\]"),
        (["task=sde", "reg=error", "solver=bosh3"], "ignores the solver group"),
        (["task=sde", "solver.rtol=1e-3"], "ignores the solver group"),
        (["task=digits", "reg=stiffness", "solver=bosh3"], "solver=bosh3 does not have"),
        (["task=digits", "reg=error_stiff", "solver=bosh3"], "solver=bosh3 does not have"),
    ],
)
def test_impossible_combinations_refused_at_launch(tmp_path, monkeypatch, overrides, match):
    """Issue 14, point 4: refused before the task (data, SDE moments) is built or a solve is run."""
    import dynamics.node.train as train_module

    def too_late(*args, **kwargs):
        raise AssertionError("the task was built before the refusal")

    monkeypatch.setattr(train_module, "make_task", too_late)
    with pytest.raises(ValueError, match=match):
        train(make_cfg([*TINY, *overrides, f"run_dir={tmp_path / 'r'}"]))
    assert not (tmp_path / "r").exists()


def test_local_stiffness_coefficient_is_comparable_to_the_task_loss():
    """Issue 14, point 3: the configured coefficient times the penalty's gradient is within 0.05-5x the task gradient
    (with the reference's 0.1 it was ~7000x on digits at tol 1e-6)."""
    from torch.nn import functional as F

    from dynamics.node.data import load_digits_split
    from dynamics.node.models import ODEClassifier
    from dynamics.node.regularizers import RegSpec
    from dynamics.node.solve import SolverSettings

    cfg = make_cfg(["reg=local_stiffness"])
    train_set, _ = load_digits_split()
    ratios = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = ODEClassifier(64, cfg.task.hidden, 10)
        settings = SolverSettings(rtol=cfg.solver.rtol, atol=cfg.solver.atol)
        logits, out = model(train_set.x[:128], settings, RegSpec("local_stiffness"), torch.Generator().manual_seed(seed))
        params = list(model.func.parameters())
        g_task = torch.cat([g.reshape(-1) for g in torch.autograd.grad(F.cross_entropy(logits, train_set.y[:128]), params)])
        g_reg = torch.cat([g.reshape(-1) for g in torch.autograd.grad(cfg.reg.coef * out.penalty, params)])
        ratios.append((g_reg.norm() / g_task.norm()).item())
    assert 0.05 < min(ratios) and max(ratios) < 5, ratios


def test_warmup_runs_vanilla_steps_then_the_penalty(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    over = ["task=digits", "reg=error", "reg.schedule_unit=step", "reg.warmup=2", "reg.horizon=10"]
    metrics, _ = run(tmp_path, "warm", over)
    assert metrics["test_nfe"] > 0
    ea = EventAccumulator(str(tmp_path / "warm" / "tensorboard"))
    ea.Reload()
    coef = [e.value for e in ea.Scalars("reg/coef")]
    value = [e.value for e in ea.Scalars("reg/value")]
    assert coef == [0.0, 0.0, 10.0] and value[:2] == [0.0, 0.0] and value[2] > 0
    # the default horizon counts from the end of the warm-up: 10 -> 1 over the 3 - 2 remaining steps
    cfg = make_cfg([*TINY, "task=digits", "reg=error", "reg.schedule_unit=step", "reg.warmup=2"])
    from dynamics.node.train import build_schedule

    schedule = build_schedule(cfg, steps_per_epoch=3)
    assert (schedule.horizon, schedule(2), schedule(3)) == (1, 10.0, pytest.approx(1.0))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["reg=error", "reg.warmup=-1"], "reg.warmup must be >= 0"),
        (["reg=none", "reg.warmup=1", "task.epochs=3"], "reg=none has none"),
        (["reg=error", "reg.warmup=1"], "leaves no regularized training"),
    ],
)
def test_bad_warmup_is_refused_before_the_run_folder_exists(tmp_path, overrides, match):
    cfg = make_cfg([*TINY, "task=digits", *overrides, f"run_dir={tmp_path / 'bad'}"])
    with pytest.raises(ValueError, match=match):
        train(cfg)
    assert not (tmp_path / "bad").exists()


def test_sde_evaluation_splits_the_moment_loss_into_mean_and_variance_parts():
    from dynamics.node.config import TaskConfig
    from dynamics.node.solve import SolverSettings
    from dynamics.node.tasks import make_task

    task = make_task(TaskConfig(name="sde", hidden=8, sde_eval_paths=20), torch.device("cpu"), 0)
    m = task.evaluate(SolverSettings(), torch.Generator().manual_seed(0), timing=False)
    assert m["test_mean_loss"] > 0 and m["test_var_loss"] > 0
    assert m["test_mean_loss"] + m["test_var_loss"] == pytest.approx(m["test_moment_loss"], rel=1e-5)

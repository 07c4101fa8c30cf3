"""GTF: fused backward == autograd, the (1 − α) factor, α rules, sparse TF, training, NaN guard, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dynamics.dsr import train as train_mod
from dynamics.dsr.config import GTFTrainConfig
from dynamics.dsr.forcing import ALPHA_METHODS, AlphaController, estimate_alpha, stf_alpha_sequence
from dynamics.dsr.models import MODEL_NAMES, ShallowPLRNN, make_model
from dynamics.dsr.observation import IdentityObservation
from dynamics.dsr.rollout import forced_rollout, forced_rollout_autograd, free_run
from dynamics.dsr.types import DSRData
from envs.common.io import load_state_file

ROLLOUTS = [forced_rollout, forced_rollout_autograd]


def torch_loops(*args, **kwargs):
    return forced_rollout(*args, backend="torch", **kwargs)  # the CUDA code path, run on the CPU


def f64_model(name: str = "clipped_shplrnn", m: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_model(name, m, hidden_dim=10, n_bases=4).double()


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("schedule", ["gtf", "stf"])
def test_fused_backward_matches_autograd(name: str, schedule: str) -> None:
    model = f64_model(name, 4)
    z1 = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    forcing = torch.randn(4, 20, 4, dtype=torch.float64)
    alpha = torch.full((20,), 0.3, dtype=torch.float64) if schedule == "gtf" else stf_alpha_sequence(5, 20).double()
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    weight = torch.randn(4, 20, 4, dtype=torch.float64)
    grads = []
    for rollout in [forced_rollout_autograd, forced_rollout, torch_loops]:
        pred = rollout(model, z1, forcing, alpha, mask)
        grads.append(torch.autograd.grad((pred * weight).sum(), [z1, *model.parameters()]))
    for ref, fused, fused_torch in zip(*grads, strict=True):
        assert torch.allclose(fused, ref, rtol=1e-12, atol=1e-12 * ref.abs().max().item())
        assert torch.allclose(fused_torch, ref, rtol=1e-12, atol=1e-12 * ref.abs().max().item())


@pytest.mark.parametrize("rollout", ROLLOUTS)
def test_gradient_factor_one_minus_alpha_per_step(rollout) -> None:
    alpha, k = 0.3, 5
    model = f64_model()
    z1 = torch.randn(1, 3, dtype=torch.float64)
    forcing = torch.randn(1, k + 1, 3, dtype=torch.float64)
    a, mask = torch.full((k + 1,), alpha, dtype=torch.float64), torch.ones(3, dtype=torch.float64)

    def last(z: torch.Tensor) -> torch.Tensor:
        return rollout(model, z.unsqueeze(0), forcing, a, mask)[0, k]

    jac = torch.autograd.functional.jacobian(last, z1[0])
    pred = forced_rollout_autograd(model, z1, forcing, a, mask).detach()[0]
    forced = (1 - alpha) * pred + alpha * forcing[0]
    expected = model.jacobian(z1[0]).detach()
    for i in range(k):  # dz_k/dz_0 = prod (1 - alpha) J(z~_i), times dz_0/dz1 = J(z1)
        expected = (1 - alpha) * model.jacobian(forced[i]).detach() @ expected
    assert torch.allclose(jac, expected, atol=1e-12)


def test_alpha_one_is_one_step_teacher_forcing_and_alpha_zero_is_free_run() -> None:
    model = f64_model()
    x = torch.randn(2, 11, 3, dtype=torch.float64)
    mask = torch.ones(3, dtype=torch.float64)
    z1 = x[:, 0].clone().requires_grad_(True)
    pred = forced_rollout(model, z1, x[:, 1:], torch.ones(10, dtype=torch.float64), mask)
    assert torch.allclose(pred, model(x[:, :-1]).detach(), atol=1e-12)
    (g,) = torch.autograd.grad(pred[:, 5].sum(), z1)
    assert torch.all(g == 0)  # gradient is cut after one step
    free = forced_rollout(model, x[:, 0], x[:, 1:], torch.zeros(10, dtype=torch.float64), mask)
    assert torch.allclose(free, free_run(model, x[:, 0], 11)[:, 1:], atol=1e-12)


def test_perturbing_forcing_at_step_k_leaves_prediction_k_unchanged() -> None:
    model = f64_model()
    z1, forcing = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 8, 3, dtype=torch.float64)
    a, mask = torch.full((8,), 0.4, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    base = forced_rollout(model, z1, forcing, a, mask)
    bumped = forcing.clone()
    bumped[:, 4] += 1.0
    moved = forced_rollout(model, z1, bumped, a, mask)
    assert torch.equal(base[:, :5], moved[:, :5]) and not torch.allclose(base[:, 5], moved[:, 5])


@pytest.mark.parametrize("method", ALPHA_METHODS[1:])
@pytest.mark.parametrize(("a", "expected"), [(2.0, 0.5), (0.5, 0.0)])
def test_alpha_estimate_on_linear_model(method: str, a: float, expected: float) -> None:
    model = ShallowPLRNN(3, 8).double()
    with torch.no_grad():
        model.W1.zero_()
        model.A.fill_(a)
    states = torch.randn(4, 10, 3, dtype=torch.float64)
    assert estimate_alpha(model, states, method) == pytest.approx(expected, abs=1e-12)


def test_alpha_update_rule() -> None:
    ctrl = AlphaController("product_upper_bound", alpha0=1.0, gamma=0.999, update_every=5)
    assert ctrl.combine(0.2) == pytest.approx(0.999 + 0.001 * 0.2)
    ctrl.alpha = 0.1
    assert ctrl.combine(0.6) == 0.6
    model = ShallowPLRNN(3, 8).double()
    with torch.no_grad():
        model.W1.zero_()
        model.A.fill_(2.0)
    ctrl = AlphaController("batch_maximum", alpha0=0.1, update_every=5)
    states = torch.randn(2, 5, 3, dtype=torch.float64)
    assert ctrl.update(3, model, states) == 0.1  # not an update step
    assert ctrl.update(5, model, states) == pytest.approx(0.5)
    assert AlphaController("constant", alpha0=0.3).update(0, model, states) == 0.3
    with pytest.raises(ValueError, match="did you mean"):
        AlphaController("product_upper_bund")


def test_paper_lr_schedule_midpoint() -> None:
    gamma = train_mod.lr_decay(1e-3, 1e-6, 5000)
    assert 1e-3 * gamma**2500 == pytest.approx(3.162e-5, rel=1e-3)
    assert 1e-3 * gamma**5000 == pytest.approx(1e-6, rel=1e-9)


def test_stf_sequence_forces_every_tau_steps() -> None:
    seq = stf_alpha_sequence(4, 12)
    assert seq.tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]  # t = k + 2 with (t - 1) mod 4 == 0


def tiny_cfg(tmp_path, **overrides):
    cfg = OmegaConf.structured(GTFTrainConfig)
    cfg.merge_with(
        {
            "script": "train_gtf",
            "name": "test",
            "run_dir": str(tmp_path / "run"),
            "system": {"name": "lorenz63", "source": "simulate", "n_train": 3000, "n_test": 1200},
            "model": {"name": "clipped_shplrnn", "latent_dim": 3, "hidden_dim": 16},
            "forcing": {"alpha_method": "constant", "alpha": 0.2},
            "epochs": 3,
            "batches_per_epoch": 4,
            "batch_size": 8,
            "seq_len": 30,
            "lr": 5e-3,
            "eval_every": 1,
            "eval_len": 1000,
            "progress": False,
            "device": "cpu",
        }
    )
    cfg.merge_with(overrides)
    return cfg


@pytest.fixture(scope="module")
def lorenz_data() -> DSRData:
    from dynamics.dsr.data import load_system

    return load_system("lorenz63", source="simulate", n_train=3000, n_test=1200)


def test_tiny_training_lowers_loss(lorenz_data: DSRData) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model, obs = make_model("clipped_shplrnn", 3, hidden_dim=32), IdentityObservation(3, 3)
    train_t = torch.as_tensor(lorenz_data.train, dtype=torch.float32)
    alpha, mask = torch.full((30,), 0.2), torch.ones(3)
    probe = train_mod.sample_batch(train_t, obs, 64, 30, np.random.default_rng(99))
    before = train_mod.gtf_loss(model, obs, probe, alpha, mask).item()
    opt = torch.optim.RAdam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = train_mod.gtf_loss(model, obs, train_mod.sample_batch(train_t, obs, 16, 30, rng), alpha, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = train_mod.gtf_loss(model, obs, probe, alpha, mask).item()
    assert after < 0.8 * before


def test_train_writes_checkpoint_and_logs(tmp_path) -> None:
    result = train_mod.train(tiny_cfg(tmp_path, forcing={"alpha_method": "product_upper_bound", "alpha": 1.0}))
    assert result["epoch"] == 3 and result["nan"] == 0.0 and np.isfinite(result["d_stsp"])
    state = load_state_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["epoch"] == 3 and 0.0 <= state["alpha"] < 1.0
    assert set(state["data_mean"].shape) == {3}  # standardisation recorded


def test_nan_guard_message_does_not_promise_a_missing_checkpoint(tmp_path, monkeypatch, capsys) -> None:
    real, calls = train_mod.gtf_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(train_mod, "gtf_loss", poisoned)
    result = train_mod.train(tiny_cfg(tmp_path, eval_every=0))  # no checkpoint before the NaN in epoch 1
    out = capsys.readouterr().out
    assert result["nan"] == 1.0 and "no checkpoint was written" in out and "kept" not in out
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch) -> None:
    real, calls = train_mod.gtf_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(train_mod, "gtf_loss", poisoned)
    result = train_mod.train(tiny_cfg(tmp_path, forcing={"method": "stf", "tau": 5}))
    assert result["nan"] == 1.0
    state = load_state_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_bad_input_is_refused(tmp_path, lorenz_data: DSRData, monkeypatch) -> None:
    with pytest.raises(ValueError, match="latent_dim >= obs_dim"):
        train_mod.train(tiny_cfg(tmp_path, model={"latent_dim": 2}))
    with pytest.raises(ValueError, match="fewer than one training window"):
        train_mod.train(tiny_cfg(tmp_path, seq_len=5000))
    bad = lorenz_data._replace(train=np.where(np.arange(3000)[:, None] == 7, np.nan, lorenz_data.train))
    monkeypatch.setattr(train_mod, "load_data", lambda cfg: bad)
    with pytest.raises(ValueError, match="NaN"):
        train_mod.train(tiny_cfg(tmp_path))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        train_mod.check_config(tiny_cfg(tmp_path, forcing={"alpha": 1.5}), lorenz_data)


@pytest.mark.gpu
def test_fused_backward_matches_autograd_on_cuda() -> None:
    model = f64_model().cuda()
    z1 = torch.randn(4, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    forcing = torch.randn(4, 15, 3, dtype=torch.float64, device="cuda")
    a, mask = torch.full((15,), 0.3, dtype=torch.float64, device="cuda"), torch.ones(3, dtype=torch.float64, device="cuda")
    grads = [torch.autograd.grad(r(model, z1, forcing, a, mask).square().sum(), [z1, *model.parameters()]) for r in ROLLOUTS]
    for fused, ref in zip(*grads, strict=True):
        assert torch.allclose(fused, ref, rtol=1e-10, atol=1e-12)


def test_best_checkpoint_is_selected_on_training_data_only(tmp_path, lorenz_data: DSRData, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    from dynamics.dsr.evaluate import evaluate_runs

    monkeypatch.setattr(train_mod, "_figures", lambda *a: (plt.figure(), plt.figure()))  # rendering is not tested here
    real = train_mod.selection_score
    scripted = [2.0, 1.0, 3.0]  # the returned scores, so epoch 2 must win; the real ones are recorded

    def run(name: str, data: DSRData) -> tuple[dict, dict, list[float]]:
        monkeypatch.setattr(train_mod, "load_data", lambda cfg: data)
        seen: list[float] = []

        def spy(model, obs_model, train, select_len, inputs=None):
            assert train is data.train  # the selection only ever sees the training series
            seen.append(real(model, obs_model, train, select_len, inputs))
            return scripted[len(seen) - 1]

        monkeypatch.setattr(train_mod, "selection_score", spy)
        result = train_mod.train(tiny_cfg(tmp_path / name, eval_len=300, select_len=600))
        best = load_state_file(tmp_path / name / "run" / "checkpoints" / "best.pt")
        return result, best, seen

    result, best, seen = run("a", lorenz_data)
    last = load_state_file(tmp_path / "a" / "run" / "checkpoints" / "last.pt")
    assert len(seen) == 3 and all(np.isfinite(seen))
    assert best["epoch"] == result["best_epoch"] == 2 and best["select_d_stsp_train"] == 1.0 and last["epoch"] == 3
    assert result["best_select_d_stsp_train"] == 1.0 and result["select_d_stsp_train"] == 3.0
    assert not all(torch.equal(best["model"][k], last["model"][k]) for k in best["model"])
    # another test series changes the logged test metrics but neither the real selection scores nor the best model
    other = lorenz_data._replace(test=np.random.default_rng(5).standard_normal(lorenz_data.test.shape))
    result_b, best_b, seen_b = run("b", other)
    assert seen_b == seen and best_b["epoch"] == 2 and result_b["d_h"] != result["d_h"]
    assert all(torch.equal(best["model"][k], best_b["model"][k]) for k in best["model"])

    monkeypatch.setattr(train_mod, "load_data", lambda cfg: lorenz_data)
    run_dir = tmp_path / "a" / "run"
    eval_cfg = OmegaConf.create({"runs": [str(run_dir)], "device": "cpu", "n_test": 300, "pe_steps": 5, "n_bins": 30})
    eval_cfg.merge_with({"spectrum_sigma": 20.0, "lyapunov_steps": 0, "output": str(tmp_path / "eval")})
    eval_cfg.gmm_precision = "float32"
    picked = {}
    for choice in ["auto", "best", "last"]:
        eval_cfg.checkpoint = choice
        (row,) = evaluate_runs(eval_cfg)
        picked[choice] = (row["checkpoint"], row["epoch"], row["pe"])
        assert f"| {row['checkpoint']} ({row['epoch']}) |" in (tmp_path / "eval" / "metrics.md").read_text()
    assert picked["auto"] == picked["best"] and picked["best"][:2] == ("best.pt", 2)
    assert picked["last"][:2] == ("last.pt", 3) and picked["last"][2] != picked["best"][2]
    (run_dir / "checkpoints" / "best.pt").unlink()  # a run without best.pt (keep_best=false, or older runs)
    eval_cfg.checkpoint = "auto"
    assert evaluate_runs(eval_cfg)[0]["checkpoint"] == "last.pt"


def test_selection_score_of_a_collapsed_model_is_large(lorenz_data: DSRData) -> None:
    from dynamics.dsr.models import make_model as mk

    collapsed = mk("clipped_shplrnn", 3, hidden_dim=8)
    with torch.no_grad():
        for p in collapsed.parameters():
            p.zero_()  # z_{t+1} = 0: a fixed point, the collapsed-orbit failure mode
    obs = IdentityObservation(3, 3)
    bad = train_mod.selection_score(collapsed, obs, lorenz_data.train, 1000)
    assert bad > 5.0  # a point mass against the attractor scores near the metric's maximum


def test_explog_approx_is_the_matrix_geometric_mean() -> None:
    from scipy.linalg import expm, logm

    from dynamics.dsr.forcing import jacobian_norm_kappa

    torch.manual_seed(3)
    model = ShallowPLRNN(3, 12).double()
    with torch.no_grad():
        model.W1.mul_(4.0)
    states = torch.randn(3, 6, 3, dtype=torch.float64)
    jac = model.jacobian(states).detach().numpy()
    expected = max(
        np.linalg.norm(expm(np.mean([logm(j) for j in jac[p]], axis=0)), 2) for p in range(3)
    )  # Julia: opnorm(geomean(Js)) = ‖exp(mean(log, Js))‖ with matrix log/exp
    with np.errstate(divide="ignore"):
        elementwise = max(np.linalg.norm(np.exp(np.log(np.abs(jac[p])).mean(0)), 2) for p in range(3))
    got = float(jacobian_norm_kappa(model, states, "explog_approx"))
    assert got == pytest.approx(expected, rel=1e-8)
    assert abs(got - elementwise) > 1e-3 * expected  # not the old elementwise mean


def test_external_inputs_fused_backward_matches_autograd_and_drive_generation() -> None:
    torch.manual_seed(0)
    model = make_model("clipped_shplrnn", 4, hidden_dim=10, n_inputs=2).double()
    z1 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    forcing, inputs = torch.randn(3, 12, 4, dtype=torch.float64), torch.randn(3, 12, 2, dtype=torch.float64)
    alpha, mask = torch.full((12,), 0.3, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    weight = torch.randn(3, 12, 4, dtype=torch.float64)
    grads = []
    for fn in (forced_rollout_autograd, forced_rollout, torch_loops):
        pred = fn(model, z1, forcing, alpha, mask, inputs=inputs)
        grads.append(torch.autograd.grad((pred * weight).sum(), [z1, *model.parameters()]))
    assert len(grads[0]) == 7 and grads[0][-1].abs().sum() > 0  # A, W1, W2, h1, h2, C: C gets a gradient
    for ref, fused, fused_torch in zip(*grads, strict=True):
        assert torch.allclose(fused, ref, rtol=1e-12, atol=1e-12 * ref.abs().max().item())
        assert torch.allclose(fused_torch, ref, rtol=1e-12, atol=1e-12 * ref.abs().max().item())
    # free run: z_{k+1} = F(z_k) + C s_{k+1}; alpha = 0 rollout equals it
    s = torch.randn(13, 2, dtype=torch.float64)
    run = free_run(model, z1[0].detach(), 13, s)
    assert torch.allclose(run[5], model(run[4]) + s[5] @ model.C.T, atol=1e-12)
    free = forced_rollout(model, z1[:1].detach(), forcing[:1], torch.zeros(12, dtype=torch.float64), mask, inputs=s[None, 1:])
    assert torch.allclose(free[0], run[1:], atol=1e-12)
    with pytest.raises(ValueError, match="n_inputs=2"):
        model(z1, torch.randn(3, 5, dtype=torch.float64))


def test_training_with_external_inputs_runs_and_scores(tmp_path, lorenz_data: DSRData, monkeypatch) -> None:
    from dynamics.dsr.evaluate import evaluate_runs

    rng = np.random.default_rng(0)
    data = lorenz_data._replace(inputs_train=rng.standard_normal((3000, 2)), inputs_test=rng.standard_normal((1200, 2)))
    monkeypatch.setattr(train_mod, "load_data", lambda cfg: data)
    result = train_mod.train(tiny_cfg(tmp_path, epochs=1, keep_best=False))
    assert np.isfinite(result["d_stsp"]) and np.isfinite(result["pe20"])
    model, _, _, _ = train_mod.load_run(tmp_path / "run")
    assert model.C is not None and model.C.shape == (3, 2)
    cfg = OmegaConf.create({"runs": [str(tmp_path / "run")], "device": "cpu", "n_test": 300, "pe_steps": 5, "n_bins": 30})
    cfg.merge_with({"spectrum_sigma": 20.0, "lyapunov_steps": 0, "output": str(tmp_path / "eval")})
    cfg.merge_with({"checkpoint": "last", "gmm_precision": "float32"})
    (row,) = evaluate_runs(cfg)
    assert np.isfinite(row["d_h"]) and row["test_rows"] == 300


def test_teacher_noise_is_fresh_per_batch_and_feeds_the_forcing() -> None:
    obs = IdentityObservation(3, 3)
    train_t = torch.zeros(100, 3)
    rng = np.random.default_rng(0)
    a = train_mod.sample_batch(train_t, obs, 4, 10, rng, noise_std=0.5)
    b = train_mod.sample_batch(train_t, obs, 4, 10, rng, noise_std=0.5)
    assert a.obs.std().item() == pytest.approx(0.5, rel=0.2) and not torch.equal(a.obs, b.obs)
    assert torch.equal(a.forcing, a.obs[:, 1:])  # forcing signals come from the noisy windows
    assert torch.equal(train_mod.sample_batch(train_t, obs, 4, 10, rng).obs, torch.zeros(4, 11, 3))


def test_gradient_clipping_is_per_parameter() -> None:
    p1, p2 = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    p1.grad, p2.grad = torch.tensor([3.0, 4.0, 0.0]), torch.tensor([0.3, 0.4])
    train_mod.clip_grad_norms([p1, p2], 1.0)
    assert torch.allclose(p1.grad, torch.tensor([0.6, 0.8, 0.0])) and torch.allclose(p2.grad, torch.tensor([0.3, 0.4]))


def test_mar_and_ar_convergence_penalties() -> None:
    model = make_model("plrnn", 4).double()
    with torch.no_grad():
        model.A.copy_(torch.tensor([0.5, 0.9, 1.2, 1.0]))
        model.h.copy_(torch.tensor([0.0, 0.0, 3.0, 4.0]))
    w = model._w()[2:]
    expected = torch.tensor([-0.2, 0.0]).norm() + w.norm() + 5.0
    assert model.mar_penalty(0.5).item() == pytest.approx(expected.item())  # last floor(0.5*4) = 2 units
    assert model.ar_convergence_penalty().item() == pytest.approx(torch.tensor([0.2001, 1e-4]).norm().item(), rel=1e-6)
    cfg = OmegaConf.create({"mar_ratio": 0.5, "mar_lambda": 2.0, "lambda_lat": 1.0, "lambda_obs": 0.0, "lambda_ar": 0.0})
    obs = IdentityObservation(4, 4)
    assert train_mod.regularization(model, obs, cfg).item() == pytest.approx(2.0 * expected.item())  # MAR replaces lat
    cfg.mar_ratio, cfg.lambda_ar = 0.0, 3.0
    want = model.regularization() + 3.0 * model.ar_convergence_penalty()
    assert train_mod.regularization(model, obs, cfg).item() == pytest.approx(want.item())


def test_training_options_run(tmp_path) -> None:
    result = train_mod.train(
        tiny_cfg(tmp_path, epochs=1, grad_clip_norm=1.0, teacher_noise=0.05, mar_ratio=0.5, mar_lambda=1e-3, lambda_ar=1e-2)
    )
    assert result["nan"] == 0.0 and np.isfinite(result["loss"])
    with pytest.raises(ValueError, match="teacher_noise must be >= 0"):
        train_mod.train(tiny_cfg(tmp_path, teacher_noise=-1.0))


def test_evaluation_refuses_other_data_than_the_run_recorded(tmp_path, lorenz_data: DSRData, monkeypatch) -> None:
    from dynamics.dsr.data import array_digest

    prov = {"source": "simulate", "train_sha256": array_digest(lorenz_data.train), "inputs_sha256": [None, None]}
    prov["test_sha256"] = array_digest(lorenz_data.test)
    data = lorenz_data._replace(provenance=prov)
    monkeypatch.setattr(train_mod, "load_data", lambda cfg: data)
    train_mod.train(tiny_cfg(tmp_path, epochs=1, keep_best=False))
    assert json.loads((tmp_path / "run" / "data.json").read_text()) == prov
    assert train_mod.load_run(tmp_path / "run")[3]["data_provenance"] == prov
    other = lorenz_data._replace(test=lorenz_data.test[::-1].copy())
    other = other._replace(provenance={**prov, "test_sha256": array_digest(other.test)})
    monkeypatch.setattr(train_mod, "load_data", lambda cfg: other)
    with pytest.raises(ValueError, match="differ from the run's recorded data"):
        train_mod.load_run(tmp_path / "run")

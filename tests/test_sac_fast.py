"""The fast SAC update (issue 22): explicit gradients against autograd, the fast path against SB3's update, logging
without host syncs, the save format, and how ``sac.engine/compile/precision`` resolve."""

from unittest import mock

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBufferSamples
from stable_baselines3.common.logger import configure

from rl.qarl import fast_kernels as fk
from rl.qarl import fast_update
from rl.qarl.baselines.mixedne import MixedNESAC
from rl.qarl.fast_sac import FastSAC
from rl.qarl.fast_update import Batch
from rl.qarl.sac import QARLSAC, LossNotFiniteError, PerSampleTemperatureSAC
from rl.qarl.update_mode import RunEstimate, resolve_update_mode, update_flops
from tests.test_qarl_sac import TinyEnv

B, A = 16, 2


def make(cls=QARLSAC, update="fast", arch=(32, 32), device="cpu", **kw):
    th.manual_seed(0)
    model = cls(
        "MlpPolicy", TinyEnv(), policy_kwargs={"net_arch": list(arch)}, learning_starts=0, batch_size=B, seed=0,
        sac_engine=update, device=device, **kw,
    )  # fmt: skip
    model.set_logger(configure(None, [""]))
    return model


def batches(n, seed=1):
    g = th.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        obs, nxt = th.rand(B, 4, generator=g) * 2 - 1, th.rand(B, 4, generator=g) * 2 - 1
        obs[:, -1], nxt[:, -1] = th.rand(B, generator=g) * 0.2 + 0.01, th.rand(B, generator=g) * 0.2 + 0.01
        actions = th.rand(B, A, generator=g) * 2 - 1
        dones, rewards = (th.rand(B, 1, generator=g) < 0.2).float(), th.randn(B, 1, generator=g)
        out.append(ReplayBufferSamples(obs, actions, nxt, dones, rewards, None))
    return out


def run_fixed(model, data, noises, updates=10):
    """``updates`` gradient steps on fixed batches and fixed Gaussian noise, for both paths alike."""
    data = [ReplayBufferSamples(*(t.to(model.device) if t is not None else None for t in d)) for d in data]
    noises = [tuple(n.to(model.device) for n in ns) for ns in noises]
    model.replay_buffer.pos = 100  # above actor_learning_starts: the actor and the temperature update too
    state = {"i": -1, "j": 0}

    def sample(*args, **kwargs):
        state["i"], state["j"] = state["i"] + 1, 0
        return data[state["i"]]

    def rsample(self, sample_shape=()):  # the reference path's draws, in SB3's order
        state["j"] += 1
        return self.loc + noises[state["i"]][state["j"] - 1] * self.scale

    def fast_sample(batch_size):
        d = sample()
        return Batch(d.observations, d.actions, d.next_observations, d.dones, d.rewards)

    th.manual_seed(5)  # SGLD's own noise
    with mock.patch.object(th.distributions.Normal, "rsample", rsample):
        with mock.patch.object(FastSAC, "noise", lambda self, *shape: th.stack(noises[state["i"]][: shape[0]])):
            if model._fast is not None:
                model._fast.sampler.sample = fast_sample
            else:
                model.replay_buffer.sample = sample
            model.train(updates, B)
    model.flush_training_stats()
    return model


# ---------------------------------------------------------------------------- explicit gradients == autograd
@pytest.mark.parametrize("clamped", [False, True])
def test_actor_forward_and_grads_match_sb3_and_autograd(clamped):
    model = make(arch=(32, 16))
    actor = model.actor
    params = list(actor.parameters())
    g = th.Generator().manual_seed(3)
    obs, eps = th.randn(B, 4, generator=g), th.randn(B, A, generator=g)
    if clamped:  # push the first log-std below SB3's clamp (-20): its gradient must vanish there
        with th.no_grad():
            params[-1].add_(th.tensor([-40.0, 0.0]))
    with mock.patch.object(th.distributions.Normal, "rsample", lambda self, shape=(): self.loc + eps * self.scale):
        sb3_actions, sb3_log_prob = actor.action_log_prob(obs)
    actions, log_prob, saved = fk.actor_forward([p.detach() for p in params], obs, eps, False)
    th.testing.assert_close(actions, sb3_actions, rtol=1e-5, atol=1e-6)
    if not clamped:  # (at std = e^-20 SB3's mean + eps std - mean rounds to 0 and drops -eps^2/2: a constant)
        th.testing.assert_close(log_prob, sb3_log_prob.reshape(-1, 1), rtol=1e-5, atol=1e-5)
    w_a, w_lp = th.randn(B, A, generator=g), th.randn(B, 1, generator=g)
    expected = th.autograd.grad((w_a * sb3_actions).sum() + (w_lp * sb3_log_prob.reshape(-1, 1)).sum(), params)
    got = fk.actor_grads([p.detach() for p in params], saved, w_a, w_lp, False)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        th.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    if clamped:
        assert th.all(got[-2][0] == 0) and got[-1][0] == 0


def test_critic_grads_match_autograd():
    model = make(arch=(32, 16))
    critic = model._fast.critic
    module_params = list(model.critic.parameters())
    g = th.Generator().manual_seed(4)
    obs, actions, target = th.randn(B, 4, generator=g), th.rand(B, A, generator=g) * 2 - 1, th.randn(B, 1, generator=g)
    qs = model.critic(obs, actions)
    loss = 0.5 * sum(th.nn.functional.mse_loss(q, target) for q in qs)
    expected = th.autograd.grad(loss, module_params)
    got_loss, got = fk.critic_loss_grads(critic.weights, critic.biases, obs, actions, target, False)
    th.testing.assert_close(got_loss, loss, rtol=1e-5, atol=1e-6)
    views = [got[i][k] for i, k in critic.grad_plan(module_params)]
    for a, b in zip(views, expected, strict=True):
        th.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # the actor's side: min_j Q_j and its gradient in the action (the minimal critic's, like th.min)
    a_pi = actions.clone().requires_grad_(True)
    min_q = th.min(th.cat(model.critic(obs, a_pi), dim=1), dim=1, keepdim=True)[0]
    (expected_a,) = th.autograd.grad(min_q.sum(), a_pi)
    got_min, got_a = fk.min_q_action_grad([w.detach() for w in critic.weights], critic.biases, obs, actions, False)
    th.testing.assert_close(got_min, min_q.detach(), rtol=1e-5, atol=1e-6)
    th.testing.assert_close(got_a, expected_a, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- the fast path == SB3's update
CASES = {
    "learned": (QARLSAC, {"ent_coef": "auto_0.005", "actor_lr": 1e-3, "critic_lr": 3e-3}),
    "fixed": (QARLSAC, {"ent_coef": 0.1}),
    "per_sample": (PerSampleTemperatureSAC, {}),
    "mixedne": (MixedNESAC, {"ent_coef": "auto_0.005"}),
    "mixedne_official": (MixedNESAC, {"ent_coef": "auto_0.005", "target": "official"}),  # issue 28's switch
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_matches_reference_update(case, device="cpu"):
    """Same batches and noise: after 10 updates the networks agree to far below one optimiser step (lr 1e-3..3e-4)."""
    cls, kw = CASES[case]
    data, g = batches(10), th.Generator().manual_seed(2)
    noises = [tuple(th.randn(B, A, generator=g) for _ in range(5)) for _ in range(10)]
    reference = run_fixed(make(cls, "reference", device=device, **kw), data, noises)
    fast = run_fixed(make(cls, "fast", device=device, **kw), data, noises)
    assert fast._fast is not None and reference._fast is None
    modules = ["policy"] + (["adversary_actor"] if case.startswith("mixedne") else [])
    for name in modules:
        a, b = getattr(reference, name).state_dict(), getattr(fast, name).state_dict()
        assert list(a) == list(b)
        for key in a:
            th.testing.assert_close(b[key], a[key], rtol=0, atol=3e-5, msg=f"{name}.{key}")
    if reference.log_ent_coef is not None:
        th.testing.assert_close(fast.log_ent_coef, reference.log_ent_coef, rtol=0, atol=1e-6)
    logged_ref, logged_fast = dict(reference.logger.name_to_value), dict(fast.logger.name_to_value)
    assert set(logged_ref) == set(logged_fast)
    for key, value in logged_ref.items():
        assert logged_fast[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # the critic optimiser's state is SB3's layout (per network), fused
    group = fast.critic.optimizer.param_groups[0]
    assert group["fused"] is True and len(fast.critic.optimizer.state) == len(list(fast.critic.parameters()))


def test_stacked_critics_share_storage_with_sb3_modules(tmp_path):
    fast = make()
    keys = list(make(update="reference").policy.state_dict())
    assert list(fast.policy.state_dict()) == keys  # SB3's keys and order
    fast.learn(40)
    stacked = fast._fast.critic
    th.testing.assert_close(stacked.weights[1][1], fast.critic.q_networks[1][2].weight.detach(), rtol=0, atol=0)
    # save with the fast path, load into the reference path and back: same networks, optimisers back to their mode
    fast.save(tmp_path / "fast.zip")
    reference = QARLSAC.load(tmp_path / "fast.zip", env=TinyEnv(), sac_engine="reference")
    assert reference._fast is None and reference.sac_engine == "reference"
    for key, value in fast.policy.state_dict().items():
        assert th.equal(value, reference.policy.state_dict()[key]), key
    reference.learn(5, reset_num_timesteps=False)  # the reference path restores SB3's (unfused) Adam
    assert not reference.critic.optimizer.param_groups[0]["fused"]
    reference.save(tmp_path / "reference.zip")
    again = QARLSAC.load(tmp_path / "reference.zip", env=TinyEnv(), sac_engine="fast")
    for key, value in reference.policy.state_dict().items():
        assert th.equal(value, again.policy.state_dict()[key]), key
    th.testing.assert_close(again._fast.target.weights[0][0], again.critic_target.q_networks[0][0].weight.detach())
    again.learn(5, reset_num_timesteps=False)
    assert again.critic.optimizer.param_groups[0]["fused"] is True


def test_unsupported_policies_are_refused():
    with pytest.raises(ValueError, match="gSDE"):
        make(use_sde=True)
    with pytest.raises(ValueError, match="sac_engine='bogus' is not one of"):
        make(update="bogus")
    with pytest.raises(ValueError, match="need sac_engine=fast"):
        make(update="reference", sac_precision="bf16")


# ---------------------------------------------------------------------------- no host syncs; checks at the log cadence
def test_fast_update_never_reads_tensors_on_the_host(monkeypatch):
    model = make(PerSampleTemperatureSAC)
    model.learn(30)  # fills the buffer; the updates below are the checked ones

    def refuse(*args, **kwargs):
        raise AssertionError("a host read of a tensor during the update")

    for name in ("item", "tolist", "__float__", "__bool__", "numpy"):
        monkeypatch.setattr(th.Tensor, name, refuse)
    model.train(20, B)
    monkeypatch.undo()
    model.flush_training_stats()
    assert model.logger.name_to_value["train/actor_loss"] != 0


def test_non_finite_loss_raises_at_the_logging_cadence(monkeypatch):
    model = make()
    model.learn(30)
    model.flush_training_stats()
    model.replay_buffer.rewards[:] = np.nan
    model.train(3, B)  # no error yet: nothing is read per update
    with pytest.raises(LossNotFiniteError, match=r"not finite: .*train/critic_loss=nan.* the 3 updates before update 33"):
        model.flush_training_stats()
    monkeypatch.setattr(fast_update, "CHECK_EVERY", 2)  # runs that rarely dump are checked every CHECK_EVERY updates
    with pytest.raises(LossNotFiniteError):
        model.train(2, B)


def test_non_positive_replay_temperature_raises():
    model = make(PerSampleTemperatureSAC)
    model.learn(30)
    model.replay_buffer.observations[:, :, -1] = 0.0
    model.train(2, B)
    with pytest.raises(LossNotFiniteError, match="non-positive temperature"):
        model.flush_training_stats()


# ---------------------------------------------------------------------------- sac.engine / compile / precision
TINY = RunEstimate(updates=200, update_seconds=1e-3, agents=2)
LONG = RunEstimate(updates=3_000_000, update_seconds=0.017, agents=2)


def test_precision_auto_is_bf16_only_where_the_parity_table_measured_it(monkeypatch):
    from rl.qarl import update_mode

    cpu, long_run = th.device("cpu"), LONG
    monkeypatch.setattr(update_mode, "compiler_missing", lambda device: None)
    monkeypatch.setattr(update_mode, "bf16_matrix_units", lambda device: "AVX-512 BF16 dot products (avx512_bf16)")
    mode = resolve_update_mode("fast", "auto", "auto", cpu, long_run)  # compiled, bf16 units, measured device type
    assert mode.compile and mode.precision == "bf16" and "learns like eager fp32" in mode.reason
    mode = resolve_update_mode("fast", "auto", "auto", cpu, TINY)  # a short run: eager, so fp32
    assert not mode.compile and mode.precision == "fp32" and "compiled updates only" in mode.reason
    mode = resolve_update_mode("fast", "false", "auto", cpu, long_run)
    assert mode.precision == "fp32"
    monkeypatch.setattr(update_mode, "BF16_PARITY_DEVICES", frozenset({"cuda"}))  # measured elsewhere only
    mode = resolve_update_mode("fast", "true", "auto", cpu, long_run)
    assert mode.precision == "fp32" and "measured bf16 on cuda only" in mode.reason
    monkeypatch.setattr(update_mode, "BF16_PARITY_DEVICES", frozenset({"cpu"}))
    monkeypatch.setattr(update_mode, "bf16_matrix_units", lambda device: None)  # no bf16 units
    mode = resolve_update_mode("fast", "true", "auto", cpu, long_run)
    assert mode.precision == "fp32" and "no bf16 matrix units" in mode.reason
    assert resolve_update_mode("fast", "false", "bf16", cpu, TINY).precision == "bf16"  # asked for: always


def test_compile_auto_weighs_the_compile_time_against_the_run(monkeypatch):
    monkeypatch.setattr("rl.qarl.update_mode.compiler_missing", lambda device: None)
    short = resolve_update_mode("fast", "auto", "fp32", th.device("cpu"), TINY)
    assert not short.compile and "compile=auto -> off" in short.reason
    long = resolve_update_mode("fast", "auto", "fp32", th.device("cpu"), LONG)
    assert long.compile and "compile=auto -> on" in long.reason and "3000000 updates" in long.reason
    monkeypatch.setattr("rl.qarl.update_mode.compiler_missing", lambda device: "no C++ compiler on PATH")
    assert not resolve_update_mode("fast", "auto", "fp32", th.device("cpu"), LONG).compile
    assert resolve_update_mode("fast", False, "fp32", th.device("cpu"), LONG).compile is False  # YAML's booleans
    with pytest.raises(ValueError, match=r"sac\.compile=true, but no C"):
        resolve_update_mode("fast", True, "fp32", th.device("cpu"), TINY)


def test_bad_update_keys_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"sac.precision='fp16' is not one of \['auto', 'fp32', 'bf16'\]"):
        resolve_update_mode("fast", "auto", "fp16", th.device("cpu"), TINY)
    with pytest.raises(ValueError, match=r"need sac\.engine=fast"):
        resolve_update_mode("reference", "true", "fp32", th.device("cpu"), TINY)
    reference = resolve_update_mode("reference", "auto", "auto", th.device("cpu"), TINY)
    assert (reference.engine, reference.compile, reference.precision) == ("reference", False, "fp32")


def test_update_flops_count_the_paper_networks():
    # 3 x 256, batch 256, walker (24 obs + 1 context, 6 actions): about 1.14 GFLOP per update, where a 256 x 256 x 256
    # product is 2 * 256**3 = 33.6 MFLOP: the update is ~34 such products
    assert update_flops(25, 6, [256, 256, 256], 256) == pytest.approx(34 * 2 * 256**3, rel=0.02)


# ---------------------------------------------------------------------------- compiled == eager (slow: compiles)
@pytest.mark.slow
@pytest.mark.parametrize("case", ["learned", "fixed", "per_sample", "mixedne"])
def test_compiled_fp32_equals_eager_fp32(case, device="cpu"):
    """Losses and parameters after 10 updates on fixed batches agree within 1e-5 (relative)."""
    cls, kw = CASES[case]
    data, g = batches(10, seed=7), th.Generator().manual_seed(8)
    noises = [tuple(th.randn(B, A, generator=g) for _ in range(5)) for _ in range(10)]
    eager = run_fixed(make(cls, "fast", device=device, **kw), data, noises)
    compiled = run_fixed(make(cls, "fast", device=device, sac_compile=True, **kw), data, noises)
    for key, value in eager.policy.state_dict().items():
        th.testing.assert_close(compiled.policy.state_dict()[key], value, rtol=1e-5, atol=1e-7, msg=key)
    for key, value in eager.logger.name_to_value.items():
        assert compiled.logger.name_to_value[key] == pytest.approx(value, rel=1e-5), key
    again = run_fixed(make(cls, "fast", device=device, sac_compile=True, **kw), data, noises)  # deterministic: resumable
    for key, value in compiled.policy.state_dict().items():
        assert th.equal(again.policy.state_dict()[key], value), key


def test_resume_keeps_the_runs_update_mode_and_notes_a_change(tmp_path, capsys):
    from omegaconf import OmegaConf, open_dict

    from rl.qarl.setup import merge_resume_config
    from tests.qarl_helpers import tiny_cfg

    given = tiny_cfg(tmp_path)
    assert given.sac.engine == "fast" and given.sac.compile == "auto" and given.sac.precision == "auto"
    old_run = OmegaConf.create(OmegaConf.to_container(given))
    with open_dict(old_run):
        del old_run.sac["engine"], old_run.sac["compile"], old_run.sac["precision"]  # saved before issue 22
    assert merge_resume_config(old_run, given, changed=set()).sac.engine == "reference"  # it was trained so
    assert "changes on resume" not in capsys.readouterr().out
    merged = merge_resume_config(old_run, given, changed={"sac.engine"})
    assert merged.sac.engine == "fast"
    assert "sac.engine 'reference' -> 'fast'" in capsys.readouterr().out
    with open_dict(given):
        given.sac.precision = "fp16"
    with pytest.raises(ValueError, match="is not one of"):
        from rl.qarl.config import validate_train_config

        validate_train_config(given)


# ---------------------------------------------------------------------------- CUDA (skipped without a GPU)
@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_cuda_fast_path_matches_reference_update(case):
    test_fast_path_matches_reference_update(case, device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["learned", "per_sample"])
def test_cuda_graphs_equal_eager_cuda(case):
    test_compiled_fp32_equals_eager_fp32(case, device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("cls", "compile", "precision"),
    [(QARLSAC, False, "fp32"), (QARLSAC, True, "fp32"), (PerSampleTemperatureSAC, True, "bf16"), (MixedNESAC, True, "fp32")],
)
def test_cuda_update_never_synchronises_with_the_host(cls, compile, precision):
    """``torch.cuda.set_sync_debug_mode("error")`` raises on any synchronising call (``.item()``, blocking copies)."""
    kw = {"ent_coef": "auto_0.005"} if cls is not PerSampleTemperatureSAC else {}
    model = make(cls, device="cuda", sac_compile=compile, sac_precision=precision, **kw)
    model.learn(200)  # fills the buffer, compiles and records the CUDA graphs (acting syncs: it needs the host)
    model.flush_training_stats()
    th.cuda.synchronize()
    th.cuda.set_sync_debug_mode("error")
    try:
        model.train(20, B)
    finally:
        th.cuda.set_sync_debug_mode(0)
    model.flush_training_stats()
    assert np.isfinite(model.logger.name_to_value["train/critic_loss"])


def test_training_mode_guard_skips_only_calls_that_change_nothing(tmp_path, monkeypatch):
    import copy

    model = make(update="reference")
    policy = model.policy
    calls = []
    original = th.nn.Module.train

    def counting(self, mode=True):
        calls.append(mode)
        return original(self, mode)

    monkeypatch.setattr(th.nn.Module, "train", counting)
    obs = np.zeros(model.observation_space.shape, dtype=np.float32)
    model.predict(obs)  # training -> eval: walks the modules
    assert calls and not policy.training and not policy.actor.training and not policy.critic.training
    calls.clear()
    for _ in range(3):
        model.predict(obs)  # already eval: nothing to walk
    assert calls == []
    policy.set_training_mode(True)  # a real change still happens
    assert calls and policy.training and policy.actor.training and policy.critic.training
    policy.critic.train(False)  # a part out of step is put back
    calls.clear()
    policy.set_training_mode(True)
    assert calls and policy.critic.training
    clone = copy.deepcopy(policy)  # the guard follows the copy, not the original
    clone.set_training_mode(False)
    assert not clone.training and policy.training
    model.save(tmp_path / "m.zip")
    loaded = QARLSAC.load(tmp_path / "m.zip")
    assert "set_training_mode" in vars(loaded.policy)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])

"""The fast SAC update's arithmetic: SB3's actor and twin critics as functions of tensors, with explicit gradients.

Every function here is a plain function of tensors (no modules, no autograd): the forward passes keep what their
gradients need, and the ``*_grads`` functions compute the gradients by hand (the chain rule of an MLP, SB3's
squashed Gaussian and its log-probability). Why not autograd: compiled with ``torch.compile``, an autograd graph
is split by AOTAutograd into a forward and a backward graph that store ReLU/min masks as ``bool`` tensors, and on
this project's CPU (AMD EPYC, torch 2.13) inductor's ``bool`` stores ran ~17x slower than eager (1.4 ms for one
256x512 mask), which made the compiled update slower than the eager one. Written out, the comparisons fuse into
the kernels that use them, nothing but fp32 is stored, and one compiled graph per phase needs no autograd at run
time. ``tests/test_sac_fast.py`` checks every gradient against autograd.

Layouts: the actor's tensors come in ``actor.parameters()`` order (hidden layers, ``mu``, ``log_std``); the critics'
are stacked per layer, ``weights[l]: (n, out, in)``, ``biases[l]: (n, out)`` (:class:`rl.qarl.fast_update.StackedCritic`).
With ``bf16`` the matrix products take bf16 operands and give fp32 results; everything else (weights, activations
kept for the gradients, losses, targets, gradients) is fp32.

The two phases of one SAC update (SB3's order: temperature, critic step, then the actor's loss with the *updated*
critic) are :func:`sac_critic_phase` and :func:`sac_actor_phase`; the optimiser steps run between them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch as th
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
SQUASH_EPS = 1e-6  # SB3's TanhBijector epsilon in the log-probability correction

Saved = tuple[list[th.Tensor], th.Tensor, th.Tensor, th.Tensor, th.Tensor]


# ---------------------------------------------------------------------------- matrix products (fp32 or bf16 operands)
def _mm(a: th.Tensor, b: th.Tensor, bf16: bool) -> th.Tensor:
    return (a.bfloat16() @ b.bfloat16()).float() if bf16 else a @ b


def _bmm(a: th.Tensor, b: th.Tensor, bf16: bool) -> th.Tensor:
    return th.bmm(a.bfloat16(), b.bfloat16()).float() if bf16 else th.bmm(a, b)


def _linear(x: th.Tensor, w: th.Tensor, b: th.Tensor, bf16: bool) -> th.Tensor:
    """``x @ w.T + b`` for ``x: (B, in)``, ``w: (out, in)``."""
    return _mm(x, w.t(), bf16) + b if bf16 else th.addmm(b, x, w.t())


def _blinear(x: th.Tensor, w: th.Tensor, b: th.Tensor, bf16: bool) -> th.Tensor:
    """Batched ``x @ w.T + b`` for ``x: (n, B, in)``, ``w: (n, out, in)``, ``b: (n, out)``."""
    if bf16:
        return _bmm(x, w.transpose(1, 2), bf16) + b.unsqueeze(1)
    return th.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


# ---------------------------------------------------------------------------- the actor
def actor_forward(params: list[th.Tensor], obs: th.Tensor, eps: th.Tensor, bf16: bool) -> tuple[th.Tensor, th.Tensor, Saved]:
    """SB3's squashed Gaussian: ``a = tanh(mu + eps std)`` and ``log pi(a|s)`` ``(B, 1)``, plus what its gradient needs.

    ``log N(mu + eps std; mu, std) = -eps**2 / 2 - log std - log(2 pi) / 2`` is the Gaussian term of SB3's
    ``log_prob`` (the same value and gradients, computed without subtracting ``mu`` back).
    """
    hidden = (len(params) - 4) // 2
    x, inputs = obs, []
    for i in range(hidden):
        inputs.append(x)
        x = th.relu(_linear(x, params[2 * i], params[2 * i + 1], bf16))
    inputs.append(x)
    head = _linear(x, th.cat([params[-4], params[-2]]), th.cat([params[-3], params[-1]]), bf16)
    mean, raw_log_std = head.chunk(2, dim=1)
    log_std = raw_log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
    std = log_std.exp()
    actions = th.tanh(mean + eps * std)
    gaussian = (-0.5 * eps.square() - log_std - HALF_LOG_2PI).sum(dim=1, keepdim=True)
    squash = th.log(1.0 - actions.square() + SQUASH_EPS).sum(dim=1, keepdim=True)
    return actions, gaussian - squash, (inputs, actions, eps, std, raw_log_std)


def actor_grads(
    params: list[th.Tensor], saved: Saved, d_actions: th.Tensor, d_log_prob: th.Tensor, bf16: bool
) -> list[th.Tensor]:
    """Gradients of ``sum(d_actions * a) + sum(d_log_prob * log pi)`` in ``params`` (same order), by the chain rule."""
    inputs, actions, eps, std, raw_log_std = saved
    one_minus_a2 = 1.0 - actions.square()
    d_a = d_actions + d_log_prob * (2.0 * actions / (one_minus_a2 + SQUASH_EPS))  # from -sum log(1 - a^2 + eps)
    d_u = d_a * one_minus_a2  # tanh'
    inside = ((raw_log_std >= LOG_STD_MIN) & (raw_log_std <= LOG_STD_MAX)).to(d_u.dtype)  # clamp's gradient mask
    d_log_std = (d_u * eps * std - d_log_prob) * inside
    d_head = th.cat([d_u, d_log_std], dim=1)  # (B, 2A): mu's and log_std's rows
    x = inputs[-1]
    g_head_w = _mm(d_head.t(), x, bf16)
    g_head_b = d_head.sum(dim=0)
    act = d_u.shape[1]
    grads_tail = [g_head_w[:act], g_head_b[:act], g_head_w[act:], g_head_b[act:]]
    w_head = th.cat([params[-4], params[-2]])
    d_x = _mm(d_head, w_head, bf16)
    grads: list[th.Tensor] = []
    for i in reversed(range((len(params) - 4) // 2)):
        d_z = d_x * (inputs[i + 1] > 0).to(d_x.dtype)  # ReLU
        grads = [_mm(d_z.t(), inputs[i], bf16), d_z.sum(dim=0), *grads]
        if i > 0:
            d_x = _mm(d_z, params[2 * i], bf16)
    return [*grads, *grads_tail]


# ---------------------------------------------------------------------------- the stacked critics
def critic_forward(
    weights: list[th.Tensor], biases: list[th.Tensor], obs: th.Tensor, actions: th.Tensor, bf16: bool
) -> tuple[th.Tensor, list[th.Tensor]]:
    """All ``n`` critics at once: ``q: (n, B, 1)`` and each layer's input (what the gradients need)."""
    n, width, _ = weights[0].shape
    x = th.cat([obs, actions], dim=1)
    h = th.relu(_linear(x, weights[0].reshape(n * width, -1), biases[0].reshape(n * width), bf16))
    h = h.view(x.shape[0], n, width).transpose(0, 1)  # first layer: one product for all critics
    inputs = [x, h]
    for w, b in zip(weights[1:-1], biases[1:-1], strict=True):
        h = th.relu(_blinear(h, w, b, bf16))
        inputs.append(h)
    return _blinear(h, weights[-1], biases[-1], bf16), inputs


def _critic_backward(
    weights: list[th.Tensor], inputs: list[th.Tensor], d_q: th.Tensor, bf16: bool, weight_grads: bool
) -> tuple[list[th.Tensor], list[th.Tensor], th.Tensor]:
    """Backward through the stacked critics from ``d_q: (n, B, 1)``: weight and bias gradients, and ``d_input: (B, in)``."""
    n, width, _ = weights[0].shape
    g_w: list[th.Tensor] = []
    g_b: list[th.Tensor] = []
    d_z = d_q
    for layer in reversed(range(1, len(weights))):
        h = inputs[layer]
        if weight_grads:
            g_w.insert(0, _bmm(d_z.transpose(1, 2), h, bf16))
            g_b.insert(0, d_z.sum(dim=1))
        d_z = _bmm(d_z, weights[layer], bf16) * (h > 0).to(d_z.dtype)  # back through the layer and the ReLU before it
    d_flat = d_z.transpose(0, 1).reshape(d_z.shape[1], n * width)
    if weight_grads:
        g_w.insert(0, _mm(d_flat.t(), inputs[0], bf16).view(n, width, -1))
        g_b.insert(0, d_flat.sum(dim=0).view(n, width))
    d_input = _mm(d_flat, weights[0].reshape(n * width, -1), bf16)
    return g_w, g_b, d_input


def critic_loss_grads(
    weights: list[th.Tensor], biases: list[th.Tensor], obs: th.Tensor, actions: th.Tensor, target: th.Tensor, bf16: bool
) -> tuple[th.Tensor, list[th.Tensor]]:
    """SB3's critic loss ``0.5 * sum_j MSE(Q_j(s, a), y)`` and its gradients (stacked weights, then biases)."""
    q, inputs = critic_forward(weights, biases, obs, actions, bf16)
    err = q - target.unsqueeze(0)
    loss = 0.5 * err.square().mean(dim=(1, 2)).sum()
    g_w, g_b, _ = _critic_backward(weights, inputs, err / target.shape[0], bf16, weight_grads=True)
    return loss, [*g_w, *g_b]


def min_q_action_grad(
    weights: list[th.Tensor], biases: list[th.Tensor], obs: th.Tensor, actions: th.Tensor, bf16: bool
) -> tuple[th.Tensor, th.Tensor]:
    """``min_j Q_j(s, a)`` ``(B, 1)`` and its gradient in ``a`` (the gradient goes to the minimal critic, as ``th.min``)."""
    q, inputs = critic_forward(weights, biases, obs, actions, bf16)
    min_q, index = q.min(dim=0)
    chosen = (index.unsqueeze(0) == th.arange(q.shape[0], device=q.device).view(-1, 1, 1)).to(q.dtype)
    _, _, d_input = _critic_backward(weights, inputs, chosen, bf16, weight_grads=False)
    return min_q, d_input[:, obs.shape[1] :]


def sample_actions(params: list[th.Tensor], obs: th.Tensor, eps: th.Tensor, bf16: bool) -> tuple[th.Tensor, th.Tensor]:
    """Actions and log-probabilities only (no gradient needed)."""
    actions, log_prob, _ = actor_forward(params, obs, eps, bf16)
    return actions, log_prob


def soft_target(
    actor: list[th.Tensor],
    weights: list[th.Tensor],
    biases: list[th.Tensor],
    next_obs: th.Tensor,
    rewards: th.Tensor,
    dones: th.Tensor,
    discount: th.Tensor,
    eps: th.Tensor,
    ent_coef: th.Tensor,
    bf16: bool,
) -> th.Tensor:
    """``r + discount (1 - d) [min_j Q'_j(s', a') - ent_coef log pi(a'|s')]`` with ``a' = tanh(mu + eps std)``."""
    next_actions, next_log_prob = sample_actions(actor, next_obs, eps, bf16)
    next_q = critic_forward(weights, biases, next_obs, next_actions, bf16)[0].amin(dim=0)
    return rewards + (1.0 - dones) * discount * (next_q - ent_coef * next_log_prob)


def temperature_grad(log_coef: th.Tensor, log_prob: th.Tensor, target_entropy: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """SAC's temperature loss ``-mean[log_coef (log pi + H_target)]`` and its gradient in ``log_coef``."""
    x = log_prob + target_entropy
    return -(log_coef * x).mean(), -x.mean().reshape(log_coef.shape)


# ---------------------------------------------------------------------------- one SAC update in two phases
def sac_critic_phase(
    actor: list[th.Tensor],
    weights: list[th.Tensor],
    biases: list[th.Tensor],
    target_weights: list[th.Tensor],
    target_biases: list[th.Tensor],
    batch: tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor],
    discount: th.Tensor,
    eps: th.Tensor,
    ent_coef: th.Tensor,
    log_coef: th.Tensor | None,
    target_entropy: th.Tensor,
    update_actor: bool,
    bf16: bool,
) -> dict[str, Any]:
    """Everything of one update before the critic's optimiser step.

    Returns a dict: ``critic_loss``, ``critic_grads``; with ``update_actor`` also the actor's sample on ``s``
    (``actions``, ``log_prob``, ``saved``), and with a learned temperature (``log_coef``) its ``temperature_loss``
    and ``temperature_grad``. ``eps: (2, B, A)`` is the noise of the actor at ``s`` and at ``s'``.
    """
    obs, actions, next_obs, dones, rewards = batch
    out: dict[str, Any] = {}
    if update_actor:
        out["actions"], out["log_prob"], out["saved"] = actor_forward(actor, obs, eps[0], bf16)
        if log_coef is not None:
            out["temperature_loss"], out["temperature_grad"] = temperature_grad(log_coef, out["log_prob"], target_entropy)
    target = soft_target(actor, target_weights, target_biases, next_obs, rewards, dones, discount, eps[1], ent_coef, bf16)
    out["critic_loss"], out["critic_grads"] = critic_loss_grads(weights, biases, obs, actions, target, bf16)
    return out


def sac_actor_phase(
    actor: list[th.Tensor],
    weights: list[th.Tensor],
    biases: list[th.Tensor],
    obs: th.Tensor,
    actions: th.Tensor,
    log_prob: th.Tensor,
    saved: Saved,
    ent_coef: th.Tensor,
    bf16: bool,
) -> tuple[th.Tensor, list[th.Tensor]]:
    """The actor's loss ``mean[ent_coef log pi(a|s) - min_j Q_j(s, a)]`` (updated critics) and its gradients."""
    min_q, d_q_d_a = min_q_action_grad(weights, biases, obs, actions, bf16)
    loss = (ent_coef * log_prob - min_q).mean()
    scale = 1.0 / obs.shape[0]
    d_log_prob = (ent_coef * scale).expand_as(log_prob)
    return loss, actor_grads(actor, saved, -scale * d_q_d_a, d_log_prob, bf16)


class Kernels:
    """The phases and helpers above, eager or compiled (one compiled version per function and device kind, shared)."""

    _compiled: ClassVar[dict[tuple[str, str], Any]] = {}

    def __init__(self, compile: bool, device: th.device) -> None:
        self.compile, self.device = compile, device
        if compile:
            _raise_recompile_limits()
        self.sample_actions = self.wrap(sample_actions)
        self.actor_forward = self.wrap(actor_forward)
        self.soft_target = self.wrap(soft_target)
        self.sac_critic_phase = self.wrap(sac_critic_phase)
        self.sac_actor_phase = self.wrap(sac_actor_phase)

    def wrap(self, fn: Any) -> Any:
        """``fn`` itself (eager) or its compiled version (``torch.compile``: full graph, static shapes)."""
        if not self.compile:
            return fn
        key = (f"{fn.__module__}.{fn.__qualname__}", self.device.type)
        if key not in Kernels._compiled:
            mode = "reduce-overhead" if self.device.type == "cuda" else None  # CUDA graphs
            Kernels._compiled[key] = th.compile(fn, fullgraph=True, dynamic=False, mode=mode)
        return Kernels._compiled[key]


def _raise_recompile_limits() -> None:
    """Several agents (shapes, temperature kinds) per process each need their own graphs; dynamo allows 8 per function."""
    config: Any = th._dynamo.config
    for name in ("cache_size_limit", "recompile_limit"):
        if hasattr(config, name):
            setattr(config, name, max(int(getattr(config, name)), 64))

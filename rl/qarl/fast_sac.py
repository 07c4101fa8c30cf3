"""The fast update of one SB3 SAC agent (``sac.engine=fast``), built from :mod:`rl.qarl.fast_update`'s parts.

:class:`FastSAC` is created by :meth:`rl.qarl.sac.QARLSAC._setup_model` and owns what the fast path adds to an
agent: the stacked critics (whose views are the SB3 modules' parameters), the batch sampler, the (compiled) loss
functions and the pending logged values. :meth:`FastSAC.sac_step` is one gradient step of SAC in SB3's order
(temperature, critic, actor, Polyak), with the three temperatures of this project: learned (SB3's ``auto``),
fixed (a float ``ent_coef``) and per replay sample (QARL's adversary, the observation's last entry). It runs
without autograd: the gradients come from :mod:`rl.qarl.fast_kernels` and go straight into the optimisers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch as th

from rl.qarl.fast_kernels import Kernels
from rl.qarl.fast_update import (
    BatchSampler,
    PendingStats,
    StackedCritic,
    apply_gradients,
    check_supported,
    set_adam_mode,
)

PRECISIONS = ("fp32", "bf16")
SAC_STATS = ("ent_coef", "critic_loss", "actor_loss", "ent_coef_loss")


class FastSAC:
    """The fast update path of one agent (see the module docstring).

    Args:
        agent: an SB3 ``SAC`` (a :class:`rl.qarl.sac.QARLSAC`) whose model is set up; its critics' parameters become
            views of stacked tensors and its critic optimiser is pointed at them.
        compile: run the loss functions compiled (``torch.compile``).
        precision: ``fp32`` or ``bf16`` (autocast of the matrix products).
        stats: names of the values the agent's step may log.
    """

    def __init__(self, agent: Any, compile: bool, precision: str, stats: Sequence[str] = SAC_STATS) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"sac precision {precision!r} is not one of {list(PRECISIONS)}")
        check_supported(agent)
        self.agent = agent
        self.device = th.device(agent.device)
        self.bf16 = precision == "bf16"
        self.kernels = Kernels(bool(compile), self.device)
        before = list(agent.critic.parameters())
        self.critic = StackedCritic(agent.critic, trainable=True)
        self.target = StackedCritic(agent.critic_target, trainable=False)
        # SB3 built the critic's optimiser over the parameters that are now views: point its groups at the views
        replaced = {id(old): new for old, new in zip(before, agent.critic.parameters(), strict=True)}
        optimizer = agent.critic.optimizer
        for group in optimizer.param_groups:
            group["params"] = [replaced.get(id(p), p) for p in group["params"]]
        self.critic_params = [p for group in optimizer.param_groups for p in group["params"]]
        self.critic_plan = self.critic.grad_plan(self.critic_params)
        self.actor_params = list(agent.actor.parameters())
        self.action_dim = int(agent.action_space.shape[0])
        self.sampler = BatchSampler(agent)
        self.discount = th.tensor(float(agent.gamma), device=self.device)
        target_entropy = agent.target_entropy if isinstance(agent.target_entropy, float) else 0.0
        self.target_entropy = th.tensor(float(target_entropy), device=self.device)
        self.stats = PendingStats(stats, self.device)
        self._constants: dict[str, tuple[float, th.Tensor]] = {}  # 0-d device tensors, made once each
        if self.kernels.compile and self.device.type == "cuda":  # CUDA graphs: parameters keep their addresses
            for tensor in (*self.actor_params, *self.critic.tensors, *self.target.tensors):
                th._dynamo.mark_static_address(tensor)

    def constant(self, name: str, value: float) -> th.Tensor:
        """A 0-d device tensor holding ``value``, made once (a host-to-device copy), remade only if ``value`` changes."""
        cached = self._constants.get(name)
        if cached is None or cached[0] != value:
            cached = self._constants[name] = (value, th.tensor(float(value), device=self.device))
        return cached[1]

    # ------------------------------------------------------------------ pieces shared by the agents' steps
    def prepare(self, *optimizers: Any) -> None:
        """Before a ``train()`` call: fused Adam everywhere (a loaded optimiser state brings its own flags back)."""
        agent = self.agent
        for optimizer in (agent.actor.optimizer, agent.critic.optimizer, agent.ent_coef_optimizer, *optimizers):
            if optimizer is not None:
                set_adam_mode(optimizer, fused=True)

    def begin_update(self) -> None:
        """Mark a new step for CUDA graphs (outputs of the last update's graphs may be overwritten from here on)."""
        if self.kernels.compile and self.device.type == "cuda":
            th.compiler.cudagraph_mark_step_begin()

    def noise(self, *shape: int) -> th.Tensor:
        """Standard normal draws ``(*shape, action_dim)`` from torch's global generator (the reparametrisation noise)."""
        return th.randn((*shape, self.action_dim), device=self.device)

    def temperature(self, obs: th.Tensor, update: bool) -> tuple[th.Tensor, th.Tensor | None]:
        """The entropy coefficient of this batch ((1,), () or (B, 1)) before any step; ``log_coef`` if it learns now.

        The second value is the (detached) learned ``log_coef`` when it steps in this update, else ``None``.
        """
        agent = self.agent
        if getattr(agent, "per_sample_temperature", False):
            alpha = obs[:, -1:]
            self.stats.bad += (alpha <= 0).sum()  # checked on the host at the logging cadence
            return alpha, None
        if agent.ent_coef_optimizer is None or agent.log_ent_coef is None:
            return agent.ent_coef_tensor, None
        log_coef = agent.log_ent_coef.detach()
        return log_coef.exp(), (log_coef if update else None)

    def step_temperature(self, log_coef: th.Tensor, optimizer: Any, grad: th.Tensor) -> None:
        """One step of a learned temperature's optimiser."""
        apply_gradients(optimizer, [log_coef], [grad])

    def step_critic(self, grads: list[th.Tensor]) -> None:
        """One fused-Adam step of all critics; ``grads`` are the stacked gradients (weights, then biases)."""
        apply_gradients(self.agent.critic.optimizer, self.critic_params, [grads[i][k] for i, k in self.critic_plan])

    def polyak(self) -> None:
        """``target <- target + tau (critic - target)`` for all stacked tensors at once."""
        th._foreach_lerp_(self.target.tensors, [t.detach() for t in self.critic.tensors], float(self.agent.tau))

    # ------------------------------------------------------------------ SAC
    @th.no_grad()
    def sac_step(self, batch_size: int, update_actor: bool, polyak: bool) -> None:
        """One SAC gradient step in SB3's order; the actor and a learned temperature step only if ``update_actor``."""
        agent, k, bf16 = self.agent, self.kernels, self.bf16
        self.begin_update()
        batch = self.sampler.sample(batch_size)
        obs = batch.observations
        ent_coef, log_coef = self.temperature(obs, update_actor)
        critic, target = self.critic, self.target
        out = k.sac_critic_phase(
            self.actor_params,
            critic.weights,
            critic.biases,
            target.weights,
            target.biases,
            tuple(batch),
            self.discount,
            self.noise(2, batch_size),
            ent_coef,
            log_coef,
            self.target_entropy,
            update_actor,
            bf16,
        )
        if log_coef is not None:
            self.step_temperature(agent.log_ent_coef, agent.ent_coef_optimizer, out["temperature_grad"])
        self.step_critic(out["critic_grads"])
        values = {"ent_coef": ent_coef.mean(), "critic_loss": out["critic_loss"]}
        if update_actor:
            loss, grads = k.sac_actor_phase(
                self.actor_params,
                critic.weights,
                critic.biases,
                obs,
                out["actions"],
                out["log_prob"],
                out["saved"],
                ent_coef,
                bf16,
            )
            apply_gradients(agent.actor.optimizer, self.actor_params, grads)
            values["actor_loss"] = loss
            if log_coef is not None:
                values["ent_coef_loss"] = out["temperature_loss"]
        if polyak:
            self.polyak()
        self.stats.add(values)

    def after_updates(self, prefix: str, n_updates: int) -> None:
        """The finite check every ``CHECK_EVERY`` updates (one host read), for runs that rarely dump their logs."""
        self.stats.check(prefix, n_updates)

    def flush(self, logger: Any, prefix: str, n_updates: int) -> None:
        """Record the logged means since the last flush (raises on a non-finite loss)."""
        self.stats.flush(logger, prefix, n_updates)

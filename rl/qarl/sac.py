"""SAC agents of QARL: SB3's SAC with per-network learning rates and actor warm-up, and the per-sample adversary.

Only ``train()`` (and the optimiser set-up) is overridden; rollouts, policies, save/load are SB3's. ``train()`` has
two paths: the reference (``sac_engine="reference"``, the constructor's default: SB3's update, bit for bit SB3's
``SAC`` with one learning rate, no actor delay and ``ent_coef="auto"``) and the fast one (``sac_engine="fast"``,
:mod:`rl.qarl.fast_sac`: the same losses with batched critics, fused optimisers, no host synchronisation per update,
optionally compiled and in bf16), which ``train_qarl`` uses by default (``sac.engine``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.utils import polyak_update, update_learning_rate

from rl.qarl.fast_sac import PRECISIONS, FastSAC
from rl.qarl.fast_update import LossNotFiniteError, set_adam_mode

# How an agent acts before ``learning_starts``: SB3's uniformly random actions, or its own policy (official QARL).
WARMUP = ("random", "policy")

__all__ = ["ENGINES", "QARLSAC", "LossNotFiniteError", "PerSampleTemperatureSAC"]

ENGINES = ("reference", "fast")


def _set_training_mode_if_changed(policy: Any, mode: bool) -> None:
    """``policy.set_training_mode(mode)``, skipped when the policy, its actor and its critic already have the mode.

    SB3 sets the mode before every ``predict`` and every ``train`` call, and ``nn.Module.train`` walks every submodule:
    0.14 ms per call at 3 x 256 (two calls per env step with one update: ~0.3 ms, about 10 % of a bf16 update). The
    mode only sets flags (SAC's networks have no dropout or batch norm; if one had, the flags still end up the same),
    so skipping a call that would change nothing changes no number.
    """
    parts = [policy, *(getattr(policy, name, None) for name in ("actor", "critic"))]
    if all(part.training == mode for part in parts if part is not None):
        return
    type(policy).set_training_mode(policy, mode)


def install_training_mode_guard(policy: Any) -> None:
    """Bind :func:`_set_training_mode_if_changed` as ``policy.set_training_mode``.

    It is an instance attribute: the policy's class, state dict and SB3's save format are unchanged, and a deep copy
    rebinds it to the copy.
    """
    policy.__dict__["set_training_mode"] = types.MethodType(_set_training_mode_if_changed, policy)


class QARLSAC(SAC):
    """SAC as configured in QARL's official code (arXiv:2311.01642, ``setup_sac_agent.py``).

    Differences from SB3's :class:`~stable_baselines3.SAC`:

    - separate learning rates for actor, critics and temperature (1e-4 / 3e-4 / 3e-4 in the paper); SB3 uses one
      (a network's own rate is constant; SB3's ``learning_rate`` schedule drives the networks without one);
    - ``actor_learning_starts``: the actor (and the temperature) only update once the buffer holds more samples
      (critics start at ``learning_starts``, as in SB3);
    - losses and temperatures are averaged over all gradient steps until the logger dumps (``record_mean``), and
      a non-finite loss raises :class:`LossNotFiniteError`;
    - ``log_prefix`` renames the ``train/`` section of the logged keys (``adversary/actor_loss``);
    - ``action_limit`` (a callable giving a bound in ``(0, 1]`` of the normalised action, or ``None``) clips the
      actions before they are played *and* stored: the force curriculum's adversary stores the force it applied;
    - ``warmup``: how the agent acts before ``learning_starts`` steps: ``random`` (SB3: uniformly random actions)
      or ``policy`` (its own, still untrained, stochastic policy from the first step, as the official MushroomRL
      agents do: they only wait for the buffer before updating).
    - ``sac_engine="fast"`` trains with :class:`rl.qarl.fast_sac.FastSAC` (module docstring); its logged values and
      finite checks are read when the logger dumps (:meth:`flush_training_stats`).

    Args:
        actor_lr, critic_lr, ent_coef_lr: learning rates; ``None`` keeps SB3's single ``learning_rate``.
        actor_learning_starts: buffer size after which the actor and temperature update.
        log_prefix: logger section of the training statistics.
        warmup: one of :data:`WARMUP`.
        sac_engine: ``reference`` (SB3's update) or ``fast``.
        sac_compile: compile the fast path's loss functions (``torch.compile``).
        sac_precision: ``fp32`` or ``bf16`` (the fast path's matrix products under bf16 autocast).
        *args, **kwargs: as :class:`~stable_baselines3.SAC`.
    """

    per_sample_temperature = False
    warmup = "random"  # what a model saved before the option existed did

    def __init__(
        self,
        *args: Any,
        actor_lr: float | None = None,
        critic_lr: float | None = None,
        ent_coef_lr: float | None = None,
        actor_learning_starts: int = 0,
        log_prefix: str = "train",
        warmup: str = "random",
        sac_engine: str = "reference",
        sac_compile: bool = False,
        sac_precision: str = "fp32",
        **kwargs: Any,
    ) -> None:
        if warmup not in WARMUP:
            raise ValueError(f"warmup={warmup!r} is not one of {list(WARMUP)}")
        self.warmup = warmup
        if sac_engine not in ENGINES:
            raise ValueError(f"sac_engine={sac_engine!r} is not one of {list(ENGINES)}")
        if sac_precision not in PRECISIONS:
            raise ValueError(f"sac_precision={sac_precision!r} is not one of {list(PRECISIONS)}")
        if sac_engine == "reference" and (sac_compile or sac_precision != "fp32"):
            raise ValueError(
                f"sac_engine=reference is SB3's eager fp32 update; sac_compile={sac_compile!r} and "
                f"sac_precision={sac_precision!r} need sac_engine=fast"
            )
        self.sac_engine, self.sac_compile, self.sac_precision = sac_engine, bool(sac_compile), sac_precision
        self._fast: FastSAC | None = None
        self.actor_lr, self.critic_lr, self.ent_coef_lr = actor_lr, critic_lr, ent_coef_lr
        self.actor_learning_starts = int(actor_learning_starts)
        self.log_prefix = log_prefix
        self.action_limit: Callable[[], float] | None = None
        super().__init__(*args, **kwargs)

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.warmup == "policy":
            learning_starts = 0  # no uniformly random actions: the policy acts from the first step
        action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        if self.action_limit is not None:  # only for a [-1, 1] action space, where both are the same
            limit = float(self.action_limit())
            buffer_action = np.clip(buffer_action, -limit, limit)
            action = self.policy.unscale_action(buffer_action)
        return action, buffer_action

    def _excluded_save_params(self) -> list[str]:
        # the env closure and the fast path's machinery (rebuilt by _setup_model) are not saved
        return [*super()._excluded_save_params(), "action_limit", "_fast"]

    def _setup_model(self) -> None:
        super()._setup_model()
        install_training_mode_guard(self.policy)
        self._set_learning_rates()
        self._fast = self._make_fast() if self.sac_engine == "fast" else None

    def _make_fast(self) -> FastSAC:
        """The fast path of this agent (subclasses with other logged values or optimisers override it)."""
        return FastSAC(self, self.sac_compile, self.sac_precision)

    def flush_training_stats(self) -> None:
        """Record the fast path's logged means into the logger (call before it dumps); raises on a non-finite loss."""
        if self._fast is not None:
            self._fast.flush(self.logger, self.log_prefix, self._n_updates)

    def _dump_logs(self) -> None:
        self.flush_training_stats()
        super()._dump_logs()

    def _optimizer_rates(self) -> list[tuple[th.optim.Optimizer, float | None]]:
        """Each optimiser with its own learning rate (``None``: SB3's ``learning_rate`` schedule)."""
        pairs = [(self.actor.optimizer, self.actor_lr), (self.critic.optimizer, self.critic_lr)]
        if self.ent_coef_optimizer is not None:
            pairs.append((self.ent_coef_optimizer, self.ent_coef_lr))
        return pairs

    def _set_learning_rates(self) -> None:
        for optimizer, lr in self._optimizer_rates():
            if lr is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr

    def _follow_schedule(self) -> None:
        """Set SB3's scheduled learning rate on the optimisers without their own rate (as ``SAC.train`` does)."""
        scheduled = [optimizer for optimizer, lr in self._optimizer_rates() if lr is None]
        if scheduled:
            lr = self.lr_schedule(self._current_progress_remaining)
            self.logger.record(f"{self.log_prefix}/learning_rate", lr)
            for optimizer in scheduled:
                update_learning_rate(optimizer, lr)

    def _entropy_coefficient(self, observations: th.Tensor, log_prob: th.Tensor, update_actor: bool) -> th.Tensor:
        """The entropy coefficient for this batch, (1,) or (B, 1); updates the learned one if due."""
        if self.ent_coef_optimizer is None or self.log_ent_coef is None:
            return self.ent_coef_tensor
        return self._learned_temperature(self.log_ent_coef, self.ent_coef_optimizer, log_prob, update_actor, "ent_coef_loss")

    def _critic_step(self, observations: th.Tensor, actions: th.Tensor, target_q: th.Tensor) -> None:
        """One gradient step of both critics on ``0.5 * sum_i MSE(Q_i(s, a), target)`` (SB3's critic loss)."""
        critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in self.critic(observations, actions))
        assert isinstance(critic_loss, th.Tensor)
        self._check_finite("critic_loss", critic_loss)
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()

    def _learned_temperature(
        self, log_coef: th.Tensor, optimizer: th.optim.Optimizer, log_prob: th.Tensor, update_actor: bool, name: str
    ) -> th.Tensor:
        """SAC's learned temperature exp(log_coef) for this batch (taken before the step); steps it if due."""
        coef = th.exp(log_coef.detach())
        if update_actor:
            assert isinstance(self.target_entropy, float)
            loss = -(log_coef * (log_prob + self.target_entropy).detach()).mean()
            self._check_finite(name, loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return coef

    def _check_finite(self, name: str, value: th.Tensor) -> float:
        scalar = float(value.item())
        if not np.isfinite(scalar):
            raise LossNotFiniteError(f"{self.log_prefix}/{name} is {scalar} after {self._n_updates} updates")
        self.logger.record_mean(f"{self.log_prefix}/{name}", scalar)
        return scalar

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SB3's SAC update with the changes listed in the class docstring."""
        if self._fast is not None:
            self._train_fast(gradient_steps, batch_size)
            return
        self._reference_optimizers()
        self.policy.set_training_mode(True)
        self._follow_schedule()
        assert self.replay_buffer is not None
        update_actor = self.replay_buffer.size() > self.actor_learning_starts
        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(data.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef = self._entropy_coefficient(data.observations, log_prob, update_actor)
            self.logger.record_mean(f"{self.log_prefix}/ent_coef", float(ent_coef.mean().item()))

            target_q = self.target_q_values(data.next_observations, data.rewards, data.dones, discounts, ent_coef)
            self._critic_step(data.observations, data.actions, target_q)

            if update_actor:
                actor_loss = self.actor_loss(data.observations, actions_pi, log_prob, ent_coef)
                self._check_finite("actor_loss", actor_loss)
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._n_updates += gradient_steps
        self.logger.record(f"{self.log_prefix}/n_updates", self._n_updates)

    def _reference_optimizers(self) -> None:
        """Adam as SB3 builds it (a state saved by the fast path brings ``fused=True`` back with it)."""
        for optimizer in (self.actor.optimizer, self.critic.optimizer, self.ent_coef_optimizer):
            if optimizer is not None:
                set_adam_mode(optimizer, fused=False)

    def _train_fast(self, gradient_steps: int, batch_size: int) -> None:
        """The fast path's ``train`` (:meth:`rl.qarl.fast_sac.FastSAC.sac_step` per gradient step)."""
        fast = self._fast
        assert fast is not None and self.replay_buffer is not None
        fast.prepare()
        self.policy.set_training_mode(True)
        self._follow_schedule()
        update_actor = self.replay_buffer.size() > self.actor_learning_starts
        for gradient_step in range(gradient_steps):
            fast.sac_step(batch_size, update_actor, polyak=gradient_step % self.target_update_interval == 0)
        self._n_updates += gradient_steps
        self.logger.record(f"{self.log_prefix}/n_updates", self._n_updates)
        fast.after_updates(self.log_prefix, self._n_updates)

    @th.no_grad()
    def target_q_values(
        self, next_obs: th.Tensor, rewards: th.Tensor, dones: th.Tensor, discounts: th.Tensor | float, ent_coef: th.Tensor
    ) -> th.Tensor:
        """Soft TD target ``r + discount (1 - d) [min_j Q'_j(s', a') - ent_coef log pi(a'|s')]``, ``a' ~ pi(.|s')``."""
        next_actions, next_log_prob = self.actor.action_log_prob(next_obs)
        next_q = th.cat(self.critic_target(next_obs, next_actions), dim=1)
        next_q, _ = th.min(next_q, dim=1, keepdim=True)
        next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
        return rewards + (1 - dones) * discounts * next_q

    def actor_loss(
        self, observations: th.Tensor, actions_pi: th.Tensor, log_prob: th.Tensor, ent_coef: th.Tensor
    ) -> th.Tensor:
        """``mean_i[ent_coef_i * log pi(a_i|s_i) - min_j Q_j(s_i, a_i)]`` with ``a_i ~ pi(.|s_i)``."""
        q_pi = th.cat(self.critic(observations, actions_pi), dim=1)
        min_q_pi, _ = th.min(q_pi, dim=1, keepdim=True)
        return (ent_coef * log_prob - min_q_pi).mean()


class PerSampleTemperatureSAC(QARLSAC):
    """SAC whose entropy temperature is read per replay sample from the last observation entry (QARL adversary).

    QARL (arXiv:2311.01642, official ``AdaptiveTempSAC``) conditions the adversary on its temperature alpha,
    appended to the observation, and uses that alpha in both the critic target and the actor loss of each
    sample, so one replay buffer mixes transitions collected at different temperatures correctly::

        y_i    = -r_i + gamma (1 - d_i) [min_j Q'_j(s'_i, a'_i) - alpha_i log pi(a'_i | s'_i)]
        L_pi   = mean_i [alpha_i log pi(a_i | s_i) - min_j Q_j(s_i, a_i)]

    There is no temperature loss: ``log_ent_coef`` is ``None`` and ``ent_coef`` is ignored (SB3 requires a float
    at construction; changing ``model.ent_coef`` afterwards has no effect, by design). The logged
    ``ent_coef`` is the batch mean of alpha.
    """

    per_sample_temperature = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ent_coef = kwargs.pop("ent_coef", 1.0)
        if isinstance(ent_coef, str):
            raise ValueError(f"PerSampleTemperatureSAC takes its temperature from the observation; got ent_coef={ent_coef!r}")
        super().__init__(*args, ent_coef=float(ent_coef), **kwargs)

    def _entropy_coefficient(self, observations: th.Tensor, log_prob: th.Tensor, update_actor: bool) -> th.Tensor:
        alpha = observations[:, -1:]
        if th.any(alpha <= 0):
            raise LossNotFiniteError("a replay sample has a non-positive temperature (alpha=0 data must never be stored)")
        return alpha

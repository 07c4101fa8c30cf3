"""MixedNE-LD: SAC against an action adversary, both trained with Langevin dynamics (specs/qarl.md §7).

Kamalaruban et al., "Robust Reinforcement Learning via Adversarial training with Langevin Dynamics" (NeurIPS
2020, arXiv:2002.06063), as QARL's official code runs it (``sac_ld.py``, ``setup_sgld_sac_agent.py``,
``sgld_experiment.py``): one SAC agent holds the protagonist's policy pi, an adversary policy pi_adv over the same
action space, and one twin critic ``Q(s, a_mix)`` of the executed action ``a_mix = (1 - delta) a + delta a_adv``
(delta = 0.1). Per gradient step, with fresh reparametrised samples ``a ~ pi``, ``a_adv ~ pi_adv``:

    critic:     y = r + gamma (1 - d) [min_j Q'_j(s', mix(a', a'_adv)) - beta log pi(a'|s')]
                (a'_adv ~ pi_adv with ``target="corrected"``, the default; a'_adv ~ pi, a second independent
                sample of the protagonist's policy, with ``target="official"``, as the official ``_next_q`` does)
    protagonist L_pi  = mean[beta log pi(a|s) - min_j Q_j(s, mix(a, a_adv))]           (SGLD step)
    adversary   L_adv = mean[beta_adv log pi_adv(a_adv|s) + min_j Q_j(s, mix(a, a_adv))]  (SGLD step)

Both temperatures are tuned automatically (target entropy -dim A; the protagonist starts at 0.005 like every
agent here, the adversary at exp(-5.30) = 0.005). Both policies use :class:`rl.qarl.baselines.sgld.SGLD` (lr 3e-4, noise
1e-3, RMSprop alpha 0.999) with the official double noise decay (:class:`rl.qarl.baselines.sgld.LangevinNoiseSchedule`);
the critic uses Adam (3e-4). The actors (and temperatures) update once the buffer exceeds
``actor_learning_starts`` (the official 5000 warm-up transitions). The stored transitions carry the executed
(mixed) action; the adversary acts during warm-up too (SB3's uniform warm-up action is mixed with it).

Deviations from the official code: the critic updates before the actors in each step (SB3's order; the official
code updates the actors first); by default the target's adversary action is drawn from pi_adv (the official
``_next_q`` draws it from the protagonist's policy, a bug; ``target="official"`` reproduces it, and the paper
comparison uses it, since the corrected target makes MixedNE-LD stronger and more pessimistic than the paper's); the
adversary's action space is the protagonist's normalised
one (the official code gives it the force adversary's bounds, which equal the action bounds on DeepMind
Control); the noise schedule counts fits by the agent's gradient-step counter ``_n_updates`` (saved with every
checkpoint), and the SGLD optimisers' step counts and noise are in their state dicts (saved in the ``.zip``);
``delta`` stays at its training value when evaluating against the adversary (the official per-iteration
evaluation sets it to 0, which makes that curve a nominal one; its final "worst adversary" evaluation keeps it).

Update mechanics: with ``sac_engine="fast"`` (``train_qarl``'s default) the same update runs through
:mod:`rl.qarl.fast_sac` in three phases with explicit gradients (:func:`mixedne_critic_phase`,
:func:`mixedne_protagonist_phase`, :func:`mixedne_adversary_phase`); ``sac_engine="reference"`` is :meth:`MixedNESAC.train`'s
module-based version. A change to the update must be made in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.utils import polyak_update

from rl.qarl.baselines.action_adversary import mix_actions
from rl.qarl.baselines.sgld import SGLD, LangevinNoiseSchedule
from rl.qarl.fast_kernels import (
    Saved,
    actor_forward,
    actor_grads,
    critic_forward,
    critic_loss_grads,
    min_q_action_grad,
    sample_actions,
    temperature_grad,
)
from rl.qarl.fast_sac import FastSAC
from rl.qarl.fast_update import apply_gradients
from rl.qarl.sac import QARLSAC

TARGETS = ("corrected", "official")
MIXEDNE_STATS = (
    "ent_coef",
    "adversary_ent_coef",
    "critic_loss",
    "actor_loss",
    "adversary_loss",
    "ent_coef_loss",
    "adversary_ent_coef_loss",
)


class MixedNESAC(QARLSAC):
    """The MixedNE-LD agent (protagonist, action adversary and shared critic); see the module docstring.

    Args:
        delta: weight of the adversary's action in the executed action (0.1).
        sgld_lr: SGLD step size of both policies (3e-4).
        sgld_noise: initial Langevin noise of both policies (1e-3).
        sgld_alpha: RMSprop smoothing of the SGLD preconditioner (0.999).
        noise_decay: per-step and per-fit noise decay (5e-5).
        adversary_ent_coef_init: initial temperature of the adversary (0.005).
        target: the critic target's adversary action: ``corrected`` (from the adversary) or ``official`` (from the
            protagonist's policy, as the official ``sac_ld.py``).
        *args, **kwargs: as :class:`QARLSAC` (``actor_lr`` is unused: the policies use ``sgld_lr``).
    """

    def __init__(
        self,
        *args: Any,
        delta: float = 0.1,
        sgld_lr: float = 3e-4,
        sgld_noise: float = 1e-3,
        sgld_alpha: float = 0.999,
        noise_decay: float = 5e-5,
        adversary_ent_coef_init: float = 0.005,
        target: str = "corrected",
        **kwargs: Any,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"MixedNE-LD target must be one of {list(TARGETS)}, got {target!r}")
        if not 0.0 <= delta <= 1.0:
            raise ValueError(f"MixedNE-LD delta must be in [0, 1], got {delta!r}")
        if not np.isfinite(adversary_ent_coef_init) or adversary_ent_coef_init <= 0:
            raise ValueError(f"adversary_ent_coef_init must be positive, got {adversary_ent_coef_init!r}")
        self.delta = float(delta)
        self.sgld_lr, self.sgld_noise, self.sgld_alpha = float(sgld_lr), float(sgld_noise), float(sgld_alpha)
        self.noise_decay = float(noise_decay)
        self.adversary_ent_coef_init = float(adversary_ent_coef_init)
        self.target = str(target)
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.adversary_actor = self.policy.make_actor().to(self.device)
        sgld = dict(lr=self.sgld_lr, noise=self.sgld_noise, alpha=self.sgld_alpha, noise_decay=self.noise_decay)
        self.actor.optimizer = SGLD(self.actor.parameters(), **sgld)  # type: ignore[arg-type]
        self.adversary_actor.optimizer = SGLD(self.adversary_actor.parameters(), **sgld)  # type: ignore[arg-type]
        self.adversary_log_ent_coef = th.log(th.full((1,), self.adversary_ent_coef_init, device=self.device))
        self.adversary_log_ent_coef.requires_grad_(True)
        lr = self.ent_coef_lr if self.ent_coef_lr is not None else self.lr_schedule(1)
        self.adversary_ent_coef_optimizer = th.optim.Adam([self.adversary_log_ent_coef], lr=lr)
        self.noise_schedule = LangevinNoiseSchedule(initial=self.sgld_noise, decay=self.noise_decay)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        state_dicts += ["adversary_actor", "adversary_actor.optimizer", "adversary_ent_coef_optimizer"]
        return state_dicts, [*variables, "adversary_log_ent_coef"]

    # ------------------------------------------------------------------ acting
    def adversary_action(self, obs: np.ndarray) -> np.ndarray:
        """Sampled normalised adversary actions for a batch of observations."""
        with th.no_grad():
            x = th.as_tensor(np.asarray(obs), dtype=th.float32, device=self.device)
            return self.adversary_actor(x, deterministic=False).cpu().numpy()

    def mixed_action(self, obs: np.ndarray, scaled_action: np.ndarray) -> np.ndarray:
        """The executed normalised action ``(1 - delta) a + delta a_adv`` at ``obs`` (batches)."""
        return np.asarray(mix_actions(scaled_action, self.adversary_action(obs), self.delta), dtype=np.float32)

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        _, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        assert self._last_obs is not None
        mixed = self.mixed_action(self._last_obs, buffer_action)  # type: ignore[arg-type]
        return self.policy.unscale_action(mixed), mixed

    # ------------------------------------------------------------------ learning
    def _adversary_entropy_coefficient(self, log_prob: th.Tensor, update_actor: bool) -> th.Tensor:
        return self._learned_temperature(
            self.adversary_log_ent_coef, self.adversary_ent_coef_optimizer, log_prob, update_actor, "adversary_ent_coef_loss"
        )

    def _min_q(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        q = th.cat(self.critic(observations, actions), dim=1)
        return th.min(q, dim=1, keepdim=True)[0]

    def next_q(self, next_observations: th.Tensor, ent_coef: th.Tensor) -> th.Tensor:
        """The soft value of the critic target, ``min_j Q'_j(s', mix(a', a'_adv)) - beta log pi(a'|s')`` (no grad).

        ``a' ~ pi`` first, then ``a'_adv``: from pi_adv (``target="corrected"``) or a second independent sample of
        pi (``target="official"``, the official ``SAC_LD._next_q``).
        """
        with th.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(next_observations)
            second = self.actor if self.target == "official" else self.adversary_actor
            next_adv, _ = second.action_log_prob(next_observations)
            next_mixed = mix_actions(next_actions, next_adv, self.delta)
            next_q = th.cat(self.critic_target(next_observations, next_mixed), dim=1)
            return th.min(next_q, dim=1, keepdim=True)[0] - ent_coef * next_log_prob.reshape(-1, 1)

    def _make_fast(self) -> FastSAC:
        return FastSAC(self, self.sac_compile, self.sac_precision, stats=MIXEDNE_STATS)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """MixedNE-LD's update (module docstring), logged like :meth:`QARLSAC.train` plus ``adversary_*`` keys."""
        if self._fast is not None:
            self._train_fast(gradient_steps, batch_size)
            return
        self._reference_optimizers()
        self.policy.set_training_mode(True)
        assert self.replay_buffer is not None
        update_actor = self.replay_buffer.size() > self.actor_learning_starts
        self.noise_schedule.fits = self._n_updates  # one fit per gradient step; also right after a resume
        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma
            obs = data.observations
            actions_pi, log_prob = self.actor.action_log_prob(obs)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef = self._entropy_coefficient(obs, log_prob, update_actor)
            adv_actions, adv_log_prob = self.adversary_actor.action_log_prob(obs)
            adv_log_prob = adv_log_prob.reshape(-1, 1)
            adv_ent_coef = self._adversary_entropy_coefficient(adv_log_prob, update_actor)
            self.logger.record_mean(f"{self.log_prefix}/ent_coef", float(ent_coef.mean().item()))
            self.logger.record_mean(f"{self.log_prefix}/adversary_ent_coef", float(adv_ent_coef.item()))

            with th.no_grad():
                next_q = self.next_q(data.next_observations, ent_coef)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            self._critic_step(obs, data.actions, target_q)

            if update_actor:
                mixed = mix_actions(actions_pi, adv_actions.detach(), self.delta)
                actor_loss = (ent_coef * log_prob - self._min_q(obs, mixed)).mean()
                self._check_finite("actor_loss", actor_loss)
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()

                with th.no_grad():
                    fresh_pi, _ = self.actor.action_log_prob(obs)
                mixed = mix_actions(fresh_pi, adv_actions, self.delta)
                adversary_loss = (adv_ent_coef * adv_log_prob + self._min_q(obs, mixed)).mean()
                self._check_finite("adversary_loss", adversary_loss)
                self.adversary_actor.optimizer.zero_grad()
                adversary_loss.backward()
                self.adversary_actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            noise = self.noise_schedule.step(self.actor.optimizer, self.adversary_actor.optimizer)
            self.logger.record_mean(f"{self.log_prefix}/sgld_noise", noise)
        self._n_updates += gradient_steps
        self.logger.record(f"{self.log_prefix}/n_updates", self._n_updates)

    # ------------------------------------------------------------------ the fast path (same update, explicit gradients)
    def _train_fast(self, gradient_steps: int, batch_size: int) -> None:
        fast = self._fast
        assert fast is not None and self.replay_buffer is not None
        fast.prepare(self.adversary_ent_coef_optimizer)
        self.policy.set_training_mode(True)
        update_actor = self.replay_buffer.size() > self.actor_learning_starts
        self.noise_schedule.fits = self._n_updates
        for gradient_step in range(gradient_steps):
            self._fast_step(fast, batch_size, update_actor, polyak=gradient_step % self.target_update_interval == 0)
            noise = self.noise_schedule.step(self.actor.optimizer, self.adversary_actor.optimizer)
            self.logger.record_mean(f"{self.log_prefix}/sgld_noise", noise)
        self._n_updates += gradient_steps
        self.logger.record(f"{self.log_prefix}/n_updates", self._n_updates)
        fast.after_updates(self.log_prefix, self._n_updates)

    @th.no_grad()
    def _fast_step(self, fast: FastSAC, batch_size: int, update_actor: bool, polyak: bool) -> None:
        k, bf16, critic = fast.kernels, fast.bf16, fast.critic
        fast.begin_update()
        batch = fast.sampler.sample(batch_size)
        obs = batch.observations
        adversary = list(self.adversary_actor.parameters())
        ent_coef, log_coef = fast.temperature(obs, update_actor)
        adv_log_coef = self.adversary_log_ent_coef.detach()
        adv_ent_coef = adv_log_coef.exp()
        eps = fast.noise(5, batch_size)  # pi(s), pi_adv(s), pi(s'), pi_adv(s'), the fresh pi(s) of the adversary's loss
        delta = fast.constant("delta", self.delta)
        out = k.wrap(mixedne_critic_phase)(
            fast.actor_params,
            adversary,
            critic.weights,
            critic.biases,
            fast.target.weights,
            fast.target.biases,
            tuple(batch),
            fast.discount,
            eps,
            ent_coef,
            log_coef,
            adv_log_coef if update_actor else None,
            fast.target_entropy,
            delta,
            update_actor,
            self.target == "official",
            bf16,
        )
        if log_coef is not None:
            assert self.log_ent_coef is not None
            fast.step_temperature(self.log_ent_coef, self.ent_coef_optimizer, out["temperature_grad"])
        if update_actor:
            adv_grad = out["adversary_temperature_grad"]
            apply_gradients(self.adversary_ent_coef_optimizer, [self.adversary_log_ent_coef], [adv_grad])
        fast.step_critic(out["critic_grads"])
        values = {"ent_coef": ent_coef.mean(), "adversary_ent_coef": adv_ent_coef.mean(), "critic_loss": out["critic_loss"]}
        if update_actor:
            loss, grads = k.wrap(mixedne_protagonist_phase)(
                fast.actor_params, critic.weights, critic.biases, obs, out["actions"], out["adv_actions"], out["log_prob"],
                out["saved"], ent_coef, delta, bf16,
            )  # fmt: skip
            apply_gradients(self.actor.optimizer, fast.actor_params, grads)
            adv_loss, adv_grads = k.wrap(mixedne_adversary_phase)(
                fast.actor_params, adversary, critic.weights, critic.biases, obs, eps[4], out["adv_actions"],
                out["adv_log_prob"], out["adv_saved"], adv_ent_coef, delta, bf16,
            )  # fmt: skip
            apply_gradients(self.adversary_actor.optimizer, adversary, adv_grads)
            values |= {"actor_loss": loss, "adversary_loss": adv_loss}
            values["adversary_ent_coef_loss"] = out["adversary_temperature_loss"]
            if log_coef is not None:
                values["ent_coef_loss"] = out["temperature_loss"]
        if polyak:
            fast.polyak()
        fast.stats.add(values)


def _mix(action: th.Tensor, adversary_action: th.Tensor, delta: th.Tensor) -> th.Tensor:
    """:func:`mix_actions` with ``delta`` as a 0-d tensor (one compiled graph whatever its value)."""
    return mix_actions(action, adversary_action, delta)  # type: ignore[arg-type]


def mixedne_critic_phase(
    actor: list[th.Tensor],
    adversary: list[th.Tensor],
    weights: list[th.Tensor],
    biases: list[th.Tensor],
    target_weights: list[th.Tensor],
    target_biases: list[th.Tensor],
    batch: tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor],
    discount: th.Tensor,
    eps: th.Tensor,
    ent_coef: th.Tensor,
    log_coef: th.Tensor | None,
    adv_log_coef: th.Tensor | None,
    target_entropy: th.Tensor,
    delta: th.Tensor,
    update_actor: bool,
    official: bool,
    bf16: bool,
) -> dict[str, Any]:
    """MixedNE-LD's update up to the critic's step.

    Both policies' samples on ``s`` (and their temperatures' gradients) if the actors update, the target
    ``r + gamma (1 - d) [min_j Q'_j(s', mix(a', a'_adv)) - beta log pi(a'|s')]`` and the critic's loss and gradients.
    ``a'_adv`` is drawn from the adversary, or with ``official`` (``target="official"``) from a second independent
    sample of the protagonist's policy, as :meth:`MixedNESAC.next_q` does on the reference path.
    """
    obs, actions, next_obs, dones, rewards = batch
    out: dict[str, Any] = {}
    if update_actor:
        out["actions"], out["log_prob"], out["saved"] = actor_forward(actor, obs, eps[0], bf16)
        out["adv_actions"], out["adv_log_prob"], out["adv_saved"] = actor_forward(adversary, obs, eps[1], bf16)
        if log_coef is not None:
            out["temperature_loss"], out["temperature_grad"] = temperature_grad(log_coef, out["log_prob"], target_entropy)
        if adv_log_coef is not None:
            loss, grad = temperature_grad(adv_log_coef, out["adv_log_prob"], target_entropy)
            out["adversary_temperature_loss"], out["adversary_temperature_grad"] = loss, grad
    next_actions, next_log_prob = sample_actions(actor, next_obs, eps[2], bf16)
    next_adv, _ = sample_actions(actor if official else adversary, next_obs, eps[3], bf16)
    next_q = critic_forward(target_weights, target_biases, next_obs, _mix(next_actions, next_adv, delta), bf16)[0]
    target = rewards + (1.0 - dones) * discount * (next_q.amin(dim=0) - ent_coef * next_log_prob)
    out["critic_loss"], out["critic_grads"] = critic_loss_grads(weights, biases, obs, actions, target, bf16)
    return out


def mixedne_protagonist_phase(
    actor: list[th.Tensor],
    weights: list[th.Tensor],
    biases: list[th.Tensor],
    obs: th.Tensor,
    actions: th.Tensor,
    adv_actions: th.Tensor,
    log_prob: th.Tensor,
    saved: Saved,
    ent_coef: th.Tensor,
    delta: th.Tensor,
    bf16: bool,
) -> tuple[th.Tensor, list[th.Tensor]]:
    """``L_pi = mean[beta log pi(a|s) - min_j Q_j(s, mix(a, a_adv))]`` (``a_adv`` fixed) and its gradients in pi."""
    min_q, d_mixed = min_q_action_grad(weights, biases, obs, _mix(actions, adv_actions, delta), bf16)
    scale = 1.0 / obs.shape[0]
    loss = (ent_coef * log_prob - min_q).mean()
    return loss, actor_grads(actor, saved, -scale * (1.0 - delta) * d_mixed, (ent_coef * scale).expand_as(log_prob), bf16)


def mixedne_adversary_phase(
    actor: list[th.Tensor],
    adversary: list[th.Tensor],
    weights: list[th.Tensor],
    biases: list[th.Tensor],
    obs: th.Tensor,
    eps: th.Tensor,
    adv_actions: th.Tensor,
    adv_log_prob: th.Tensor,
    adv_saved: Saved,
    adv_ent_coef: th.Tensor,
    delta: th.Tensor,
    bf16: bool,
) -> tuple[th.Tensor, list[th.Tensor]]:
    """``L_adv = mean[beta_adv log pi_adv(a_adv|s) + min_j Q_j(s, mix(a, a_adv))]`` with a fresh ``a`` of the updated pi."""
    fresh, _ = sample_actions(actor, obs, eps, bf16)
    min_q, d_mixed = min_q_action_grad(weights, biases, obs, _mix(fresh, adv_actions, delta), bf16)
    scale = 1.0 / obs.shape[0]
    loss = (adv_ent_coef * adv_log_prob + min_q).mean()
    d_log_prob = (adv_ent_coef * scale).expand_as(adv_log_prob)
    return loss, actor_grads(adversary, adv_saved, scale * delta * d_mixed, d_log_prob, bf16)

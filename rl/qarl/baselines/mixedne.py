"""MixedNE-LD: SAC against an action adversary, both trained with Langevin dynamics (specs/qarl.md §7).

Kamalaruban et al., "Robust Reinforcement Learning via Adversarial training with Langevin Dynamics" (NeurIPS
2020, arXiv:2002.06063), as QARL's official code runs it (``sac_ld.py``, ``setup_sgld_sac_agent.py``,
``sgld_experiment.py``): one SAC agent holds the protagonist's policy pi, an adversary policy pi_adv over the same
action space, and one twin critic ``Q(s, a_mix)`` of the executed action ``a_mix = (1 - delta) a + delta a_adv``
(delta = 0.1). Per gradient step, with fresh reparametrised samples ``a ~ pi``, ``a_adv ~ pi_adv``:

    critic:     y = r + gamma (1 - d) [min_j Q'_j(s', mix(a', a'_adv)) - beta log pi(a'|s')]
    protagonist L_pi  = mean[beta log pi(a|s) - min_j Q_j(s, mix(a, a_adv))]           (SGLD step)
    adversary   L_adv = mean[beta_adv log pi_adv(a_adv|s) + min_j Q_j(s, mix(a, a_adv))]  (SGLD step)

Both temperatures are tuned automatically (target entropy -dim A; the protagonist starts at 0.005 like every
agent here, the adversary at exp(-5.30) = 0.005). Both policies use :class:`rl.qarl.baselines.sgld.SGLD` (lr 3e-4, noise
1e-3, RMSprop alpha 0.999) with the official double noise decay (:class:`rl.qarl.baselines.sgld.LangevinNoiseSchedule`);
the critic uses Adam (3e-4). The actors (and temperatures) update once the buffer exceeds
``actor_learning_starts`` (the official 5000 warm-up transitions). The stored transitions carry the executed
(mixed) action; the adversary acts during warm-up too (SB3's uniform warm-up action is mixed with it).

Deviations from the official code: the critic updates before the actors in each step (SB3's order; the official
code updates the actors first); the target's adversary action is drawn from pi_adv (the official ``_next_q``
draws it from the protagonist's policy, a typo); the adversary's action space is the protagonist's normalised
one (the official code gives it the force adversary's bounds, which equal the action bounds on DeepMind
Control); the noise schedule counts fits by the agent's gradient-step counter ``_n_updates`` (saved with every
checkpoint), and the SGLD optimisers' step counts and noise are in their state dicts (saved in the ``.zip``);
``delta`` stays at its training value when evaluating against the adversary (the official per-iteration
evaluation sets it to 0, which makes that curve a nominal one; its final "worst adversary" evaluation keeps it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.utils import polyak_update

from rl.qarl.baselines.action_adversary import mix_actions
from rl.qarl.baselines.sgld import SGLD, LangevinNoiseSchedule
from rl.qarl.sac import QARLSAC


class MixedNESAC(QARLSAC):
    """The MixedNE-LD agent (protagonist, action adversary and shared critic); see the module docstring.

    Args:
        delta: weight of the adversary's action in the executed action (0.1).
        sgld_lr: SGLD step size of both policies (3e-4).
        sgld_noise: initial Langevin noise of both policies (1e-3).
        sgld_alpha: RMSprop smoothing of the SGLD preconditioner (0.999).
        noise_decay: per-step and per-fit noise decay (5e-5).
        adversary_ent_coef_init: initial temperature of the adversary (0.005).
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
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= delta <= 1.0:
            raise ValueError(f"MixedNE-LD delta must be in [0, 1], got {delta!r}")
        if not np.isfinite(adversary_ent_coef_init) or adversary_ent_coef_init <= 0:
            raise ValueError(f"adversary_ent_coef_init must be positive, got {adversary_ent_coef_init!r}")
        self.delta = float(delta)
        self.sgld_lr, self.sgld_noise, self.sgld_alpha = float(sgld_lr), float(sgld_noise), float(sgld_alpha)
        self.noise_decay = float(noise_decay)
        self.adversary_ent_coef_init = float(adversary_ent_coef_init)
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

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """MixedNE-LD's update (module docstring), logged like :meth:`QARLSAC.train` plus ``adversary_*`` keys."""
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
                next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
                next_adv, _ = self.adversary_actor.action_log_prob(data.next_observations)
                next_mixed = mix_actions(next_actions, next_adv, self.delta)
                next_q = th.cat(self.critic_target(data.next_observations, next_mixed), dim=1)
                next_q = th.min(next_q, dim=1, keepdim=True)[0] - ent_coef * next_log_prob.reshape(-1, 1)
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

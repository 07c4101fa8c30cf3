"""QARL's two-player alternation on stable-baselines3 (Reddi et al., ICLR 2024, arXiv:2311.01642).

Each iteration samples one temperature per episode, runs an adversary phase (only the adversary stores and
trains) and a protagonist phase with the same temperatures (only the protagonist stores and trains), gives the
(alpha, discounted return) pairs to the teacher, and evaluates against the adversary at alpha = 0. Each player
has its own replay buffer and its own copy of the game. Baselines (RARL, SAC, fixed temperature, force
curriculum) are switches of the same loop (:mod:`rl.qarl.modes`).

Deviations from the official MushroomRL code: gymnasium MuJoCo v5 tasks instead of DeepMind Control (rewards and
temperatures rescaled, :func:`rl.qarl.modes.rescale`); SB3's SAC with a shared actor trunk for mean and log-std;
each phase ends with one extra env step that is neither stored nor trained on (see :class:`PhaseCallback`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from omegaconf import DictConfig
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, make_output_format

from envs.adversarial.demo import make_game
from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.specs import get_env_spec
from envs.adversarial.views import PlayerView
from rl.common.runs import RunDir
from rl.qarl.checkpoint import CheckpointManager
from rl.qarl.evaluation import run_episodes
from rl.qarl.modes import Mode, Rescaling, force_budget, make_teacher, rescale, resolve_mode
from rl.qarl.sac import QARLSAC, PerSampleTemperatureSAC
from rl.qarl.teacher import SelfPacedGammaTeacher
from rl.qarl.wrappers import EpisodeContext, SACActorPolicy


class PhaseCallback(BaseCallback):
    """Collect the finished episodes of a phase and stop ``learn`` after ``n_episodes``.

    SB3 checks the callback *before* storing a step's transition, so stopping on the step that ends the last
    episode would drop that terminal transition. The callback therefore stops one step later: the extra step
    (the first of a new episode, which the next phase resets anyway) is neither stored nor trained on.
    """

    def __init__(self, n_episodes: int) -> None:
        super().__init__()
        self.n_episodes = n_episodes
        self.episodes: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        if len(self.episodes) >= self.n_episodes:
            return False
        for info in self.locals["infos"]:
            if "qarl_episode" in info:
                self.episodes.append(info["qarl_episode"])
        return True


@dataclass
class TrainerState:
    """Counters that a checkpoint restores."""

    iteration: int = 0
    env_steps: int = 0
    eval_steps: int = 0
    wall_time: float = 0.0
    rng_state: dict[str, Any] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)


class QARLTrainer:
    """Builds both agents, their views and the teacher from a ``TrainQARLConfig`` and runs the alternation."""

    def __init__(self, cfg: DictConfig, run: RunDir, device: th.device) -> None:
        self.cfg, self.run, self.device = cfg, run, device
        self.spec = get_env_spec(cfg.env.name)
        self.mode: Mode = resolve_mode(cfg.algo)
        self.scaling: Rescaling = rescale(cfg.curriculum, self.spec)
        self.rng = np.random.default_rng(cfg.seed)
        self.state = TrainerState()
        self.teacher: SelfPacedGammaTeacher | None = make_teacher(cfg.curriculum, self.scaling) if self.mode.teacher else None
        self.alpha_init = float(cfg.curriculum.nu_init) / self.scaling.rate
        self.alpha_target = float(cfg.curriculum.nu_target) / self.scaling.rate

        self.logger = Logger(str(run.tensorboard), [make_output_format("tensorboard", str(run.tensorboard))])
        self.protagonist_env = self._make_player_env("protagonist")
        self.protagonist = self._make_agent(self.protagonist_env, "protagonist")
        self.adversary_env: EpisodeContext | None = None
        self.adversary: QARLSAC | None = None
        if self.mode.adversary:
            self.adversary_env = self._make_player_env("adversary")
            self.adversary = self._make_agent(self.adversary_env, "adversary")
            self.protagonist_env.view.set_opponent(SACActorPolicy(self.adversary))
            self.adversary_env.view.set_opponent(SACActorPolicy(self.protagonist))
        self.eval_game = self._make_game()
        self.checkpoints = CheckpointManager(run.checkpoints, keep=int(cfg.budget.keep_checkpoints))

    # ----------------------------------------------------------------- construction
    def _make_game(self) -> AdversarialMujocoEnv:
        env_cfg = dict(self.cfg.env)
        env_cfg["max_episode_steps"] = int(self.cfg.budget.horizon)
        return make_game(env_cfg)

    @property
    def max_force(self) -> float:
        """The adversary's force bound in newtons."""
        return self.eval_game.force_bound

    def context_of(self, alpha: float) -> tuple[float, float | None]:
        """Observation entry and force limit of an episode at temperature ``alpha``."""
        if self.mode.context == "force":
            budget = force_budget(alpha, self.alpha_init, self.alpha_target, self.max_force)
            return budget, budget
        return alpha, None

    def _make_player_env(self, player: str) -> EpisodeContext:
        game = self._make_game()
        bounds = (0.0, game.force_bound) if self.mode.context == "force" else (0.0, float("inf"))
        view = PlayerView(game, player=player, append_context=self.mode.context != "none", context_bounds=bounds)
        context_of = self.context_of if self.mode.context != "none" else None
        return EpisodeContext(view, gamma=float(self.cfg.sac.gamma), context_of=context_of)

    def _make_agent(self, env: EpisodeContext, player: str) -> QARLSAC:
        sac = self.cfg.sac
        per_sample = player == "adversary" and self.mode.per_sample_temperature
        cls = PerSampleTemperatureSAC if per_sample else QARLSAC
        ent_coef: str | float = (
            1.0 if per_sample else ("auto" if player == "adversary" else f"auto_{sac.protagonist_ent_coef_init}")
        )
        model = cls(
            "MlpPolicy",
            env,
            learning_rate=float(sac.critic_lr),
            actor_lr=float(sac.actor_lr),
            critic_lr=float(sac.critic_lr),
            ent_coef_lr=float(sac.ent_coef_lr),
            buffer_size=int(sac.buffer_size),
            learning_starts=int(sac.learning_starts),
            actor_learning_starts=int(sac.actor_learning_starts),
            batch_size=int(sac.batch_size),
            tau=float(sac.tau),
            gamma=float(sac.gamma),
            train_freq=(int(sac.train_freq), "step"),
            gradient_steps=int(sac.gradient_steps),
            ent_coef=ent_coef,
            policy_kwargs={"net_arch": list(sac.net_arch)},
            log_prefix="train" if player == "protagonist" else "adversary",
            seed=int(self.cfg.seed) + (0 if player == "protagonist" else 1),
            device=self.device,
            verbose=0,
        )
        model.set_logger(self.logger)
        return model

    # ----------------------------------------------------------------- the loop
    def sample_alphas(self, n: int) -> np.ndarray:
        """Temperatures of the next ``n`` episodes (all players' phases use the same ones)."""
        if self.teacher is not None:
            return self.teacher.sample(n, self.rng)
        if self.mode.context == "temperature":  # fixed temperature: the target distribution's mean
            return np.full(n, self.alpha_target)
        return np.full(n, np.nan)

    def phase(self, model: QARLSAC, env: EpisodeContext, alphas: np.ndarray) -> list[dict[str, float]]:
        """Run ``len(alphas)`` episodes in which only ``model`` stores transitions and trains."""
        env.schedule(alphas)
        assert model.env is not None
        model._last_obs = model.env.reset()  # type: ignore[assignment]  # start the phase with the first alpha
        model._last_episode_starts = np.ones((model.env.num_envs,), dtype=bool)
        callback = PhaseCallback(len(alphas))
        model.learn(total_timesteps=10**12, callback=callback, reset_num_timesteps=False, log_interval=None)  # type: ignore[arg-type]
        self.state.env_steps += sum(int(ep["length"]) for ep in callback.episodes)
        return callback.episodes

    def iteration(self) -> dict[str, float]:
        """One alternation iteration; returns the scalars logged for it."""
        budget = self.cfg.budget
        alphas = self.sample_alphas(int(budget.episodes_per_phase))
        stats: dict[str, float] = {}
        episodes = []
        if self.adversary is not None and self.adversary_env is not None:
            adv_eps = self.phase(self.adversary, self.adversary_env, alphas)
            episodes += adv_eps
            stats["adversary/episode_return"] = -float(np.mean([ep["return"] for ep in adv_eps]))
            stats["adversary/protagonist_return"] = float(np.mean([ep["return"] for ep in adv_eps]))
        pro_eps = self.phase(self.protagonist, self.protagonist_env, alphas)
        episodes += pro_eps
        stats["rollout/protagonist_return"] = float(np.mean([ep["return"] for ep in pro_eps]))
        stats["rollout/episode_length"] = float(np.mean([ep["length"] for ep in pro_eps]))
        if self.mode.context != "none":
            stats["curriculum/temperature_mean"] = float(np.mean(alphas))
            stats["curriculum/temperature_std"] = float(np.std(alphas))
        if self.mode.context == "force":
            stats["curriculum/force_budget_mean"] = float(np.mean([self.context_of(a)[0] for a in alphas]))
        self.state.iteration += 1
        if self.teacher is not None:
            stats |= self._teach(episodes)
        return stats

    def _teach(self, episodes: list[dict[str, float]]) -> dict[str, float]:
        assert self.teacher is not None
        teacher = self.teacher
        teacher.add([ep["alpha"] for ep in episodes], [ep["discounted_return"] for ep in episodes])
        stats = {
            "curriculum/nu": teacher.nu,
            "curriculum/distribution_mean": teacher.mean,
            "curriculum/distribution_std": teacher.std,
            "curriculum/kl_to_target": teacher.kl_to_target,
            "curriculum/threshold": teacher.threshold,
        }
        if self.state.iteration % int(self.cfg.curriculum.update_every) == 0 and teacher.ready:
            update = teacher.update()
            stats |= {
                "curriculum/performance": update.performance,
                "curriculum/frozen": float(update.frozen),
                "curriculum/kl_step": update.kl_step,
                "curriculum/nu": teacher.nu,
                "curriculum/distribution_mean": teacher.mean,
                "curriculum/distribution_std": teacher.std,
                "curriculum/kl_to_target": teacher.kl_to_target,
            }
        return stats

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, n_episodes: int, against_adversary: bool) -> float:
        """Mean undiscounted return of the protagonist (sampled actions), nominal or against the alpha=0 adversary.

        The temperature entry is 0 (the rational adversary); the force curriculum evaluates at full force.
        Nothing is stored in any replay buffer. The loop is :func:`rl.qarl.evaluation.run_episodes`, shared with
        the robustness evaluation.
        """
        use_adversary = against_adversary and self.adversary is not None
        base = int(self.cfg.seed) * 100_003 + 7919 * self.state.iteration
        result = run_episodes(
            self.eval_game,
            self.protagonist,
            self.mode.context,
            seeds=[base + episode for episode in range(n_episodes)],
            adversary=self.adversary if use_adversary else None,
        )
        self.state.eval_steps += int(result.lengths.sum())
        return float(np.mean(result.returns))

    def eval_stats(self) -> dict[str, float]:
        """Nominal return and return against the adversary at temperature 0."""
        n = int(self.cfg.budget.eval_episodes)
        stats = {"eval/return_nominal": self.evaluate(n, against_adversary=False)}
        if self.adversary is not None:
            stats["eval/return_vs_adversary"] = self.evaluate(n, against_adversary=True)
        self.state.last_eval = stats
        return stats

    # ----------------------------------------------------------------- checkpoints
    def agents(self) -> dict[str, QARLSAC]:
        """The learning agents by player name."""
        agents = {"protagonist": self.protagonist}
        if self.adversary is not None:
            agents["adversary"] = self.adversary
        return agents

    def check_finite(self) -> None:
        """Raise if any network parameter is NaN or infinite (so no bad checkpoint is written)."""
        for name, agent in self.agents().items():
            for tensor in agent.policy.parameters():
                if not th.isfinite(tensor).all():
                    raise FloatingPointError(f"the {name}'s parameters are not finite")

    def save(self) -> Path:
        """Write a checkpoint of both agents, the teacher and the trainer's counters."""
        self.check_finite()
        self.state.rng_state = dict(self.rng.bit_generator.state)
        extra = {
            "trainer": self.state.__dict__,
            "teacher": self.teacher.state_dict() if self.teacher is not None else None,
            "counters": {
                name: {"num_timesteps": a.num_timesteps, "n_updates": a._n_updates} for name, a in self.agents().items()
            },
        }
        return self.checkpoints.save(self.state.iteration, self.agents(), extra, bool(self.cfg.save_replay_buffer))

    def load(self, checkpoint: Path) -> None:
        """Restore agents, teacher and counters from a checkpoint folder."""
        extra = json.loads((checkpoint / "state.json").read_text())
        for name, agent in self.agents().items():
            agent.set_parameters(str(checkpoint / f"{name}.zip"), device=self.device)
            counters = extra["counters"][name]
            agent.num_timesteps, agent._n_updates = int(counters["num_timesteps"]), int(counters["n_updates"])
            buffer = checkpoint / f"{name}_replay_buffer.pkl"
            if buffer.exists():
                agent.load_replay_buffer(str(buffer))
        self.state = TrainerState(**extra["trainer"])
        if self.state.rng_state:
            self.rng.bit_generator.state = self.state.rng_state
        if self.teacher is not None and extra["teacher"] is not None:
            self.teacher = SelfPacedGammaTeacher.from_state_dict(extra["teacher"])

    def log(self, stats: dict[str, float]) -> None:
        """Record ``stats`` and dump everything (agents' losses included) at the current env step."""
        for key, value in stats.items():
            self.logger.record(key, value)
        self.logger.dump(step=self.state.env_steps)

    def close(self) -> None:
        """Close loggers and environments."""
        self.logger.close()
        for env in (self.protagonist_env, self.adversary_env):
            if env is not None:
                env.close()
        self.eval_game.close()

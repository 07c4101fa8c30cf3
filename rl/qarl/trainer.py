"""QARL's two-player alternation on stable-baselines3 (Reddi et al., ICLR 2024, arXiv:2311.01642).

Each iteration samples one temperature per episode, runs an adversary phase (only the adversary stores and
trains) and a protagonist phase with the same temperatures (only the protagonist stores and trains), gives the
(alpha, discounted return) pairs to the teacher, and evaluates against the adversary at alpha = 0. Each player
has its own replay buffer and its own copy of the game. Baselines (RARL, SAC, fixed temperature, force
curriculum) are switches of the same loop (:mod:`rl.qarl.modes`).

Deviations from the official MushroomRL code: gymnasium MuJoCo v5 tasks instead of DeepMind Control (rewards and
temperatures rescaled, :func:`rl.qarl.modes.rescale`); SB3's SAC with a shared actor trunk for mean and log-std;
each phase ends with one extra env step that is neither stored nor trained on (see :class:`PhaseCallback`).

Budgets count **protagonist** env steps (``TrainerState.protagonist_steps``) for every algorithm, so methods are
compared at equal protagonist samples (as the paper's SAC baseline is: 500k protagonist steps); the logs' x-axis
is the same count, and ``time/env_steps_total`` adds the adversary's steps.

Checkpoints and resume: :meth:`QARLTrainer.state_dict` holds everything the run's future depends on (agents with
optimisers and replay buffers, SB3's counters, the teacher, every random generator, the envs' contexts), and
:meth:`QARLTrainer.load_state_dict` restores it, so an interrupted and resumed run continues bit for bit. A
component added to a run (an optimiser, a schedule) joins by registering itself in ``self.components`` (any
object with ``state_dict()``/``load_state_dict(state)``); its state is then checkpointed, restored on resume and
rolled back with the rest. Each iteration starts from a cheap in-memory snapshot (:meth:`QARLTrainer.rollback`),
so a run stopped mid-iteration checkpoints the last *completed* iteration.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch as th
from omegaconf import DictConfig
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, make_output_format

from envs.adversarial.demo import make_game
from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.episodes import run_episodes
from envs.adversarial.specs import get_env_spec
from envs.common.runs import RunDir
from rl.qarl.agents import agent_spec, player_view
from rl.qarl.baselines.action_adversary import CATSAC, BudgetSchedule
from rl.qarl.baselines.temperature_schedules import LinearTemperatureSchedule
from rl.qarl.checkpoint import CheckpointManager, load_resume_state
from rl.qarl.interrupts import StopRequested
from rl.qarl.modes import (
    Mode,
    Rescaling,
    Teacher,
    attacked_protagonist,
    budget_schedule,
    evaluation_alpha,
    force_budget,
    make_teacher,
    rescale,
    resolve_mode,
    teacher_from_state,
)
from rl.qarl.progress import PROGRESS_FILE, ProgressCSV
from rl.qarl.sac import QARLSAC
from rl.qarl.state import agent_state, env_state, global_rng_state, load_agent_state, load_env_state, load_global_rng_state
from rl.qarl.update_mode import train_update_mode
from rl.qarl.wrappers import EpisodeContext, SACActorPolicy

# The layout of a checkpoint's resume state (``resume.pt``); a different version cannot be resumed.
STATE_VERSION = 2


class PhaseCallback(BaseCallback):
    """Collect the finished episodes of a phase and stop ``learn`` after ``n_episodes``.

    SB3 checks the callback *before* storing a step's transition, so stopping on the step that ends the last
    episode would drop that terminal transition. The callback therefore stops one step later: the extra step
    (the first of a new episode, which the next phase resets anyway) is neither stored nor trained on.
    """

    def __init__(self, n_episodes: int, should_stop: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self.n_episodes = n_episodes
        self.episodes: list[dict[str, float]] = []
        self.should_stop = should_stop
        self.stopped = False

    def _on_step(self) -> bool:
        if self.should_stop():
            self.stopped = True
            return False
        if len(self.episodes) >= self.n_episodes:
            return False
        for info in self.locals["infos"]:
            if "qarl_episode" in info:
                self.episodes.append(info["qarl_episode"])
        return True


class Stateful(Protocol):
    """A component whose state a checkpoint holds (torch optimisers and modules qualify)."""

    def state_dict(self) -> Any:
        """The component's state (picklable)."""

    def load_state_dict(self, state: Any) -> Any:
        """Restore what :meth:`state_dict` returned."""


@dataclass
class TrainerState:
    """Counters that a checkpoint restores.

    Attributes:
        iteration: completed iterations.
        env_steps: training env steps of both players (logged as ``time/env_steps_total``).
        protagonist_steps: training env steps of the protagonist's phases: what budgets count and logs plot against.
        eval_steps: env steps spent in evaluation.
        wall_time: seconds spent in iterations (summed over resumes).
        rng_state: the state of the temperature generator.
        last_eval: the last evaluation's returns.
        update_mode: the SAC update's resolved mode when the state was taken (``engine``, ``compile``,
            ``precision``), so that a resume whose ``auto`` keys resolve otherwise (another machine, another code
            version) says so; empty in checkpoints written before it existed.
    """

    iteration: int = 0
    env_steps: int = 0
    protagonist_steps: int = 0
    eval_steps: int = 0
    wall_time: float = 0.0
    rng_state: dict[str, Any] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)
    update_mode: dict[str, Any] = field(default_factory=dict)


class QARLTrainer:
    """Builds both agents, their views and the teacher from a ``TrainQARLConfig`` and runs the alternation."""

    def __init__(self, cfg: DictConfig, run: RunDir, device: th.device) -> None:
        self.cfg, self.run, self.device = cfg, run, device
        self.spec = get_env_spec(cfg.env.name)
        self.mode: Mode = resolve_mode(cfg.algo)
        # sac and rarl use no temperature: their curriculum values are not read (nor required, e.g. on Swimmer)
        uses_alpha = self.mode.context != "none" or self.mode.teacher
        self.scaling: Rescaling = rescale(cfg.curriculum, self.spec) if uses_alpha else Rescaling(1.0, 1.0, float("nan"))
        self.rng = np.random.default_rng(cfg.seed)
        self.state = TrainerState()
        iterations = int(cfg.budget.iterations)
        self.teacher: Teacher | None = (
            make_teacher(cfg.curriculum, self.scaling, cfg.algo, iterations) if self.mode.teacher else None
        )
        self.budget_schedule: BudgetSchedule | None = (
            budget_schedule(cfg.algo, iterations) if self.mode.action_adversary == "cat" else None
        )
        self.alpha_init = float(cfg.curriculum.nu_init) / self.scaling.rate
        self.alpha_target = float(cfg.curriculum.nu_target) / self.scaling.rate

        # the scalars go to TensorBoard and to progress.csv (the report reads the CSV: rl.qarl.progress)
        self.progress = ProgressCSV(run.root / PROGRESS_FILE)
        self.logger = Logger(str(run.tensorboard), [make_output_format("tensorboard", str(run.tensorboard)), self.progress])
        self.protagonist_env = self._make_player_env("protagonist")
        self.update_mode = train_update_mode(cfg, self.protagonist_env, self.mode.adversary, device)  # sac.engine etc.
        self.protagonist = self._make_agent(self.protagonist_env, "protagonist")
        self.adversary_env: EpisodeContext | None = None
        self.adversary: QARLSAC | None = None
        if self.mode.adversary:
            self.adversary_env = self._make_player_env("adversary")
            self.adversary = self._make_agent(self.adversary_env, "adversary")
            self.protagonist_env.view.set_opponent(SACActorPolicy(self.adversary))
            self.adversary_env.view.set_opponent(SACActorPolicy(self.protagonist))
        self.eval_game = self._make_game()
        self.checkpoints = CheckpointManager(
            run.checkpoints, keep=int(cfg.budget.keep_checkpoints), keep_full=str(cfg.budget.get("keep_full", "latest"))
        )
        # more checkpointed components (see the module docstring), and the stop request polled between env steps
        self.components: dict[str, Stateful] = {}
        self.should_stop: Callable[[], bool] = lambda: False
        self._snapshot: dict[str, Any] | None = None

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
        view = player_view(self._make_game(), self.mode, player)
        context_of = self.context_of if self.mode.context != "none" else None
        return EpisodeContext(view, gamma=float(self.cfg.sac.gamma), context_of=context_of)

    def _make_agent(self, env: EpisodeContext, player: str) -> QARLSAC:
        cls, kwargs = agent_spec(self.cfg, self.mode, player)
        model = cls("MlpPolicy", env, device=self.device, **kwargs, **self.update_mode.agent_kwargs())
        model.set_logger(self.logger)
        if player == "adversary" and self.mode.context == "force":
            game = env.view.game  # store the applied (clipped) force, as the official code does
            model.action_limit = lambda: game.force_limit / game.force_bound if game.force_bound > 0 else 0.0
        return model

    # ----------------------------------------------------------------- the loop
    def sample_alphas(self, n: int) -> np.ndarray:
        """Temperatures of the next ``n`` episodes (all players' phases use the same ones)."""
        if self.teacher is not None:
            if self.mode.single_temperature:  # qarl_single: one draw for all episodes of the iteration
                return np.repeat(self.teacher.sample(1, self.rng), n)
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
        callback = PhaseCallback(len(alphas), self.should_stop)
        model.learn(total_timesteps=10**12, callback=callback, reset_num_timesteps=False, log_interval=None)  # type: ignore[arg-type]
        if callback.stopped:
            raise StopRequested
        steps = sum(int(ep["length"]) for ep in callback.episodes)
        self.state.env_steps += steps
        if model is self.protagonist:
            self.state.protagonist_steps += steps
        return callback.episodes

    def iteration(self) -> dict[str, float]:
        """One alternation iteration; returns the scalars logged for it.

        Raises:
            StopRequested: ``should_stop()`` became true during a phase; :meth:`rollback` restores the state of
                the iteration's start.
        """
        budget = self.cfg.budget
        self._snapshot = self.state_dict(buffers="mark")
        stats: dict[str, float] = self.advance_schedules()
        alphas = self.sample_alphas(int(budget.episodes_per_phase))
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
        self._snapshot = None  # the iteration is complete: nothing to roll back
        return stats

    def schedule_iteration(self) -> int:
        """The iteration index of the iteration-based schedules (CAT's budget, ``qarl_linear``'s alpha).

        The iteration count; or, when ``budget.max_env_steps`` caps the run and this is larger, the same share of
        ``budget.iterations`` as the protagonist's steps are of the cap, so the schedules span the run that
        actually happens (without a cap this is the official per-iteration schedule).
        """
        i, cap = self.state.iteration, self.cfg.budget.max_env_steps
        if cap is None:
            return i
        return max(i, int(self.state.protagonist_steps / int(cap) * int(self.cfg.budget.iterations)))

    def advance_schedules(self) -> dict[str, float]:
        """Set the iteration-based schedules for the coming iteration; returns what to log."""
        k, stats = self.schedule_iteration(), {}
        if isinstance(self.teacher, LinearTemperatureSchedule):
            self.teacher.iteration = k
        if self.budget_schedule is not None:  # CAT: the MAS budget of this iteration
            assert isinstance(self.protagonist, CATSAC)
            self.budget_schedule.iteration = k
            self.protagonist.attack.budget = stats["curriculum/cat_budget"] = self.budget_schedule.budget()
        return stats

    def _teach(self, episodes: list[dict[str, float]]) -> dict[str, float]:
        assert self.teacher is not None
        teacher = self.teacher
        teacher.add([ep["alpha"] for ep in episodes], [ep["discounted_return"] for ep in episodes])
        stats = teacher.summary()
        if self.state.iteration % int(self.cfg.curriculum.update_every) == 0 and teacher.ready:
            update = teacher.update()
            stats |= {
                "curriculum/performance": update.performance,
                "curriculum/frozen": float(update.frozen),
                "curriculum/kl_step": update.kl_step,
            }
            stats |= teacher.summary()
        return stats

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, n_episodes: int, against_adversary: bool) -> float:
        """Mean undiscounted return of the protagonist (sampled actions), nominal or against the alpha=0 adversary.

        The temperature entry is 0 (the rational adversary; ``fixed_temp``: its training alpha,
        :func:`rl.qarl.modes.evaluation_alpha`); the force curriculum evaluates at full force.
        Nothing is stored in any replay buffer. The loop is :func:`envs.adversarial.episodes.run_episodes`, shared with
        the robustness evaluation.
        """
        use_adversary = against_adversary and self.adversary is not None
        protagonist: Any = self.protagonist
        if against_adversary and self.mode.action_adversary != "none":  # MixedNE-LD / CAT: action adversary
            protagonist = attacked_protagonist(self.protagonist, self.cfg.algo)
        base = int(self.cfg.seed) * 100_003 + 7919 * self.state.iteration
        result = run_episodes(
            self.eval_game,
            protagonist,
            self.mode.context,
            seeds=[base + episode for episode in range(n_episodes)],
            adversary=self.adversary if use_adversary else None,
            alpha=evaluation_alpha(self.cfg),
        )
        self.state.eval_steps += int(result.lengths.sum())
        return float(np.mean(result.returns))

    def eval_stats(self) -> dict[str, float]:
        """Nominal return and return against the adversary at temperature 0."""
        n = int(self.cfg.budget.eval_episodes)
        stats = {"eval/return_nominal": self.evaluate(n, against_adversary=False)}
        if self.adversary is not None or self.mode.action_adversary != "none":
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

    def envs(self) -> dict[str, EpisodeContext]:
        """The training envs by player name."""
        envs = {"protagonist": self.protagonist_env}
        if self.adversary_env is not None:
            envs["adversary"] = self.adversary_env
        return envs

    def state_dict(self, buffers: str = "full") -> dict[str, Any]:
        """Everything the run's future depends on (see the module docstring).

        Args:
            buffers: ``full`` stores the replay buffers' rows (checkpoints); ``mark`` only what undoing one
                iteration's additions needs (the in-memory snapshot of :meth:`rollback`).
        """
        self.state.rng_state = copy.deepcopy(dict(self.rng.bit_generator.state))
        self.state.update_mode = self.update_mode.as_dict()
        max_rows = int(self.cfg.budget.episodes_per_phase) * int(self.cfg.budget.horizon) + 1
        return {
            "version": STATE_VERSION,
            "trainer": copy.deepcopy(asdict(self.state)),
            "teacher": copy.deepcopy(self.teacher.state_dict()) if self.teacher is not None else None,
            "algo": copy.deepcopy(self.algo_state_dict()),
            "agents": {name: agent_state(a, buffers, max_rows) for name, a in self.agents().items()},
            "envs": {name: env_state(env) for name, env in self.envs().items()},
            "components": {name: copy.deepcopy(c.state_dict()) for name, c in self.components.items()},
            "global_rng": global_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (a checkpoint's, or the snapshot of :meth:`rollback`)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"resume state version {state.get('version')!r} is not {STATE_VERSION} (written by another version)"
            )
        if set(state["agents"]) != set(self.agents()) or set(state["components"]) != set(self.components):
            raise ValueError(
                f"the checkpoint holds agents {sorted(state['agents'])} and components {sorted(state['components'])}; "
                f"this run has {sorted(self.agents())} and {sorted(self.components)}"
            )
        for name, agent in self.agents().items():
            load_agent_state(agent, state["agents"][name])
        for name, env in self.envs().items():
            load_env_state(env, state["envs"][name])
        for name, component in self.components.items():
            component.load_state_dict(copy.deepcopy(state["components"][name]))
        self.state = TrainerState(**copy.deepcopy(state["trainer"]))
        if self.state.update_mode and self.state.update_mode != self.update_mode.as_dict():
            print(
                f"note: the SAC update's mode was {self.state.update_mode} when this state was saved and resolves to "
                f"{self.update_mode.as_dict()} now: the run continues, but not bit for bit as it would have in its own mode"
            )
        self.state.update_mode = self.update_mode.as_dict()
        self.rng.bit_generator.state = copy.deepcopy(self.state.rng_state)
        if self.teacher is not None and state["teacher"] is not None:
            self.teacher = teacher_from_state(copy.deepcopy(state["teacher"]))
        self.load_algo_state(copy.deepcopy(state["algo"] or {}))
        load_global_rng_state(state["global_rng"])

    def rollback(self) -> None:
        """Return to the state at the start of the current iteration (after an interrupt mid-iteration)."""
        if self._snapshot is not None:
            self.load_state_dict(self._snapshot)
            self._snapshot = None

    def save(self) -> Path:
        """Checkpoint the current (consistent) state: policies, ``state.json`` and the full resume state."""
        self.check_finite()
        resume_state = self.state_dict(buffers="full")
        summary = {
            "trainer": resume_state["trainer"],
            "teacher": resume_state["teacher"],
            "algo": resume_state["algo"],
            "counters": {
                name: {"num_timesteps": a.num_timesteps, "n_updates": a._n_updates} for name, a in self.agents().items()
            },
        }
        return self.checkpoints.save(self.state.iteration, self.agents(), summary, resume_state)

    def load(self, checkpoint: Path, verify: bool = True) -> None:
        """Restore the full state of a checkpoint folder (see :meth:`state_dict`); ``verify``: check its SHA-256 first.

        ``progress.csv`` drops the rows after the checkpoint's step.
        """
        self.load_state_dict(load_resume_state(checkpoint, self.device, verify=verify))
        self.progress.truncate(self.state.protagonist_steps)

    def algo_state_dict(self) -> dict[str, Any]:
        """Method-specific schedules for the checkpoint (``extra["algo"]``): CAT's budget curriculum.

        MixedNE-LD's SGLD state is in the optimisers' state dicts inside ``protagonist.zip`` and its noise
        schedule follows the agent's ``n_updates`` counter, so it needs nothing here.
        """
        state: dict[str, Any] = {}
        if self.budget_schedule is not None:
            state["cat_budget"] = self.budget_schedule.state_dict()
        return state

    def load_algo_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`algo_state_dict`."""
        if self.budget_schedule is not None and "cat_budget" in state:
            self.budget_schedule.load_state_dict(state["cat_budget"])

    def log(self, stats: dict[str, float]) -> None:
        """Record ``stats`` and dump everything (agents' losses included) at the protagonist's env step count.

        Every algorithm logs against protagonist steps, so curves compare methods at equal protagonist samples;
        ``time/env_steps_total`` (both players) and ``time/protagonist_steps`` are logged too.
        """
        for key, value in stats.items():
            self.logger.record(key, value)
        self.logger.record("time/env_steps_total", self.state.env_steps)
        self.logger.record("time/protagonist_steps", self.state.protagonist_steps)
        for agent in self.agents().values():  # the fast update's losses (read here, not per update; raises if not finite)
            agent.flush_training_stats()
        self.logger.dump(step=self.state.protagonist_steps)

    def close(self) -> None:
        """Close loggers and environments."""
        self.logger.close()
        for env in (self.protagonist_env, self.adversary_env):
            if env is not None:
                env.close()
        self.eval_game.close()

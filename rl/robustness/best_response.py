"""A fresh adversary trained against a frozen protagonist: the worst-case evaluation and the rationality check.

The paper's code evaluates each method against its own co-trained adversary (``n_total_iterations_worst_adversary
= 0``, specs/qarl.md §8 and §10.7), which cannot be compared across methods and does not exist for plain SAC. Here
a new stable-baselines3 ``SAC`` agent plays the adversary's side of the two-player game
(:class:`envs.adversarial.views.AdversaryView`, reward ``-r``, the run's bodies, axes and force bound) against the
frozen protagonist, which acts with sampled actions and sees what it sees in evaluation (temperature 0 for QARL,
the full force bound for the force curriculum, nothing extra otherwise; the adversary observes the same vector).
It is evaluated greedily (``deterministic=True``, the temperature-0 limit of its policy). Its updates run on the
project's fast SAC path (:class:`rl.qarl.sac.QARLSAC` with ``sac_engine="fast"``: SB3's SAC, same losses, same
``.zip``; ``engine``/``compile``/``precision`` as for ``train_qarl``, resolved for its budget). It trains with SB3's
learned temperature started at 0.005 (``ent_coef="auto_0.005"``, as every SAC agent of the official code): a
fixed ``ent_coef=0`` was measured to collapse its exploration and never find the push that topples a trained
InvertedPendulum (benchmarks/README.md), while a small temperature finds it. A fixed positive ``ent_coef`` gives the
quantal adversaries of the rationality check (:mod:`rl.robustness.calibration`).

``evaluate_run`` trains ``seeds`` such attackers (seeds ``seed, seed + 1, ...``) and evaluates them next to the fixed
strategies of :mod:`rl.robustness.fixed_attacks`: one SAC seed can miss the attack a constant push finds (issue 21).

Trained attackers are kept next to the run, ``<run>/best_response/<key>/adversary_<steps>.zip``, where ``key``
names the settings and the protagonist checkpoint they were trained against; a later evaluation with the same
settings and budget loads them instead of training again. Extra budgets (``snapshots``) are saved along the way of
one training run: SAC's learning rates are constant, so the adversary saved at ``k`` steps of a longer run is the
one a run with budget ``k`` would have produced. The attacker's learning curve (episode returns against its own
env steps) and its settings go to ``<run>/best_response/<key>/tensorboard``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.episodes import context_value
from envs.adversarial.policies import SupportsPredict
from envs.adversarial.views import AdversaryView

LOCK_FILE = ".lock"  # in an attacker's folder, held while it is trained


@dataclass(frozen=True)
class AttackSettings:
    """How the fresh adversary is trained (plain SB3 SAC).

    Attributes:
        steps: the attacker's training budget in env steps.
        snapshots: smaller budgets also saved (and evaluated) along the way.
        ent_coef: the entropy temperature while training: a number (fixed) or SB3's ``"auto"`` / ``"auto_<init>"``.
        deterministic: evaluate it with its greedy action (the temperature-0 adversary); ``False``: sampled.
        learning_starts: env steps of uniformly random actions before the first update.
        batch_size: SAC's batch size.
        learning_rate: actor, critic learning rate.
        net_arch: hidden layers of actor and critics.
        train_freq: env steps between updates.
        gradient_steps: gradient steps per update.
        seed: seeds torch, NumPy and the attacker's env; with ``seeds`` attackers, the k-th is trained with
            ``seed + k``.
        seeds: how many attackers are trained (each with its own seed) and evaluated.
        fixed: also evaluate the fixed strategies of :mod:`rl.robustness.fixed_attacks` (constant pushes, bang-bang
            on the velocity); the best found attack is the minimum over them and the learned attackers.
        engine, compile, precision: how its SAC update runs (:mod:`rl.qarl.update_mode`); they change the rounding,
            not the attacker, so they are not part of :meth:`key`.
    """

    steps: int = 20_000
    snapshots: tuple[int, ...] = ()
    ent_coef: float | str = "auto_0.005"
    deterministic: bool = True
    learning_starts: int = 1000
    batch_size: int = 256
    learning_rate: float = 3e-4
    net_arch: tuple[int, ...] = (256, 256)
    train_freq: int = 1
    gradient_steps: int = 1
    seed: int = 0
    seeds: int = 2
    fixed: bool = True
    engine: str = "fast"
    compile: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 1,
            "learning_starts": self.learning_starts >= 0,
            "batch_size": self.batch_size >= 1,
            "learning_rate": np.isfinite(self.learning_rate) and self.learning_rate > 0,
            "train_freq": self.train_freq >= 1,
            "gradient_steps": self.gradient_steps >= 1,
            "seed": self.seed >= 0,
            "seeds": self.seeds >= 1,
            "ent_coef": _valid_ent_coef(self.ent_coef),
            "net_arch": len(self.net_arch) > 0 and all(int(n) >= 1 for n in self.net_arch),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"best_response.{name} is out of range: got {getattr(self, name)!r}")
        if any(int(s) < 1 or int(s) > self.steps for s in self.snapshots):
            raise ValueError(f"best_response.snapshots must lie in [1, steps={self.steps}], got {list(self.snapshots)}")
        from rl.qarl.update_mode import COMPILES, ENGINES, PRECISIONS, normalise_choice

        for key, choices in (("engine", ENGINES), ("compile", COMPILES), ("precision", PRECISIONS)):
            object.__setattr__(self, key, normalise_choice(getattr(self, key), choices, f"best_response.{key}"))

    @property
    def attacker_seeds(self) -> list[int]:
        """The seed of each trained attacker: ``seed, seed + 1, ..., seed + seeds - 1``."""
        return [int(self.seed) + k for k in range(int(self.seeds))]

    @property
    def budgets(self) -> list[int]:
        """Every budget saved: the snapshots and ``steps``, ascending."""
        return sorted({int(s) for s in self.snapshots} | {int(self.steps)})

    def key(self, checkpoint: str, horizon: int) -> str:
        """Folder name of these settings against one protagonist checkpoint and horizon (budgets excluded)."""
        data = asdict(self)
        # budgets, the evaluation mode, what else is evaluated and the update's mechanics: the same attacker
        for name in ("steps", "snapshots", "deterministic", "seeds", "fixed", "engine", "compile", "precision"):
            data.pop(name)
        data |= {"checkpoint": checkpoint, "horizon": int(horizon)}
        digest = hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"ent{self.ent_coef}_s{self.seed}_{digest}"


def _parse_ent_coef(value: Any) -> float | str:
    """A config value as SB3's ``ent_coef``: a float, or ``"auto"`` / ``"auto_<init>"`` unchanged."""
    text = str(value).strip()
    if text.startswith("auto"):
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"best_response.ent_coef must be a number >= 0, 'auto' or 'auto_<init>', got {value!r}") from None


def _valid_ent_coef(value: float | str) -> bool:
    if isinstance(value, str):
        if value == "auto":
            return True
        try:
            init = float(value.removeprefix("auto_")) if value.startswith("auto_") else -1.0
        except ValueError:
            return False
        return bool(np.isfinite(init) and init > 0)
    return bool(np.isfinite(value) and value >= 0)


class Greedy:
    """An SB3 model acting with its deterministic (mean) action: the temperature-0 limit of its policy."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        """The model's greedy action, whatever ``deterministic`` is asked."""
        return self.model.predict(obs, state, episode_start, deterministic=True)


def attacker_view(game: AdversarialMujocoEnv, protagonist: SupportsPredict, context: str, alpha: float = 0.0) -> AdversaryView:
    """The adversary's side of ``game`` against the frozen ``protagonist`` seeing its evaluation context (``alpha``)."""
    extra = context_value(context, game, alpha)
    game.set_force_limit(game.force_bound)
    if extra is None:
        return AdversaryView(game, opponent=protagonist)
    return AdversaryView(game, opponent=protagonist, append_context=True, context=extra, context_bounds=(extra, extra))


def train_attacker(
    view: AdversaryView,
    settings: AttackSettings,
    out_dir: str | Path,
    device: str = "cpu",
    progress: bool = False,
    description: str = "",
) -> dict[int, Path]:
    """Train a fresh SAC adversary in ``view``, saving ``adversary_<k>.zip`` at every budget ``k`` into ``out_dir``.

    Returns:
        budget -> saved model path.
    """
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    from envs.common import atomic_save, log_config, make_writer, seed_everything
    from rl.qarl.sac import QARLSAC
    from rl.qarl.update_mode import RunEstimate, estimate_update_seconds, resolve_update_mode, updates_of

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(int(settings.seed))
    writer = make_writer(out)
    log_config(writer, asdict(settings) | {"description": description}, tag="best_response/settings")
    writer.add_scalar("best_response/budget", int(settings.steps), 0)
    budgets = settings.budgets
    paths = {k: out / f"adversary_{k}.zip" for k in budgets}

    class Recorder(BaseCallback):
        """Logs each finished episode and saves the snapshots."""

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    ret = float(info["episode"]["r"])
                    writer.add_scalar("best_response/adversary_return", ret, self.num_timesteps)
                    writer.add_scalar("best_response/protagonist_return", -ret, self.num_timesteps)
                    writer.add_scalar("best_response/episode_length", int(info["episode"]["l"]), self.num_timesteps)
            if self.num_timesteps in paths:
                atomic_save(paths[self.num_timesteps], self.model.save)
            return True

    env = Monitor(view)
    obs_dim, action_dim = (int(np.prod(space.shape or ())) for space in (view.observation_space, view.action_space))
    arch = [int(n) for n in settings.net_arch]
    updates = updates_of(settings.steps, settings.learning_starts, settings.train_freq, settings.gradient_steps)
    seconds = estimate_update_seconds(obs_dim, action_dim, arch, settings.batch_size, th.device(device))
    estimate = RunEstimate(updates, seconds, 1)
    mode = resolve_update_mode(settings.engine, settings.compile, settings.precision, th.device(device), estimate)
    print(f"best-response attacker: {mode.describe()}")
    model = QARLSAC(
        "MlpPolicy",
        env,
        learning_rate=float(settings.learning_rate),
        buffer_size=max(int(settings.steps), 1),
        learning_starts=int(settings.learning_starts),
        batch_size=int(settings.batch_size),
        train_freq=int(settings.train_freq),
        gradient_steps=int(settings.gradient_steps),
        ent_coef=settings.ent_coef,
        policy_kwargs={"net_arch": [int(n) for n in settings.net_arch]},
        seed=int(settings.seed),
        device=device,
        verbose=0,
        **mode.agent_kwargs(),
    )
    with th.random.fork_rng(devices=[]):
        th.manual_seed(int(settings.seed))
        model.learn(total_timesteps=int(settings.steps), callback=Recorder(), progress_bar=progress)
    writer.close()
    missing = [k for k, p in paths.items() if not p.exists()]
    if missing:  # cannot happen with a single env (num_timesteps counts every step), kept as a guard
        raise RuntimeError(f"attacker budgets {missing} were not saved")
    return paths


def attacker_paths(
    root: str | Path,
    checkpoint: str,
    horizon: int,
    settings: AttackSettings,
) -> tuple[Path, dict[int, Path]]:
    """The folder of ``settings`` under ``<root>/best_response`` and the model path of each budget."""
    folder = Path(root) / "best_response" / settings.key(checkpoint, horizon)
    return folder, {k: folder / f"adversary_{k}.zip" for k in settings.budgets}


def get_attackers(
    run_dir: str | Path,
    settings: AttackSettings,
    horizon: int | None = None,
    device: str = "cpu",
    progress: bool = False,
    weights_only: bool = False,
) -> tuple[dict[int, Path], bool]:
    """The best-response adversaries of a run at every budget: loaded when saved, else trained now.

    ``weights_only`` loads the run's protagonist weights-only (see :func:`rl.qarl.checkpoint.load_policies`).
    Training holds the lock ``<folder>/.lock`` (:func:`rl.robustness.runs.locked`): an evaluation that finds another
    one training the same attacker waits for it, then reuses what it saved.

    Returns:
        budget -> model path, and whether they were trained in this call (``False``: reused).
    """
    from envs.adversarial.demo import make_game
    from envs.common.io import atomic_write_text
    from rl.qarl.checkpoint import load_policies
    from rl.qarl.modes import evaluation_alpha, resolve_mode
    from rl.robustness.runs import locked

    policies = load_policies(run_dir, device=device, weights_only=weights_only)
    cfg = policies.config
    steps = int(horizon if horizon is not None else cfg.budget.horizon)
    folder, paths = attacker_paths(run_dir, policies.checkpoint.name, steps, settings)
    if all(p.exists() for p in paths.values()):  # each zip is written atomically: these are complete
        return paths, False
    with locked(folder / LOCK_FILE, f"training the attacker {folder.name}"):
        if all(p.exists() for p in paths.values()):  # trained by the evaluation we waited for
            return paths, False
        env_cfg = dict(cfg.env)
        env_cfg["max_episode_steps"] = steps
        game = make_game(env_cfg)
        try:
            view = attacker_view(game, policies.protagonist, resolve_mode(cfg.algo).context, evaluation_alpha(cfg))
            meta = asdict(settings) | {"run": str(run_dir), "checkpoint": policies.checkpoint.name, "horizon": steps}
            atomic_write_text(folder / "settings.json", json.dumps(meta, indent=1, default=list))
            desc = f"best response to {run_dir} ({policies.checkpoint.name})"
            return train_attacker(view, settings, folder, device, progress, desc), True
        finally:
            game.close()


def load_attacker(
    path: str | Path,
    protagonist: SupportsPredict,
    context: str,
    env_cfg: dict[str, Any],
    device: str = "cpu",
    weights_only: bool = False,
) -> Any:
    """A saved best-response adversary ``adversary_<k>.zip``.

    SB3's ``SAC.load`` (the default) unpickles objects stored in the zip, which runs code from it. With
    ``weights_only=True`` a fresh SAC is built on the attacker's view of the run's game (``env_cfg``, the frozen
    ``protagonist`` seeing ``context``) with the hidden layers of the ``settings.json`` next to the zip, and only the
    zip's network parameters are read (:func:`rl.qarl.agents.load_weights`).

    Raises:
        ValueError: (``weights_only``) no ``settings.json`` next to the zip, or parameters that do not fit.
    """
    from stable_baselines3 import SAC

    if not weights_only:
        return SAC.load(path, device=device)
    from envs.adversarial.demo import make_game
    from rl.qarl.agents import load_weights

    settings_file = Path(path).parent / "settings.json"
    if not settings_file.exists():
        raise ValueError(f"no {settings_file}: the weights-only load of {str(path)!r} needs its network sizes")
    net_arch = [int(n) for n in json.loads(settings_file.read_text())["net_arch"]]
    game = make_game(env_cfg)
    try:
        view = attacker_view(game, protagonist, context)
        spaces = view.observation_space, view.action_space
        return load_weights(SAC, path, *spaces, device, policy_kwargs={"net_arch": net_arch})
    finally:
        game.close()


def settings_from_config(node: Any, run_net_arch: Sequence[int] | None = None) -> AttackSettings:
    """:class:`AttackSettings` from a ``BestResponseConfig`` node (``net_arch: null`` takes ``run_net_arch``)."""
    net_arch = node.net_arch if node.net_arch is not None else (run_net_arch or (256, 256))
    return AttackSettings(
        steps=int(node.steps),
        snapshots=tuple(int(s) for s in (node.snapshots or ())),
        ent_coef=_parse_ent_coef(node.ent_coef),
        deterministic=bool(node.deterministic),
        learning_starts=int(node.learning_starts),
        batch_size=int(node.batch_size),
        learning_rate=float(node.learning_rate),
        net_arch=tuple(int(n) for n in net_arch),
        train_freq=int(node.train_freq),
        gradient_steps=int(node.gradient_steps),
        seed=int(node.seed),
        seeds=int(node.seeds),
        fixed=bool(node.fixed),
        engine=str(node.get("engine", "fast")),
        compile=str(node.get("compile", "auto")),
        precision=str(node.get("precision", "auto")),
    )

"""Calibrating QARL's gymnasium reward scales (specs/qarl.md §3.3) and the rationality check (evidence 8).

QARL's curriculum was tuned on DeepMind Control, whose rewards lie in [0, 1] per step; on gymnasium tasks the
temperatures are rescaled by c, a competent policy's mean per-step reward, and the threshold xi uses J_rand, a
uniform random policy's discounted return (:func:`rl.qarl.modes.rescale`). This module measures both:

* :func:`random_return`: J_rand, the mean discounted return (gamma = 0.99) of uniformly random protagonist actions
  against a zero adversary, one episode per seed;
* :func:`train_protagonist` / :func:`measure_reward_scale`: a plain SB3 SAC protagonist trained on the
  protagonist's view with zero force (or one loaded from a ``train_qarl`` run), then c = total reward / total steps
  over evaluation episodes with sampled actions;
* :func:`rationality_check`: two fresh adversaries trained against the frozen protagonist with fixed temperatures,
  the mean of the initial distribution p0 (``nu0 / rate = nu0 c / rate_dmc``) and the mean of the target mu
  (``nu_T c / rate_dmc``). The spec expects the p0 adversary to keep a higher entropy and lower the protagonist's
  return less than the mu adversary.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.episodes import run_episodes
from envs.adversarial.policies import SupportsPredict
from envs.common.io import atomic_write_text


def random_return(env: str, episodes: int = 20, horizon: int = 500, gamma: float = 0.99, seed: int = 0) -> dict[str, Any]:
    """J_rand: the mean discounted return of a uniform random protagonist against zero force, and its spread."""
    if int(episodes) < 1 or int(horizon) < 1 or not 0.0 < gamma <= 1.0:
        raise ValueError(f"need episodes >= 1, horizon >= 1, 0 < gamma <= 1; got {episodes}, {horizon}, {gamma}")
    game = AdversarialMujocoEnv(env, max_episode_steps=int(horizon))
    seeds = np.random.SeedSequence([int(seed), 7]).generate_state(int(episodes), dtype=np.uint32)
    zero = np.zeros(game.adversary_action_space.shape)
    discounted, undiscounted = [], []
    try:
        for s in seeds:
            game.reset(seed=int(s))
            rng = np.random.default_rng(int(s))
            space = game.protagonist_action_space
            done, total, plain, k = False, 0.0, 0.0, 0
            while not done:
                action = rng.uniform(space.low, space.high).astype(space.dtype)
                _, reward, terminated, truncated, _ = game.step(action, zero)
                total += gamma**k * float(reward)
                plain += float(reward)
                k += 1
                done = terminated or truncated
            discounted.append(total)
            undiscounted.append(plain)
    finally:
        game.close()
    return {
        "random_return": float(np.mean(discounted)),
        "random_return_std": float(np.std(discounted, ddof=1)) if len(discounted) > 1 else float("nan"),
        "random_undiscounted_return": float(np.mean(undiscounted)),
        "episodes": int(episodes),
        "gamma": float(gamma),
        "horizon": int(horizon),
    }


def train_protagonist(
    env: str,
    steps: int,
    out_dir: str | Path,
    seed: int = 0,
    horizon: int = 500,
    net_arch: Sequence[int] = (256, 256),
    learning_starts: int = 5000,
    checkpoint_every: int = 10_000,
    device: str = "cpu",
    progress: bool = False,
    engine: str = "fast",
    compile: str = "auto",
    precision: str = "auto",
) -> Path:
    """Train (or finish training) a plain SB3 SAC protagonist against zero force; returns ``protagonist.zip``.

    A partly trained protagonist is checkpointed every ``checkpoint_every`` steps with its replay buffer
    (``partial.zip``, ``partial_buffer.pt``) and continued from there by a later call; a finished one is reused,
    or continued (with its kept buffer, ``buffer.pt``) when a later call asks for more steps. The buffers are
    weights-only state files (:func:`rl.qarl.state.buffer_state`); the ``.zip`` files are SB3's, and loading one
    unpickles objects stored in it (runs code): use a ``out_dir`` only from a trusted source. Its updates run on
    the fast SAC path (``engine``/``compile``/``precision`` as ``train_qarl``'s ``sac.*``; SB3's ``.zip``).

    Every file is written atomically (:func:`envs.common.io.atomic_save`), the buffer before its zip, and the buffer
    records the step it was saved at: a crash between the two writes leaves a zip and a buffer of different steps,
    which is never resumed (a partial pair starts over, a finished protagonist is reused without its buffer).

    Raises:
        envs.common.io.UnsafeStateFileError: the folder holds an older pickled buffer (``*.pkl``) that is needed; the
            message says how to convert it.
    """
    import torch as th
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    from envs.adversarial.views import ProtagonistView
    from envs.common import atomic_save, make_writer, seed_everything
    from rl.qarl.sac import QARLSAC
    from rl.qarl.update_mode import RunEstimate, estimate_update_seconds, resolve_update_mode, updates_of

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final, partial, buffer = out / "protagonist.zip", out / "partial.zip", out / "partial_buffer.pt"
    final_buffer = out / "buffer.pt"
    kept = None
    if final.exists():
        done = SAC.load(final, device=device).num_timesteps
        kept = _read_buffer(final_buffer, done) if done < int(steps) and _has_buffer(final_buffer) else None
        if kept is None:  # done, or its buffer is missing or of another step: reused as it is
            return final
    seed_everything(int(seed))
    view = Monitor(ProtagonistView(env, max_episode_steps=int(horizon)))
    writer = make_writer(out)
    obs_dim, action_dim = (int(np.prod(space.shape or ())) for space in (view.observation_space, view.action_space))
    seconds = estimate_update_seconds(obs_dim, action_dim, [int(n) for n in net_arch], 256, th.device(device))
    estimate = RunEstimate(updates_of(int(steps), int(learning_starts), 1, 1), seconds, 1)
    mode = resolve_update_mode(engine, compile, precision, th.device(device), estimate).agent_kwargs()
    model = None
    if kept is not None:  # a finished one, asked for more steps
        model = QARLSAC.load(final, env=view, device=device, **mode)
        _load_buffer(model, kept)
    elif partial.exists() and _has_buffer(buffer):
        model = QARLSAC.load(partial, env=view, device=device, **mode)
        state = _read_buffer(buffer, model.num_timesteps)
        if state is None:
            print(f"{partial} and {buffer} were saved at different steps (a crash between the writes): starting over")
            model = None
        else:
            _load_buffer(model, state)
    if model is None:
        model = QARLSAC(
            "MlpPolicy",
            view,
            learning_starts=int(learning_starts),
            policy_kwargs={"net_arch": [int(n) for n in net_arch]},
            seed=int(seed),
            device=device,
            verbose=0,
            **mode,
        )

    class Saver(BaseCallback):
        """Logs episode returns and checkpoints the partial model with its buffer."""

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    writer.add_scalar("calibration/protagonist_return", float(info["episode"]["r"]), self.num_timesteps)
            if self.num_timesteps % int(checkpoint_every) == 0:
                _save_buffer(self.model, buffer)  # first: a crash while writing it (the long write) keeps the old pair
                atomic_save(partial, self.model.save)
            return True

    remaining = int(steps) - int(model.num_timesteps)
    th.manual_seed(int(seed) + int(model.num_timesteps))
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=Saver(), reset_num_timesteps=False, progress_bar=progress)
    writer.close()
    _save_buffer(model, final_buffer)
    atomic_save(final, model.save)
    partial.unlink(missing_ok=True)
    buffer.unlink(missing_ok=True)
    return final


def _save_buffer(model: Any, path: Path) -> None:
    """Write ``model``'s replay buffer (its filled rows) and its step count as a weights-only state file."""
    from envs.common.io import atomic_torch_save
    from rl.qarl.state import buffer_state

    atomic_torch_save(buffer_state(model.replay_buffer) | {"num_timesteps": int(model.num_timesteps)}, path)


def _read_buffer(path: Path, num_timesteps: int) -> dict[str, Any] | None:
    """What :func:`_save_buffer` wrote, or ``None`` when it was saved at another step than ``num_timesteps``.

    Buffers without a step count (written before issue 27, or converted from a pickled one) are taken as they are.
    """
    from envs.common.io import load_state_file

    state = load_state_file(path)
    saved = state.get("num_timesteps")
    return None if saved is not None and int(saved) != int(num_timesteps) else state


def _load_buffer(model: Any, state: dict[str, Any]) -> None:
    """Restore what :func:`_read_buffer` returned into ``model``'s (same-sized) replay buffer."""
    from rl.qarl.state import load_buffer_state

    load_buffer_state(model.replay_buffer, state)


def _has_buffer(path: Path) -> bool:
    """Whether the weights-only buffer ``path`` exists; an older pickled one in its place is an error."""
    from envs.common.io import UnsafeStateFileError

    pickled = path.with_suffix(".pkl")
    if not path.exists() and pickled.exists():
        raise UnsafeStateFileError(
            f"{str(pickled)!r} is a pickled replay buffer (older rldyn): reading it could run code stored in it. If "
            "you trust where it came from, convert it once with: "
            f"python scripts/convert_state_file.py --trust {shlex.quote(str(pickled))}"
        )
    return path.exists()


def measure_reward_scale(
    protagonist: SupportsPredict, env: str, context: str = "none", episodes: int = 20, horizon: int = 500, seed: int = 0
) -> dict[str, Any]:
    """c: the protagonist's total reward over total steps in ``episodes`` nominal episodes (sampled actions)."""
    game = AdversarialMujocoEnv(env, max_episode_steps=int(horizon))
    seeds = np.random.SeedSequence([int(seed), 11]).generate_state(int(episodes), dtype=np.uint32).astype(np.int64)
    try:
        out = run_episodes(game, protagonist, context, seeds)
    finally:
        game.close()
    return {
        "reward_scale": float(out.returns.sum() / max(1, out.lengths.sum())),
        "return_mean": float(out.returns.mean()),
        "length_mean": float(out.lengths.mean()),
        "episodes": int(episodes),
    }


class _Recording:
    """A policy wrapper that records the observations it is asked about."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.visited: list[np.ndarray] = []

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        self.visited.append(np.asarray(obs, dtype=np.float32))
        return self.model.predict(obs, deterministic=deterministic)


def policy_entropy(model: Any, observations: np.ndarray, samples: int = 8) -> float:
    """Monte-Carlo entropy ``-E[log pi(a|s)]`` of an SB3 SAC policy (tanh-squashed) over ``observations``."""
    import torch as th

    obs = th.as_tensor(np.repeat(observations, samples, axis=0), dtype=th.float32, device=model.device)
    with th.no_grad():
        _, log_prob = model.actor.action_log_prob(obs)
    return float(-log_prob.mean().item())


def rationality_check(
    protagonist: SupportsPredict,
    env: str,
    context: str,
    reward_scale: float,
    steps: int,
    out_dir: str | Path,
    episodes: int = 20,
    horizon: int = 500,
    seed: int = 0,
    net_arch: Sequence[int] = (64, 64),
    learning_starts: int = 1000,
    nu_init: float = 50.0,
    nu_target: float = 1.0,
    rate_dmc: float = 1000.0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train adversaries at the means of p0 and mu against the frozen protagonist; their entropy and return drop.

    Returns:
        Per adversary (``p0_mean``, ``mu_mean``): its temperature, its policy entropy on the states it visited
        (and that of its untrained initial policy), the protagonist's mean return against it and the drop from
        the nominal return (same episode seeds); plus ``nominal_return`` and whether the spec's two inequalities
        hold (``passed``).
    """
    from stable_baselines3 import SAC

    from rl.robustness.best_response import AttackSettings, attacker_view, train_attacker

    out = Path(out_dir)
    seeds = np.random.SeedSequence([int(seed), 13]).generate_state(int(episodes), dtype=np.uint32).astype(np.int64)
    game = AdversarialMujocoEnv(env, max_episode_steps=int(horizon))
    nominal = run_episodes(game, protagonist, context, seeds)
    rate = float(rate_dmc) / float(reward_scale)
    result: dict[str, Any] = {
        "nominal_return": float(nominal.returns.mean()),
        "reward_scale": float(reward_scale),
        "rate": rate,
        "steps": int(steps),
    }
    for name, nu in (("p0_mean", nu_init), ("mu_mean", nu_target)):
        alpha = float(nu) / rate
        settings = AttackSettings(
            steps=int(steps),
            ent_coef=alpha,
            learning_starts=int(learning_starts),
            net_arch=tuple(int(n) for n in net_arch),
            seed=int(seed),
        )
        folder = out / name
        start = time.perf_counter()
        path = folder / f"adversary_{int(steps)}.zip"
        if not path.exists():
            train_attacker(attacker_view(game, protagonist, context), settings, folder, device, description=name)
        adversary = SAC.load(path, device=device)
        fresh = SAC("MlpPolicy", attacker_view(game, protagonist, context), policy_kwargs={"net_arch": list(net_arch)}, seed=0)
        attacked = run_episodes(game, protagonist, context, seeds, adversary=adversary)
        # the states the adversary meets in play
        recorder = _Recording(adversary)
        run_episodes(game, protagonist, context, seeds[: max(1, len(seeds) // 4)], adversary=recorder)
        states = np.stack(recorder.visited)
        result[name] = {
            "temperature": alpha,
            "entropy": policy_entropy(adversary, states),
            "initial_entropy": policy_entropy(fresh, states),
            "return": float(attacked.returns.mean()),
            "return_drop": float(nominal.returns.mean() - attacked.returns.mean()),
            "seconds": time.perf_counter() - start,
        }
    game.close()
    p0, mu = result["p0_mean"], result["mu_mean"]
    result["passed"] = bool(p0["entropy"] > mu["entropy"] and p0["return_drop"] < mu["return_drop"])
    atomic_write_text(out / "rationality.json", json.dumps(result, indent=1))
    return result


def calibrate(cfg: Any) -> dict[str, Any]:
    """The body of ``scripts/calibrate_scales.py``: J_rand, c and optionally the rationality check of ``cfg.env``.

    Writes ``calibration.json`` into the run folder and prints the values to put in ``envs/adversarial/specs.py``.
    The protagonist (``protagonist_run`` or ``protagonist_dir``) is read with SB3's ``load``, which unpickles
    objects stored in its ``.zip`` (runs code from it): give only folders from a trusted source.
    """
    import torch as th

    from envs.adversarial.specs import get_env_spec
    from envs.common import prepare_run_dir, seed_everything
    from rl.qarl.config import CurriculumConfig

    spec = get_env_spec(str(cfg.env.name))
    if spec.family != "gymnasium":
        raise ValueError(f"env={spec.name} is a {spec.family} task: its rewards are in [0, 1] and need no calibration (c = 1)")
    for name in ("protagonist_steps", "horizon", "episodes", "random_episodes", "rationality_steps", "checkpoint_every"):
        if int(cfg[name]) < 1:
            raise ValueError(f"{name} must be a positive integer, got {cfg[name]!r}")
    given = cfg.rationality_reward_scale
    checked_scale = None if given is None else float(given)
    if checked_scale is not None and not (math.isfinite(checked_scale) and checked_scale > 0):
        raise ValueError(f"rationality_reward_scale must be a positive number (or null: the measured c), got {given!r}")
    if cfg.protagonist_run is not None:
        from rl.qarl.checkpoint import find_run

        _, saved, _ = find_run(cfg.protagonist_run)
        if saved.env.name != spec.name:
            raise ValueError(
                f"protagonist_run={cfg.protagonist_run!r} was trained on env={saved.env.name}, not env={spec.name}"
            )
    th.set_num_threads(1)
    run = prepare_run_dir(cfg)
    seed_everything(int(cfg.seed))
    start = time.perf_counter()
    result: dict[str, Any] = {"env": spec.name, "horizon": int(cfg.horizon), "seed": int(cfg.seed)}
    result["random"] = random_return(spec.name, int(cfg.random_episodes), int(cfg.horizon), float(cfg.gamma), int(cfg.seed))
    if cfg.protagonist_run is not None:
        from rl.qarl.checkpoint import load_policies
        from rl.qarl.modes import resolve_mode

        policies = load_policies(cfg.protagonist_run, device=str(cfg.device))
        protagonist: Any = policies.protagonist
        context = resolve_mode(policies.config.algo).context
        result["protagonist"] = {"run": str(cfg.protagonist_run), "checkpoint": policies.checkpoint.name}
    else:
        from stable_baselines3 import SAC

        folder = Path(cfg.protagonist_dir or Path("runs") / "calibration" / spec.name / f"protagonist_s{int(cfg.seed)}")
        path = train_protagonist(
            spec.name,
            int(cfg.protagonist_steps),
            folder,
            int(cfg.seed),
            int(cfg.horizon),
            list(cfg.net_arch),
            int(cfg.learning_starts),
            int(cfg.checkpoint_every),
            str(cfg.device),
            bool(cfg.progress),
        )
        protagonist, context = SAC.load(path, device=str(cfg.device)), "none"
        result["protagonist"] = {"path": str(path), "steps": int(protagonist.num_timesteps)}
    result["competent"] = measure_reward_scale(
        protagonist, spec.name, context, int(cfg.episodes), int(cfg.horizon), int(cfg.seed)
    )
    c = result["competent"]["reward_scale"]
    if cfg.rationality:
        defaults = CurriculumConfig()
        result["rationality"] = rationality_check(
            protagonist,
            spec.name,
            context,
            c if checked_scale is None else checked_scale,
            int(cfg.rationality_steps),
            run.root / "rationality",
            int(cfg.episodes),
            int(cfg.horizon),
            int(cfg.seed),
            list(cfg.rationality_net_arch),
            nu_init=defaults.nu_init,
            nu_target=defaults.nu_target,
            rate_dmc=defaults.rate_dmc,
            device=str(cfg.device),
        )
    result["seconds"] = time.perf_counter() - start
    atomic_write_text(run.root / "calibration.json", json.dumps(result, indent=1))
    j_rand = result["random"]["random_return"]
    print(
        f"{spec.name}: c = {c:.3f} (protagonist return {result['competent']['return_mean']:.1f} over "
        f"{result['competent']['length_mean']:.0f} steps; spec value {spec.reward_scale}), J_rand = {j_rand:.2f} "
        f"(spec value {spec.random_return})"
    )
    if "rationality" in result:
        r = result["rationality"]
        for name in ("p0_mean", "mu_mean"):
            a = r[name]
            print(
                f"  adversary at the {name} (alpha {a['temperature']:.4g}): entropy {a['entropy']:.3f} "
                f"(initial {a['initial_entropy']:.3f}), return {a['return']:.1f}, drop {a['return_drop']:.1f} "
                f"({100 * a['return_drop'] / max(abs(r['nominal_return']), 1e-12):.0f}% of nominal)"
            )
        print(
            f"  rationality check of c = {r['reward_scale']:.3g} {'passed' if r['passed'] else 'FAILED'} "
            f"(nominal return {r['nominal_return']:.1f})"
        )
    print(f"written to {run.root / 'calibration.json'}")
    return result

"""QARL env steps per CPU-second on dmc walker-walk: this project's trainer vs the official code, measured side by side.

Both sides run their own entry point, unmodified, in separate processes at one torch thread, interleaved
(official, ours per engine, official, ours per engine, ...); a timing wrapper around each side's training phases
records the process CPU time (``time.process_time``) and the env steps of every phase:

* official (``AryamanReddi99/quantal-adversarial-rl``, MushroomRL): ``QARLExperiment.train_protagonist`` as its
  ``src/run_experiment.py`` calls it for ``--algorithm qarl --domain_name walker_two_players --task_name
  walk_vs_adversary --horizon 500``; the wrapper times ``SelfPacedRLCore.learn`` (one call per phase: adversary
  then protagonist) and counts ``SAC.fit`` calls that update (replay memory initialized) per player;
* ours: ``scripts/train_qarl.py env=dmc_walker_walk algo=qarl budget=paper`` with the engine overrides; the wrapper
  times ``QARLTrainer.iteration`` (adversary phase + protagonist phase) and counts ``QARLSAC.train`` gradient steps
  per player.

Same work per env step on both sides: the paper's settings (horizon 500, SAC with 3x256 networks, batch 256, two
critics, one update per 3 env steps of the learning player, both players acting every step); the only changes from
the paper's run are shared by both sides: one episode per phase (the paper: 5; this only sets the iteration length)
and learning from 100 stored samples (the official ``INITIAL_REPLAY_SIZE`` / ``WARMUP_TRANSITIONS``: 3000 / 5000;
ours ``sac.learning_starts`` / ``sac.actor_learning_starts``), so that every measured iteration does full updates.
The first iteration (buffers filling, compiling) is a warm-up and is not measured; evaluation, checkpoints and the
official code's per-iteration evaluation episodes are outside the timed phases. Each worker reports the
networks' parameter counts, batch sizes, observation/action sizes and updates per env step, and the driver checks
that the update counts match (one update per 3 env steps of the learning player).

Setup (official code, once)::

    # fetch github:AryamanReddi99/quantal-adversarial-rl, then
    git --git-dir=<mirror>/repo archive HEAD | tar -x -C /work/official-qarl
    python3.11 -m venv /work/official-venv
    /work/official-venv/bin/pip install torch==2.13.0          # first: the CPU build; never let it change
    /work/official-venv/bin/pip install mujoco==2.3.5 dm-control==1.0.12 mushroom-rl==1.9.1 numpy==1.24.3 \
        scipy==1.10.1 tqdm==4.65.0 gymnasium==0.28.1 torch==2.13.0

Run (from the repository root; ~5 CPU-minutes with the defaults: 8 worker processes)::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_qarl_vs_official.py \
        --official-src /work/official-qarl --official-python /work/official-venv/bin/python
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODES: dict[str, list[str]] = {
    "fast compiled fp32 (defaults)": ["sac.engine=fast", "sac.compile=true", "sac.precision=fp32"],
    "fast compiled bf16": ["sac.engine=fast", "sac.compile=true", "sac.precision=bf16"],
    "reference (SB3's update)": ["sac.engine=reference"],
}
MODE_KEYS = {"fp32": "fast compiled fp32 (defaults)", "bf16": "fast compiled bf16", "reference": "reference (SB3's update)"}
LEARNING_STARTS = 100
FLOPS_AT = 20  # count the matrix-product FLOPs of each player's 20th update (warm-up iteration, not timed)
ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}  # MUJOCO_GL unset: the official env calls mujoco.glfw


def _params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _layers(module: Any) -> str:
    import torch

    return " ".join(f"{m.in_features}->{m.out_features}" for m in module.modules() if isinstance(m, torch.nn.Linear))


def _report(payload: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


def worker_official(src: str, iterations: int, horizon: int, episodes: int) -> None:
    """Run the official QARL loop (walker-walk) with a timing wrapper around its training phases."""
    sys.path[:0] = [src, os.path.join(src, "mushroom_rl_extensions")]  # its imports need both
    import torch

    torch.set_num_threads(1)
    from experiments.mujoco_experiments.qarl_experiment import QARLExperiment  # type: ignore[import-not-found]
    from mushroom_rl_extensions.agents.deep_rl.setup_sac_agent import SetupSACAgent  # type: ignore[import-not-found]
    from mushroom_rl_extensions.algorithms.actor_critic.adaptive_temp_sac import (  # type: ignore[import-not-found]
        AdaptiveTempSAC,
    )
    from mushroom_rl_extensions.algorithms.actor_critic.sac import SAC  # type: ignore[import-not-found]
    from mushroom_rl_extensions.core.self_paced_rl_core import SelfPacedRLCore  # type: ignore[import-not-found]

    SetupSACAgent.INITIAL_REPLAY_SIZE = LEARNING_STARTS  # when learning starts, not what an update computes
    SetupSACAgent.WARMUP_TRANSITIONS = LEARNING_STARTS
    phases: list[dict[str, Any]] = []
    agents: dict[int, dict[str, Any]] = {}
    learn = SelfPacedRLCore.learn

    def timed_learn(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = {k: (v["updates"], v["fit_cpu"]) for k, v in agents.items()}
        cpu, wall = time.process_time(), time.perf_counter()
        out = learn(self, *args, **kwargs)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        updates = {agents[k]["role"]: v["updates"] - before.get(k, (0, 0.0))[0] for k, v in agents.items()}
        fit_cpu = sum(v["fit_cpu"] - before.get(k, (0, 0.0))[1] for k, v in agents.items())
        phases.append(
            {"steps": int(self._total_steps_counter), "cpu": cpu, "wall": wall, "updates": updates, "update_cpu": fit_cpu}
        )
        return out

    def timed_fit(self: Any, fit: Any, dataset: Any) -> Any:
        info = agents.setdefault(id(self), {"updates": 0, "fit_cpu": 0.0})
        if "role" not in info:
            critic = self._critic_approximator.model[0].network
            mu, sigma = self.policy._mu_approximator.model.network, self.policy._sigma_approximator.model.network
            info |= {
                "role": ["protagonist", "adversary"][self._idx_agent],
                "obs": int(self.mdp_info.observation_space.shape[0]),
                "act": int(self.mdp_info.action_space[self._idx_agent].shape[0]),
                "batch": int(self._batch_size()),
                "critics": len(self._critic_approximator),
                "critic_params": _params(critic),
                "actor_params": _params(mu) + _params(sigma),
                "actor": f"separate mu and sigma networks: 2 x {_layers(mu)}",
                "critic": _layers(critic),
            }
        if self._replay_memory.initialized and info["updates"] == FLOPS_AT:  # in the warm-up iteration: not timed
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                out = fit(self, dataset)
            info["update_flops"] = counter.get_total_flops()
            info["updates"] += 1
            info["untimed"] = info.get("untimed", 0) + 1
            return out
        cpu = time.process_time()
        out = fit(self, dataset)
        if self._replay_memory.initialized:
            info["updates"] += 1
            info["fit_cpu"] += time.process_time() - cpu
        return out

    SelfPacedRLCore.learn = timed_learn
    for cls in (SAC, AdaptiveTempSAC):  # the protagonist's and the adversary's (QARL's) fit; neither calls the other
        cls.fit = functools.partialmethod(timed_fit, cls.fit)
    import mushroom_rl  # type: ignore[import-not-found]

    with tempfile.TemporaryDirectory() as tmp:
        exp = QARLExperiment(
            domain_name="walker_two_players", task_name="walk_vs_adversary", horizon=horizon, gamma=0.99,
            bool_render=False, new_adv_max_force=None, use_cuda=False, n_total_iterations=iterations,
            n_evaluation_episodes=10, seed=0, results_dir=tmp, n_episodes_per_iteration=episodes,
        )  # fmt: skip
        assert exp.n_steps_per_fit == 3
        exp.train_protagonist()
    import mujoco  # type: ignore[import-not-found]
    import numpy

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    versions |= {"mujoco": mujoco.__version__, "dm_control": _dist("dm-control"), "mushroom_rl": mushroom_rl.__version__}
    per_agent = {v["role"]: {k: x for k, x in v.items() if k not in ("role",)} for v in agents.values()}
    _report({"iterations": _pairs(phases), "agents": per_agent, "versions": versions})


def _dist(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _pairs(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adversary phase + protagonist phase -> one iteration."""
    out = []
    for adv, pro in zip(phases[0::2], phases[1::2], strict=True):
        out.append({
            "steps": adv["steps"] + pro["steps"], "cpu": adv["cpu"] + pro["cpu"], "wall": adv["wall"] + pro["wall"],
            "update_cpu": adv["update_cpu"] + pro["update_cpu"],
            "updates": {k: adv["updates"].get(k, 0) + pro["updates"].get(k, 0) for k in {*adv["updates"], *pro["updates"]}},
            "phase_updates": [adv["updates"], pro["updates"]], "phase_steps": [adv["steps"], pro["steps"]],
        })  # fmt: skip
    return out


def worker_ours(mode: str, iterations: int, horizon: int, episodes: int) -> None:
    """Run ``scripts/train_qarl.py`` with a timing wrapper around ``QARLTrainer.iteration``."""
    import runpy

    from rl.qarl.sac import QARLSAC
    from rl.qarl.trainer import QARLTrainer
    from rl.qarl.update_mode import update_flops

    rows: list[dict[str, Any]] = []
    updates: dict[int, int] = defaultdict(int)
    update_cpu: dict[int, float] = defaultdict(float)
    flops: dict[int, float] = {}
    agents: dict[str, Any] = {}
    iteration, train = QARLTrainer.iteration, QARLSAC.train

    def timed_iteration(self: Any) -> Any:
        if not agents:
            for role, agent in (("protagonist", self.protagonist), ("adversary", self.adversary)):
                critic, actor = agent.critic.q_networks[0], agent.actor
                agents[role] = {
                    "id": id(agent), "obs": int(agent.observation_space.shape[0]),
                    "act": int(agent.action_space.shape[0]), "batch": int(agent.batch_size),
                    "critics": int(agent.critic.n_critics), "critic_params": _params(critic), "critic": _layers(critic),
                    "actor_params": _params(actor), "actor": f"shared trunk, mu and log-std heads: {_layers(actor)}",
                    "train_freq": str(agent.train_freq), "mode": self.update_mode.describe(),
                }  # fmt: skip
        before, before_cpu, steps = dict(updates), sum(update_cpu.values()), self.state.env_steps
        cpu, wall = time.process_time(), time.perf_counter()
        out = iteration(self)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        done = {role: updates[a["id"]] - before.get(a["id"], 0) for role, a in agents.items()}
        spent = sum(update_cpu.values()) - before_cpu
        rows.append({"steps": self.state.env_steps - steps, "cpu": cpu, "wall": wall, "updates": done, "update_cpu": spent})
        return out

    def counted_train(self: Any, gradient_steps: int, batch_size: int = 64) -> None:
        if updates[id(self)] == FLOPS_AT and self._fast is None:  # eager SB3 update, in the warm-up iteration
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                train(self, gradient_steps, batch_size)
            flops[id(self)] = counter.get_total_flops() / gradient_steps
            updates[id(self)] += gradient_steps
            return
        cpu = time.process_time()
        train(self, gradient_steps, batch_size)
        updates[id(self)] += gradient_steps
        update_cpu[id(self)] += time.process_time() - cpu

    QARLTrainer.iteration, QARLSAC.train = timed_iteration, counted_train  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        sys.argv = [
            "train_qarl.py", "env=dmc_walker_walk", "algo=qarl", "budget=paper", f"budget.iterations={iterations}",
            f"budget.horizon={horizon}", f"budget.episodes_per_phase={episodes}", "budget.eval_every=1000",
            "budget.eval_episodes=1", "budget.checkpoint_every=1000", f"sac.learning_starts={LEARNING_STARTS}",
            f"sac.actor_learning_starts={LEARNING_STARTS}", "torch_threads=1", "progress=false", "seed=0",
            f"hydra.run.dir={tmp}", *MODES[mode],
        ]  # fmt: skip
        try:
            runpy.run_path(str(ROOT / "scripts" / "train_qarl.py"), run_name="__main__")
        except SystemExit as e:
            if e.code not in (None, 0):
                raise
    for info in agents.values():
        info["updates"], info["fit_cpu"] = updates[info["id"]], update_cpu[info["id"]]
        if info["id"] in flops:  # counted (eager)
            info["update_flops"] = flops[info["id"]]
        else:  # compiled: the fast engine's matrix products, counted from the shapes
            info["update_flops"] = update_flops(info["obs"], info["act"], [256, 256, 256], info["batch"], info["critics"])
        del info["id"]
    _report({"iterations": rows, "agents": agents, "versions": _versions()})


def _versions() -> dict[str, str]:
    import mujoco
    import numpy
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
        "mujoco": mujoco.__version__, "dm_control": _dist("dm-control"), "stable_baselines3": stable_baselines3.__version__,
    }  # fmt: skip


def run_worker(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run one worker process; returns its RESULT payload plus its total CPU time (children included)."""
    env = os.environ | ENV | {"PYTHONPATH": str(ROOT)}
    start = os.times()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    end = os.times()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    out: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    out["process_cpu"] = (end.children_user - start.children_user) + (end.children_system - start.children_system)
    return out


def summarize(result: dict[str, Any], warmup: int) -> dict[str, float]:
    """Env steps per CPU-second (and per wall second) over the measured iterations; updates per env step."""
    rows = result["iterations"][warmup:]
    steps = sum(r["steps"] for r in rows)
    cpu, wall = sum(r["cpu"] for r in rows), sum(r["wall"] for r in rows)
    n_updates = sum(sum(r["updates"].values()) for r in rows)
    ms = 1e3 * sum(r["update_cpu"] for r in rows) / max(n_updates, 1)
    return {"steps_per_cpu_s": steps / cpu, "steps_per_wall_s": steps / wall, "steps": steps, "ms_per_update": ms}


def check_same_work(results: dict[str, list[dict[str, Any]]], horizon: int, episodes: int, warmup: int) -> list[str]:
    """Lines describing (and checking) that every side does the same updates per env step on the same shapes."""
    lines, phase = [], horizon * episodes
    for name, runs in results.items():
        res = runs[0]
        for row in res["iterations"][warmup:]:
            if row["steps"] != 2 * phase:
                raise RuntimeError(f"{name}: {row['steps']} env steps in an iteration, expected {2 * phase}")
            for role, n in row["updates"].items():
                if abs(n - phase // 3) > 1:
                    raise RuntimeError(f"{name}: {role} made {n} updates in an iteration of {phase} steps per phase")
        for role, a in sorted(res["agents"].items()):
            if a["batch"] != 256:
                raise RuntimeError(f"{name}: {role} batch {a['batch']}")
            lines.append(
                f"  {name:32s} {role:11s} obs {a['obs']} act {a['act']} batch {a['batch']} critics {a['critics']} "
                f"(each {a['critic_params']} params: {a['critic']}); actor {a['actor_params']} params ({a['actor']}); "
                f"{a.get('update_flops', float('nan')) / 1e9:.2f} GFLOP per update"
            )
        per = [f"{role} {sum(r['updates'][role] for r in res['iterations'][warmup:])}" for role in sorted(res["agents"])]
        steps = sum(r["steps"] for r in res["iterations"][warmup:])
        lines.append(f"  {name:32s} updates in the measured iterations: {', '.join(per)} for {steps} env steps")
    return lines


def machine() -> str:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
        "?",
    )
    return f"{cpu}, {os.cpu_count()} cores, {platform.platform()}"  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("worker", nargs="?", choices=["official", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--official-src", type=Path, help="the official checkout (its src/ folder or the repo root)")
    parser.add_argument("--official-python", type=Path, help="python of the venv with the official pins")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (official, ours per mode)")
    parser.add_argument("--iterations", type=int, default=3, help="measured iterations per run (after 1 warm-up)")
    parser.add_argument("--modes", default="fp32,bf16,reference", help=f"our engines, from {sorted(MODE_KEYS)}")
    parser.add_argument("--horizon", type=int, default=500, help="episode length (the paper: 500)")
    parser.add_argument("--episodes", type=int, default=1, help="episodes per phase (the paper: 5)")
    parser.add_argument("--official-commit", default="?", help="the official checkout's commit, for the record")
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    total = args.iterations + 1
    if args.worker == "official":
        worker_official(str(args.official_src), total, args.horizon, args.episodes)
        return
    if args.worker == "ours":
        worker_ours(args.mode, total, args.horizon, args.episodes)
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODE_KEYS]
    if bad or args.official_src is None or args.official_python is None:
        parser.error(f"need --official-src and --official-python; modes must be in {sorted(MODE_KEYS)}, got {bad}")
    src = args.official_src / "src" if (args.official_src / "src").is_dir() else args.official_src
    if not (src / "run_experiment.py").is_file():
        parser.error(f"--official-src {args.official_src}: no run_experiment.py (the official repo's src/)")
    here = Path(__file__).resolve()
    common = ["--iterations", str(args.iterations), "--horizon", str(args.horizon), "--episodes", str(args.episodes)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    official_commit = args.official_commit
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit}{' (dirty)' if dirty else ''}")
    print(f"machine: {machine()}; load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"official code: {args.official_src} (commit {official_commit}), venv {args.official_python}")
    print(f"settings: horizon {args.horizon}, {args.episodes} episode(s) per phase, learning from {LEARNING_STARTS} samples,")
    print(
        f"  {args.rounds} interleaved rounds x (1 warm-up + {args.iterations} measured iterations) per run; one torch thread"
    )
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in range(args.rounds):
        runs = [("official", [str(args.official_python), str(here), "official", "--official-src", str(src), *common])]
        runs += [(MODE_KEYS[m], [sys.executable, str(here), "ours", "--mode", MODE_KEYS[m], *common]) for m in modes]
        for name, cmd in runs:
            res = run_worker(cmd, ROOT)
            results[name].append(res)
            s = summarize(res, 1)
            per_it = " ".join(f"{row['steps'] / row['cpu']:.1f}" for row in res["iterations"])
            rate = f"{s['steps_per_cpu_s']:7.1f} env steps/CPU-s ({s['steps_per_wall_s']:6.1f}/wall-s)"
            rest = f"process CPU {res['process_cpu']:.0f} s; load {os.getloadavg()[0]:.2f}"
            print(f"round {r + 1} {name:32s} {rate}; per iteration incl. warm-up: {per_it}; {rest}", flush=True)
    print("\nsame work per env step (first round's workers):")
    print("\n".join(check_same_work(results, args.horizon, args.episodes, 1)))
    print("\nversions:")
    for name, runs in results.items():
        print(f"  {name:32s} " + ", ".join(f"{k} {v}" for k, v in runs[0]["versions"].items()))
    base = statistics.median(summarize(res, 1)["steps_per_cpu_s"] for res in results["official"])
    print(f"\nQARL at the paper's settings on walker-walk, env steps per CPU-second (median of {args.rounds} runs):\n")
    print("| code / engine | env steps per CPU-s | runs | ms per update or fit (CPU) | vs official | target |")
    print("|---|---|---|---|---|---|")
    targets = {
        "official": "",
        MODE_KEYS["fp32"]: ">= 4x (defaults), >= 2.5x (fp32)",
        MODE_KEYS["bf16"]: "",
        MODE_KEYS["reference"]: "",
    }
    for name, runs in results.items():
        vals = [summarize(res, 1)["steps_per_cpu_s"] for res in runs]
        med = statistics.median(vals)
        ms = statistics.median(summarize(res, 1)["ms_per_update"] for res in runs)
        runs_text = " / ".join(f"{v:.1f}" for v in vals)
        print(f"| {name} | {med:.1f} | {runs_text} | {ms:.1f} | {med / base:.2f}x | {targets.get(name, '')} |")
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

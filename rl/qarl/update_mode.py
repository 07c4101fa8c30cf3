"""How the SAC agents update: ``sac.engine``, ``sac.compile`` and ``sac.precision`` resolved at launch, with the reason.

- ``sac.engine``: ``fast`` (:mod:`rl.qarl.fast_sac`) or ``reference`` (SB3's update, bit for bit SB3's ``SAC``).
- ``sac.compile``: ``auto`` compiles the fast path's update (``torch.compile``) when compiling costs less than
  :data:`COMPILE_SHARE` of the run's estimated update time (:func:`estimate_update_seconds` times the updates the
  budget implies, a lower bound on the run's length since env steps are left out); ``true``/``false`` force it.
- ``sac.precision``: ``fp32`` or ``bf16`` (bf16 operands of the matrix products, everything else fp32); ``auto`` picks
  bf16 only where the learning-parity table (``benchmarks/sac_parity``, docs/results/qarl.md) measured it to learn
  like SB3's eager fp32 update: on a device type in :data:`BF16_PARITY_DEVICES` that has bf16 matrix units (AMX or
  AVX-512 BF16 on CPU), for a compiled update (the configuration measured). Elsewhere (CUDA: not measured; no bf16
  units; an eager update, as in short runs and the tests) ``auto`` is fp32. The reason printed says which.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch as th

ENGINES = ("fast", "reference")
COMPILES = ("auto", "true", "false")
PRECISIONS = ("auto", "fp32", "bf16")

# Device types where the parity table (issue 22) found compiled bf16 to learn like eager fp32: precision=auto's bf16.
BF16_PARITY_DEVICES = frozenset({"cpu"})
COMPILE_SHARE = 0.02  # compile=auto: compile when compiling costs less than this share of the run

# Cost model, measured on this project's 2-core AMD EPYC (Zen 4) VM with one torch thread, torch 2.13
# (benchmarks/bench_sac_update.py; see benchmarks/README.md): the eager fast update runs its matrix products at
# about 60 GFLOP/s under the machine's usual load and has about 1.5 ms of fixed cost per update (3x256/batch 256:
# ~20 ms; 2x64/batch 64: ~1.7 ms); a cold compile of one agent's first graphs took 27-42 s of wall time under load
# (inductor's C++ compiles run in worker processes), and the actor warm-up's graph variant adds to that: 60 s.
CPU_FLOPS = 6e10
CPU_OVERHEAD_S = 1.5e-3
CUDA_FLOPS = 2e13  # not measured here (no GPU in the sessions so far): a datasheet-level guess
CUDA_OVERHEAD_S = 3e-3  # an eager update is launch-bound on a GPU: ~100 kernels of ~20-30 us
COMPILE_SECONDS_PER_AGENT = 60.0


@dataclass(frozen=True)
class UpdateMode:
    """A resolved update mode.

    Attributes:
        engine: ``fast`` or ``reference``.
        compile: whether the fast path is compiled.
        precision: ``fp32`` or ``bf16``.
        reason: why, in words (printed at launch).
    """

    engine: str = "fast"
    compile: bool = False
    precision: str = "fp32"
    reason: str = ""

    def agent_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`rl.qarl.sac.QARLSAC` for this mode."""
        return {"sac_engine": self.engine, "sac_compile": self.compile, "sac_precision": self.precision}

    def as_dict(self) -> dict[str, Any]:
        """``engine``, ``compile`` and ``precision`` (what a checkpoint records)."""
        return {"engine": self.engine, "compile": self.compile, "precision": self.precision}

    def describe(self) -> str:
        """One line for the launch log."""
        return f"SAC update: {self.engine}, compile={self.compile}, precision={self.precision} ({self.reason})"


def normalise_choice(value: Any, choices: Sequence[str], key: str) -> str:
    """``value`` as one of ``choices`` (YAML's ``true``/``false`` arrive as booleans); ValueError otherwise."""
    text = str(value).strip().lower()
    if text not in choices:
        raise ValueError(f"{key}={value!r} is not one of {list(choices)}")
    return text


def bf16_matrix_units(device: th.device) -> str | None:
    """The bf16 matrix hardware of ``device`` in words, or ``None`` if it has none."""
    if device.type == "cuda":
        major, minor = th.cuda.get_device_capability(device)
        return f"bf16 tensor cores (sm_{major}{minor})" if major >= 8 else None
    if device.type != "cpu":
        return None
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return None
    for flag, name in (("amx_bf16", "AMX bf16 tiles"), ("avx512_bf16", "AVX-512 BF16 dot products")):
        if flag in flags:
            return f"{name} ({flag})"
    return None


def compiler_missing(device: th.device) -> str | None:
    """Why ``torch.compile`` cannot run here (inductor's CPU code needs a C++ compiler), or ``None``."""
    if device.type == "cpu" and not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        return "no C++ compiler on PATH (inductor needs one for CPU code)"
    return None


def update_flops(obs_dim: int, action_dim: int, net_arch: Sequence[int], batch_size: int, n_critics: int = 2) -> float:
    """Floating-point operations of the matrix products of one fast SAC update (two per multiply-add).

    Per sample: the actor's forward on ``s`` and ``s'`` and its backward (weights and inputs), and per critic the
    target's forward, the critic's forward and backward (weights and inputs) and the actor loss's forward and input
    backward.
    """

    def macs(inputs: int, outputs: int) -> float:
        widths = [inputs, *net_arch]
        return float(sum(a * b for a, b in pairwise(widths)) + widths[-1] * outputs)

    actor, critic = macs(obs_dim, 2 * action_dim), macs(obs_dim + action_dim, 1)
    return 2.0 * batch_size * (4 * actor + n_critics * 6 * critic)


def estimate_update_seconds(
    obs_dim: int, action_dim: int, net_arch: Sequence[int], batch_size: int, device: th.device
) -> float:
    """Seconds of one eager fast update (:data:`CPU_FLOPS`, :data:`CPU_OVERHEAD_S` or their CUDA values)."""
    flops, overhead = (CUDA_FLOPS, CUDA_OVERHEAD_S) if device.type == "cuda" else (CPU_FLOPS, CPU_OVERHEAD_S)
    return overhead + update_flops(obs_dim, action_dim, net_arch, batch_size) / flops


@dataclass(frozen=True)
class RunEstimate:
    """What ``compile=auto`` weighs: the updates a run will make and what one costs uncompiled.

    Attributes:
        updates: gradient steps of all agents together.
        update_seconds: one eager update (:func:`estimate_update_seconds`).
        agents: agents that would each compile their graphs.
    """

    updates: int
    update_seconds: float
    agents: int

    @property
    def seconds(self) -> float:
        """Estimated seconds of all updates, eager."""
        return self.updates * self.update_seconds


def updates_of(env_steps: int, learning_starts: int, train_freq: int, gradient_steps: int) -> int:
    """Gradient steps of one agent that takes ``env_steps`` steps (SB3: one train call per ``train_freq`` steps)."""
    return max(0, int(env_steps) - int(learning_starts)) // max(1, int(train_freq)) * int(gradient_steps)


def resolve_update_mode(engine: Any, compile: Any, precision: Any, device: th.device, estimate: RunEstimate) -> UpdateMode:
    """Resolve the three keys (see the module docstring); ValueError names a bad value and the valid ones."""
    engine = normalise_choice(engine, ENGINES, "sac.engine")
    compile = normalise_choice(compile, COMPILES, "sac.compile")
    precision = normalise_choice(precision, PRECISIONS, "sac.precision")
    if engine == "reference":
        if compile == "true" or precision == "bf16":
            raise ValueError(
                f"sac.engine=reference is SB3's eager fp32 update; sac.compile={compile} and sac.precision={precision} "
                "need sac.engine=fast"
            )
        return UpdateMode("reference", False, "fp32", "sac.engine=reference: SB3's own update, eager fp32")
    reasons = []
    if compile == "auto":
        missing = compiler_missing(device)
        cost = COMPILE_SECONDS_PER_AGENT * estimate.agents
        run = estimate.seconds
        on = missing is None and cost < COMPILE_SHARE * run
        if missing:
            reasons.append(f"compile=auto -> off: {missing}")
        else:
            share = f"{100 * cost / run:.1f}%" if run > 0 else "all"
            reasons.append(
                f"compile=auto -> {'on' if on else 'off'}: compiling (~{cost:.0f} s) would be {share} of the ~{run / 60:.1f} "
                f"min of updates estimated ({estimate.updates} updates x {1e3 * estimate.update_seconds:.1f} ms); "
                f"on below {100 * COMPILE_SHARE:g}%"
            )
    else:
        on = compile == "true"
        if on and compiler_missing(device):
            raise ValueError(f"sac.compile=true, but {compiler_missing(device)}; use sac.compile=false or auto")
    units = bf16_matrix_units(device)
    if precision == "auto":
        use_bf16 = False
        if device.type not in BF16_PARITY_DEVICES:
            why = f"the parity table measured bf16 on {', '.join(sorted(BF16_PARITY_DEVICES))} only, not {device.type}"
        elif units is None:
            why = f"this {device.type} has no bf16 matrix units"
        elif not on:
            why = f"bf16 is for compiled updates only (the parity table's configuration; this {device.type} has {units})"
        else:
            use_bf16 = True
            why = f"compiled bf16 learns like eager fp32 in the parity table, and this {device.type} has {units}"
        precision = "bf16" if use_bf16 else "fp32"
        reasons.append(f"precision=auto -> {precision}: {why}")
    elif precision == "bf16" and units is None:
        reasons.append(f"precision=bf16 as asked, but this {device.type} has no bf16 matrix units (emulated, slow)")
    return UpdateMode("fast", on, precision, "; ".join(reasons) or "as configured")


def train_update_mode(cfg: Any, env: Any, adversary: bool, device: th.device) -> UpdateMode:
    """The update mode of a ``train_qarl`` run (``cfg.sac``), its run length estimated from ``cfg.budget``.

    Each player takes ``min(iterations x episodes_per_phase x horizon, max_env_steps)`` training steps (the cap counts
    protagonist steps; the adversary's phases are as long); both agents are sized like the protagonist (``env``).
    """
    sac, budget = cfg.sac, cfg.budget
    steps = int(budget.iterations) * int(budget.episodes_per_phase) * int(budget.horizon)
    if budget.get("max_env_steps") is not None:
        steps = min(steps, int(budget.max_env_steps))
    agents = 2 if adversary else 1
    updates = agents * updates_of(steps, int(sac.learning_starts), int(sac.train_freq), int(sac.gradient_steps))
    obs_dim = int(np.prod(env.observation_space.shape))
    action_dim = int(np.prod(env.action_space.shape))
    seconds = estimate_update_seconds(obs_dim, action_dim, list(sac.net_arch), int(sac.batch_size), device)
    estimate = RunEstimate(updates, seconds, agents)
    return resolve_update_mode(
        sac.get("engine", "fast"), sac.get("compile", "auto"), sac.get("precision", "auto"), device, estimate
    )

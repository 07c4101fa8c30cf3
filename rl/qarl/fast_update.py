"""The fast SAC update's machinery (``sac.engine=fast``); the arithmetic is in :mod:`rl.qarl.fast_kernels`.

What changes against SB3's ``SAC.train`` (the maths does not):

- **Twin critics as one batched network.** :class:`StackedCritic` stores the ``n`` Q-networks of a
  ``ContinuousCritic`` (and of its target) layer by layer as stacked tensors ``(n, out, in)``; the SB3 modules'
  parameters become views of those tensors, so ``policy.state_dict()``, SB3's ``.zip`` and every checkpoint keep
  their keys, shapes and values, and a loaded state lands in the stacked tensors. One matrix product evaluates both
  first layers, one batched product (``baddbmm``) each further layer.
- **Fused optimiser steps.** Adam runs with ``fused=True`` (one kernel per optimiser; set again before every
  update, since a loaded optimiser state brings its own flags); the Polyak update is one ``torch._foreach_lerp_``.
- **No host synchronisation per update.** Losses, temperatures and the finite checks stay on the device in
  :class:`PendingStats` and are read (one transfer) only when the logger dumps, or every ``CHECK_EVERY`` updates
  for the finite check alone. A non-finite loss raises :class:`~rl.qarl.sac.LossNotFiniteError` then, naming the
  updates it happened in.
- **Replay sampling** (:class:`BatchSampler`): the same index draws as SB3 (``np.random.randint``), gathered with one
  ``index_select`` per field from tensors that share memory with the buffer's arrays (pinned and copied without
  blocking on CUDA).
- **Losses and gradients** (:mod:`rl.qarl.fast_kernels`) are plain functions of tensors with explicit gradients, in
  two phases per update: eager, or compiled by ``torch.compile`` (CUDA: ``mode="reduce-overhead"``, i.e. CUDA
  graphs), optionally with bf16 matrix products (weights, optimiser state, targets and losses stay fp32). The
  Gaussian noise is drawn outside them from torch's global generator, so eager and compiled runs consume the same
  random numbers and resume exactly.
- The actor's gradient skips the critic's weight gradients (SB3 computes and discards them).

The fast path is not bit-identical to SB3 (batched products and fused kernels round differently); the reference
path (``sac.engine=reference``, :meth:`rl.qarl.sac.QARLSAC.train`) is. Supported: SB3's ``MlpPolicy`` on a
non-image ``Box`` observation (flatten extractor, ReLU, no gSDE, no shared features extractor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import FlattenExtractor
from torch import nn

CHECK_EVERY = 1000  # updates between two finite checks when the logger does not dump in between


class LossNotFiniteError(FloatingPointError):
    """A SAC loss became NaN or infinite; training must stop (the last checkpoint is kept)."""


# ---------------------------------------------------------------------------- stacked critics
def _linear_layers(net: nn.Module, what: str, head: bool = True) -> list[nn.Linear]:
    """The Linear layers of an SB3 MLP ``Linear, ReLU, ..., Linear`` (``head=False``: ``..., Linear, ReLU``).

    Raises:
        ValueError: any other layout (the fast path implements only these).
    """
    modules = list(net.children()) if isinstance(net, nn.Sequential) else [net]
    for i, m in enumerate(modules):
        expected = nn.Linear if i % 2 == 0 else nn.ReLU
        if not isinstance(m, expected) or (isinstance(m, nn.Linear) and m.bias is None):
            raise ValueError(
                f"sac.engine=fast supports SB3 MLPs of Linear and ReLU layers; {what} has {type(m).__name__} at "
                f"position {i} (use sac.engine=reference)"
            )
    if len(modules) % 2 != int(head):
        raise ValueError(f"sac.engine=fast: {what} does not have SB3's MLP layout (use sac.engine=reference)")
    return [m for m in modules if isinstance(m, nn.Linear)]


class StackedCritic:
    """The Q-networks of an SB3 ``ContinuousCritic`` stored as stacked tensors; the modules' parameters become views.

    Args:
        critic: the critic (or target critic); its parameters are replaced by views of the stacked tensors, with
            the same values and ``requires_grad``.
        trainable: whether the stacked tensors take gradients (the critic) or not (the target).
    """

    def __init__(self, critic: nn.Module, trainable: bool) -> None:
        nets = list(critic.q_networks)  # type: ignore[arg-type]
        layers = [_linear_layers(net, f"critic network {k}") for k, net in enumerate(nets)]
        if any(len(ls) != len(layers[0]) for ls in layers):
            raise ValueError("sac.engine=fast needs critics of equal depth (use sac.engine=reference)")
        self.weights: list[th.Tensor] = []
        self.biases: list[th.Tensor] = []
        self.views: list[tuple[nn.Parameter, th.Tensor]] = []  # (module parameter, the stacked tensor it views)
        for depth in range(len(layers[0])):
            linears = [ls[depth] for ls in layers]
            for attr, out in (("weight", self.weights), ("bias", self.biases)):
                stacked = th.stack([getattr(lin, attr).detach() for lin in linears]).contiguous()
                for k, lin in enumerate(linears):
                    view = nn.Parameter(stacked[k], requires_grad=getattr(lin, attr).requires_grad)
                    setattr(lin, attr, view)
                    self.views.append((view, stacked))
                out.append(stacked.requires_grad_(trainable))
        self.n = len(nets)

    @property
    def tensors(self) -> list[th.Tensor]:
        """All stacked tensors (weights, then biases)."""
        return [*self.weights, *self.biases]

    def detached(self) -> tuple[list[th.Tensor], list[th.Tensor]]:
        """Weights and biases as constants (for the actor's loss)."""
        return [w.detach() for w in self.weights], [b.detach() for b in self.biases]

    def grad_plan(self, module_params: Sequence[th.Tensor]) -> list[tuple[int, int]]:
        """For each module parameter, ``(i, k)``: its gradient is ``grads[i][k]`` of the gradients of :attr:`tensors`."""
        position = {id(t): i for i, t in enumerate(self.tensors)}
        where = {id(view): (position[id(stacked)], k % self.n) for k, (view, stacked) in enumerate(self.views)}
        missing = [tuple(p.shape) for p in module_params if id(p) not in where]
        if missing:
            raise ValueError(f"sac.engine=fast: the critic's optimiser holds parameters outside its Q-networks: {missing}")
        return [where[id(p)] for p in module_params]


# ---------------------------------------------------------------------------- replay sampling
class Batch(NamedTuple):
    """One replay batch: observations ``(B, obs)``, actions, next observations, dones and rewards ``(B, 1)``."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor


_FIELDS = ("observations", "actions", "next_observations", "dones", "timeouts", "rewards")


class BatchSampler:
    """Replay batches of an SB3 ``ReplayBuffer`` with SB3's index draws, gathered by ``index_select`` (as float32).

    The draws are SB3's (``np.random.randint`` for the rows, then for the env index), so the global NumPy generator
    advances as in SB3. Buffers with memory optimisation, n-step returns or a ``VecNormalize`` use SB3's own
    ``sample`` instead.
    """

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.device = th.device(agent.device)
        self._buffer: Any = None
        self._views: dict[str, th.Tensor] = {}

    def _bind(self, buffer: ReplayBuffer) -> None:
        """Tensors sharing memory with the buffer's arrays (re-made when the buffer or an array is replaced)."""
        self._buffer = buffer
        rows = buffer.buffer_size * buffer.n_envs
        self._arrays = {name: getattr(buffer, name) for name in _FIELDS}
        self._views = {name: th.from_numpy(a).reshape(rows, -1) for name, a in self._arrays.items()}

    def _fast_ok(self, buffer: Any) -> bool:
        return type(buffer) is ReplayBuffer and not buffer.optimize_memory_usage and self.agent._vec_normalize_env is None

    def sample(self, batch_size: int) -> Batch:
        """One batch on the agent's device."""
        buffer = self.agent.replay_buffer
        if not self._fast_ok(buffer):
            data = buffer.sample(batch_size, env=self.agent._vec_normalize_env)
            if data.discounts is not None:
                raise ValueError("sac.engine=fast does not support n-step replay buffers (use sac.engine=reference)")
            obs, next_obs = data.observations.flatten(1).float(), data.next_observations.flatten(1).float()
            return Batch(obs, data.actions.float(), next_obs, data.dones.float(), data.rewards.float())
        if buffer is not self._buffer or any(getattr(buffer, n) is not a for n, a in self._arrays.items()):
            self._bind(buffer)
        upper = buffer.buffer_size if buffer.full else buffer.pos
        rows = np.random.randint(0, upper, size=batch_size)
        env_rows = np.random.randint(0, high=buffer.n_envs, size=(batch_size,))
        index = th.from_numpy(rows * buffer.n_envs + env_rows)
        if self.device.type == "cpu":
            got = {name: view.index_select(0, index).float() for name, view in self._views.items()}
        else:
            got = self._to_device(index)
        dones = got["dones"] * (1.0 - got["timeouts"])
        return Batch(got["observations"], got["actions"], got["next_observations"], dones, got["rewards"])

    def _to_device(self, index: th.Tensor) -> dict[str, th.Tensor]:
        """Gather into pinned host memory and copy without blocking the host.

        PyTorch's pinned-memory cache hands a block out again only once the copies that read it are done (it records
        an event per use), so a fresh pinned buffer per batch is safe without any synchronisation here.
        """
        got = {}
        for name, view in self._views.items():
            staging = th.empty((index.shape[0], view.shape[1]), dtype=view.dtype, pin_memory=True)
            th.index_select(view, 0, index, out=staging)
            got[name] = staging.to(self.device, non_blocking=True).float()
        return got


# ---------------------------------------------------------------------------- logging without host syncs
class PendingStats:
    """Running sums of logged values on the device, read at the logging cadence only.

    Args:
        names: the values that may be logged.
        device: where the sums live.
    """

    def __init__(self, names: Sequence[str], device: th.device) -> None:
        self.names = tuple(names)
        self.device = device
        self.sums = th.zeros(len(self.names), dtype=th.float64, device=device)
        self.bad = th.zeros((), dtype=th.float64, device=device)  # non-positive replay temperatures seen
        self.counts = np.zeros(len(self.names), dtype=np.int64)
        self.since_check = 0
        self._index: dict[tuple[str, ...], tuple[th.Tensor, np.ndarray]] = {}

    def add(self, values: dict[str, th.Tensor]) -> None:
        """Add this update's values (scalar tensors by name) to the sums, on the device."""
        key = tuple(values)
        if key not in self._index:  # one device index per set of names, made once
            rows = np.array([self.names.index(name) for name in key])
            self._index[key] = (th.as_tensor(rows, device=self.device), rows)
        index, rows = self._index[key]
        self.sums.index_add_(0, index, th.stack([v.reshape(()) for v in values.values()]).to(th.float64))
        self.counts[rows] += 1
        self.since_check += 1

    def _read(self, prefix: str, n_updates: int) -> list[float]:
        values = th.cat([self.sums, self.bad.reshape(1)]).tolist()  # the one transfer
        self.since_check = 0
        if values[-1] > 0:
            raise LossNotFiniteError(
                f"{prefix}: {int(values[-1])} replay samples had a non-positive temperature in the updates before update "
                f"{n_updates} (alpha=0 data must never be stored)"
            )
        bad = [
            f"{prefix}/{n}={v}" for n, v, c in zip(self.names, values, self.counts, strict=False) if c and not math.isfinite(v)
        ]
        if bad:
            updates = int(self.counts.max())
            raise LossNotFiniteError(f"not finite: {', '.join(bad)} (sums of the {updates} updates before update {n_updates})")
        return values

    def check(self, prefix: str, n_updates: int) -> None:
        """Raise if a value became non-finite (every ``CHECK_EVERY`` updates between log dumps)."""
        if self.since_check >= CHECK_EVERY:
            self._read(prefix, n_updates)

    def flush(self, logger: Any, prefix: str, n_updates: int) -> None:
        """Record the means since the last flush into ``logger`` (after the finite checks), then reset."""
        if not self.counts.any():
            return
        values = self._read(prefix, n_updates)
        for name, total, count in zip(self.names, values, self.counts, strict=False):
            if count:
                logger.record(f"{prefix}/{name}", total / count)
        self.sums.zero_()
        self.counts[:] = 0


# ---------------------------------------------------------------------------- optimisers
def set_adam_mode(optimizer: Any, fused: bool) -> None:
    """Fused Adam (fast path) or torch's default choice (reference path, as SB3 builds it); other optimisers untouched.

    Needed before every update: ``load_state_dict`` replaces the groups' flags with the saved ones.
    """
    if not isinstance(optimizer, th.optim.Adam):
        return
    for group in optimizer.param_groups:
        if fused and not group.get("fused"):
            group["fused"], group["foreach"] = True, False
            for p in group["params"]:
                step = optimizer.state.get(p, {}).get("step")
                if isinstance(step, th.Tensor) and step.device != p.device:
                    optimizer.state[p]["step"] = step.to(device=p.device, dtype=th.float32)
        elif not fused and group.get("fused"):
            group["fused"], group["foreach"] = None, None


def apply_gradients(optimizer: th.optim.Optimizer, params: Sequence[th.Tensor], grads: Sequence[th.Tensor]) -> None:
    """Set ``p.grad = g`` for each parameter, step ``optimizer``, and drop the gradients again.

    The gradients are outputs of the (possibly CUDA-graphed) update; none is kept past its step.
    """
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    optimizer.step()
    for p in params:
        p.grad = None


def check_supported(agent: Any) -> None:
    """Refuse (ValueError) a policy the fast path does not implement, naming what differs."""
    policy = agent.policy
    problems = []
    if agent.use_sde:
        problems.append("gSDE (use_sde=True)")
    if is_image_space(agent.observation_space):
        problems.append("image observations")
    if getattr(policy, "share_features_extractor", False):
        problems.append("a shared features extractor")
    for name in ("actor", "critic"):
        extractor = getattr(policy, name).features_extractor
        if type(extractor) is not FlattenExtractor:
            problems.append(f"the {name}'s {type(extractor).__name__}")
    if not problems and len(_linear_layers(agent.critic.q_networks[0], "the critic")) < 2:
        problems.append("critics without a hidden layer")
    if problems:
        raise ValueError(
            f"sac.engine=fast supports SB3's MlpPolicy only; this agent has {', '.join(problems)} (use sac.engine=reference)"
        )
    _linear_layers(agent.actor.latent_pi, "the actor", head=False)

"""What a QARL run's future depends on, as plain state dicts: agents, replay buffers, envs and random generators.

An exact resume needs more than SB3's ``save``/``set_parameters``: those restore weights and optimisers but not
the replay buffer, the SB3 counters that gate learning (``num_timesteps``, ``_n_updates``), the learned
temperature (``log_ent_coef`` is a saved variable that ``set_parameters`` skips), the action space's generator
used during warm-up, the pending reset seeds of the vectorised env, nor the envs' and the global generators.
Each ``*_state`` function here returns a picklable dict and its ``load_*`` counterpart puts it back in place, so
the optimisers keep pointing at the same tensors.

Replay buffers are saved as the filled rows only (their allocated size can be 1e6 rows). For rolling back to the
start of an iteration (an interrupt mid-iteration) :func:`buffer_mark` keeps only ``pos``/``full`` and the rows
the iteration may overwrite, which is cheap enough to take every iteration.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import recursive_getattr

from rl.qarl.wrappers import EpisodeContext

# SB3 attributes of an off-policy algorithm that change while it collects and trains
_SB3_COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "_n_calls", "_current_progress_remaining")
_SB3_ROLLOUT = ("_last_obs", "_last_original_obs", "_last_episode_starts")


# ---------------------------------------------------------------------------- global generators
def global_rng_state() -> dict[str, Any]:
    """The states of Python's ``random``, NumPy's legacy global generator and torch's (CPU and CUDA) generators."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": th.get_rng_state()}
    if th.cuda.is_available() and th.cuda.is_initialized():
        state["cuda"] = th.cuda.get_rng_state_all()
    return state


def load_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`global_rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"].cpu())
    if "cuda" in state and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])


def _generator_state(obj: Any) -> dict[str, Any] | None:
    """The bit-generator state of ``obj._np_random`` (gymnasium envs and spaces), or ``None`` if never created."""
    rng = getattr(obj, "_np_random", None)
    return copy.deepcopy(rng.bit_generator.state) if rng is not None else None


def _set_generator_state(obj: Any, state: dict[str, Any] | None) -> None:
    if state is None:
        return
    rng = getattr(obj, "_np_random", None)
    if rng is None or type(rng.bit_generator).__name__ != state["bit_generator"]:
        bit_generator = getattr(np.random, state["bit_generator"])()
        rng = np.random.Generator(bit_generator)
        obj._np_random = rng
    rng.bit_generator.state = state


# ---------------------------------------------------------------------------- replay buffers
def _buffer_arrays(buffer: ReplayBuffer) -> dict[str, np.ndarray]:
    """The per-row arrays of a replay buffer (observations, actions, rewards, ...)."""
    return {
        name: value
        for name, value in vars(buffer).items()
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == buffer.buffer_size
    }


def buffer_state(buffer: ReplayBuffer) -> dict[str, Any]:
    """The filled rows of ``buffer`` with its write position (copies)."""
    filled = buffer.buffer_size if buffer.full else buffer.pos
    return {
        "pos": int(buffer.pos),
        "full": bool(buffer.full),
        "rows": {name: array[:filled].copy() for name, array in _buffer_arrays(buffer).items()},
    }


def load_buffer_state(buffer: ReplayBuffer, state: dict[str, Any]) -> None:
    """Restore what :func:`buffer_state` returned into an allocated buffer of the same size."""
    arrays = _buffer_arrays(buffer)
    if set(arrays) != set(state["rows"]):
        raise ValueError(f"replay buffer fields differ: saved {sorted(state['rows'])}, have {sorted(arrays)}")
    for name, rows in state["rows"].items():
        if rows.shape[0] > buffer.buffer_size or rows.shape[1:] != arrays[name].shape[1:]:
            raise ValueError(f"saved replay buffer {name} has shape {rows.shape}; the buffer holds {arrays[name].shape}")
        arrays[name][: rows.shape[0]] = rows
    buffer.pos, buffer.full = int(state["pos"]), bool(state["full"])


def buffer_mark(buffer: ReplayBuffer, max_new_rows: int) -> dict[str, Any]:
    """What :func:`rollback_buffer` needs to undo up to ``max_new_rows`` additions: the position and overwritten rows."""
    will_overwrite = buffer.full or buffer.pos + max_new_rows > buffer.buffer_size
    index = (buffer.pos + np.arange(min(max_new_rows, buffer.buffer_size))) % buffer.buffer_size if will_overwrite else None
    rows = {name: array[index].copy() for name, array in _buffer_arrays(buffer).items()} if index is not None else {}
    return {"pos": int(buffer.pos), "full": bool(buffer.full), "index": index, "rows": rows}


def rollback_buffer(buffer: ReplayBuffer, mark: dict[str, Any]) -> None:
    """Undo the additions made since :func:`buffer_mark` (rows past the old position are dropped)."""
    if mark["index"] is not None:
        arrays = _buffer_arrays(buffer)
        for name, rows in mark["rows"].items():
            arrays[name][mark["index"]] = rows
    buffer.pos, buffer.full = mark["pos"], mark["full"]


# ---------------------------------------------------------------------------- agents
def agent_state(agent: OffPolicyAlgorithm, buffer: str = "full", max_new_rows: int = 0) -> dict[str, Any]:
    """Everything of an SB3 off-policy agent that training changes.

    The torch part is what SB3's own ``save`` lists (``_get_torch_save_params``: the policy, every optimiser, and
    variables such as SAC's ``log_ent_coef``), so a subclass that declares more there is covered too.

    Args:
        agent: the agent (its env must be a ``DummyVecEnv``).
        buffer: ``full`` (the filled rows), ``mark`` (a :func:`buffer_mark` for a rollback) or ``none``.
        max_new_rows: for ``mark``: how many rows may be added before the rollback.
    """
    modules, variables = agent._get_torch_save_params()
    state: dict[str, Any] = {
        "modules": {name: copy.deepcopy(recursive_getattr(agent, name).state_dict()) for name in modules},
        "variables": {name: recursive_getattr(agent, name).detach().clone() for name in variables},
        "sb3": {name: copy.deepcopy(getattr(agent, name, None)) for name in (*_SB3_COUNTERS, *_SB3_ROLLOUT)},
        "ep_info_buffer": list(agent.ep_info_buffer or []),
        "ep_success_buffer": list(agent.ep_success_buffer or []),
        "action_space_rng": _generator_state(agent.action_space),
        "vec_env": {"seeds": list(agent.env._seeds), "options": copy.deepcopy(agent.env._options)}
        if agent.env is not None
        else None,
    }
    assert agent.replay_buffer is not None
    if buffer == "full":
        state["buffer"] = buffer_state(agent.replay_buffer)
    elif buffer == "mark":
        state["buffer_mark"] = buffer_mark(agent.replay_buffer, max_new_rows)
    return state


def load_agent_state(agent: OffPolicyAlgorithm, state: dict[str, Any]) -> None:
    """Restore what :func:`agent_state` returned (in place: optimisers keep their parameter references)."""
    for name, module_state in state["modules"].items():
        recursive_getattr(agent, name).load_state_dict(copy.deepcopy(module_state))
    with th.no_grad():
        for name, value in state["variables"].items():
            recursive_getattr(agent, name).copy_(value)
    for name, value in state["sb3"].items():
        setattr(agent, name, copy.deepcopy(value))
    maxlen = agent._stats_window_size
    agent.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=maxlen)
    agent.ep_success_buffer = deque(state["ep_success_buffer"], maxlen=maxlen)
    _set_generator_state(agent.action_space, state["action_space_rng"])
    if agent.env is not None and state["vec_env"] is not None:
        agent.env._seeds = list(state["vec_env"]["seeds"])
        agent.env._options = copy.deepcopy(state["vec_env"]["options"])
    assert agent.replay_buffer is not None
    if "buffer" in state:
        load_buffer_state(agent.replay_buffer, state["buffer"])
    elif "buffer_mark" in state:
        rollback_buffer(agent.replay_buffer, state["buffer_mark"])


# ---------------------------------------------------------------------------- envs
def env_state(env: EpisodeContext) -> dict[str, Any]:
    """A player's env: the per-episode context queue and every generator in the wrapper chain."""
    view, game = env.view, env.view.game
    return {
        "queue": list(env.queue),
        "alpha": env.alpha,
        "context": view.context,
        "force_limit": game.force_limit,
        "rng": {"view": _generator_state(view), "game": _generator_state(game), "task": _generator_state(game.task)},
    }


def load_env_state(env: EpisodeContext, state: dict[str, Any]) -> None:
    """Restore what :func:`env_state` returned."""
    view, game = env.view, env.view.game
    env.queue = deque(state["queue"])
    env.alpha = float(state["alpha"])
    view.context = float(state["context"])
    game.force_limit = float(state["force_limit"])
    for name, obj in (("view", view), ("game", game), ("task", game.task)):
        _set_generator_state(obj, state["rng"][name])

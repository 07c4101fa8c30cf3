"""QARLSAC reduces to stable-baselines3's SAC bit for bit (issue 27).

``rl.qarl.sac.QARLSAC.train`` is a copy of SB3's ``SAC.train`` with QARL's changes; with one learning rate, no
actor delay and ``ent_coef="auto"`` none of the changes applies, so both must produce the same parameters,
optimiser states and replay buffer, with a constant learning rate or SB3's schedule. An upstream change to
``SAC.train`` (or to the private state it relies on) breaks this test instead of silently changing QARL's agents.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC

from rl.qarl.sac import QARLSAC

COMMON: dict[str, Any] = {
    "learning_rate": 1e-3,
    "buffer_size": 1_000,
    "learning_starts": 40,
    "batch_size": 16,
    "train_freq": 1,
    "gradient_steps": 2,  # two per call: exercises the loop and target_update_interval
    "ent_coef": "auto",
    "policy_kwargs": {"net_arch": [16, 16]},
    "seed": 0,
}
STEPS = 46  # (46 - 40) calls of train() x 2 gradient steps = 12 updates


def _trained(cls: type[SAC], **kwargs: Any) -> SAC:
    th.manual_seed(0)
    model = cls("MlpPolicy", gym.make("Pendulum-v1"), **{**COMMON, **kwargs})
    model.learn(total_timesteps=STEPS)
    return model


def _state(model: SAC) -> dict[str, Any]:
    assert model.log_ent_coef is not None and model.ent_coef_optimizer is not None and model.replay_buffer is not None
    return {
        "policy": model.policy.state_dict(),  # actor, critic and critic_target
        "log_ent_coef": model.log_ent_coef.detach().clone(),
        "actor.optimizer": model.actor.optimizer.state_dict(),
        "critic.optimizer": model.critic.optimizer.state_dict(),
        "ent_coef_optimizer": model.ent_coef_optimizer.state_dict(),
        "observations": model.replay_buffer.observations[: model.replay_buffer.size()],
        "actions": model.replay_buffer.actions[: model.replay_buffer.size()],
        "n_updates": model._n_updates,
    }


def _assert_identical(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, th.Tensor):
        assert th.equal(a, b), f"{where} differs: max |diff| {(a.double() - b.double()).abs().max().item():.3g}"
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _linear(progress_remaining: float) -> float:
    return 1e-3 * progress_remaining


@pytest.mark.parametrize("learning_rate", [1e-3, _linear], ids=["constant", "schedule"])
def test_qarlsac_equals_sb3_sac_bit_for_bit(learning_rate: Any) -> None:
    sb3, qarl = _trained(SAC, learning_rate=learning_rate), _trained(QARLSAC, learning_rate=learning_rate)
    assert sb3._n_updates == qarl._n_updates == 12
    # the updates moved the parameters (a no-op train() on both sides would pass the comparison trivially)
    fresh = SAC("MlpPolicy", gym.make("Pendulum-v1"), **COMMON)
    assert not th.equal(fresh.log_ent_coef, sb3.log_ent_coef)
    assert not th.equal(fresh.actor.mu.weight, sb3.actor.mu.weight)
    _assert_identical(_state(sb3), _state(qarl), "state")


def test_qarlsac_per_network_rates_differ_from_sb3() -> None:
    """The comparison can fail: a different actor learning rate is noticed."""
    sb3, qarl = _trained(SAC), _trained(QARLSAC, actor_lr=5e-4)
    with pytest.raises(AssertionError, match="differs"):
        _assert_identical(_state(sb3)["policy"], _state(qarl)["policy"], "policy")

"""Fixed attack strategies: hand-written adversaries that the best-found attack takes the minimum over.

A learned best response can be weaker than a trivial push: against a SAC protagonist balancing InvertedPendulum
(500 nominal), 10k-step SAC attackers left it 59.9-61.1 while a constant +3 N along +x left it 57.2 (issue 21).
These strategies cost no training and are evaluated next to the learned attackers
(:mod:`rl.robustness.best_response`); every one acts on the game's adversary space (one entry per attacked body and
axis, body-major, in ``[-1, 1]``: the full force bound at magnitude 1):

* ``const+<body>.<axis>`` / ``const-<body>.<axis>``: the full bound along ``+axis`` / ``-axis`` on one (body, axis)
  entry, zero on the others; one pair per entry of the adversary's action.
* ``bang+vel``: every entry pushes with the full bound along the sign of the attacked body's velocity along that
  axis (with the motion: it feeds energy in, the destabilising choice for a body balanced near rest); ``bang-vel``:
  against it (the sign negated). The velocity is read from the game's state, not from the observation: the linear
  velocity of the body's centre of mass (where ``xfrc_applied`` acts) in world axes for the force axes ``x, y, z``,
  its angular velocity for the torque axes ``rx, ry, rz`` (MuJoCo's ``mj_objectVelocity`` of ``mjOBJ_BODY``,
  computed on a scratch ``MjData`` holding the current ``qpos``/``qvel``, so the game's own derived quantities are
  left untouched). A velocity of exactly 0 gives no push.

Every strategy is deterministic and has SB3's ``predict`` (:class:`envs.adversarial.policies.SupportsPredict`), so
:func:`envs.adversarial.episodes.run_episodes` plays it like any adversary.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.specs import AXES, TORQUE_AXES

DESCRIPTIONS = {
    "bang+vel": "the full bound along the sign of each attacked body's velocity on each axis (with the motion)",
    "bang-vel": "the full bound against the sign of each attacked body's velocity on each axis (against the motion)",
}


class ConstantPush:
    """Always the same adversary action."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = np.asarray(action, dtype=np.float32)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        """The constant action (``observation`` is ignored)."""
        return self.action.copy(), None


class VelocityBangBang:
    """``sign * sign(v)`` on every (body, axis) entry, ``v`` the body's velocity along that axis, read from ``game``."""

    def __init__(self, game: AdversarialMujocoEnv, sign: float = 1.0) -> None:
        self.game, self.sign = game, float(sign)
        self.body_ids = [game.body_id(b) for b in game.bodies]
        # columns of mj_objectVelocity's [angular(3), linear(3)] result, per axis of the action
        self.columns = [3 + AXES.index(a) if a in AXES else TORQUE_AXES.index(a) for a in game.axes]
        self._scratch = mujoco.MjData(game.model)
        self._res = np.zeros(6)

    def velocities(self) -> np.ndarray:
        """The velocity of each (body, axis) entry of the adversary's action in the game's current state."""
        m, d, s = self.game.model, self.game.data, self._scratch
        s.qpos[:], s.qvel[:] = d.qpos, d.qvel
        if m.nmocap:
            s.mocap_pos[:], s.mocap_quat[:] = d.mocap_pos, d.mocap_quat
        mujoco.mj_kinematics(m, s)
        mujoco.mj_comPos(m, s)
        mujoco.mj_comVel(m, s)
        out = np.empty(len(self.body_ids) * len(self.columns))
        for b, body in enumerate(self.body_ids):
            mujoco.mj_objectVelocity(m, s, mujoco.mjtObj.mjOBJ_BODY, body, self._res, 0)
            out[b * len(self.columns) : (b + 1) * len(self.columns)] = self._res[self.columns]
        return out

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        """The bang-bang action for the game's current state (``observation`` is ignored)."""
        return (self.sign * np.sign(self.velocities())).astype(np.float32), None


def fixed_attacks(game: AdversarialMujocoEnv) -> dict[str, Any]:
    """Every fixed strategy for ``game``'s adversary, by name (constant pushes first, then the two bang-bangs)."""
    entries = [f"{body}.{axis}" for body in game.bodies for axis in game.axes]
    out: dict[str, Any] = {}
    for k, entry in enumerate(entries):
        for sign, text in ((1.0, "+"), (-1.0, "-")):
            action = np.zeros(len(entries))
            action[k] = sign
            out[f"const{text}{entry}"] = ConstantPush(action)
    out["bang+vel"] = VelocityBangBang(game, 1.0)
    out["bang-vel"] = VelocityBangBang(game, -1.0)
    return out


def describe(name: str) -> str:
    """A sentence saying what the fixed strategy ``name`` does."""
    if name.startswith("const"):
        body, axis = name[6:].rsplit(".", 1)
        return f"the full force bound along {name[5]}{axis} on {body}, all the time"
    return DESCRIPTIONS[name]

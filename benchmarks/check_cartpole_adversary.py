"""Can the official cartpole adversary (+-2 N in x and z on ``pole_1``) keep any protagonist from swinging up?

A physics check behind the QARL cartpole-swingup demo (benchmarks/README.md, issue 11). The pole weighs 0.1 kg with
its centre of mass 0.5 m from the hinge, so gravity's largest torque is 0.1 * 9.81 * 0.5 = 0.49 N m, and the cart
(1 kg, motor gear 10, control in [-1, 1], so at most 10 N) can add at most about 0.1 * (10 / 1.1) * 0.5 = 0.45 N m
through its acceleration. The adversary's force at the pole's centre of mass, perpendicular to the pole, reaches
2 * (|cos| + |sin|) N, i.e. 1.0 to 1.41 N m: more than both together. A rational adversary can therefore hold the
pole away from upright whatever the cart does, and the smooth swing-up reward (a product with ``(cos + 1) / 2``)
stays small.

This script plays three protagonists (an energy-pumping swing-up controller, bang-bang noise, zero force) against
no adversary and against a scripted adversary that always pushes the pole's centre of mass down along its arc
(the largest force the official bound allows in that direction), and prints the undiscounted and discounted
(gamma = 0.99) returns over 500 steps and the highest the pole got. Run::

    python benchmarks/check_cartpole_adversary.py [--bounds 2.0 0.5] [--episodes 3]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the rldyn ids)
from envs.adversarial.env import AdversarialMujocoEnv

GAMMA = 0.99


def pole_axis(game: AdversarialMujocoEnv) -> np.ndarray:
    """The pole's direction from hinge to tip in the world x-z plane."""
    xmat = game.data.xmat[game.model.body("pole_1").id].reshape(3, 3)
    return np.array([xmat[0, 2], xmat[2, 2]])


def energy_pump(game: AdversarialMujocoEnv, rng: np.random.Generator) -> np.ndarray:
    """Astrom-Furuta style swing-up: push the cart so the pole gains energy, balance near the top."""
    d = pole_axis(game)
    cos_up = d[1]
    omega = float(game.data.qvel[1])
    x, v = float(game.data.qpos[0]), float(game.data.qvel[0])
    if cos_up > 0.9:  # near upright: a PD balance in the pole's lean and the cart's drift
        lean = np.arctan2(d[0], d[1])
        u = 8.0 * lean + 1.5 * omega + 0.3 * x + 0.6 * v
    else:
        energy = 0.5 * (0.5**2 / 3 * 4) * omega**2 + 9.81 * 0.5 * (cos_up - 1.0)  # 0 at rest upright, per unit mass
        u = -3.0 * energy * np.sign(omega * -d[1] + 1e-9) - 0.2 * x
    return np.array([np.clip(u, -1.0, 1.0)], dtype=np.float32)


def bang_bang(game: AdversarialMujocoEnv, rng: np.random.Generator) -> np.ndarray:
    """Uniform random +-1 pushes."""
    return np.array([rng.choice([-1.0, 1.0])], dtype=np.float32)


def zero(game: AdversarialMujocoEnv, rng: np.random.Generator) -> np.ndarray:
    """No cart force."""
    return np.zeros(1, dtype=np.float32)


def push_down(game: AdversarialMujocoEnv, bound_fraction: float = 1.0) -> np.ndarray:
    """The adversary's normalised action: the pole's centre of mass pushed down along its arc, at full bound."""
    d = pole_axis(game)
    up = np.array([0.0, 1.0])
    tangent = -(up - (up @ d) * d)  # the component of "down" perpendicular to the pole
    norm = np.max(np.abs(tangent))
    if norm < 1e-6:  # hanging straight down (or up): push sideways to tip it off the top, nothing at the bottom
        tangent, norm = (np.array([1.0, 0.0]), 1.0) if d[1] > 0 else (np.zeros(2), 1.0)
    return (bound_fraction * tangent / norm).astype(np.float32)


Protagonist = Callable[[AdversarialMujocoEnv, np.random.Generator], np.ndarray]


def play(protagonist: Protagonist, adversary: float, seed: int, horizon: int = 500) -> tuple[float, float, float]:
    """Undiscounted return, discounted return and the highest ``cos`` (1 = upright) of one episode.

    ``adversary`` is the pushing adversary's force in newtons (0: none; at most the official 2 N).
    """
    game = gym.make("rldyn/AdversarialDMCCartpoleSwingup-v1").unwrapped
    assert isinstance(game, AdversarialMujocoEnv)
    rng = np.random.default_rng(seed)
    game.reset(seed=seed)
    total, discounted, highest = 0.0, 0.0, -1.0
    for t in range(horizon):
        adv = np.zeros(game.adversary_action_space.shape, dtype=np.float32)
        if adversary:
            adv = push_down(game, adversary / game.force_bound)
        _, reward, terminated, truncated, _ = game.step(protagonist(game, rng), adv)
        total += float(reward)
        discounted += GAMMA**t * float(reward)
        highest = max(highest, float(pole_axis(game)[1]))
        if terminated or truncated:
            break
    game.close()
    return total, discounted, highest


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--bounds", type=float, nargs="+", default=[2.0], help="the scripted adversary's forces (N)")
    args = parser.parse_args()
    print("| protagonist | adversary | return (of 500) | discounted return | highest cos (1 = upright) |")
    print("|---|---|---|---|---|")
    policies: tuple[tuple[str, Protagonist], ...] = (
        ("energy pump + balance", energy_pump),
        ("bang-bang noise", bang_bang),
        ("zero", zero),
    )
    for name, policy in policies:
        for adversary in (0.0, *args.bounds):
            out = np.array([play(policy, adversary, seed) for seed in range(args.episodes)])
            mean = out.mean(axis=0)
            label = f"push down, +-{adversary:g} N" if adversary else "none"
            label += " (official bound)" if adversary == 2.0 else ""
            print(f"| {name} | {label} | {mean[0]:.1f} | {mean[1]:.2f} | {out[:, 2].max():.2f} |")


if __name__ == "__main__":
    main()

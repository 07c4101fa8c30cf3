"""How the baselines are evaluated: "vs own adversary" for the action adversaries, fixed_temp at its training alpha."""

import numpy as np
import pytest

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.episodes import run_episodes
from rl.qarl import load_policies, train
from rl.qarl.baselines.action_adversary import AttackedPolicy, MASAttack, gaussian_params
from rl.qarl.baselines.mixedne import MixedNESAC
from rl.robustness.evaluate import evaluate_run
from rl.robustness.tasks import episode_seeds
from tests.qarl_helpers import tiny_cfg


@pytest.mark.parametrize("algo", ["mixedne_ld", "cat"])
def test_action_adversaries_get_a_vs_own_adversary_number(tmp_path, algo):
    """MixedNE-LD against its adversary at delta, CAT against MAS at the target budget (official final evaluation)."""
    train(tiny_cfg(tmp_path, f"algo={algo}", "budget.iterations=1", "algo.cat.budget=0.7"))
    result = evaluate_run(tmp_path, grid_size=1, eval_episodes=3, seed=5, workers=1, progress=False, sweep_size=0)
    assert result.adversary_returns is not None and len(result.adversary_returns) == 3
    assert result.return_vs_adversary is not None and np.isfinite(result.return_vs_adversary)

    # the same episodes played by hand with the official protocol's attacked protagonist
    policies = load_policies(tmp_path)
    protagonist = policies.protagonist
    if algo == "mixedne_ld":
        assert isinstance(protagonist, MixedNESAC) and protagonist.delta == 0.1
        attacked = AttackedPolicy(protagonist, protagonist.mixed_action)
    else:
        attack = MASAttack(budget=0.7)  # the target budget, not the curriculum's current one
        attacked = AttackedPolicy(protagonist, lambda obs, a: attack.attack(a, *gaussian_params(protagonist, obs)))
    game = AdversarialMujocoEnv("InvertedPendulum", max_episode_steps=int(policies.config.budget.horizon))
    by_hand = run_episodes(game, attacked, "none", episode_seeds(5, "adversary", 0, 0, 3))
    assert result.adversary_returns == list(by_hand.returns)

    none = evaluate_run(tmp_path, grid_size=1, eval_episodes=1, workers=1, progress=False, attack="none", sweep_size=0)
    assert none.adversary_returns is None

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


class Recorder:
    """A policy that records what it observes and returns a fixed action."""

    def __init__(self, dim):
        self.dim, self.seen = dim, []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.seen.append(np.array(obs))
        return np.zeros(self.dim, dtype=np.float32), None


@pytest.mark.parametrize(("algo", "trained_alpha"), [("fixed_temp", True), ("qarl", False), ("qarl_linear", False)])
def test_evaluation_alpha_is_the_training_alpha_of_fixed_temp_only(tmp_path, algo, trained_alpha):
    from rl.qarl.modes import evaluation_alpha
    from tests.test_qarl_baselines import make_trainer

    tr = make_trainer(tmp_path, f"algo={algo}", "curriculum.reward_scale=2")
    expected = tr.alpha_target if trained_alpha else 0.0
    assert evaluation_alpha(tr.cfg) == expected
    if trained_alpha:
        assert expected > 0 and np.all(tr.sample_alphas(3) == expected)  # what its networks saw in training
    assert evaluation_alpha(tiny_cfg(tmp_path / "sac", "algo=sac")) == 0.0
    pro, adv = Recorder(1), Recorder(1)
    tr.protagonist, tr.adversary = pro, adv  # type: ignore[assignment]
    tr.evaluate(1, against_adversary=True)
    assert pro.seen and adv.seen
    assert all(obs[-1] == pytest.approx(expected, rel=1e-6, abs=0) for obs in pro.seen + adv.seen)


def test_robustness_evaluator_and_attacker_see_the_fixed_temp_alpha(tmp_path):
    from rl.qarl.modes import evaluation_alpha
    from rl.robustness.best_response import attacker_view
    from rl.robustness.tasks import Task
    from rl.robustness.workers import Evaluator

    train(tiny_cfg(tmp_path, "algo=fixed_temp", "budget.iterations=1"))
    ev = Evaluator(str(tmp_path))
    alpha = evaluation_alpha(ev.policies.config)
    assert alpha > 0 and ev.alpha == alpha
    pro, adv = Recorder(1), Recorder(1)
    ev.policies = ev.policies._replace(protagonist=pro, adversary=adv)
    for kind in ("nominal", "adversary", "grid"):
        result = ev(Task(kind, 0, 0, 1.0, 1.0, (3,)))
        assert result.error is None, result.error
    assert len(adv.seen) > 0 and all(obs[-1] == pytest.approx(alpha, rel=1e-6) for obs in pro.seen + adv.seen)
    view = attacker_view(ev.game, Recorder(1), "temperature", alpha)
    obs, _ = view.reset(seed=0)
    assert obs[-1] == pytest.approx(alpha)
    ev.game.close()

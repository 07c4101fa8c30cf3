"""Markov coding games: MDPs, the gymnasium env, MEME / MEC-B senders, the receiver, SB3 and the script."""

from __future__ import annotations

import subprocess
import sys
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hydra import compose, initialize_config_dir
from scipy import stats

from envs.coding.agents import BayesianReceiver, CouplingProtocol
from envs.coding.config import register_mcg_configs
from envs.coding.env import MarkovCodingGameEnv, make_sender
from envs.coding.experiments import make_game, play_episodes, train
from envs.coding.mdp import make_codegrid, make_gridworld, make_stateless, maxent_policy
from envs.coding.registration import CODING_ENVS


def exact_return(env: MarkovCodingGameEnv) -> float:
    """Expected discounted MDP return of the max-entropy policy, by forward propagation of the state law."""
    mdp, pi = env.mdp, env.policy
    d = np.zeros(mdp.n_states)
    d[mdp.start] = 1.0
    total = 0.0
    for t in range(mdp.max_steps):
        d = np.einsum("s,sa,sap->p", d, pi, mdp.transitions)
        total += mdp.gamma ** (t + 1) * float(d @ mdp.rewards)
        d = d * ~mdp.terminal
        if d.sum() < 1e-12:
            break
    return total


def shortest_path(mdp, start, goal):
    dist = {start: 0}
    queue = deque([start])
    while queue:
        s = queue.popleft()
        for a in range(mdp.n_actions):
            for nxt in np.flatnonzero(mdp.transitions[s, a] > 0.5):  # intended move only
                if nxt not in dist:
                    dist[int(nxt)] = dist[s] + 1
                    queue.append(int(nxt))
    return dist.get(goal)


def test_gridworld_layout():
    g = make_gridworld()
    np.testing.assert_allclose(g.transitions.sum(-1), 1.0)
    assert shortest_path(g, g.start, g.labels.index("(0,7)")) == 16
    assert g.rewards[g.labels.index("(0,7)")] == 1 and g.rewards[g.labels.index("(1,7)")] == -1
    assert g.terminal.sum() == 2


def test_gridworld_returns_order_with_temperature():
    g = make_gridworld()
    rets = {}
    for lt in (-7, -6, -5, -4.5, -4):
        env = MarkovCodingGameEnv(g, n_messages=2, log_temperature=lt)
        rets[lt] = exact_return(env)
    assert rets[-6] == pytest.approx(0.338, abs=0.01)
    assert rets[-7] == pytest.approx(rets[-6], abs=0.01)
    assert rets[-6] > rets[-5] > rets[-4.5] > rets[-4]


def count_successes(mdp):
    """Number of masked-action trajectories of CodeGrid that reach the goal, by length."""
    counts: dict[int, int] = {}
    frontier = {mdp.start: 1}
    for t in range(1, mdp.max_steps + 1):
        nxt: dict[int, int] = {}
        for s, c in frontier.items():
            for a in np.flatnonzero(mdp.action_mask[s]):
                s2 = int(np.argmax(mdp.transitions[s, a]))
                if mdp.rewards[s2] > 0:
                    counts[t] = counts.get(t, 0) + c
                elif not mdp.terminal[s2]:
                    nxt[s2] = nxt.get(s2, 0) + c
        frontier = nxt
    return counts


def test_codegrid_counts():
    counts = count_successes(make_codegrid())
    assert counts == {6: 20, 8: 296}


@pytest.mark.parametrize("env_id", list(CODING_ENVS))
def test_registered_envs_pass_check_env(env_id):
    kwargs = {"n_messages": 16} if env_id != "rldyn/ReferentialGame-v0" else {"n_messages": 8}
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("protocol", ["meme", "mecb"])
def test_same_seed_same_episode_and_replay_reproduces_beliefs(protocol):
    env = MarkovCodingGameEnv("codegrid", n_messages=32, log_temperature=-1.0, protocol=protocol, rate_fraction=0.5)
    sender = make_sender(protocol, env)
    episodes = []
    for _ in range(2):
        obs, _ = env.reset(seed=7)
        traj, beliefs, done = [], [obs["belief"]], False
        while not done:
            a = sender(obs, env.np_random)
            traj.append((int(obs["state"]), a))
            obs, _, te, tr, info = env.step(a)
            beliefs.append(obs["belief"])
            done = te or tr
        episodes.append((traj, beliefs, info))
    assert episodes[0][0] == episodes[1][0]
    # an independent receiver rebuilt from the protocol's parameters replays the beliefs bit for bit
    rx = BayesianReceiver(CouplingProtocol(**env.protocol.describe()), env.policy.copy(), env.prior.copy())
    replay = [rx.reset()] + [rx.update(s, a) for s, a in episodes[0][0]]
    for b1, b2 in zip(replay, episodes[0][1], strict=True):
        assert np.array_equal(b1, b2)
    assert episodes[0][1][-1][episodes[0][2]["message"]] > 0  # the true message is never ruled out


def test_info_and_reward_terms_add_up():
    env = MarkovCodingGameEnv("codegrid", n_messages=8, log_temperature=-2.0, zeta=3.0)
    sender = make_sender("meme", env)
    obs, _ = env.reset(seed=1)
    total, bonus, done = 0.0, 0.0, False
    while not done:
        obs, r, te, tr, info = env.step(sender(obs, env.np_random))
        assert r == pytest.approx(info["reward_mdp"] + info["reward_bonus"])
        total, bonus, done = total + r, bonus + info["reward_bonus"], te or tr
    assert {"guess", "posterior_entropy", "mdp_return", "correct"} <= set(info)
    assert bonus == (3.0 if info["correct"] else 0.0)
    assert total == pytest.approx(info["mdp_return"] + bonus)  # gamma = 1 in CodeGrid


def test_stateless_meme_decodes_512_messages_in_6_steps():
    env = MarkovCodingGameEnv("stateless", n_messages=512)
    res = play_episodes(env, make_sender("meme", env), episodes=20)
    assert res.accuracy == 1.0


def test_meme_accuracy_near_one_and_return_of_maxent_policy():
    """No rate limit, small message set: decoding near 1 while the return is the max-entropy policy's."""
    env = MarkovCodingGameEnv("codegrid", n_messages=8, log_temperature=-1.0)
    meme = play_episodes(env, make_sender("meme", env), episodes=300, seed=1000)
    floor = play_episodes(env, make_sender("random", env), episodes=100, seed=1000)
    target = exact_return(env)
    assert 0.2 < target < 0.8  # a return with real variance, so the check has teeth
    assert meme.accuracy >= 0.95
    assert abs(meme.mdp_return - target) <= 3 * meme.return_se
    assert floor.accuracy <= 0.3


def test_meme_actions_follow_the_policy():
    """Chi-square: the sender's first action, over random messages, is distributed as pi(.|start)."""
    env = MarkovCodingGameEnv("gridworld", n_messages=64, log_temperature=-4.5)
    sender = make_sender("meme", env)
    counts = np.zeros(4)
    for i in range(400):
        obs, _ = env.reset(seed=i)
        counts[sender(obs, env.np_random)] += 1
    expected = 400 * env.policy[env.mdp.start]
    assert stats.chisquare(counts, expected).pvalue > 1e-3


def test_rate_limited_stateless_matches_spec_and_ebim_beats_uniform():
    acc = {}
    for enc in ("greedy", "uniform"):
        env = MarkovCodingGameEnv("stateless", n_messages=512, protocol="mecb", rate_fraction=0.5, encoder=enc)
        acc[enc] = play_episodes(env, make_sender("mecb", env), episodes=30).accuracy
    assert acc["greedy"] == pytest.approx(0.87, abs=0.15)
    assert acc["uniform"] <= 1 / 24 + 0.05  # one bin of ceil(512 / floor(2^4.5)) = 24 messages stays tied
    assert acc["greedy"] > acc["uniform"]


def test_nonuniform_policy_override():
    env = MarkovCodingGameEnv("stateless", n_messages=16, policy=[0.7, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(env.policy[0], [0.7, 0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="policy"):
        MarkovCodingGameEnv("stateless", n_messages=16, policy=[0.7, 0.1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="did you mean 'gridworld'"):
        MarkovCodingGameEnv("gridwrld")
    with pytest.raises(ValueError, match=r"valid range \[0, 1\]"):
        MarkovCodingGameEnv("stateless", protocol="mecb", rate_fraction=1.5)
    with pytest.raises(ValueError, match="negative"):
        MarkovCodingGameEnv("stateless", prior=[1.2, -0.2])
    env = MarkovCodingGameEnv("stateless", n_messages=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="valid range"):
        env.step(7)
    with pytest.raises(ValueError, match="does not match"):
        make_sender("mecb", env)


def test_maxent_policy_masks_walls():
    c = make_codegrid()
    pi = maxent_policy(c, 0.5)
    assert (pi[~c.action_mask] == 0).all()
    np.testing.assert_allclose(pi.sum(1), 1.0)
    s = make_stateless(horizon=3)
    np.testing.assert_allclose(maxent_policy(s, 1.0), 0.25)


def test_sb3_sender_trains_unchanged():
    from stable_baselines3 import PPO

    env = MarkovCodingGameEnv("codegrid", n_messages=8, log_temperature=-1.0)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0)
    model.learn(128)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_run_mcg_train_writes_outputs(tmp_path, repo_root):
    register_mcg_configs()
    with initialize_config_dir(config_dir=str(repo_root / "configs"), version_base="1.3"):
        cfg = compose(
            config_name="run_mcg",
            overrides=[
                "mcg_mdp=stateless",
                "mcg_mdp.n_messages=64",
                "episodes=4",
                "rate_fractions=[1.0,0.5]",
                "message_sizes=[4,16]",
                "ebim.size=6",
                "ebim.n_rates=5",
                f"run_dir={tmp_path}",
            ],
        )
    result = train(cfg)
    assert result["meme_accuracy"] == 1.0
    for name in ("rate_sweep", "messages_sweep", "ebim_curve"):
        assert (tmp_path / f"{name}.csv").stat().st_size > 0
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert any((tmp_path / "tensorboard").iterdir())
    header = (tmp_path / "rate_sweep.csv").read_text().splitlines()[0]
    assert header.startswith("rate_fraction,rate_bits,encoder,accuracy")


def test_config_groups_compose(repo_root):
    register_mcg_configs()
    with initialize_config_dir(config_dir=str(repo_root / "configs"), version_base="1.3"):
        for name in ("gridworld", "codegrid", "stateless"):
            cfg = compose(config_name="run_mcg", overrides=[f"mcg_mdp={name}"])
            env = make_game(cfg.mcg_mdp)
            assert env.mdp.name == name
        with pytest.raises(Exception, match="lerning_rate"):
            compose(config_name="run_mcg", overrides=["mcg_mdp.lerning_rate=1"])


def test_script_smoke(tmp_path, repo_root):
    cmd = [sys.executable, str(repo_root / "scripts" / "run_mcg.py"), "mcg_mdp=stateless", "mcg_mdp.n_messages=16",
           "episodes=2", "rate_fractions=[1.0,0.5]", "message_sizes=[4]", "ebim.size=5", "ebim.n_rates=3",
           f"hydra.run.dir={tmp_path}"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "rate_sweep.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("protocol", "encoder"), [("meme", "greedy"), ("mecb", "greedy"), ("mecb", "uniform")])
def test_gridworld_return_is_the_policys_for_every_method(protocol, encoder):
    """Spec evidence 8: at log tau = -6 the return is 0.338 +- 0.01 whatever the rate and encoder."""
    env = MarkovCodingGameEnv("gridworld", n_messages=512, log_temperature=-6.0, protocol=protocol,
                              rate_fraction=0.5, encoder=encoder)  # fmt: skip
    res = play_episodes(env, make_sender(protocol, env), episodes=150, seed=0)
    assert exact_return(env) == pytest.approx(0.338, abs=0.01)
    assert abs(res.mdp_return - exact_return(env)) <= 3 * res.return_se


@pytest.mark.slow
def test_stateless_table_of_the_spec():
    """Spec §4.6, stateless game, 512 messages, 100 episodes: EBIM accuracies within 0.1 of the table."""
    expected = {0.5: 0.87, 0.25: 0.13, 0.15: 0.04}
    for c, acc in expected.items():
        env = MarkovCodingGameEnv("stateless", n_messages=512, protocol="mecb", rate_fraction=c)
        assert play_episodes(env, make_sender("mecb", env), episodes=100).accuracy == pytest.approx(acc, abs=0.1)


def test_uniform_quantization_follows_the_authors_rule_by_default():
    """c = 0.75 on 512 messages: bins of 5. The authors' scalar_quant quantises every step (the default), so each
    bin stays tied and accuracy <= 1/5 (spec §2.3, §4.3); the hybrid ``above_rate`` switches to plain MEC once
    H(b) <= R and separates the bins (accuracy near 1)."""
    acc = {}
    for when in (None, "always", "above_rate"):
        kwargs = {} if when is None else {"compress_when": when}
        env = MarkovCodingGameEnv("stateless", n_messages=512, protocol="mecb", rate_fraction=0.75, encoder="uniform",
                                  **kwargs)  # fmt: skip
        assert env.protocol.compress_when == (when or "always")
        acc[when] = play_episodes(env, make_sender("mecb", env), episodes=30).accuracy
    assert acc[None] == acc["always"] <= 0.2 + 0.1
    assert acc["above_rate"] > 0.8


def test_greedy_encoder_is_the_same_under_both_rules():
    """The greedy encoder returns the identity once H(b) <= R, so both rules give bit-identical couplings."""
    runs = []
    for when in ("always", "above_rate"):
        env = MarkovCodingGameEnv("stateless", n_messages=64, protocol="mecb", rate_fraction=0.5, compress_when=when)
        obs, _ = env.reset(seed=3)
        sender, beliefs, done = make_sender("mecb", env), [], False
        while not done:
            obs, _, te, tr, _ = env.step(sender(obs, env.np_random))
            beliefs.append(obs["belief"])
            done = te or tr
        runs.append(beliefs)
    for b1, b2 in zip(*runs, strict=True):
        assert np.array_equal(b1, b2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "mecb", "rate": float("inf")}, r"mecb rate inf bits is outside the valid range"),
        ({"kind": "mecb", "rate": float("nan")}, r"mecb rate nan bits is outside the valid range"),
        ({"kind": "mecb", "rate": -1.0}, r"outside the valid range"),
        ({"kind": "mecb", "rate": "1"}, r"mecb rate must be a real number, got '1'"),
        ({"kind": "mecb"}, r"needs a rate"),
        ({"kind": "meme", "rate": 1.0}, r"'meme' has no rate limit"),
        ({"kind": "mecb", "rate": 1.0, "compress_when": "alway"}, r"did you mean 'always'"),
    ],
)
def test_protocol_rejects_bad_rates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CouplingProtocol(**kwargs)


def test_protocol_rate_above_log2_messages_is_an_error_not_a_clamp():
    proto = CouplingProtocol("mecb", rate=2.5)
    with pytest.raises(ValueError, match=r"mecb rate 2.5 bits is outside the valid range \[0, log2\(4\) = 2\]"):
        proto.coupling(np.full(4, 0.25), [0.5, 0.5])
    assert proto.coupling(np.full(8, 0.125), [0.5, 0.5]).shape == (8, 2)


def test_env_rejects_non_integer_actions_and_bad_numbers():
    env = MarkovCodingGameEnv("stateless", n_messages=4)
    env.reset(seed=0)
    for bad in (1.7, 1.0, "1", True, np.float64(2.0), np.array([0.5])):
        with pytest.raises(ValueError, match="action must be an integer"):
            env.step(bad)
    env.step(np.array([1]))  # SB3-style integer arrays and numpy ints are fine
    env.step(np.int64(2))
    with pytest.raises(ValueError, match="zeta must be finite, got nan"):
        MarkovCodingGameEnv("stateless", n_messages=4, zeta=float("nan"))
    with pytest.raises(ValueError, match="rate_fraction must be a real number"):
        MarkovCodingGameEnv("stateless", n_messages=4, protocol="mecb", rate_fraction="0.5")
    with pytest.raises(ValueError, match=r"n_messages must be an integer, got 2\.5"):
        MarkovCodingGameEnv("stateless", n_messages=2.5)
    with pytest.raises(ValueError, match="log_temperature must be finite"):
        MarkovCodingGameEnv("stateless", n_messages=4, log_temperature=float("inf"))
    with pytest.raises(ValueError, match="policy must be an array of real numbers"):
        MarkovCodingGameEnv("stateless", n_messages=4, policy=np.full(4, 0.25 + 0j))

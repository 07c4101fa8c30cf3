"""Issue 27 item 6: two evaluations of one run at once train each attacker once and leave complete results."""

import json
import multiprocessing as mp
import sys

import pytest
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rl.qarl import train
from rl.robustness.config import register_configs
from rl.robustness.evaluate import evaluate
from tests.qarl_helpers import CONFIGS, tiny_cfg

ATTACK = [
    "best_response.steps=120",
    "best_response.learning_starts=30",
    "best_response.batch_size=16",
    "best_response.net_arch=[16]",
    "best_response.seed=3",
    "best_response.fixed=false",
]


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sac_run")
    train(tiny_cfg(root, "algo=sac", "budget.iterations=1"))
    return root


def evaluate_in_child(run, attack, log, barrier, results):
    """One ``eval_robustness`` job (what the joblib launcher runs), its output to ``log``."""
    sys.stdout = sys.stderr = open(log, "w", buffering=1)  # closed when the process exits
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        tiny = ["grid_size=1", "eval_episodes=2", "workers=1", "sweep_size=0", "horizon=20", "progress=false"]
        cfg = compose("eval_robustness", [f"run={run}", f"attack={attack}", *tiny, *ATTACK])
    barrier.wait()  # both start checking for the attackers at the same moment
    (result,), _ = evaluate(cfg)
    results.put((attack, result.to_json()))


def test_two_evaluations_at_once_train_each_attacker_once(sac_run):
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    logs = {attack: sac_run / f"{attack}.log" for attack in ("best_response", "both")}
    jobs = [ctx.Process(target=evaluate_in_child, args=(sac_run, a, log, barrier, results)) for a, log in logs.items()]
    for job in jobs:
        job.start()
    got = dict(results.get(timeout=600) for _ in jobs)
    for job in jobs:
        job.join(timeout=60)
        assert job.exitcode == 0
    output = "".join(log.read_text() for log in logs.values())
    # each of the two attacker seeds was trained by one job and reused by the other (which waited for it)
    assert output.count("trained:") == 2 and output.count("reused:") == 2, output
    folders = sorted((sac_run / "best_response").iterdir())
    assert [f.name.split("_")[2] for f in folders] == ["s3", "s4"]
    for folder in folders:  # one training: one TensorBoard event file and one learning curve
        (events,) = (folder / "tensorboard").glob("events.out.tfevents.*")
        acc = EventAccumulator(str(events))
        acc.Reload()
        assert len(acc.Scalars("best_response/budget")) == 1
    # both results are complete and agree on the attackers; the files hold one of them, whole
    assert sorted(got) == ["best_response", "both"]
    for data in got.values():
        assert not data["failures"] and [a["name"] for a in data["attackers"]] == ["sac_s3@120", "sac_s4@120"]
    assert got["both"]["best_response_returns"] == got["best_response"]["best_response_returns"]
    saved = json.loads((sac_run / "robustness" / "robustness.json").read_text())
    assert json.dumps(saved, sort_keys=True) == json.dumps(json.loads(json.dumps(got[saved["attack"]])), sort_keys=True)
    # one HParams session (the later job's): neither deleted the other's while it was being written
    sessions = []
    for events in (sac_run / "tensorboard" / "hparams_robustness").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if acc.Tags()["scalars"]:  # the session's file (the other one is its writer's, empty)
            sessions.append("_hparams_/session_start_info" in acc.PluginTagToContent("hparams"))
    assert sessions == [True]

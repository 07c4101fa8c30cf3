"""Loading a run folder never runs code from it (issue 26): weights-only state files and the weights-only policies."""

import base64
import hashlib
import json
import pickle
import random
import shutil
import zipfile
from collections import deque
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch as th
from hydra import compose, initialize_config_dir

from envs.common.io import (
    UnsafeStateFileError,
    atomic_torch_save,
    from_weights_only,
    load_state_file,
    to_weights_only,
)
from rl.qarl import load_policies, train
from rl.qarl.checkpoint import RESUME_FILE, DamagedCheckpointError, load_resume_state
from rl.robustness.config import register_configs
from rl.robustness.evaluate import evaluate, evaluate_run
from tests.qarl_helpers import CONFIGS, assert_same_state, tiny_cfg

CONVERT = "scripts/convert_state_file.py --trust"


class CreatesFile:
    """Unpickling this writes ``path``: what a crafted state file would do (here harmlessly, in ``tmp_path``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __reduce__(self):
        return Path.write_text, (self.path, "code from the file ran")


def crafted_torch_file(path: Path, marker: Path, **state) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    th.save({"version": 2, **state, "payload": CreatesFile(marker)}, path)
    return path


@pytest.fixture(scope="module")
def qarl_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("qarl_run")
    train(tiny_cfg(root, "budget.iterations=1"))
    return root


def latest(run: Path) -> Path:
    return run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()


def test_the_crafted_file_runs_code_when_unpickled(tmp_path):
    """The fixture is real: an ordinary (unsafe) load of it creates the file."""
    marker = tmp_path / "ran.txt"
    path = crafted_torch_file(tmp_path / "resume.pt", marker)
    th.load(path, weights_only=False)
    assert marker.exists()


# ---------------------------------------------------------------------------- crafted state files are refused
def test_crafted_resume_pt_is_refused_and_runs_nothing(qarl_run, tmp_path):
    marker = tmp_path / "ran.txt"
    checkpoint = tmp_path / "iter_000001"
    crafted_torch_file(checkpoint / RESUME_FILE, marker)
    with pytest.raises(UnsafeStateFileError, match=rf"resume\.pt.*not a weights-only state file.*{CONVERT}"):
        load_resume_state(checkpoint)
    assert not marker.exists()
    # the same through a resume of a real run whose resume.pt was replaced: refused as damaged (its state.json
    # records another size and SHA-256), and, with state.json rewritten to match it, as not weights-only
    run = tmp_path / "run"
    shutil.copytree(qarl_run, run)
    crafted = crafted_torch_file(latest(run) / RESUME_FILE, marker)
    with pytest.raises(DamagedCheckpointError, match=r"resume\.pt"):
        train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}", "budget.iterations=2"))
    summary = json.loads((latest(run) / "state.json").read_text())
    data = crafted.read_bytes()
    summary["resume_file"] |= {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (latest(run) / "state.json").write_text(json.dumps(summary))
    with pytest.raises(UnsafeStateFileError, match=r"resume\.pt"):
        train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}", "budget.iterations=2"))
    assert not marker.exists()


def test_crafted_gtf_checkpoint_is_refused_and_runs_nothing(tmp_path):
    from dynamics.dsr.train import load_run

    marker = tmp_path / "ran.txt"
    run = tmp_path / "gtf_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    crafted_torch_file(run / "checkpoints" / "last.pt", marker, model={})
    with pytest.raises(UnsafeStateFileError, match=rf"last\.pt.*{CONVERT}"):
        load_run(run, "last")
    assert not marker.exists()


def test_crafted_node_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran.txt"
    path = crafted_torch_file(tmp_path / "node" / "checkpoints" / "last.pt", marker, epoch=3)
    with pytest.raises(UnsafeStateFileError, match=rf"last\.pt.*{CONVERT}"):
        load_state_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["partial_buffer.pt", "partial_buffer.pkl"])
def test_crafted_calibration_buffer_is_refused_and_runs_nothing(tmp_path, name):
    """The calibration continues a partly trained protagonist from its saved replay buffer: never unpickled."""
    from stable_baselines3 import SAC

    from envs.adversarial.views import ProtagonistView
    from rl.robustness.calibration import train_protagonist

    marker = tmp_path / "ran.txt"
    out = tmp_path / "protagonist"
    out.mkdir()
    SAC("MlpPolicy", ProtagonistView("InvertedPendulum", max_episode_steps=20), policy_kwargs={"net_arch": [8]}).save(
        out / "partial.zip"
    )
    if name.endswith(".pt"):
        crafted_torch_file(out / name, marker)
    else:  # the format of older versions (SB3's pickled buffer), crafted
        (out / name).write_bytes(pickle.dumps(CreatesFile(marker)))
    with pytest.raises(UnsafeStateFileError, match=rf"{name}.*{CONVERT}"):
        train_protagonist("InvertedPendulum", 40, out, horizon=20, net_arch=(8,), learning_starts=10)
    assert not marker.exists()


# ---------------------------------------------------------------------------- the format and old files
def test_weights_only_format_round_trips_numpy_and_rng_states_bit_for_bit(tmp_path):
    rng = np.random.default_rng(7)
    rng.random(3)
    state = {
        "arrays": [np.arange(6, dtype=">i4").reshape(2, 3)[:, ::2], np.zeros((0, 4), np.float32), np.array(True)],
        "scalars": (np.float32(1.5), np.uint64(2**64 - 1), np.float64("nan")),
        "pcg64": rng.bit_generator.state,  # 128-bit Python ints
        "legacy": np.random.get_state(),  # a tuple with a uint32 array
        "python": random.getstate(),
        "torch": th.get_rng_state(),
        "nested": {"lists": [1, 2.5, None, "x", b"y"], "set": {1, 2}},
    }
    atomic_torch_save(state, tmp_path / "s.pt")
    th.load(tmp_path / "s.pt", weights_only=True)  # a plain weights-only load reads it
    loaded = load_state_file(tmp_path / "s.pt")
    assert_same_state(state, loaded)
    for a, b in zip(state["arrays"] + list(state["scalars"]), loaded["arrays"] + list(loaded["scalars"]), strict=True):
        assert type(a) is type(b) and a.dtype == b.dtype
    assert all(x.flags.writeable for x in loaded["arrays"])
    again = np.random.default_rng()
    again.bit_generator.state = loaded["pcg64"]
    assert again.random() == rng.random()
    with pytest.raises(TypeError, match=r"state\['q'\]: a collections.deque cannot be stored weights-only"):
        to_weights_only({"q": deque([1])})
    with pytest.raises(TypeError, match="dtype object"):
        to_weights_only(np.array([None]))
    assert from_weights_only(to_weights_only(state["python"])) == state["python"]


def test_old_format_resume_pt_gets_a_clear_error_and_converts(qarl_run, tmp_path):
    """An old ``resume.pt`` (NumPy objects pickled) is refused, names the convert command, and loads once converted."""
    from scripts.convert_state_file import main as convert

    checkpoint = tmp_path / "iter"
    checkpoint.mkdir()
    state = load_resume_state(latest(qarl_run))
    th.save(state, checkpoint / RESUME_FILE)  # what versions before issue 26 wrote
    with pytest.raises(UnsafeStateFileError, match=rf"{CONVERT} {checkpoint / RESUME_FILE}"):
        load_resume_state(checkpoint)
    assert_same_state(state, load_resume_state(checkpoint, trusted=True))  # the explicit opt-in
    before = (checkpoint / RESUME_FILE).read_bytes()
    assert convert([str(tmp_path)]) == 2 and (checkpoint / RESUME_FILE).read_bytes() == before  # --trust is required
    assert convert(["--trust", str(tmp_path)]) == 0
    assert_same_state(state, load_resume_state(checkpoint))
    assert convert(["--trust", str(checkpoint / RESUME_FILE)]) == 0  # already converted: left alone


def test_old_pickled_calibration_buffer_converts(tmp_path):
    from stable_baselines3 import SAC

    from envs.adversarial.views import ProtagonistView
    from rl.qarl.state import buffer_state
    from scripts.convert_state_file import main as convert

    model = SAC("MlpPolicy", ProtagonistView("InvertedPendulum", max_episode_steps=20), buffer_size=50, learning_starts=10)
    model.learn(30)
    model.save_replay_buffer(tmp_path / "buffer.pkl")  # the format of older versions
    assert convert(["--trust", str(tmp_path)]) == 0
    assert not (tmp_path / "buffer.pkl").exists()
    assert model.replay_buffer is not None
    assert_same_state(buffer_state(model.replay_buffer), load_state_file(tmp_path / "buffer.pt"))


# ---------------------------------------------------------------------------- SB3 zips: the weights-only path
def crafted_zip(path: Path, marker: Path) -> None:
    """Add a cloudpickled object that writes ``marker`` to the ``data`` member of SB3 zip ``path``."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    serialized = base64.b64encode(cloudpickle.dumps(CreatesFile(marker))).decode()
    data["notes"] = {":type:": "<class 'str'>", ":serialized:": serialized}
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def test_weights_only_policies_predict_as_loaded_and_never_unpickle(qarl_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(qarl_run, run)
    marker = tmp_path / "ran.txt"
    for player in ("protagonist", "adversary"):
        crafted_zip(latest(run) / f"{player}.zip", marker)
    fresh = load_policies(run, weights_only=True)
    assert not marker.exists()
    loaded = load_policies(run)  # SB3's load unpickles the zip's objects: the crafted one runs
    assert marker.exists()
    obs_rng = np.random.default_rng(0)
    for a, b in ((loaded.protagonist, fresh.protagonist), (loaded.adversary, fresh.adversary)):
        assert type(a) is type(b) and a.observation_space == b.observation_space and a.action_space == b.action_space
        assert_same_state(dict(a.policy.state_dict()), dict(b.policy.state_dict()))
        obs = obs_rng.standard_normal((4, *a.observation_space.shape)).astype(np.float32)
        for deterministic in (True, False):
            th.manual_seed(1)
            expected = a.predict(obs, deterministic=deterministic)[0]
            th.manual_seed(1)
            assert np.array_equal(fresh_action := b.predict(obs, deterministic=deterministic)[0], expected), fresh_action
    assert fresh.teacher is not None and fresh.teacher.state_dict() == loaded.teacher.state_dict()


def test_weights_only_robustness_evaluation_matches_and_never_calls_sb3_load(qarl_run, tmp_path, monkeypatch):
    from stable_baselines3.common.base_class import BaseAlgorithm

    from rl.robustness.best_response import AttackSettings

    kw = dict(grid_size=2, eval_episodes=2, seed=4, workers=1, progress=False, sweep_size=0, horizon=20, attack="both")
    attack = AttackSettings(steps=60, learning_starts=20, batch_size=16, net_arch=(16,), seed=3)
    expected = evaluate_run(qarl_run, best_response=attack, **kw).to_json()

    def refuse(*args, **kwargs):
        raise AssertionError("SB3's load was called")

    monkeypatch.setattr(BaseAlgorithm, "load", classmethod(refuse))
    got = evaluate_run(qarl_run, best_response=attack, weights_only=True, **kw).to_json()
    for key in ("nominal_returns", "adversary_returns", "best_response_returns", "grid_returns"):
        assert got[key] == expected[key], key
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose(
            "eval_robustness",
            overrides=[
                *(f"run={qarl_run}", "weights_only=true", "grid_size=1", "eval_episodes=1", "sweep_size=0"),
                *("workers=1", "progress=false", "tensorboard=false", f"out={tmp_path / 'out'}", "horizon=20"),
            ],
        )
    results, errors = evaluate(cfg)
    assert len(results) == 1 and not errors

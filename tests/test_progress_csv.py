"""Issue 27 item 5: ``progress.csv`` beside the TensorBoard events, exact on resume, read by the report."""

import shutil

import numpy as np
import pytest
import torch as th

from rl.qarl import train
from rl.qarl.progress import ProgressCSV, read_progress
from rl.qarl.trainer import QARLTrainer
from rl.robustness.report.records import read_curves, read_run, read_scalars
from tests.qarl_helpers import tiny_cfg

COMMON = ["budget.iterations=4", "budget.checkpoint_every=1", "budget.eval_every=2"]
WALL_CLOCK = "time/env_steps_per_second"


def rows_without_wall_clock(path):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    k = header.index(WALL_CLOCK)
    return [[c for i, c in enumerate(line.split(",")) if i != k] for line in lines]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    th.set_num_threads(1)
    run = tmp_path_factory.mktemp("straight")
    train(tiny_cfg(run, *COMMON))
    return run


def test_progress_csv_holds_every_logged_scalar(straight):
    curves = read_progress(straight / "progress.csv")
    events = read_scalars(straight / "tensorboard")
    assert set(curves) == set(events) and "eval/return_nominal" in curves and "train/actor_loss" in curves
    for tag, (steps, values) in events.items():
        np.testing.assert_array_equal(curves[tag][0], steps, err_msg=tag)
        np.testing.assert_allclose(curves[tag][1], values, rtol=1e-6, err_msg=tag)  # the events hold float32
    # eval/ only every budget.eval_every iterations (and the last): its column is empty in between
    assert len(curves["eval/return_nominal"][0]) == 2 and len(curves["rollout/protagonist_return"][0]) == 4
    # the report reads the CSV (same curves as the events) and falls back to the events without it
    assert read_curves(straight).keys() == curves.keys()
    assert read_run(straight).values["return_nominal"] == pytest.approx(float(events["eval/return_nominal"][1][-1]))


def test_resume_after_a_crash_logs_each_step_once(straight, tmp_path, monkeypatch):
    """Iterations logged but not checkpointed before a crash are dropped on resume and logged again, identically."""
    th.set_num_threads(1)
    run = tmp_path / "crashed"
    save = QARLTrainer.save

    def crash_before_third_checkpoint(self):
        if self.state.iteration == 3:
            raise RuntimeError("killed after logging iteration 3")
        return save(self)

    monkeypatch.setattr(QARLTrainer, "save", crash_before_third_checkpoint)
    with pytest.raises(RuntimeError, match="killed"):
        train(tiny_cfg(run, *COMMON))
    monkeypatch.undo()
    assert len((run / "progress.csv").read_text().splitlines()) == 1 + 3  # iteration 3 was logged
    with (run / "progress.csv").open("a") as fh:
        fh.write("99999,1.5")  # and a row half written when the process died
    train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}", *COMMON))
    assert rows_without_wall_clock(run / "progress.csv") == rows_without_wall_clock(straight / "progress.csv")


def test_a_run_from_before_the_csv_gets_none_on_resume(straight, tmp_path):
    run = tmp_path / "old"
    shutil.copytree(straight, run)
    (run / "progress.csv").unlink()
    (run / "done.json").unlink()
    train(tiny_cfg(tmp_path / "elsewhere", f"resume={run}", "budget.iterations=5", "budget.checkpoint_every=1"))
    assert not (run / "progress.csv").exists()  # a CSV of the resumed part only would hide the earlier curves
    assert len(read_curves(run)["rollout/protagonist_return"][0]) == 5  # read from the events


def test_progress_writer_and_reader(tmp_path):
    path = tmp_path / "progress.csv"
    writer = ProgressCSV(path)
    writer.write({"a": 1.0, "label": "text"}, {}, step=10)
    writer.write({"a": 2.0, "b": np.float32(0.5), "skipped": 3.0}, {"skipped": ("csv",)}, step=20)  # a new column
    writer.write({"b": float("nan")}, {}, step=30)
    assert path.read_text().splitlines() == ["step,a,b", "10,1.0,", "20,2.0,0.5", "30,,nan"]
    curves = read_progress(path)
    assert list(curves["a"][0]) == [10, 20] and list(curves["a"][1]) == [1.0, 2.0]
    assert list(curves["b"][0]) == [20, 30] and np.isnan(curves["b"][1][1])
    with path.open("a") as fh:
        fh.write("40,x,1\n50,5")  # a damaged row and a half-written one are skipped
    assert list(read_progress(path)["a"][0]) == [10, 20]
    resumed = ProgressCSV(path)
    resumed.truncate(20)
    resumed.write({"a": 3.0}, {}, step=30)
    assert path.read_text().splitlines() == ["step,a,b", "10,1.0,", "20,2.0,0.5", "30,3.0,"]
    with pytest.raises(ValueError, match="cannot be a CSV column"):
        resumed.write({"bad,tag": 1.0}, {}, step=40)

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from rl.qarl.eval_config import register_configs
from rl.qarl.report import build_report, find_report_runs, read_scalars, report, student_t_interval, write_report

ROOT = Path(__file__).resolve().parents[1]
# two-sided 95% Student-t quantiles t_{0.975, n-1} from statistical tables
T95 = {2: 12.706204736174707, 3: 4.302652729911275}

# known values per (algo, seed): nominal, vs adversary, grid average; curves are eval/return_nominal at steps
RUNS = {
    ("qarl", 0): (100.0, 50.0, 80.0),
    ("qarl", 1): (110.0, 60.0, 90.0),
    ("qarl", 2): (120.0, 70.0, 100.0),
    ("sac", 0): (200.0, None, 40.0),
    ("sac", 1): (210.0, None, 60.0),
}


def fake_run(root, env, algo, seed, values, robustness=True, steps=(0, 1000, 2000)):
    run = root / f"{env}__{algo}__s{seed}" / "2026-01-01_00-00-00"
    (run / "tensorboard").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    OmegaConf.save(
        OmegaConf.create({"script": "train_qarl", "env": {"name": env}, "algo": {"name": algo}, "seed": seed}),
        run / "config.yaml",
    )
    (run / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create({"script": "train_qarl"}), run / ".hydra" / "config.yaml")
    nominal, attacked, grid_average = values
    writer = SummaryWriter(str(run / "tensorboard"))
    for k, step in enumerate(steps):  # a linear curve ending at the known value
        writer.add_scalar("eval/return_nominal", nominal * (k + 1) / len(steps), step)
        if attacked is not None:
            writer.add_scalar("eval/return_vs_adversary", attacked - 5.0 * (len(steps) - 1 - k), step)
    writer.close()
    if robustness:
        grid = np.full((2, 3), grid_average)
        grid[0, 0], grid[1, 2] = grid_average - 6.0, grid_average + 6.0
        data = {
            "return_nominal": nominal,
            "return_vs_adversary": attacked,
            "grid_average": grid_average,
            "grid_mean": grid.tolist(),
            "mass_factors": [0.5, 1.5],
            "friction_factors": [0.5, 1.0, 1.5],
            "mass_body": "pole",
        }
        (run / "robustness").mkdir()
        (run / "robustness" / "robustness.json").write_text(json.dumps(data))
    return run


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for (algo, seed), values in RUNS.items():
        fake_run(root, "InvertedPendulum", algo, seed, values)
    return root


def ci(values):
    x = np.array(values, dtype=float)
    return T95[len(x)] * x.std(ddof=1) / math.sqrt(len(x))


def test_student_t_interval_known_numbers():
    s = student_t_interval([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.n == 3 and s.half_width == pytest.approx(4.302652729911275 / math.sqrt(3))
    s = student_t_interval([200.0, 210.0, float("nan")])
    assert s.n == 2 and s.half_width == pytest.approx(12.706204736174707 * math.sqrt(50) / math.sqrt(2))
    assert math.isnan(student_t_interval([5.0]).half_width) and student_t_interval([]).n == 0
    with pytest.raises(ValueError, match="confidence"):
        student_t_interval([1.0, 2.0], confidence=95)


def test_report_reproduces_known_numbers(runs, tmp_path):
    roots = find_report_runs([str(runs)])
    assert len(roots) == len(RUNS)  # .hydra/config.yaml is not a run
    report = build_report(roots)
    qarl, sac = report.table[("InvertedPendulum", "qarl")], report.table[("InvertedPendulum", "sac")]
    assert qarl["return_nominal"].mean == pytest.approx(110.0)
    assert qarl["return_nominal"].half_width == pytest.approx(ci([100, 110, 120]))
    assert qarl["return_vs_adversary"].mean == pytest.approx(60.0)
    assert qarl["grid_average"].half_width == pytest.approx(ci([80, 90, 100]))
    assert sac["return_nominal"].mean == pytest.approx(205.0) and sac["return_nominal"].n == 2
    assert sac["return_nominal"].half_width == pytest.approx(ci([200, 210]))
    assert sac["return_vs_adversary"].n == 0
    assert sac["grid_average"].mean == pytest.approx(50.0)

    out = tmp_path / "report"
    write_report(report, out, ["eval/return_nominal", "eval/return_vs_adversary"], 20)
    rows = {r["algo"]: r for r in csv.DictReader((out / "report.csv").open())}
    assert float(rows["qarl"]["return_nominal_mean"]) == pytest.approx(110.0)
    assert float(rows["qarl"]["return_nominal_ci"]) == pytest.approx(ci([100, 110, 120]))
    assert rows["sac"]["seeds"] == "0 1" and rows["sac"]["return_vs_adversary_n"] == "0"
    md = (out / "report.md").read_text()
    assert f"| qarl | 0, 1, 2 | 110.0 ± {ci([100, 110, 120]):.1f} | 60.0 ± {ci([50, 60, 70]):.1f} |" in md
    for name in ("learning_curves_InvertedPendulum.png", "heatmaps_InvertedPendulum.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and f"]({name})" in md


def test_tensorboard_source_and_missing_robustness(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "Hopper", "rarl", 0, (30.0, 20.0, 0.0), robustness=False)
    fake_run(root, "Hopper", "rarl", 1, (40.0, 10.0, 0.0), robustness=True)
    report = build_report(find_report_runs([str(root)]), source="auto")
    sources = sorted(r.source for r in report.records)
    assert sources == ["robustness", "tensorboard"]
    row = report.table[("Hopper", "rarl")]
    assert row["return_nominal"].mean == pytest.approx(35.0)  # last TB value of seed 0 is its known value
    assert row["return_vs_adversary"].mean == pytest.approx(15.0)
    assert row["grid_average"].n == 1  # TensorBoard has no grid average
    only = build_report(find_report_runs([str(root)]), source="robustness")
    assert len(only.records) == 1 and "eval_robustness.py" in only.skipped[0]
    scalars = read_scalars(next(root.glob("*s0/*")) / "tensorboard")
    np.testing.assert_allclose(scalars["eval/return_nominal"][0], [0, 1000, 2000])
    np.testing.assert_allclose(scalars["eval/return_nominal"][1], [10.0, 20.0, 30.0])
    with pytest.raises(ValueError, match="valid choices"):
        build_report(find_report_runs([str(root)]), source="tb")


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="matches no file"):
        find_report_runs([str(tmp_path / "missing*")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no train_qarl run"):
        find_report_runs([str(tmp_path / "empty")])


def test_script_writes_report(runs, tmp_path):
    out = tmp_path / "out"
    args = [f"runs=[{runs}]", f"out={out}", f"hydra.run.dir={tmp_path / 'h'}"]
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report_qarl.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| sac | 0, 1 | 205.0 ±" in res.stdout and (out / "report.md").exists()
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("report_qarl", overrides=[f"runs=[{tmp_path / 'nope'}]", f"out={out}"])
    assert cfg.source == "auto" and cfg.confidence == 0.95
    with pytest.raises(ValueError, match="matches no file"):
        report(cfg)

"""Issue 25: the report's per-metric comparison of one method with the others, and its cost table."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from rl.robustness.report import build_report, find_report_runs, write_report
from rl.robustness.report.compare import comparison_rows, welch_difference
from rl.robustness.report.records import read_train_seconds
from tests.test_report import fake_run

# (nominal, vs adversary, grid average) per seed
QARL = [(100.0, 50.0, 80.0), (110.0, 60.0, 90.0), (120.0, 70.0, 100.0)]
RARL = [(100.0, 40.0, 30.0), (104.0, 44.0, 31.0), (110.0, 48.0, 35.0)]
SAC = [(180.0, None, 40.0), (200.0, None, 60.0), (220.0, None, 50.0)]


@pytest.fixture
def report(tmp_path):
    root = tmp_path / "runs"
    for algo, rows in (("qarl", QARL), ("rarl", RARL), ("sac", SAC)):
        for seed, values in enumerate(rows):
            run = fake_run(root, "Hopper", algo, seed, values)
            state = {"trainer": {"iteration": 2, "wall_time": 600.0 * (seed + 1)}}
            (run / "checkpoints" / "iter_000002").mkdir()
            (run / "checkpoints" / "iter_000002" / "state.json").write_text(json.dumps(state))
            data = json.loads((run / "robustness" / "robustness.json").read_text())
            (run / "robustness" / "robustness.json").write_text(json.dumps(data | {"seconds": 120.0}))
    return build_report(find_report_runs([str(root)]))


def test_welch_difference_known_numbers():
    x, y = [80.0, 90.0, 100.0], [30.0, 31.0, 35.0]
    d = welch_difference(x, y)
    va, vb = np.var(x, ddof=1) / 3, np.var(y, ddof=1) / 3
    dof = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert d.value == pytest.approx(58.0) and d.low == pytest.approx(58.0 - half) and d.high == pytest.approx(58.0 + half)
    assert d.relative == pytest.approx(58.0 / 32.0) and d.verdict == "ahead"
    # scipy's Welch test agrees: its interval excludes 0 exactly when p < 0.05
    assert stats.ttest_ind(x, y, equal_var=False).pvalue < 0.05
    assert welch_difference(y, x).verdict == "behind"
    assert welch_difference([1.0, 5.0, 9.0], [4.0, 5.0, 6.0]).verdict == "not resolved"
    assert welch_difference([1.0], [2.0, 3.0]).verdict == "n/a" and math.isnan(welch_difference([1.0], [2.0]).low)
    assert welch_difference([2.0, 2.0], [1.0, 1.0]).verdict == "ahead"  # exact constants
    assert math.isnan(welch_difference([], [1.0]).value)
    with pytest.raises(ValueError, match="confidence"):
        welch_difference(x, y, confidence=95)


def test_comparison_rows_per_metric_and_method(report):
    rows = {(r.metric, r.other): r for r in comparison_rows(report, "Hopper", "qarl", reps=200)}
    # sac has no co-trained adversary: no vs-adversary row against it; metrics the fake runs lack are left out
    assert set(rows) == {
        ("return_nominal", "rarl"),
        ("return_nominal", "sac"),
        ("return_vs_adversary", "rarl"),
        ("grid_average", "rarl"),
        ("grid_average", "sac"),
    }
    assert rows[("grid_average", "rarl")].difference.verdict == "ahead"
    assert rows[("grid_average", "rarl")].improvement.value == pytest.approx(1.0)
    assert rows[("return_nominal", "sac")].difference.verdict == "behind"
    assert rows[("return_nominal", "sac")].improvement.value == pytest.approx(0.0)
    assert rows[("return_nominal", "rarl")].difference.verdict == "not resolved"
    assert rows[("return_nominal", "rarl")].difference.value == pytest.approx(110.0 - 314.0 / 3)
    assert comparison_rows(report, "Hopper", "cat") == []  # a method without runs: nothing to compare


def test_report_has_comparison_and_cost_sections(report, tmp_path):
    out = tmp_path / "out"
    write_report(report, out, ["eval/return_nominal"], 10, bootstrap_reps=100, compare_to="qarl")
    md = (out / "report.md").read_text()
    assert "## qarl against each method, per metric" in md
    assert "| grid average | rarl | 3 vs 3 | +58.0 [" in md and "| **ahead** |" in md
    assert "| nominal | sac | 3 vs 3 | -90.0 [" in md and "| **behind** |" in md
    # cost: 600 + 1200 + 1800 s of training per method, 120 s of evaluation per run
    assert "| Hopper | qarl | 3 | 20 min | 1.00 | 3 | 2.0 min | 0.10 |" in md
    assert "In all: 3.00 h of training and 0.30 h of evaluation (3.30 h)." in md
    write_report(report, out, ["eval/return_nominal"], 10, bootstrap_reps=100)
    assert "against each method" not in (out / "report.md").read_text()
    with pytest.raises(ValueError, match="valid choices"):
        write_report(report, out, ["eval/return_nominal"], 10, bootstrap_reps=100, compare_to="qarll")


def test_train_seconds_from_the_final_state_copy_or_the_latest_checkpoint(tmp_path):
    assert read_train_seconds(tmp_path) is None
    (tmp_path / "checkpoints" / "iter_000010").mkdir(parents=True)
    (tmp_path / "checkpoints" / "latest").write_text("iter_000010\n")
    (tmp_path / "checkpoints" / "iter_000010" / "state.json").write_text('{"trainer": {"wall_time": 12.5}}')
    assert read_train_seconds(tmp_path) == 12.5
    (tmp_path / "final_state.json").write_text('{"trainer": {"wall_time": 99.0}}')
    assert read_train_seconds(tmp_path) == 99.0
    (tmp_path / "final_state.json").write_text("not json")
    assert read_train_seconds(tmp_path) == 12.5  # an unreadable copy falls back to the checkpoint


def test_episode_stats_counts_falls_per_method_and_set(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "qarl_comparison" / "episode_stats.py"
    spec = importlib.util.spec_from_file_location("episode_stats", path)
    assert spec is not None and spec.loader is not None
    episode_stats = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(episode_stats)

    for algo, seed, nominal in (("qarl", 0, [300.0, 400.0]), ("qarl", 1, [100.0, 350.0]), ("sac", 0, [50.0, 60.0])):
        data = {
            "algo": algo,
            "seed": seed,
            "nominal_returns": nominal,
            "adversary_returns": [10.0, 20.0] if algo == "qarl" else None,
            "grid_returns": [[[300.0], [100.0]], [[None], [400.0]]],
            "attackers": [{"name": "bang+vel", "returns": [240.0, 260.0]}],
            "best_found_attack": "bang+vel",
        }
        (tmp_path / f"{algo}{seed}" / "robustness").mkdir(parents=True)
        (tmp_path / f"{algo}{seed}" / "robustness" / "robustness.json").write_text(json.dumps(data))
    assert episode_stats.main([str(tmp_path), "--out", str(tmp_path / "e.md")]) == 0
    text = (tmp_path / "e.md").read_text()
    assert "| qarl | nominal | 2 | 4 | 325.0 | 0.25 | [0.00, 0.50] |" in text
    assert "| qarl | vs own adversary | 2 | 4 | 15.0 | 1.00 | [1.00, 1.00] |" in text
    assert "| qarl | grid cells | 2 | 6 | 300.0 | 0.33 | [0.33, 0.33] |" in text  # a failed cell (None) is left out
    assert "| sac | best found attack | 1 | 2 | 250.0 | 0.50 | [0.50] |" in text
    assert "sac | vs own adversary" not in text
    with pytest.raises(SystemExit):
        episode_stats.main([str(tmp_path / "missing")])

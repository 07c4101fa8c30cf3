"""Issue 21 item 4: the report's aggregate over seeds x envs takes only groups that differ in the env, and every seed."""

import re

import numpy as np
import pytest

from rl.robustness.report import build_report, find_report_runs, iqm_interval, write_report
from rl.robustness.report.groups import aggregate_sets, score_columns
from rl.robustness.report.stats import aggregate_improvement, aggregate_iqm, equal_weight, performance_profiles
from tests.test_report import fake_run

# grid averages per (env, budget.iterations, algo), one per seed; every nominal return is 1 (the normalising scale)
GRID = {
    ("Hopper", 200, "qarl"): [5.0, 5.0, 0.0],
    ("Hopper", 200, "sac"): [1.0, 1.0, 1.0],
    ("InvertedPendulum", 200, "qarl"): [1.0, 3.0],
    ("InvertedPendulum", 200, "sac"): [2.0, 2.0],
    ("Hopper", 2, "qarl"): [4.0, 6.0],
    ("Hopper", 2, "sac"): [3.0, 3.0],
}


@pytest.fixture
def report(tmp_path):
    root = tmp_path / "runs"
    for (env, iterations, algo), values in GRID.items():
        for seed, grid in enumerate(values):
            date = f"2026-01-0{1 + (iterations == 2)}_00-00-00"
            fake_run(root, env, algo, seed, (1.0, None, grid), date=date, budget={"iterations": iterations})
    return build_report(find_report_runs([str(root)]))


def test_aggregate_takes_groups_that_differ_in_the_env_alone_and_every_seed(report, tmp_path):
    assert report.envs == ["Hopper [budget.iterations=200]", "Hopper [budget.iterations=2]", "InvertedPendulum"]
    # two configs of Hopper are never aggregated together: one aggregate per shared setting
    assert aggregate_sets(report) == [
        ("budget.iterations=200", ["Hopper [budget.iterations=200]", "InvertedPendulum"]),
        ("budget.iterations=2", ["Hopper [budget.iterations=2]"]),
    ]
    columns, note = score_columns(report, "grid_average", ["Hopper [budget.iterations=200]", "InvertedPendulum"])
    assert [list(c) for c in columns["qarl"]] == [[5.0, 5.0, 0.0], [1.0, 3.0]]  # no seed is cut
    assert "qarl: 3 seeds in Hopper [budget.iterations=200], 2 seeds in InvertedPendulum" in note

    out = tmp_path / "out"
    write_report(report, out, ["eval/return_nominal"], 10, bootstrap_reps=200)
    md = (out / "report.md").read_text()
    headers = re.findall(r"^### grid average: over seeds x envs .*$", md, flags=re.M)
    assert headers == [
        "### grid average: over seeds x envs (Hopper, InvertedPendulum) [budget.iterations=200]",
        "### grid average: over seeds x envs (Hopper) [budget.iterations=2]",
    ]
    section = md.split(headers[0])[1].split("###")[0]
    # each env weighs the same and every seed counts: Hopper's 3 seeds repeated twice, InvertedPendulum's 2 thrice,
    # IQM of [5,5,5,5,0,0, 1,1,1,3,3,3] = mean(1,1,3,3,3,5) = 2.67 (cutting to 2 seeds per env gave 4.0)
    assert re.search(r"^\| qarl \| 2\.7 \[", section, flags=re.M), section
    # P(qarl > sac) = mean(Hopper 6/9, InvertedPendulum 2/4) = 0.58 (cutting to 2 seeds gave 0.75)
    assert re.search(r"^\| qarl \| - \| 0\.58 \[", section, flags=re.M), section
    assert "Seed counts differ" in section
    for name in ("performance_profiles_budget.iterations_200.png", "performance_profiles_budget.iterations_2.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and f"({name})" in md


def test_aggregate_statistics_with_any_seed_counts():
    x = [np.array([5.0, 5.0, 0.0]), np.array([1.0, 3.0])]
    y = [np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0])]
    assert equal_weight(x).shape == (6, 2) and sorted(equal_weight(x)[:, 1]) == [1.0, 1.0, 1.0, 3.0, 3.0, 3.0]
    iqm = aggregate_iqm(x, reps=300)
    assert iqm.value == pytest.approx(16 / 6) and iqm.low <= iqm.value <= iqm.high and iqm.n == 2
    assert aggregate_iqm(x, reps=300).low == iqm.low  # seeded
    p = aggregate_improvement(x, y, reps=300)
    assert p.value == pytest.approx((6 / 9 + 2 / 4) / 2) and p.low <= p.value <= p.high
    profiles, bands = performance_profiles({"x": x}, np.array([2.0]), reps=200)
    assert profiles["x"] == pytest.approx([(4 / 6 + 3 / 6) / 2]) and bands["x"].shape == (2, 1)
    # with equal counts: rliable's numbers unchanged
    square = [np.array([1.0, 2.0, 4.0]), np.array([3.0, 0.0, 5.0])]
    assert str(aggregate_iqm(square, reps=300)) == str(iqm_interval(np.stack(square, axis=1), reps=300))

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from rl.robustness.config import register_configs
from rl.robustness.report import (
    build_report,
    find_report_runs,
    iqm_interval,
    iqm_intervals,
    probability_of_improvement,
    read_scalars,
    report,
    robustness_profiles,
    student_t_interval,
    write_report,
)

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


BUDGET = {"iterations": 200, "episodes_per_phase": 5, "horizon": 500, "max_env_steps": None, "eval_every": 5}


def fake_run(
    root,
    env,
    algo,
    seed,
    values,
    robustness=True,
    steps=(0, 1000, 2000),
    done=True,
    date="2026-01-01_00-00-00",
    budget=None,
    finished_at="2026-01-02T00:00:00",
    sweeps=False,
):
    run = root / f"{env}__{algo}__s{seed}" / date
    (run / "tensorboard").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "latest").write_text("iter_000002\n")
    config = {
        "script": "train_qarl",
        "name": f"{env}__{algo}__s{seed}",
        "run_dir": str(run),
        "progress": False,
        "env": {"name": env},
        "algo": {"name": algo, "adversary": algo != "sac"},
        "budget": dict(BUDGET) | (budget or {}),
        "seed": seed,
    }
    OmegaConf.save(OmegaConf.create(config), run / "config.yaml")
    if done:
        info = {"iterations": 2, "protagonist_steps": 1000, "env_steps_total": 2000, "finished_at": finished_at}
        (run / "done.json").write_text(json.dumps(info))
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
        if sweeps:
            data |= {
                "sweep_factors": {"mass": [0.5, 1.0, 1.5], "friction": [0.5, 1.0, 1.5]},
                "sweep_mean": {"mass": [grid_average, nominal, None], "friction": [grid_average, nominal, grid_average]},
                "sweep_mass_average": (grid_average + nominal) / 2,
                "sweep_friction_average": (2 * grid_average + nominal) / 3,
            }
        (run / "robustness").mkdir()
        (run / "robustness" / "robustness.json").write_text(json.dumps(data))
    return run


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for (algo, seed), values in RUNS.items():
        fake_run(root, "InvertedPendulum", algo, seed, values, sweeps=True)
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
    write_report(report, out, ["eval/return_nominal", "eval/return_vs_adversary"], 20, bootstrap_reps=100)
    rows = {r["algo"]: r for r in csv.DictReader((out / "report.csv").open())}
    assert float(rows["qarl"]["return_nominal_mean"]) == pytest.approx(110.0)
    assert float(rows["qarl"]["return_nominal_ci"]) == pytest.approx(ci([100, 110, 120]))
    assert rows["sac"]["seeds"] == "0 1" and rows["sac"]["return_vs_adversary_n"] == "0"
    md = (out / "report.md").read_text()
    assert f"| qarl | 0, 1, 2 | 1000 | 110.0 ± {ci([100, 110, 120]):.1f} | 60.0 ± {ci([50, 60, 70]):.1f} | n/a |" in md
    assert "| sac | 0, 1 | 1000 | 205.0 ±" in md and "| n/a | n/a | 50.0 ±" in md  # no co-trained adversary
    assert float(rows["qarl"]["sweep_mass_average_mean"]) == pytest.approx(np.mean([90, 100, 110]))
    for name in (
        "learning_curves_InvertedPendulum.png",
        "heatmaps_InvertedPendulum.png",
        "sweeps_InvertedPendulum.png",
        "robustness_profile_InvertedPendulum.png",
        "performance_profiles.png",
    ):
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and f"]({name})" in md
    assert "Field-standard statistics (rliable)" in md and "Probability of improvement" in md


def test_mixed_runs_are_keyed_deduplicated_and_skipped_with_reasons(tmp_path):
    """A scratch folder: repeated seeds, an unfinished run, a start-up failure and a different budget (issue 10.5)."""
    root = tmp_path / "runs"
    old = fake_run(root, "Hopper", "qarl", 0, (10.0, 5.0, 1.0), finished_at="2026-01-02T00:00:00")
    new = fake_run(root, "Hopper", "qarl", 0, (30.0, 5.0, 1.0), date="2026-01-03_00-00-00", finished_at="2026-01-03T00:00:00")
    fake_run(root, "Hopper", "qarl", 1, (50.0, 5.0, 1.0))
    unfinished = fake_run(root, "Hopper", "qarl", 2, (999.0, 5.0, 1.0), done=False)
    failed = fake_run(root, "Hopper", "qarl", 3, (999.0, 5.0, 1.0), done=False, date="2026-01-04_00-00-00")
    shutil.rmtree(failed / "checkpoints")
    shutil.rmtree(failed / "tensorboard")
    # the same seed at another budget is another experiment, in its own table
    fake_run(root, "Hopper", "qarl", 0, (7.0, 5.0, 1.0), date="2026-01-05_00-00-00", budget={"iterations": 2})
    fake_run(root, "Hopper", "sac", 0, (20.0, None, 1.0))
    fake_run(root, "Hopper", "sac", 0, (21.0, None, 1.0), date="2026-01-06_00-00-00", budget={"iterations": 2})

    roots = find_report_runs([str(root)])
    assert failed.resolve() in roots  # found, so that it is listed
    rep = build_report(roots)
    assert sorted(rep.envs) == ["Hopper [budget.iterations=200]", "Hopper [budget.iterations=2]"]
    full = rep.table[("Hopper [budget.iterations=200]", "qarl")]
    assert [r.seed for r in rep.runs_of("Hopper [budget.iterations=200]", "qarl")] == [0, 1]
    assert full["return_nominal"].mean == pytest.approx(40.0)  # seeds 0 (the latest run: 30) and 1 (50)
    assert rep.table[("Hopper [budget.iterations=2]", "qarl")]["return_nominal"].mean == pytest.approx(7.0)
    assert rep.table[("Hopper [budget.iterations=2]", "sac")]["return_nominal"].mean == pytest.approx(21.0)
    reasons = {Path(s.split(":", 1)[0]): s for s in rep.skipped}
    assert "duplicate of seed 0" in reasons[old.resolve()] and str(new.resolve()) in reasons[old.resolve()]
    assert "unfinished" in reasons[unfinished.resolve()]
    assert "before its first checkpoint" in reasons[failed.resolve()]
    assert len(rep.skipped) == 3 and any("2 runs" in n for n in rep.notes)

    with_unfinished = build_report(roots, include_unfinished=True)
    seeds = [r.seed for r in with_unfinished.runs_of("Hopper [budget.iterations=200]", "qarl")]
    assert seeds == [0, 1, 2] and any("unfinished run reported" in n for n in with_unfinished.notes)
    out = tmp_path / "out"
    write_report(rep, out, ["eval/return_nominal"], 10, bootstrap_reps=100)
    md = (out / "report.md").read_text()
    assert "## Hopper [budget.iterations=2]" in md and "Skipped runs:" in md and "iterations=200" in md

    # an algo switch that differs within one method gets its own row
    fake_run(root, "Hopper", "qarl", 5, (1.0, 1.0, 1.0), date="2026-01-07_00-00-00")
    cfg = OmegaConf.load(root / "Hopper__qarl__s5" / "2026-01-07_00-00-00" / "config.yaml")
    cfg.algo.temperature = "fixed"
    OmegaConf.save(cfg, root / "Hopper__qarl__s5" / "2026-01-07_00-00-00" / "config.yaml")
    methods = build_report(find_report_runs([str(root)])).methods("Hopper [budget.iterations=200]")
    assert methods == ["qarl [algo.temperature=-]", "qarl [algo.temperature=fixed]", "sac"]


def test_rliable_statistics_known_numbers():
    scores = np.array([[1.0], [2.0], [3.0], [4.0]])
    iqm = iqm_interval(scores, reps=300)
    assert iqm.value == pytest.approx(2.5) and iqm.low <= iqm.value <= iqm.high and iqm.n == 4
    assert iqm_interval(scores, reps=300).low == iqm.low  # the bootstrap is seeded
    state = np.random.get_state()[1].copy()
    iqm_interval(scores, reps=200)
    assert np.array_equal(np.random.get_state()[1], state)  # and leaves the global generator alone
    better = probability_of_improvement(np.array([[5.0], [6.0], [7.0]]), np.array([[1.0], [2.0], [3.0]]), reps=300)
    assert better.value == pytest.approx(1.0) and better.low == pytest.approx(1.0)
    tie = probability_of_improvement(np.array([[1.0], [3.0]]), np.array([[1.0], [3.0]]), reps=300)
    assert tie.value == pytest.approx(0.5)
    columns = iqm_intervals(np.array([[1.0, 10.0, np.nan], [2.0, 20.0, 1.0], [3.0, 30.0, 2.0], [4.0, 40.0, 3.0]]), reps=200)
    assert [c.value for c in columns[:2]] == pytest.approx([2.5, 25.0]) and columns[2].n == 0
    assert str(iqm_interval(np.zeros((0, 1)))) == "n/a"


def test_statistics_never_touch_numpys_global_generator_nor_need_rliable(runs, tmp_path, monkeypatch):
    """Issue 27 item 8: every bootstrap draws from its own seeded Generator; rliable is not imported by the report."""
    from rl.robustness.report.stats import performance_profiles

    for name in ("rliable", "rliable.library", "rliable.metrics"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError

    def forbidden(*args, **kwargs):
        raise AssertionError("NumPy's global generator was used")

    for name in ("seed", "set_state", "get_state", "choice", "randint", "random_sample"):
        monkeypatch.setattr(np.random, name, forbidden)
    x, y = np.array([[1.0, 4.0], [2.0, 6.0], [3.0, 5.0]]), np.array([[0.0, 4.0], [2.0, 1.0], [1.0, 2.0]])
    assert str(iqm_interval(x, reps=200, seed=1)) == str(iqm_interval(x, reps=200, seed=1))  # seeded
    assert str(iqm_interval(x, reps=200, seed=1)) != str(iqm_interval(x, reps=200, seed=2))  # by its own seed
    assert iqm_intervals(x, reps=200)[1].value == pytest.approx(5.0)
    assert probability_of_improvement(x, y, reps=200).value == pytest.approx((7 / 9 + 8.5 / 9) / 2)
    profiles, bands = performance_profiles({"x": list(x.T)}, np.array([2.5]), reps=200)
    assert profiles["x"] == pytest.approx([4 / 6]) and bands["x"].shape == (2, 1)
    write_report(build_report(find_report_runs([str(runs)])), tmp_path / "report", ["eval/return_nominal"], 10, 100)
    assert (tmp_path / "report" / "robustness_profile_InvertedPendulum.png").exists()


def test_bootstrap_intervals_agree_with_rliable_within_monte_carlo_error():
    """The same stratified bootstrap as rliable's (whose draws come from NumPy's global generator, seeded here)."""
    rly = pytest.importorskip("rliable.library")
    from rliable import metrics

    from rl.robustness.report.stats import _improvement, performance_profiles

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, (5, 3)).astype(float), rng.integers(0, 4, (4, 3)).astype(float)  # with ties
    assert probability_of_improvement(x, y, reps=100).value == pytest.approx(metrics.probability_of_improvement(x, y))
    rng = np.random.default_rng(3)
    x, y = rng.normal(1.0, 1.0, (6, 4)), rng.normal(0.5, 1.0, (5, 4))
    taus = np.array([0.0, 1.0])
    state = np.random.get_state()
    try:
        np.random.seed(0)
        _, iqm = rly.get_interval_estimates({"x": x}, lambda a: np.array([metrics.aggregate_iqm(a)]), reps=2000)
        _, poi = rly.get_interval_estimates({"p": [x, y]}, _improvement, reps=2000)
        _, band = rly.create_performance_profile({"x": x}, taus, reps=2000)
    finally:
        np.random.set_state(state)
    # Monte-Carlo standard deviation of a bound at 2000 resamples: about 1.5% of the interval's width (measured)
    ours = iqm_interval(x, reps=2000)
    assert ours.value == pytest.approx(metrics.aggregate_iqm(x))
    width = ours.high - ours.low
    assert abs(ours.low - iqm["x"][0, 0]) < 0.1 * width and abs(ours.high - iqm["x"][1, 0]) < 0.1 * width
    ours = probability_of_improvement(x, y, reps=2000)
    width = ours.high - ours.low
    assert abs(ours.low - poi["p"][0, 0]) < 0.1 * width and abs(ours.high - poi["p"][1, 0]) < 0.1 * width
    _, bands = performance_profiles({"x": list(x.T)}, taus, reps=2000)
    np.testing.assert_allclose(bands["x"], band["x"], atol=0.05)


def test_robustness_profile_counts_cells(runs):
    rep = build_report(find_report_runs([str(runs)]))
    profiles = robustness_profiles(rep, "InvertedPendulum")
    taus, fraction = profiles["qarl"]
    cells = np.concatenate([np.array(r.grid["grid_mean"]).ravel() for r in rep.runs_of("InvertedPendulum", "qarl")])
    for k in (0, len(taus) // 2, len(taus) - 1):
        assert fraction[k] == pytest.approx(np.mean(cells > taus[k]))
    assert fraction[0] > fraction[-1] == 0.0


def test_heatmap_tick_labels_do_not_overlap():
    import matplotlib.pyplot as plt

    from rl.robustness.plots import draw_heatmap

    friction = np.linspace(0.1, 1.9, 11)  # Hopper: "0.10.280.460.64..." ran together before
    mass = np.linspace(0.21, 1.86, 11)
    fig, axes = plt.subplots(1, 3, figsize=(4.2 * 3 + 0.8, 3.8), layout="constrained")  # the report's panels
    for ax in axes:
        image = draw_heatmap(ax, np.zeros((11, 11)), mass, friction, "t", "torso")
    fig.colorbar(image, ax=list(axes))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_text()]
            assert len(boxes) >= 3
            assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    plt.close(fig)


@pytest.mark.parametrize(
    ("env", "mass_label", "second_label", "cross"),
    [
        ("Hopper", "torso mass factor", "friction factor (all geoms)", True),
        ("dmc_walker_walk", "torso mass (kg)", "friction (all geoms)", False),
        ("dmc_cartpole_swingup", "pole_1 mass (kg)", "cart mass (kg)", False),
    ],
)
def test_heatmap_axes_name_what_the_grid_sets(env, mass_label, second_label, cross):
    import matplotlib.pyplot as plt

    from envs.adversarial.specs import get_env_spec
    from rl.robustness.plots import draw_heatmap

    spec = get_env_spec(env)
    mass, second = spec.mass_factors, spec.friction_factors
    fig, ax = plt.subplots()
    draw_heatmap(ax, np.zeros((len(mass), len(second))), mass, second, "t", spec.mass_body, env=env)
    assert (ax.get_ylabel(), ax.get_xlabel()) == (mass_label, second_label)
    assert bool(ax.lines) == cross  # the nominal (1, 1) cross only where the axes are factors of nominal
    plt.close(fig)


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


def compose_report(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("report_qarl", overrides=list(overrides))


def test_script_writes_report(runs, tmp_path):
    out = tmp_path / "out"
    args = [f"runs=[{runs}]", f"out={out}", f"hydra.run.dir={tmp_path / 'h'}", "bootstrap_reps=100"]
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report_qarl.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| sac | 0, 1 | 1000 | 205.0 ±" in res.stdout and (out / "report.md").exists()
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("report_qarl", overrides=[f"runs=[{tmp_path / 'nope'}]", f"out={out}"])
    assert cfg.source == "auto" and cfg.confidence == 0.95 and not cfg.include_unfinished
    bad = compose_report(f"runs=[{runs}]", f"out={out}", "primary_metric=grid")
    with pytest.raises(ValueError, match="valid choices"):
        report(bad)
    with pytest.raises(ValueError, match="matches no file"):
        report(cfg)

"""benchmarks/reproduce.py: the registry, the committed numbers behind the README tables, and the check machinery."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import reproduce  # noqa: E402
import reproduce_jobs  # noqa: E402

STATUSES = {"current", "stale", "transcribed"}


def test_registry_loads_and_every_job_is_well_formed():
    jobs = reproduce_jobs.JOBS
    assert len(jobs) >= 10
    for name, job in jobs.items():
        assert name == job.name and re.fullmatch(r"[a-z0-9_]+", name)
        assert job.commands and job.values and job.key and job.cpu_s > 0
        lines = job.command_lines("OUT", py="PY")
        assert all("{" not in line for line in lines), lines  # every placeholder filled in
        assert any("OUT" in line for line in lines)
        if job.seeds:
            assert "seed" in job.key and any(" ".join(map(str, job.seeds)) in line for line in lines)
    quick = [j.name for j in jobs.values() if j.quick]
    assert quick and all(jobs[n].cpu_s < reproduce.QUICK_CPU_S for n in quick)
    assert not jobs["node7_digits"].quick and not jobs["table1_ecg_6pct"].quick


@pytest.mark.parametrize("name", sorted(reproduce_jobs.JOBS))
def test_committed_numbers_exist_and_the_readme_table_is_generated_from_them(name):
    job = reproduce_jobs.JOBS[name]
    doc = reproduce.load_results(name)
    assert doc["job"] == name and doc["status"] in STATUSES
    assert re.fullmatch(r"[0-9a-f]{40}", doc["commit"]) and doc["date"] and doc["commands"]
    keys = [tuple(r.get(k) for k in job.key) for r in doc["records"]]
    assert keys and len(set(keys)) == len(keys), "records must be unique by the job's key"
    for rec in doc["records"]:
        assert set(job.key) <= set(rec) and set(job.values) <= set(rec), rec
    if doc["status"] == "current":
        assert doc["machine"] and doc["cpu_s"] > 0 and doc["dirty"] == []
    if doc["status"] == "stale":
        assert doc["stale"]
    found = reproduce.find_block(name)
    assert found is not None, f"no results page (docs/results/*.md) has a block for {name}"
    assert found[1] == reproduce.render_block(job, doc), f"{name}: the table in {found[0]} differs: run reproduce.py --render"


# ------------------------------------------------------------------------------------------------- a tiny fake job

FAKE_CMD = (
    "{py} -c \"import json; json.dump([{{'k': 'a', 'seed': 0, 'v': 1.5, 'w': 2}}, {{'k': 'b', 'seed': 0, 'v': 0.25, 'w': 3}}],"
    " open('{out}/records.json', 'w'))\""
)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    job = reproduce.Job(
        name="fake",
        section="test",
        commands=(FAKE_CMD,),
        collect=reproduce_jobs.collect_json,
        key=("k", "seed"),
        values=("v", "w"),
        render=lambda doc: "table\n",
        cpu_s=1.0,
    )
    monkeypatch.setattr(reproduce, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(reproduce, "OUT_ROOT", tmp_path / "runs")
    monkeypatch.setattr(reproduce_jobs, "JOBS", {"fake": job})
    records, cpu = reproduce.run_job(job)
    assert records[0] == {"k": "a", "seed": 0, "v": 1.5, "w": 2} and cpu >= 0
    doc = reproduce.make_doc(job, records, cpu, reproduce.fingerprint(), None)
    (tmp_path / "results").mkdir()
    path = tmp_path / "results" / "fake.json"
    path.write_text(json.dumps(doc))
    return job, path


def test_check_passes_when_the_committed_numbers_are_reproduced(fake, capsys):
    assert reproduce.main(["--check", "--quick", "--job", "fake"]) == 0
    out = capsys.readouterr().out
    assert "mode exact" in out and "1/1 jobs reproduce" in out


def test_check_exits_1_and_prints_the_difference_when_a_committed_number_is_altered(fake, capsys):
    _, path = fake
    doc = json.loads(path.read_text())
    doc["records"][1]["v"] = 0.2500001
    path.write_text(json.dumps(doc))
    assert reproduce.main(["--check", "--job", "fake"]) == 1
    out = capsys.readouterr().out
    assert "DIFF ('b', 0) v: committed 0.2500001, rerun 0.25" in out and "differ: fake" in out


def test_a_missing_or_extra_record_is_a_difference(fake, capsys):
    _, path = fake
    doc = json.loads(path.read_text())
    doc["records"][1]["k"] = "c"
    path.write_text(json.dumps(doc))
    assert reproduce.main(["--job", "fake"]) == 1
    out = capsys.readouterr().out
    assert "('c', 0): missing in the rerun" in out and "('b', 0): not in the committed numbers" in out


def test_another_machine_is_compared_with_the_tolerance_and_says_so(fake, capsys):
    _, path = fake
    doc = json.loads(path.read_text())
    doc["machine"]["cpu_flags"] = [*doc["machine"]["cpu_flags"], "amx_bf16_other"]
    doc["records"][0]["v"] = 1.5 * 1.01  # within the 5 % relative tolerance for fewer than 3 seeds
    path.write_text(json.dumps(doc))
    assert reproduce.main(["--job", "fake"]) == 0
    out = capsys.readouterr().out
    assert "mode tolerance" in out and "fingerprint differs: cpu_flags" in out
    doc["records"][0]["v"] = 1.5 * 1.2
    path.write_text(json.dumps(doc))
    assert reproduce.main(["--job", "fake"]) == 1
    assert "beyond rtol 0.05" in capsys.readouterr().out


def test_quick_leaves_out_slow_jobs(fake, monkeypatch, capsys):
    job, _ = fake
    slow = reproduce.Job(**{**job.__dict__, "name": "slow_fake", "cpu_s": 10_000.0})
    monkeypatch.setattr(reproduce_jobs, "JOBS", {"fake": job, "slow_fake": slow})
    assert reproduce.main(["--check", "--quick"]) == 0  # slow_fake has no committed numbers: it must not run
    assert "slow_fake" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- fingerprint and compare


def test_fingerprint_matching():
    fp = reproduce.fingerprint()
    assert (
        fp["cpu_model"] and fp["packages"]["torch"] and fp["torch_cpu_capability"] and fp["threads"]["OMP_NUM_THREADS"] == "1"
    )
    assert reproduce.fingerprint_diff(fp, dict(fp)) == []
    assert reproduce.fingerprint_diff(fp, {**fp, "hostname": "elsewhere", "cores": 64}) == []  # informative only
    other = {**fp, "cpu_flags": [f for f in fp["cpu_flags"] if f != "avx512f"] + ["amx_bf16"]}
    assert [d.split(":")[0] for d in reproduce.fingerprint_diff(fp, other)] == ["cpu_flags"]
    newer = {**fp, "packages": {**fp["packages"], "torch": "9.9.9"}}
    assert [d.split(":")[0] for d in reproduce.fingerprint_diff(fp, newer)] == ["packages"]
    assert reproduce.fingerprint_diff(None, fp) == ["no fingerprint was recorded with the committed numbers"]


def _job(**kw):
    base = dict(name="j", section="", commands=("x {out}",), collect=None, key=("m", "seed"), values=("v",), render=None)
    return reproduce.Job(**{**base, "cpu_s": 1.0, **kw})


def test_tolerance_mode_compares_median_bands_over_three_or_more_seeds():
    job = _job()
    doc = {"machine": None, "records": [{"m": "a", "seed": s, "v": v} for s, v in enumerate([1.0, 1.1, 0.9])]}
    close = [{"m": "a", "seed": s, "v": v} for s, v in enumerate([1.2, 0.95, 1.05])]  # different per seed, same band
    result = reproduce.compare(job, doc, close, {"x": 1})
    assert result.mode == "tolerance" and result.ok
    far = [{"m": "a", "seed": s, "v": v} for s, v in enumerate([2.0, 2.05, 1.95])]
    result = reproduce.compare(job, doc, far, {"x": 1})
    assert not result.ok and "do not overlap" in result.diffs[0]
    only_seed_0 = reproduce.compare(job, doc, close[:1], {"x": 1}, seeds=[0])  # --seeds 0: the others are not missing
    assert only_seed_0.diffs == ["('a',) v: 1 -> 1.2 (beyond rtol 0.05)"]


def test_values_as_printed_compare_at_their_printed_precision():
    assert reproduce.printed_equal("2.59", 2.5912) and not reproduce.printed_equal("2.59", 2.596)
    assert reproduce.printed_equal("7.37e-03", 0.0073712) and not reproduce.printed_equal("7.37e-03", 0.00738)
    assert reproduce.printed_equal("44", 44.0) and reproduce.printed_equal("16.50", 16.5)
    assert reproduce.values_equal(None, None) and not reproduce.values_equal(1.0, 1.0 + 1e-12)


def test_record_refuses_uncommitted_code(monkeypatch):
    monkeypatch.setattr(reproduce, "dirty_files", lambda: ["dynamics/node/train.py"])
    with pytest.raises(SystemExit):
        reproduce.main(["--record", "--job", "node14_sde"])


def test_results_files_round_trip_and_estimates_agree_with_the_recorded_cpu_time():
    for name, job in reproduce_jobs.JOBS.items():
        text = reproduce.results_path(name).read_text()
        doc = json.loads(text)
        assert reproduce.dump_doc(doc) == text, f"{name}.json is not in dump_doc's layout"
        if doc["status"] == "current":
            assert job.quick == (doc["cpu_s"] < reproduce.QUICK_CPU_S), (name, job.cpu_s, doc["cpu_s"])


def test_record_with_seeds_keeps_other_seeds_only_from_the_same_commit_and_machine():
    job = _job(commands=("x {out} {seeds}",), seeds=(0, 1))
    fp = {"cpu_model": "X"}
    old = {"status": "current", "commit": "a" * 40, "machine": fp, "cpu_s": 5.0, "records": [{"m": "a", "seed": 0, "v": 1}]}
    new = {"status": "current", "commit": "a" * 40, "machine": fp, "cpu_s": 2.0, "records": [{"m": "a", "seed": 1, "v": 2}]}
    merged = reproduce.merge_seeds(job, new, old)
    assert [r["seed"] for r in merged["records"]] == [0, 1] and merged["cpu_s"] == 7.0
    assert merged["commands"] == ["x runs/reproduce/j 0 1"]
    assert reproduce.merge_seeds(job, new, {**old, "commit": "b" * 40})["records"] == new["records"]
    assert reproduce.merge_seeds(job, new, {**old, "machine": {"cpu_model": "Y"}})["records"] == new["records"]
    assert reproduce.merge_seeds(job, new, {**old, "status": "stale"})["records"] == new["records"]

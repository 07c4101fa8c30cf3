"""Published tables as named jobs: rerun a table's command and compare with its committed numbers.

Every table registered in ``benchmarks/reproduce_jobs.py`` has its numbers in ``benchmarks/results/<job>.json``
(per seed and method, with the command, the commit, the date, the CPU time and a machine fingerprint), and its
table on the results pages (``docs/results/*.md``) is generated from that file between ``<!-- reproduce:<job> -->``
markers.

    python benchmarks/reproduce.py --list
    python benchmarks/reproduce.py --check --quick        # every job under 2 CPU-minutes; exit 1 on a difference
    python benchmarks/reproduce.py --job node7_digits --seeds 0   # rerun one job (some of its seeds), compare
    python benchmarks/reproduce.py --record --job NAME    # rerun and write benchmarks/results/NAME.json
    python benchmarks/reproduce.py --render               # rewrite the results pages' tables from the JSON files

Comparison modes (printed per job): **exact** when the committed fingerprint (CPU model and numeric flags, torch /
numpy / BLAS builds and versions, the packages the jobs use, thread counts) equals this machine's: every value must
be equal (values transcribed from an older README as printed must print the same). **tolerance** otherwise: a
method's values over n >= 3 seeds pass when the bands median ± 2 · 1.4826 · MAD of the committed and the new values
overlap; with fewer seeds each value must lie within the job's relative tolerance of the committed one. Training is
exact only on the same CPU and software stack, so the per-seed comparison is only meaningful in exact mode.
Jobs run one after another in the foreground, single-threaded (``OMP_NUM_THREADS=MKL_NUM_THREADS=1``), with
``PYTHONHASHSEED=0``, each in a fresh ``runs/reproduce/<job>`` folder; CPU time is the children's user + system time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RESULTS_PAGES = ROOT / "docs" / "results"  # the tables live on the results pages (docs/results/*.md)
OUT_ROOT = ROOT / "runs" / "reproduce"
QUICK_CPU_S = 120.0
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16")
CPU_FLAGS += ("avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
NUMERIC_ENV = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "torchdiffeq", "torchsde", "gymnasium", "mujoco")
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
INFORMATIVE = ("hostname", "cores")  # recorded in the fingerprint but not part of the match
MAD_SIGMA = 1.4826


@dataclass(frozen=True)
class Job:
    """One published table: how to make it, what in it is checked and how it is rendered.

    ``commands`` are bash lines run from the repository root; ``{py}`` is the Python interpreter, ``{out}`` the job's
    fresh output folder and ``{seeds}`` the seeds (space separated; only in jobs with a ``seed`` key). ``collect``
    reads the records from ``{out}``; each record holds the ``key`` fields, the checked ``values`` and the recorded
    but unchecked ``timings``. ``render`` turns the results document into the README table.
    """

    name: str
    section: str
    commands: tuple[str, ...]
    collect: Any  # Callable[[Path], list[dict]]
    key: tuple[str, ...]
    values: tuple[str, ...]
    render: Any  # Callable[[dict], str]
    cpu_s: float
    timings: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    rtol: float = 0.05
    note: str = ""

    @property
    def quick(self) -> bool:
        """Whether the job's estimated CPU cost is under ``QUICK_CPU_S``."""
        return self.cpu_s < QUICK_CPU_S

    def command_lines(self, out: str, seeds: Sequence[int] | None = None, py: str = "python") -> list[str]:
        """The commands with their placeholders filled in."""
        chosen = " ".join(str(s) for s in (seeds if seeds is not None else self.seeds))
        return [c.format(py=py, out=out, seeds=chosen) for c in self.commands]


@dataclass
class Comparison:
    """Outcome of comparing a rerun with the committed numbers."""

    mode: str
    diffs: list[str] = field(default_factory=list)
    fingerprint_diffs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing differs."""
        return not self.diffs


# ----------------------------------------------------------------------------------------------- machine fingerprint


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    if m := re.search(r"^model name\s*:\s*(.+)$", text, re.M):
        model = m.group(1).strip()
    if m := re.search(r"^flags\s*:\s*(.+)$", text, re.M):
        present = set(m.group(1).split())
        flags = [f for f in CPU_FLAGS if f in present]
    return model, flags


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def fingerprint() -> dict[str, Any]:
    """What decides the numbers of a CPU training run on this machine (and two informative fields)."""
    import numpy as np
    import torch

    model, flags = _cpuinfo()
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    np_blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # type: ignore[index]
    try:
        from threadpoolctl import threadpool_info

        pools = sorted(
            {
                f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')}".strip()
                for p in threadpool_info()
                if p.get("user_api") == "blas"  # the BLAS kernels chosen at run time (OpenBLAS picks by CPU)
            }
        )
    except ImportError:
        pools = []
    return {
        "cpu_model": model,
        "cpu_flags": flags,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": f"MKL {mkl.group(1)}" if mkl else re.sub(r".*BLAS_INFO=([^,]+).*", r"\1", config, flags=re.S),
        "torch_config_sha": hashlib.sha256(config.encode()).hexdigest()[:16],
        "numpy_blas": f"{np_blas.get('name')} {np_blas.get('version')} ({np_blas.get('openblas configuration', '')})",
        "threadpools": pools,
        "threads": dict(THREADS),
        "numeric_env": {k: os.environ.get(k) for k in NUMERIC_ENV},
        "hostname": platform.node(),
        "cores": os.cpu_count(),
    }


def fingerprint_diff(committed: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """The fields (other than the informative ones) in which two fingerprints differ; all of them when none was kept."""
    if not committed:
        return ["no fingerprint was recorded with the committed numbers"]
    keys = sorted((set(committed) | set(current)) - set(INFORMATIVE))
    return [f"{k}: {committed.get(k)!r} -> {current.get(k)!r}" for k in keys if committed.get(k) != current.get(k)]


# ------------------------------------------------------------------------------------------------------- comparison


def _num(v: Any) -> float:
    return float(v) if not isinstance(v, str) else float(v.replace(",", ""))


def printed_equal(printed: str, value: Any) -> bool:
    """Whether ``value`` prints as ``printed`` with the same number of decimals (or the same mantissa digits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value) == printed
    text = printed.replace(",", "")
    if m := re.fullmatch(r"-?\d*\.?(\d*)[eE]([+-]?\d+)", text):
        return f"{value:.{len(m.group(1))}e}" == f"{float(text):.{len(m.group(1))}e}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"{value:.{decimals}f}" == text


def values_equal(committed: Any, new: Any) -> bool:
    """Exact equality: NaN equals NaN, a string is a value as printed in the README, all else compares with ``==``."""
    if isinstance(committed, str) and not isinstance(new, str):
        return printed_equal(committed, new)
    if isinstance(committed, float) and isinstance(new, float) and math.isnan(committed) and math.isnan(new):
        return True
    return bool(committed == new)


def _key(record: dict[str, Any], key: Sequence[str]) -> tuple:
    return tuple(record.get(k) for k in key)


def _median_band(xs: list[float]) -> tuple[float, float]:
    med = statistics.median(xs)
    mad = statistics.median(abs(x - med) for x in xs)
    return med - 2 * MAD_SIGMA * mad, med + 2 * MAD_SIGMA * mad


def _tolerance_diffs(job: Job, old: dict[tuple, dict], new: dict[tuple, dict]) -> list[str]:
    group_key = [k for k in job.key if k != "seed"]
    groups: dict[tuple, list[tuple]] = {}
    for k, rec in old.items():
        groups.setdefault(_key(rec, group_key), []).append(k)
    diffs = []
    for g, keys in groups.items():
        for field_name in job.values:
            pairs = [(old[k].get(field_name), new[k].get(field_name)) for k in keys if field_name in old[k]]
            if not pairs:
                continue
            if any(isinstance(a, bool) or not isinstance(a, (int, float, str)) for a, _ in pairs):
                diffs += [f"{g} {field_name}: {a!r} -> {b!r}" for a, b in pairs if not values_equal(a, b)]
                continue
            try:
                a_vals, b_vals = [_num(a) for a, _ in pairs], [_num(b) for _, b in pairs]
            except (TypeError, ValueError):
                diffs += [f"{g} {field_name}: {a!r} -> {b!r}" for a, b in pairs if not values_equal(a, b)]
                continue
            if any(math.isnan(x) for x in a_vals + b_vals):
                if [math.isnan(x) for x in a_vals] != [math.isnan(x) for x in b_vals]:
                    diffs.append(f"{g} {field_name}: failed runs differ, {a_vals} -> {b_vals}")
                a_vals = [x for x in a_vals if not math.isnan(x)]
                b_vals = [x for x in b_vals if not math.isnan(x)]
            if len(a_vals) >= 3 and len(b_vals) >= 3:
                (lo_a, hi_a), (lo_b, hi_b) = _median_band(a_vals), _median_band(b_vals)
                if hi_a < lo_b or hi_b < lo_a:
                    band_a, band_b = f"[{lo_a:.4g}, {hi_a:.4g}]", f"[{lo_b:.4g}, {hi_b:.4g}]"
                    diffs.append(f"{g} {field_name}: median ± 2·MAD' {band_a} and {band_b} do not overlap")
            else:
                for a, b in zip(a_vals, b_vals, strict=False):
                    if abs(b - a) > job.rtol * abs(a) + 1e-12:
                        diffs.append(f"{g} {field_name}: {a:.6g} -> {b:.6g} (beyond rtol {job.rtol})")
    return diffs


def compare(
    job: Job, doc: dict[str, Any], records: list[dict[str, Any]], current: dict[str, Any], seeds: Iterable[int] | None = None
) -> Comparison:
    """Compare rerun ``records`` with the committed document, exactly when the fingerprints match."""
    committed = doc["records"]
    if doc.get("status") != "current":  # transcribed from the README: None marks a value that was never published
        committed = [{k: v for k, v in r.items() if v is not None} for r in committed]
    if seeds is not None and "seed" in job.key:
        chosen = set(seeds)
        committed = [r for r in committed if r.get("seed") in chosen]
    fp_diffs = fingerprint_diff(doc.get("machine"), current)
    result = Comparison(mode="tolerance" if fp_diffs else "exact", fingerprint_diffs=fp_diffs)
    old = {_key(r, job.key): r for r in committed}
    new = {_key(r, job.key): r for r in records}
    result.diffs += [f"{k}: missing in the rerun" for k in old if k not in new]
    result.diffs += [f"{k}: not in the committed numbers" for k in new if k not in old]
    shared = {k: old[k] for k in old if k in new}
    if result.mode == "exact":
        for k, rec in shared.items():
            for name in (n for n in job.values if n in rec or doc.get("status") == "current"):
                if not values_equal(rec.get(name), new[k].get(name)):
                    result.diffs.append(f"{k} {name}: committed {rec.get(name)!r}, rerun {new[k].get(name)!r}")
    else:
        result.diffs += _tolerance_diffs(job, shared, {k: new[k] for k in shared})
    return result


# ---------------------------------------------------------------------------------------------------- running jobs


def git(*args: str) -> str:
    """Output of a git command in the repository (empty when git fails)."""
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


def dirty_files() -> list[str]:
    """Tracked files changed against HEAD, other than results and markdown (they do not change what a job computes)."""
    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    paths = [line[3:] for line in changed]
    return [p for p in paths if not p.startswith("benchmarks/results/") and not p.endswith(".md")]


def run_job(job: Job, seeds: Sequence[int] | None = None, out_root: Path | None = None) -> tuple[list[dict], float]:
    """Run the job's commands in a fresh output folder; returns its records and the CPU seconds they took."""
    out = (out_root or OUT_ROOT) / job.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = {**os.environ, **THREADS, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out / "reproduce.log", "w") as log:
        for line in job.command_lines(str(out), seeds, py=sys.executable):
            log.write(f"$ {line}\n")
            log.flush()
            done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise RuntimeError(
                    f"job {job.name}: command failed with exit {done.returncode}: {line} (log {out}/reproduce.log)"
                )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return job.collect(out), cpu


def results_path(name: str) -> Path:
    """Where a job's committed numbers live."""
    return RESULTS / f"{name}.json"


def load_results(name: str) -> dict[str, Any]:
    """The committed results document of a job."""
    return json.loads(results_path(name).read_text())


def dump_doc(doc: dict[str, Any]) -> str:
    """A results document as JSON text, one record per line (readable diffs)."""
    head = {k: v for k, v in doc.items() if k != "records"}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    records = ",\n  ".join(json.dumps(r, ensure_ascii=False) for r in doc["records"])
    return f'{text},\n "records": [\n  {records}\n ]\n}}\n'


def make_doc(job: Job, records: list[dict], cpu_s: float, machine: dict[str, Any], seeds: Sequence[int] | None) -> dict:
    """A results document for records measured now, at this commit."""
    return {
        "job": job.name,
        "status": "current",
        "commands": job.command_lines(f"runs/reproduce/{job.name}", seeds),
        "commit": git("rev-parse", "HEAD"),
        "dirty": dirty_files(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_s": round(cpu_s, 1),
        "machine": machine,
        "key": list(job.key),
        "values": list(job.values),
        "timings": list(job.timings),
        "records": records,
    }


def merge_seeds(job: Job, new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """``--record --seeds``: keep the other seeds' records when they were made at the same commit on the same machine.

    Otherwise the document holds the new seeds only (a table is never a mix of commits or machines).
    """
    same = (
        old is not None
        and old.get("status") == "current"
        and old["commit"] == new["commit"]
        and not fingerprint_diff(old.get("machine"), new["machine"])
    )
    if not same or "seed" not in job.key:
        print(f"{job.name}: the committed numbers are from another commit or machine; keeping only the new seeds")
        return new
    assert old is not None
    seeds = {r["seed"] for r in new["records"]}
    kept = [r for r in old["records"] if r["seed"] not in seeds]
    all_seeds = sorted({r["seed"] for r in kept} | seeds)
    records = sorted(kept + new["records"], key=lambda r: [str(r.get(k)) for k in job.key])
    return {
        **new,
        "records": records,
        "commands": job.command_lines(f"runs/reproduce/{job.name}", all_seeds),
        "cpu_s": round(new["cpu_s"] + (old.get("cpu_s") or 0.0), 1),
    }


# ------------------------------------------------------------------------------------------------------- rendering


def provenance(doc: dict[str, Any]) -> str:
    """One line saying where the table's numbers come from."""
    m = doc.get("machine")
    if m:
        flags = ", ".join(f for f in m["cpu_flags"] if f.startswith(("avx512f", "amx"))) or "no AVX-512"
        where = (
            f"{m['cpu_model']} ({flags}), torch {m['packages']['torch']} ({m['torch_cpu_capability']}, "
            f"{m['torch_blas']}), numpy {m['packages']['numpy']} ({m['numpy_blas'].split(' (')[0]}), 1 thread"
        )
    else:
        where = doc.get("machine_note", "machine not recorded")
    cpu = f", {doc['cpu_s']:.0f} CPU-s" if doc.get("cpu_s") else ""
    line = f"Numbers: `benchmarks/results/{doc['job']}.json`, commit {doc['commit'][:10]}, {doc['date']}, {where}{cpu}."
    if doc["status"] == "stale":
        line = f"**Stale:** {doc['stale']}\n\n" + line
    elif doc["status"] == "transcribed":
        line += f" Transcribed from the README as printed, not rerun since: {doc.get('transcribed', '')}".rstrip()
    return line


def render_block(job: Job, doc: dict[str, Any]) -> str:
    """The README block of a job: its table and the provenance line."""
    return f"{job.render(doc).rstrip()}\n\n{provenance(doc)}\n"


def _block_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- reproduce:{re.escape(name)} -->\n(.*?)<!-- /reproduce:{re.escape(name)} -->", re.S)


def readme_block(text: str, name: str) -> str | None:
    """The text between a job's markers in one page, or None without markers."""
    found = _block_re(name).findall(text)
    if len(found) > 1:
        raise ValueError(f"job {name!r} has {len(found)} blocks in one page, expected one")
    return found[0] if found else None


def pages() -> dict[Path, str]:
    """The results pages (``docs/results/*.md``) and their text."""
    return {path: path.read_text() for path in sorted(RESULTS_PAGES.glob("*.md"))}


def find_block(name: str, texts: dict[Path, str] | None = None) -> tuple[Path, str] | None:
    """The results page holding a job's block, and the block; None when no page has it (two pages: an error)."""
    texts = pages() if texts is None else texts
    hits = [(path, block) for path, text in texts.items() if (block := readme_block(text, name)) is not None]
    if len(hits) > 1:
        raise ValueError(f"job {name!r} has blocks in {len(hits)} results pages: {[str(p) for p, _ in hits]}")
    return hits[0] if hits else None


def render_page(jobs: dict[str, Job], text: str) -> str:
    """One page with the blocks of the jobs it holds regenerated from their committed results."""
    for name, job in jobs.items():
        if readme_block(text, name) is None:
            continue
        block = render_block(job, load_results(name))
        text = _block_re(name).sub(lambda _m, n=name, b=block: f"<!-- reproduce:{n} -->\n{b}<!-- /reproduce:{n} -->", text)
    return text


def render_pages(jobs: dict[str, Job]) -> dict[Path, str]:
    """Every results page with its blocks regenerated; every job must have exactly one block."""
    texts = pages()
    for name in jobs:
        if find_block(name, texts) is None:
            raise ValueError(f"no results page (docs/results/*.md) has a '<!-- reproduce:{name} -->' block for job {name!r}")
    return {path: render_page(jobs, text) for path, text in texts.items()}


# -------------------------------------------------------------------------------------------------------------- CLI


def _select(jobs: dict[str, Job], names: list[str] | None, quick: bool) -> list[Job]:
    if names:
        unknown = [n for n in names if n not in jobs]
        if unknown:
            raise SystemExit(f"unknown job(s) {unknown}; registered: {', '.join(sorted(jobs))}")
        chosen = [jobs[n] for n in names]
    else:
        chosen = list(jobs.values())
    return [j for j in chosen if j.quick] if quick else chosen


def list_jobs(jobs: dict[str, Job]) -> None:
    """Print the registry: cost, quick or slow, status and commit of the committed numbers."""
    print("| job | est. CPU-s | quick | status | commit | section |")
    print("|---|---:|:-:|---|---|---|")
    for job in jobs.values():
        doc = load_results(job.name) if results_path(job.name).exists() else {"status": "missing", "commit": ""}
        quick = "yes" if job.quick else "slow"
        section = job.section.replace("|", "\\|")
        print(f"| {job.name} | {job.cpu_s:.0f} | {quick} | {doc['status']} | {doc['commit'][:10]} | {section} |")


def check_jobs(selected: list[Job], seeds: list[int] | None, out_root: Path | None = None) -> int:
    """Rerun and compare each job; print the mode and every difference; 1 when any job differs."""
    current = fingerprint()
    failed, total_cpu = [], 0.0
    for job in selected:
        doc = load_results(job.name)
        print(f"== {job.name}: running ({doc['status']}, est. {job.cpu_s:.0f} CPU-s)", flush=True)
        records, cpu = run_job(job, seeds, out_root)
        total_cpu += cpu
        result = compare(job, doc, records, current, seeds)
        print(f"   mode {result.mode}; {cpu:.1f} CPU-s")
        for line in result.fingerprint_diffs:
            print(f"   fingerprint differs: {line}")
        for line in result.diffs:
            print(f"   DIFF {line}")
        print(f"   {'OK' if result.ok else 'DIFFERS'}", flush=True)
        if not result.ok:
            failed.append(job.name)
    print(f"{len(selected) - len(failed)}/{len(selected)} jobs reproduce; {total_cpu:.1f} CPU-s in all")
    if failed:
        print("differ: " + ", ".join(failed))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status."""
    from reproduce_jobs import JOBS  # the registry imports this module's helpers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the registered jobs")
    parser.add_argument("--check", action="store_true", help="rerun jobs and compare with the committed numbers")
    parser.add_argument("--quick", action="store_true", help=f"only jobs estimated under {QUICK_CPU_S:.0f} CPU-s")
    parser.add_argument("--job", nargs="+", help="these jobs only (alone: rerun and compare)")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds (jobs with a seed key)")
    parser.add_argument("--record", action="store_true", help="rerun and write benchmarks/results/<job>.json")
    parser.add_argument("--allow-dirty", action="store_true", help="record although code differs from HEAD")
    parser.add_argument("--render", action="store_true", help="rewrite the README tables from the results")
    args = parser.parse_args(argv)
    if args.list:
        list_jobs(JOBS)
        return 0
    if args.render:
        for path, text in render_pages(JOBS).items():
            path.write_text(text)
        print(f"rendered {len(JOBS)} tables into {RESULTS_PAGES.relative_to(ROOT)}/*.md")
        return 0
    if args.record:
        if not args.job:
            parser.error("--record needs --job NAME")
        if dirty_files() and not args.allow_dirty:
            parser.error(f"code differs from HEAD ({', '.join(dirty_files())}): commit first, or --allow-dirty")
        machine = fingerprint()
        for job in _select(JOBS, args.job, quick=False):
            records, cpu = run_job(job, args.seeds)
            doc = make_doc(job, records, cpu, machine, args.seeds)
            if args.seeds is not None:
                doc = merge_seeds(job, doc, load_results(job.name) if results_path(job.name).exists() else None)
            RESULTS.mkdir(parents=True, exist_ok=True)
            results_path(job.name).write_text(dump_doc(doc))
            print(f"recorded {job.name}: {len(doc['records'])} records, {cpu:.1f} CPU-s")
        return 0
    if args.check or args.job:
        return check_jobs(_select(JOBS, args.job, args.quick), args.seeds)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())

"""pyproject.toml says what is true (issue 27): every import is declared, every declaration is used, private APIs
are pinned, every requirement has a testable floor, and the lock covers the declared ranges."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts.deps import PYPROJECT, floors, load_pyproject, lock_lines, requirements

REPO_ROOT = PYPROJECT.parent
LOCK = REPO_ROOT / "requirements" / "lock.txt"
RUNTIME_DIRS = ("rl", "envs", "dynamics", "scripts")
DEV_TOOLS = ("scripts/deps.py",)  # development tooling under scripts/: may use the test extra
TEST_DIRS = ("tests", "benchmarks", *DEV_TOOLS)
FIRST_PARTY = frozenset({"rl", "envs", "dynamics", "scripts", "tests", "benchmarks"})
# benchmarks/ scripts that tests import by module name (benchmarks/ on sys.path)
# modules that a benchmark imports inside another project's own venv (run as a subprocess), never in ours
FOREIGN = {"benchmarks/bench_qarl_vs_official.py": frozenset({"experiments", "mushroom_rl", "mushroom_rl_extensions"})}
BENCHMARK_MODULES = frozenset(p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))

# Declared but never imported, each for a reason; anything else declared and not imported is dead weight.
NOT_IMPORTED = {
    "hydra-joblib-launcher": "Hydra plugin, found by Hydra at launch (hydra/launcher=joblib)",
    "arch": "only a cap for rliable (arch < 8)",
    "pandas": "only a cap for arch (pandas < 3)",
    "pytest-timeout": "pytest plugin",
    "ruff": "linter, run by `make lint`",
    "mypy": "type checker, run by `make type`",
}
# Copied or private code of these evolves without notice: the range must be closed above (or pinned).
COPIED = {"stable-baselines3": "rl/qarl/sac.py copies SAC.train; resume reads SB3's private counters"}


def _declared(extras: tuple[str, ...]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in requirements(load_pyproject(), extras)}


def _files(folders: tuple[str, ...]) -> list[Path]:
    """The Python files under ``folders`` (folders or files); development tools only where named."""
    files = []
    for folder in folders:
        root = REPO_ROOT / folder
        if root.is_file():
            files.append(root)
        else:
            files += [path for path in sorted(root.rglob("*.py")) if str(path.relative_to(REPO_ROOT)) not in DEV_TOOLS]
    return files


@cache
def _imports(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the files importing it, for the third-party absolute imports under ``folders``."""
    found: dict[str, set[str]] = {}
    for path in _files(folders):
        siblings = {p.stem for p in path.parent.glob("*.py")} | FOREIGN.get(str(path.relative_to(REPO_ROOT)), frozenset())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY | BENCHMARK_MODULES and top not in siblings:
                    found.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


@cache
def _providers() -> dict[str, list[str]]:
    return packages_distributions()  # top-level module -> distributions (scans every installed one: slow)


def _distribution(module: str) -> str:
    top = module.split(".")[0]
    dists = _providers().get(top)
    if dists and len(dists) > 1:  # a namespace shared by several (hydra_plugins): the one that has the module
        from importlib.util import find_spec

        spec = find_spec(".".join(module.split(".")[:2]))
        where = str(spec.origin or spec.submodule_search_locations) if spec else ""
        owner = next((d for d in dists if canonicalize_name(d).replace("-", "_") in where.replace("-", "_")), None)
        dists = [owner] if owner else dists
    if dists:
        return canonicalize_name(dists[0])
    if canonicalize_name(top) in _declared(("test",)):  # declared for another Python only (tomli on 3.10)
        return canonicalize_name(top)
    raise AssertionError(f"{module!r} is imported but no installed distribution provides it")


def _imported_distributions(folders: tuple[str, ...]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for module, files in _imports(folders).items():
        out.setdefault(_distribution(module), set()).update(files)
    return out


@pytest.mark.parametrize(
    ("folders", "extras"), [(RUNTIME_DIRS, ()), (TEST_DIRS, ("test",))], ids=["runtime", "tests-and-benchmarks"]
)
def test_every_third_party_import_is_declared(folders: tuple[str, ...], extras: tuple[str, ...]) -> None:
    declared = _declared(extras)
    missing = {dist: sorted(files)[:3] for dist, files in _imported_distributions(folders).items() if dist not in declared}
    assert not missing, f"imported but not declared in pyproject.toml (distribution: some importers): {missing}"


def test_every_declared_dependency_is_used() -> None:
    used = set(_imported_distributions(RUNTIME_DIRS)) | set(_imported_distributions(TEST_DIRS))
    declared = _declared(("test",))
    unused = sorted(set(declared) - used - {canonicalize_name(name) for name in NOT_IMPORTED})
    assert not unused, f"declared in pyproject.toml but never imported (remove, or give a reason in NOT_IMPORTED): {unused}"
    stale = sorted(name for name in NOT_IMPORTED if canonicalize_name(name) in used or canonicalize_name(name) not in declared)
    assert not stale, f"NOT_IMPORTED entries that are imported after all, or not declared: {stale}"


def test_private_apis_are_pinned_and_copied_code_is_capped() -> None:
    """Importing ``pkg._private`` ties us to one release: the distribution must be pinned with ``==``."""
    declared = _declared(())
    private = {
        _distribution(module): sorted(files)[0]
        for module, files in _imports(RUNTIME_DIRS).items()
        if any(part.startswith("_") for part in module.split(".")[1:])
    }
    assert "torchsde" in private and "torchdiffeq" in private  # the scan sees dynamics/node's private imports
    loose = {
        dist: importer for dist, importer in private.items() if not any(s.operator == "==" for s in declared[dist].specifier)
    }
    assert not loose, f"private modules imported, but the distribution is not pinned with == in pyproject.toml: {loose}"
    uncapped = [name for name in COPIED if not any(s.operator in ("<", "<=", "==", "~=") for s in declared[name].specifier)]
    assert not uncapped, f"no upper bound for {uncapped}: {[COPIED[name] for name in uncapped]}"


def test_every_requirement_has_a_floor() -> None:
    """``make test-min`` installs the floors; a requirement without one could not be tested."""
    lines = floors(requirements(load_pyproject(), ("test",)))
    assert not any(line.startswith("torch==") for line in lines)  # torch comes from TORCH_SPEC
    assert "stable-baselines3==2.7" in lines  # ReplayBufferSamples.discounts is new in SB3 2.7.0


def test_floors_pin_the_lowest_allowed_version() -> None:
    reqs = [
        Requirement(r) for r in ["arch>=5.4,<8", "mujoco==3.17.0", "Foo_Bar>=1.2,>=1.10", "tomli>=2; python_version < '3.11'"]
    ]
    assert floors(reqs) == ["arch==5.4", "foo-bar==1.10", "mujoco==3.17.0", 'tomli==2; python_version < "3.11"']
    with pytest.raises(ValueError, match=r"pandas<3"):
        floors([Requirement("pandas<3"), Requirement("numpy>=1.24")])
    assert floors([Requirement("torch>=2.3")]) == []


def test_lock_lines_drop_editables_comments_and_torch() -> None:
    freeze = ["# Editable install", "-e /work/rldyn", "torch==2.13.0+cpu", "Jinja2==3.1.6", "numpy==2.4.6", ""]
    assert lock_lines(freeze) == ["jinja2==3.1.6", "numpy==2.4.6"]
    with pytest.raises(ValueError, match="name==version"):
        lock_lines(["rldyn @ file:///work/rldyn"])


def _locked() -> dict[str, Version]:
    assert LOCK.is_file(), f"{LOCK.relative_to(REPO_ROOT)} is missing: run `make lock`"
    pins: dict[str, Version] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_lock_satisfies_pyproject() -> None:
    """The lock pins every declared requirement (torch aside) inside its declared range: rerun `make lock`."""
    pins = _locked()
    assert "torch" not in pins, "torch must stay out of the lock (the Makefile installs TORCH_SPEC)"
    for name, req in _declared(("test",)).items():
        if name == "torch" or (req.marker is not None and not req.marker.evaluate()):
            continue
        assert name in pins, f"{name} is declared but not in the lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"lock has {name}=={pins[name]}, outside {req}: run `make lock`"
        )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_and_ci_use_the_lock(tmp_path: Path) -> None:
    """``make install`` (so CI's ``make test``) installs with ``-c requirements/lock.txt``; ``make lock`` makes it."""
    venv = tmp_path / "venv"
    install = subprocess.run(
        ["make", "-n", "-B", "-C", str(REPO_ROOT), f"VENV={venv}", f"{venv}/.installed"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pip_installs = [line for line in install.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert len(pip_installs) == 2 and all("-c requirements/lock.txt" in line for line in pip_installs), install
    lock = subprocess.run(["make", "-n", "-C", str(REPO_ROOT), "lock"], capture_output=True, text=True, check=True).stdout
    assert "scripts/deps.py lock" in lock and "pip install" in lock

"""The declared dependencies of pyproject.toml as pip constraint files: the lock and the lower bounds.

``python scripts/deps.py lock --python VENV/bin/python --out requirements/lock.txt`` writes ``pip freeze`` of a
venv that has just installed ``.[test]`` (``make lock`` builds that venv from pyproject.toml alone), so the lock is
exactly the set pip resolved for the declared ranges. ``python scripts/deps.py floors --out FILE`` pins every
declared requirement to its lower bound (``>=X``, ``==X`` or ``~=X`` become ``==X``), for ``make test-min``; a
requirement without a lower bound is an error, since its floor could not be tested.

torch is in neither file: the Makefile installs it first from ``TORCH_SPEC`` (a bare ``torch`` from the registry
is a multi-GB CUDA build), and the lock must not fight a chosen ``TORCH_SPEC``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = REPO_ROOT / "pyproject.toml"
DEFAULT_EXTRAS = ("test",)
NOT_LOCKED = frozenset({"torch"})  # installed from the Makefile's TORCH_SPEC
FLOOR_OPERATORS = ("==", ">=", "~=")


def load_pyproject(path: Path = PYPROJECT) -> dict[str, Any]:
    """The parsed pyproject.toml."""
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def requirements(pyproject: dict[str, Any], extras: Iterable[str] = DEFAULT_EXTRAS) -> list[Requirement]:
    """The ``[project] dependencies`` followed by the named optional-dependency groups.

    Raises:
        ValueError: an extra that pyproject.toml does not define.
    """
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    reqs = [Requirement(line) for line in project.get("dependencies", [])]
    for extra in extras:
        if extra not in optional:
            raise ValueError(f"unknown extra {extra!r}; valid: {sorted(optional)}")
        reqs += [Requirement(line) for line in optional[extra]]
    return reqs


def floor(req: Requirement) -> str | None:
    """The lowest version ``req`` allows by its ``==``, ``>=`` or ``~=`` clause, or ``None`` if it has none."""
    versions = [spec.version for spec in req.specifier if spec.operator in FLOOR_OPERATORS]
    if not versions:
        return None
    return str(max(versions, key=Version))  # ">=1.2,>=1.4" allows 1.4 at the lowest


def floors(reqs: Sequence[Requirement], skip: Iterable[str] = NOT_LOCKED) -> list[str]:
    """Constraint lines pinning each requirement to its floor (``name==floor[; marker]``), sorted by name.

    Raises:
        ValueError: requirements without a lower bound (they are named).
    """
    skipped = {canonicalize_name(name) for name in skip}
    lines, missing = [], []
    for req in reqs:
        if canonicalize_name(req.name) in skipped:
            continue
        low = floor(req)
        if low is None:
            missing.append(str(req))
            continue
        marker = f"; {req.marker}" if req.marker is not None else ""
        lines.append(f"{canonicalize_name(req.name)}=={low}{marker}")
    if missing:
        raise ValueError(f"requirements without a lower bound (>=, == or ~=), so their floor cannot be tested: {missing}")
    return sorted(set(lines))


def lock_lines(freeze: Iterable[str], skip: Iterable[str] = NOT_LOCKED) -> list[str]:
    """The ``name==version`` lines of ``pip freeze`` output, without editable installs and ``skip``, sorted."""
    skipped = {canonicalize_name(name) for name in skip}
    lines = []
    for raw in freeze:
        line = raw.strip()
        if not line or line.startswith(("#", "-e ")):
            continue
        if "==" not in line:
            raise ValueError(f"unexpected `pip freeze` line (want name==version): {line!r}")
        name, version = line.split("==", 1)
        if canonicalize_name(name) not in skipped:
            lines.append(f"{canonicalize_name(name)}=={version}")
    return sorted(lines)


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _run(python: str, *args: str) -> str:
    return subprocess.run([python, *args], check=True, capture_output=True, text=True).stdout


def write_lock(python: str, out: Path) -> None:
    """Freeze the venv of ``python`` into the lock file ``out``, with a header saying how it was made."""
    freeze = _run(python, "-m", "pip", "freeze", "--exclude-editable").splitlines()
    torch = _run(python, "-c", "import torch; print(torch.__version__)").strip()
    py = _run(python, "-c", "import platform; print(platform.python_version())").strip()
    header = [
        "# Generated by `make lock` (scripts/deps.py) from pyproject.toml; do not edit by hand.",
        "# `make install` and CI install with `pip install -c` this file: the tested set of every dependency.",
        f"# Resolved on Python {py}, {platform.system()} {platform.machine()}.",
        f"# torch is not locked: the Makefile installs TORCH_SPEC first (this lock was made with torch {torch}).",
    ]
    _write(out, "\n".join([*header, *lock_lines(freeze)]) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``floors`` or ``lock`` (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    sub = parser.add_subparsers(dest="command", required=True)
    low = sub.add_parser("floors", help="pin every declared requirement to its lower bound")
    low.add_argument("--extra", action="append", default=None, help="optional-dependency group (default: test)")
    low.add_argument("--out", type=Path, required=True)
    lock = sub.add_parser("lock", help="write `pip freeze` of a freshly installed venv as the lock")
    lock.add_argument("--python", required=True, help="the python of the venv that installed .[test]")
    lock.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "floors":
        reqs = requirements(load_pyproject(args.pyproject), args.extra or DEFAULT_EXTRAS)
        header = "# Lower bounds of pyproject.toml (scripts/deps.py floors), for `make test-min`.\n"
        _write(args.out, header + "\n".join(floors(reqs)) + "\n")
    else:
        write_lock(args.python, args.out)


if __name__ == "__main__":
    main()

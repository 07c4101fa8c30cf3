"""Rewrite old-format state files weights-only: ``python scripts/convert_state_file.py --trust PATH [PATH ...]``.

Older rldyn versions pickled NumPy objects into QARL's ``resume.pt`` and GTF checkpoints, and SB3's pickled replay
buffers into the calibration's ``buffer.pkl`` / ``partial_buffer.pkl``. Those files are now refused (reading them
could run code stored in them). This script reads each such file the old, unsafe way, ONCE, and writes it in the
weights-only format that the project now reads: a ``.pt`` file in place; a ``.pkl`` buffer as the ``.pt`` next to it
(the ``.pkl`` is then removed). A folder converts every ``*.pt`` and ``*buffer.pkl`` below it. Files already
weights-only are left as they are. Run it only on files from a source you trust: ``--trust`` says you do.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

from envs.common.io import atomic_torch_save, convert_state_file
from rl.qarl.state import buffer_state


def convert_pickled_buffer(path: Path) -> Path:
    """Rewrite SB3's pickled replay buffer ``path`` (``*.pkl``) as the weights-only ``*.pt`` next to it."""
    with path.open("rb") as fh:
        buffer = pickle.load(fh)
    target = path.with_suffix(".pt")
    atomic_torch_save(buffer_state(buffer), target)
    path.unlink()
    return target


def state_files(paths: list[str]) -> list[Path]:
    """The files named, and the state files below the folders named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix == ".pt" or p.name.endswith("buffer.pkl"))
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{name!r} is neither a file nor a folder")
    return found


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="state files (.pt, *buffer.pkl) or folders holding them")
    parser.add_argument("--trust", action="store_true", help="I trust these files: unpickle them (runs their code)")
    args = parser.parse_args(argv)
    if not args.trust:
        print("error: converting unpickles the old files, which runs any code they name; add --trust if you trust them")
        return 2
    try:
        files = state_files(args.paths)
    except ValueError as e:
        print(f"error: {e}")
        return 2
    for path in files:
        if path.suffix == ".pkl":
            print(f"converted {path} -> {convert_pickled_buffer(path)}")
        else:
            print(f"{'converted' if convert_state_file(path) else 'already weights-only:'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

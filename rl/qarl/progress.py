"""``progress.csv``: every scalar a ``train_qarl`` run logs, next to its TensorBoard events, for fast reading.

The report reads learning curves; TensorBoard's ``EventAccumulator`` takes about 0.2 s per 10k values, a CSV a
small fraction of that. :class:`ProgressCSV` is an SB3 logger output (``KVWriter``) added beside the TensorBoard one,
so the file holds exactly the scalars the events hold (the trainer's and the agents' ``train/`` values), one row per
dump: a ``step`` column (protagonist env steps, the events' step) and one column per tag, empty where a tag was not
logged at that step (``eval/`` columns only every ``budget.eval_every`` iterations).

Writes: a row is appended and flushed per dump; a new tag rewrites the file atomically with the wider header. Resume:
:meth:`ProgressCSV.truncate` drops the rows after the checkpoint's step (iterations logged before a crash and not
checkpointed are logged again when they are repeated), and a half-written last row, so a resumed run has each step
once. A run started before this file existed gets none on resume (its curves are read from the events).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter, filter_excluded_keys

from envs.common.io import atomic_write_text

PROGRESS_FILE = "progress.csv"
STEP = "step"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, np.complexfloating)


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a progress file with as many cells as the header (a half-written row has fewer)."""
    lines = path.read_text().splitlines() if path.exists() else []
    if not lines:
        return [], []
    header = lines[0].split(",")
    return header, [cells for cells in (line.split(",") for line in lines[1:]) if len(cells) == len(header)]


def _parses(cells: list[str]) -> bool:
    """Whether a row reads as an integer step and numbers (or empty cells)."""
    try:
        int(cells[0])
        [float(c) for c in cells[1:] if c]
    except ValueError:
        return False
    return True


def _text(header: list[str], rows: list[list[str]]) -> str:
    return "".join(",".join(cells) + "\n" for cells in [header, *rows])


class ProgressCSV(KVWriter):
    """SB3 logger output that writes every numeric scalar of a dump as one row of ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.keys: list[str] | None = None  # the columns after ``step``; read from the file at the first write
        self.enabled = True

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        """Append one row: ``step`` and the numeric values (strings, images, histograms are left to TensorBoard)."""
        if not self.enabled:
            return
        values = {k: float(v) for k, v in filter_excluded_keys(key_values, key_excluded, "csv").items() if _is_number(v)}
        if self.keys is None:
            header, _ = _rows(self.path)
            self.keys = header[1:]
        new = sorted(k for k in values if k not in self.keys)
        for key in new:
            if any(c in key for c in ',"\n\r'):
                raise ValueError(f"scalar tag {key!r} cannot be a CSV column (it holds a comma, quote or newline)")
        if new or not self.path.exists():
            header, rows = _rows(self.path)
            self.keys += new
            rows = [cells + [""] * len(new) for cells in rows]
            atomic_write_text(self.path, _text([STEP, *self.keys], rows))
        cells = [str(int(step))] + [repr(values[k]) if k in values else "" for k in self.keys]
        with self.path.open("a") as fh:
            fh.write(",".join(cells) + "\n")

    def truncate(self, step: int) -> None:
        """On resume from a checkpoint at ``step``: keep the rows up to it; without a file (an older run) write none."""
        if not self.path.exists():
            self.enabled = False
            return
        header, rows = _rows(self.path)
        kept = [cells for cells in rows if _parses(cells) and int(cells[0]) <= int(step)]
        atomic_write_text(self.path, _text(header, kept))
        self.keys = header[1:]

    def close(self) -> None:
        """Nothing to release: every row is written and closed at once."""


def read_progress(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every column of a progress file as ``tag -> (steps, values)``, steps ascending, cells left empty skipped."""
    header, rows = _rows(Path(path))
    if not rows:
        return {}
    table = np.array(rows, dtype=str)
    missing = table == ""
    try:
        numbers = np.where(missing, "nan", table).astype(float)
    except ValueError:  # a damaged row: read the others
        table = np.array([cells for cells in rows if _parses(cells)], dtype=str).reshape(-1, len(header))
        missing = table == ""
        numbers = np.where(missing, "nan", table).astype(float)
    order = np.argsort(numbers[:, 0], kind="stable")
    numbers, missing = numbers[order], missing[order]
    curves = {}
    for k, tag in enumerate(header[1:], start=1):
        keep = ~missing[:, k]
        steps, values = numbers[keep, 0], numbers[keep, k]
        last = np.append(steps[1:] != steps[:-1], True)  # a repeated step: its last value, as the events' merge
        curves[tag] = (steps[last], values[last])
    return curves

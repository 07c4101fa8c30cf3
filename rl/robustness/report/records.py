"""One run as the report sees it: its config, ``done.json``, logged scalars (``progress.csv``) and ``robustness.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from envs.common.registry import check_choice
from rl.qarl.checkpoint import CheckpointManager, glob_run_dirs

METRICS = (
    "return_nominal",
    "return_vs_adversary",
    "return_vs_best_response",
    "return_vs_best_found_attack",
    "grid_average",
    "sweep_mass_average",
    "sweep_friction_average",
)


METRIC_TITLES = {
    "return_nominal": "nominal",
    "return_vs_adversary": "vs own adversary",
    "return_vs_best_response": "vs best response",
    "return_vs_best_found_attack": "vs best found attack",
    "grid_average": "grid average",
    "sweep_mass_average": "mass sweep average",
    "sweep_friction_average": "friction sweep average",
}


SOURCES = ("auto", "robustness", "tensorboard")


TB_TAGS = {"return_nominal": "eval/return_nominal", "return_vs_adversary": "eval/return_vs_adversary"}


IGNORED_KEYS = (
    "seed",
    "name",
    "script",
    "run_dir",
    "resume",
    "progress",
    "device",
    "torch_threads",
    "save_replay_buffer",
    "budget.eval_every",
    "budget.eval_episodes",
    "budget.checkpoint_every",
    "budget.keep_checkpoints",
    "budget.keep_full",
)


@dataclass
class RunRecord:
    """What the report knows about one run.

    Attributes:
        group: the table it belongs to (the env, plus the settings that set it apart from other runs of the env).
        method: its row (the algo, plus ``algo.*`` switches that set it apart from other runs of the same algo).
        experiment: the flattened config that defines the experiment (:func:`experiment_of`).
        done: the run's ``done.json`` (``None``: it did not complete its budget).
        attacks: mean return against each attacker of its robustness JSON, by name (learned SAC attackers
            ``sac_s<seed>@<budget>`` and the fixed strategies); ``None`` when it has none.
        train_seconds: the wall time of its iterations as the trainer recorded it (summed over resumes) in the
            state of its last checkpoint (:func:`read_train_seconds`); ``None`` when unknown.
        eval_seconds: the wall time of its robustness evaluation (``seconds`` of the JSON); ``None`` without one.
    """

    root: Path
    env: str
    algo: str
    seed: int
    values: dict[str, float]
    source: str
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    grid: dict[str, Any] | None = None
    experiment: dict[str, str] = field(default_factory=dict)
    done: dict[str, Any] | None = None
    group: str = ""
    method: str = ""
    sweeps: dict[str, Any] | None = None
    attacks: dict[str, float] | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None

    @property
    def finished(self) -> bool:
        """The run completed its budget (it has a ``done.json``)."""
        return self.done is not None


# ------------------------------------------------------------------------------------------ reading
def find_report_runs(patterns: str | Sequence[str]) -> list[Path]:
    """``train_qarl`` run folders (a ``config.yaml`` of ``script: train_qarl``) matching the patterns or below them.

    Runs that failed before writing anything else are found too, so that the report can list them as skipped.

    Raises:
        ValueError: when a pattern matches nothing or no run is found.
    """

    def is_run(path: Path) -> bool:
        if path.name == ".hydra" or not (path / "config.yaml").exists():
            return False
        try:
            cfg = OmegaConf.load(path / "config.yaml")
        except Exception:  # an unreadable config.yaml is not a run we can report on
            return False
        return isinstance(cfg, DictConfig) and cfg.get("script") == "train_qarl"

    return glob_run_dirs(patterns, is_run, "train_qarl run (a folder with a config.yaml of script train_qarl)")


def experiment_of(cfg: DictConfig) -> dict[str, str]:
    """The flattened config minus :data:`IGNORED_KEYS`: what defines the experiment (values as text)."""
    from envs.common.tensorboard import flatten_config

    flat = flatten_config(cfg)
    return {k: str(v) for k, v in sorted(flat.items()) if not any(k == i or k.startswith(i + ".") for i in IGNORED_KEYS)}


def read_done(root: Path) -> dict[str, Any] | None:
    """The run's ``done.json`` (written when it completed its budget), or ``None``."""
    path = root / "done.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished_time(record: RunRecord) -> float:
    """When the run finished, as a POSIX time (``done.json``'s ``finished_at``, else its modification time)."""
    from datetime import datetime

    path = record.root / "done.json"
    value = (record.done or {}).get("finished_at")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return path.stat().st_mtime if path.exists() else (record.root / "config.yaml").stat().st_mtime


FINAL_STATE_FILE = "final_state.json"
"""A copy of the last checkpoint's ``state.json`` kept beside a collected run (benchmarks/qarl_comparison/collect_runs.sh)."""


def read_train_seconds(root: Path) -> float | None:
    """The trainer's ``wall_time`` in the run's last state: ``final_state.json``, else ``checkpoints/<latest>/state.json``.

    ``None`` when neither exists or it cannot be read (a run that never checkpointed, or a copy without the state).
    """
    candidates = [root / FINAL_STATE_FILE]
    latest = CheckpointManager(root / "checkpoints").latest()
    if latest is not None:
        candidates.append(latest / "state.json")
    for path in candidates:
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text())["trainer"]["wall_time"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def read_scalars(tensorboard: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of a TensorBoard folder (all event files but HParams sessions) as ``tag -> (steps, values)``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    merged: dict[str, dict[int, float]] = {}
    for events in sorted(tensorboard.glob("**/events.out.tfevents.*")):
        if any(part.startswith("hparams") for part in events.relative_to(tensorboard).parts[:-1]):
            continue  # HParams sessions repeat final values at step 0 (envs.common.tensorboard.log_hparams)
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            merged.setdefault(tag, {}).update({int(e.step): float(e.value) for e in acc.Scalars(tag)})
    return {
        tag: (np.array(sorted(points), dtype=float), np.array([points[s] for s in sorted(points)], dtype=float))
        for tag, points in merged.items()
    }


def read_curves(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A run's logged scalars as ``tag -> (steps, values)``: its ``progress.csv``, else its TensorBoard events.

    Runs started before ``progress.csv`` existed (:mod:`rl.qarl.progress`) have only the events; the CSV holds the same
    scalars and reads about 10 times faster.
    """
    from rl.qarl.progress import PROGRESS_FILE, read_progress

    if (root / PROGRESS_FILE).exists():
        return read_progress(root / PROGRESS_FILE)
    return read_scalars(root / "tensorboard") if (root / "tensorboard").is_dir() else {}


def read_run(root: Path, source: str = "auto") -> RunRecord | None:
    """Read one run; ``None`` when ``source='robustness'`` and it has no robustness JSON."""
    check_choice(source, SOURCES, "source")
    cfg = OmegaConf.load(root / "config.yaml")
    assert isinstance(cfg, DictConfig)
    curves = read_curves(root)
    robustness = root / "robustness" / "robustness.json"
    grid, sweeps, attacks, eval_seconds = None, None, None, None
    if source != "tensorboard" and robustness.exists():
        data = json.loads(robustness.read_text())
        values = {m: float(data[m]) if data.get(m) is not None else float("nan") for m in METRICS}
        grid = {k: data[k] for k in ("grid_mean", "mass_factors", "friction_factors", "mass_body")}
        if data.get("sweep_factors"):
            sweeps = {"factors": data["sweep_factors"], "mean": data["sweep_mean"]}
        if data.get("attackers"):
            attacks = {str(a["name"]): float("nan") if a.get("mean") is None else float(a["mean"]) for a in data["attackers"]}
        if isinstance(data.get("seconds"), int | float):
            eval_seconds = float(data["seconds"])
        used = "robustness"
    elif source == "robustness":
        return None
    else:
        values = {m: float("nan") for m in METRICS}
        values |= {m: float(curves[tag][1][-1]) for m, tag in TB_TAGS.items() if tag in curves}
        used = "tensorboard"
    record = RunRecord(root, str(cfg.env.name), str(cfg.algo.name), int(cfg.seed), values, used, curves, grid)
    record.experiment, record.done, record.sweeps = experiment_of(cfg), read_done(root), sweeps
    record.attacks = attacks
    record.train_seconds, record.eval_seconds = read_train_seconds(root), eval_seconds
    return record

"""Benchmark data (``../shared/data/dsr``) and built-in simulators; systems are data (``systems.json``).

Each system's parameters, ``dt``, initial condition, files and citation live in ``systems.json``; the
right-hand sides below take their parameters by keyword, so a renamed key fails loudly. With
``source=auto`` a system is read from its files when they exist and simulated otherwise, so the package
runs with no files at all (with a warning; the origin is recorded in ``DSRData.provenance``). Optional
Gaussian observation noise (``noise_std``, in units of each dimension's standard deviation) is added to the
*training* series only, as in the GTF data; standardisation uses the training statistics and is recorded in
:class:`DSRData` for inversion.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from dynamics.dsr.types import DSRData
from envs.common.registry import check_choice, lookup

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = "../shared/data/dsr"
SOURCES = ("auto", "file", "simulate")


def lorenz63(t: float, x: np.ndarray, *, sigma: float, rho: float, beta: float) -> np.ndarray:
    """Lorenz (1963)."""
    return np.array([sigma * (x[1] - x[0]), x[0] * (rho - x[2]) - x[1], x[0] * x[1] - beta * x[2]])


def rossler(t: float, x: np.ndarray, *, a: float, b: float, c: float) -> np.ndarray:
    """Rössler (1976)."""
    return np.array([-x[1] - x[2], x[0] + a * x[1], b + x[2] * (x[0] - c)])


def lorenz96(t: float, x: np.ndarray, *, forcing: float, dim: int) -> np.ndarray:
    """Lorenz (1996): ``dx_i = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F`` (``dim`` fixes the state size)."""
    ip1, im1, im2 = _l96_index(dim)
    return (x[ip1] - x[im2]) * x[im1] - x + forcing


@lru_cache(maxsize=8)
def _l96_index(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(dim)
    return (i + 1) % dim, (i - 1) % dim, (i - 2) % dim


def rk4(rhs: Callable[[float, np.ndarray], np.ndarray], x0: np.ndarray, dt: float, n: int, substeps: int) -> np.ndarray:
    """Classical Runge-Kutta with ``substeps`` steps of ``dt / substeps`` between samples; ``n`` samples from ``x0``."""
    h = dt / substeps
    out = np.empty((n, x0.size))
    x = np.array(x0, dtype=np.float64)
    for k in range(n):
        out[k] = x
        for _ in range(substeps):
            k1 = rhs(0.0, x)
            k2 = rhs(0.0, x + 0.5 * h * k1)
            k3 = rhs(0.0, x + 0.5 * h * k2)
            k4 = rhs(0.0, x + h * k3)
            x = x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    return out


RHS: dict[str, Callable[..., np.ndarray]] = {"lorenz63": lorenz63, "rossler": rossler, "lorenz96": lorenz96}


def system_specs() -> dict[str, dict[str, Any]]:
    """The catalogue in ``systems.json``."""
    specs: dict[str, dict[str, Any]] = json.loads((Path(__file__).parent / "systems.json").read_text())
    return specs


def resolve_data_dir(data_dir: str | Path) -> Path:
    """Relative paths are taken from the repository root."""
    path = Path(data_dir)
    return path if path.is_absolute() else REPO_ROOT / path


def simulate(
    name: str, n_steps: int, *, seed: int = 0, transient: int = 1000, parameters: dict[str, Any] | None = None
) -> np.ndarray:
    """Integrate a catalogued system (fixed-step RK4, ``substeps`` per sample) and sample every ``dt``.

    Args:
        name: a system with a right-hand side in ``systems.json``.
        n_steps: number of samples returned.
        seed: perturbs the initial condition (``N(0, 0.1²)``), so different seeds give different orbits.
        transient: samples dropped at the start.
        parameters: overrides of the catalogued parameters, by name.

    Returns:
        ``(n_steps, N)`` float64 array.
    """
    spec = lookup(system_specs(), name, "system")
    if spec["rhs"] is None:
        raise ValueError(f"system {name!r} has no simulator; valid simulated systems: {sorted(RHS)}")
    params = dict(spec["parameters"])
    for key, value in (parameters or {}).items():
        check_choice(key, params, f"parameter of {name}")
        params[key] = value
    rhs = partial(RHS[spec["rhs"]], **params)
    rng = np.random.default_rng(seed)
    if spec["x0"] is None:
        dim = int(params["dim"])
        x0 = np.full(dim, float(params.get("forcing", 1.0)))
        x0[0] += 0.01
    else:
        x0 = np.asarray(spec["x0"], dtype=float)
    x0 = x0 + 0.1 * rng.standard_normal(x0.shape)
    traj = rk4(rhs, x0, float(spec["dt"]), n_steps + transient, int(spec["substeps"]))
    if not np.all(np.isfinite(traj)):
        raise RuntimeError(f"integration of {name} diverged with parameters {params}")
    return traj[transient:]


def check_series(x: np.ndarray, what: str, min_rows: int = 1) -> np.ndarray:
    """Refuse non-2-d data, NaN/inf values, or fewer than ``min_rows`` rows."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-d array (time, dims), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"{what} contains {bad} NaN or infinite values; clean or interpolate the data first")
    if x.shape[0] < min_rows:
        raise ValueError(f"{what} has {x.shape[0]} rows, fewer than one training window of {min_rows} rows (seq_len + 1)")
    return x


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_digest(x: np.ndarray | None) -> str | None:
    """SHA-256 of an array's float64 bytes (``None`` for ``None``): identifies the exact series a model saw."""
    if x is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest()


def _load_inputs(folder: Path, name: str | None, rows: int, what: str) -> np.ndarray | None:
    if not name:
        return None
    path = Path(name) if Path(name).is_absolute() else folder / name
    if not path.is_file():
        raise ValueError(f"external-inputs file {path} does not exist; set system.inputs_train/inputs_test")
    s = np.load(path).astype(np.float64)
    check_series(s, f"{what} inputs")
    if s.shape[0] < rows:
        raise ValueError(f"{what} inputs have {s.shape[0]} rows but the {what} series has {rows}; they must align")
    return s[:rows]


def load_system(
    name: str,
    *,
    source: str = "auto",
    data_dir: str | Path = DEFAULT_DATA_DIR,
    n_train: int = 100_000,
    n_test: int = 100_000,
    noise_std: float = 0.0,
    standardize: bool | None = None,
    parameters: dict[str, Any] | None = None,
    seed: int = 0,
    inputs_train: str | None = None,
    inputs_test: str | None = None,
) -> DSRData:
    """Load or simulate a system's training and test series.

    The data's origin is recorded in ``DSRData.provenance``: the absolute file paths and their SHA-256, or
    ``simulate`` with the simulator's parameters and seed, plus checksums of the final arrays. With ``source=auto``
    and no files a warning says that the series is simulated; a ``data_dir`` other than the default that does not
    exist (or lacks the files) is an error, never a silent switch to simulated data.

    Args:
        name: a key of ``systems.json``.
        source: ``auto`` (file if present, else simulate), ``file`` or ``simulate``.
        data_dir: folder of the benchmark ``.npy`` files (relative to the repository root unless absolute).
        n_train: rows of training data (files: the first ``n_train`` rows; 0 or less keeps all).
        n_test: rows of test data (same convention).
        noise_std: observation noise added to the training series, in units of each dimension's std.
        standardize: z-score with the training statistics; ``None`` means yes for simulations and no for
            files (the benchmark files are already in the paper's units).
        parameters: simulator parameter overrides, by name.
        seed: simulation and noise seed.
        inputs_train: ``.npy`` file of external inputs aligned with the training series (in ``data_dir`` unless
            absolute), or ``None``.
        inputs_test: the same for the test series (required when ``inputs_train`` is given).
    """
    spec = lookup(system_specs(), name, "system")
    check_choice(source, SOURCES, "data source")
    folder = resolve_data_dir(data_dir)
    explicit_dir = str(data_dir) != DEFAULT_DATA_DIR
    if explicit_dir and source != "simulate" and not folder.is_dir():
        raise ValueError(f"system.data_dir={str(data_dir)!r} does not exist (resolved to {folder}); fix the path")
    files = spec["files"]
    have_files = files is not None and all((folder / f).exists() for f in files.values())
    if source == "auto" and explicit_dir and files is not None and not have_files:
        raise ValueError(
            f"system.data_dir={str(data_dir)!r} has no {sorted(files.values())}; fix the path or use system.source=simulate"
        )
    provenance: dict[str, Any]
    if source == "file" or (source == "auto" and have_files):
        if not have_files:
            raise ValueError(f"no data files for {name!r} in {folder}; use system.source=simulate or set system.data_dir")
        train_path, test_path = (folder / files["train"]).resolve(), (folder / files["test"]).resolve()
        train = np.load(train_path).astype(np.float64)
        test = np.load(test_path).astype(np.float64)
        train = train[:n_train] if n_train > 0 else train
        test = test[:n_test] if n_test > 0 else test
        used = "file"
        provenance = {
            "source": "file",
            "train_file": str(train_path),
            "test_file": str(test_path),
            "train_file_sha256": sha256(train_path),
            "test_file_sha256": sha256(test_path),
        }
    else:
        if spec["rhs"] is None:
            raise ValueError(f"system {name!r} is file-only and its files are missing from {folder}")
        if source == "auto":
            warnings.warn(
                f"no data files for {name!r} in {folder}: using SIMULATED data (recorded in the run's provenance); "
                "set system.source=simulate to silence this or system.data_dir to use the files",
                stacklevel=2,
            )
        params = {**spec["parameters"], **(parameters or {})}
        train = simulate(name, n_train, seed=seed, parameters=parameters)
        test = simulate(name, n_test, seed=seed + 10_000, parameters=parameters)
        used = "simulate"
        provenance = {"source": "simulate", "parameters": params, "seed": seed, "dt": spec["dt"], "method": "rk4"}
    check_series(train, f"{name} training data")
    check_series(test, f"{name} test data")
    if train.shape[1] != test.shape[1]:
        raise ValueError(
            f"{name}: training data has {train.shape[1]} columns but test data has {test.shape[1]}; they must match"
        )
    if bool(inputs_train) != bool(inputs_test):
        raise ValueError("external inputs need both system.inputs_train and system.inputs_test (or neither)")
    s_train = _load_inputs(folder, inputs_train, train.shape[0], "training")
    s_test = _load_inputs(folder, inputs_test, test.shape[0], "test")
    if s_train is not None and s_test is not None and s_train.shape[1] != s_test.shape[1]:
        raise ValueError(f"training inputs have {s_train.shape[1]} columns but test inputs {s_test.shape[1]}")
    if noise_std > 0:
        rng = np.random.default_rng(seed + 1)
        train = train + noise_std * train.std(0) * rng.standard_normal(train.shape)
    if standardize is None:
        standardize = used == "simulate"
    mean = train.mean(0) if standardize else np.zeros(train.shape[1])
    std = train.std(0) if standardize else np.ones(train.shape[1])
    train, test = (train - mean) / std, (test - mean) / std
    provenance.update(
        name=name,
        rows=[int(train.shape[0]), int(test.shape[0])],
        noise_std=float(noise_std),
        standardize=bool(standardize),
        train_sha256=array_digest(train),
        test_sha256=array_digest(test),
        inputs_sha256=[array_digest(s_train), array_digest(s_test)],
    )
    return DSRData(name, train, test, mean, std, spec["dt"], used, provenance, s_train, s_test)


def check_provenance(data: DSRData, recorded: dict[str, Any] | None) -> None:
    """Refuse data whose arrays differ from the run's recorded ones (a different file, length or preprocessing)."""
    if not recorded:
        warnings.warn("the run records no data provenance (an older run): its data cannot be verified", stacklevel=2)
        return
    now = data.provenance or {}
    for key in ("train_sha256", "test_sha256", "inputs_sha256"):
        if key in recorded and now.get(key) != recorded[key]:
            where = recorded.get("train_file") or f"simulated {recorded.get('parameters')} seed {recorded.get('seed')}"
            raise ValueError(
                f"the data differ from the run's recorded data ({key} {now.get(key)} != {recorded[key]}); the run "
                f"was trained on {where}; pass the same data (system.data_dir, n_train/n_test) to evaluate it"
            )

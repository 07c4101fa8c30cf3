"""Benchmark data (``../shared/data/dsr``) and built-in simulators; systems are data (``systems.json``).

Each system's parameters, ``dt``, initial condition, files and citation live in ``systems.json``; the
right-hand sides below take their parameters by keyword, so a renamed key fails loudly. The SHA-256 of every
shipped benchmark file is pinned here (:data:`PINNED_SHA256`): a file with one of those names whose bytes differ
(a truncated or edited ``ecg_train.npy`` in a ``data_dir`` of one's own) is refused, at training and at evaluation,
with the expected and found digests. Data of one's own go through a system of their own (a name outside the
catalogue with ``train_file``/``test_file``). Series are read from files (``source=file``; ``auto`` is the same and
never simulates) or simulated only when asked (``source=simulate``); the origin is recorded in
``DSRData.provenance``. Optional Gaussian observation noise (``noise_std``, in units of each dimension's standard
deviation) is added to the *training* series only, as in the GTF data; standardisation uses the training statistics
and is recorded in :class:`DSRData` for inversion.
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
#: ``auto`` reads the files like ``file`` (kept for older configs); only ``simulate`` simulates.
SOURCES = ("auto", "file", "simulate")
#: SHA-256 of the shipped benchmark files (``../shared/data/dsr``), by file name.
PINNED_SHA256: dict[str, str] = {
    "bursting_neuron_test.npy": "0630743ff6e64c9e9c4d5e525c1eb5b456300a9bbf2a953b99cde7e226dcaf55",
    "bursting_neuron_train.npy": "7643f704e8828e225b7c2d57e6847b321942b631260c0fa4422217f97184d1ba",
    "ecg_test.npy": "7c17fe9b9e90d0610f817a53e73ec8389b30763ce36985cfcadc1459dd89c654",
    "ecg_train.npy": "b79deb8b054486360233bb4cefdb154dc5f6b0a55b1a713cd76378606d936185",
    "eeg.npy": "7cc56e3b648ce492e1ac3d4284c46ccd1092e4abbc4c45f020b8c4a0b2a994bf",
    "lorenz63_test.npy": "21be3a05a58724c4c1bbdf419ac644c45e6a9fbbf4093108a70fd80f93d7b7e3",
    "lorenz63_train.npy": "2246dfc44bf3a02090cdb5264dd836c18143e5bac4297807f4c62e153a39c1eb",
    "lorenz96_test.npy": "5528c302ea212a4b3b57425dd22bd6c2657d139b3714eabd1afe08482fc3291d",
    "lorenz96_train.npy": "b147f3a5cf6256dc6b7243c15ed950d40f349506e4246362b76588305f6e4d21",
}


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


def check_pinned(path: Path) -> str:
    """SHA-256 of ``path``; a file named like a shipped benchmark file must have that file's pinned digest.

    Raises:
        ValueError: the name is one of :data:`PINNED_SHA256` but the bytes differ (expected and found digests).
    """
    found = sha256(path)
    expected = PINNED_SHA256.get(path.name)
    if expected is not None and found != expected:
        raise ValueError(
            f"{path} is not the shipped benchmark file {path.name!r}: SHA-256 expected {expected}, found {found}; "
            "use the shipped file, or give data of your own a system of its own (system.name=<a new name>, "
            "system.train_file=..., system.test_file=..., with file names of their own)"
        )
    return found


def _system_spec(name: str, train_file: str | None, test_file: str | None) -> dict[str, Any]:
    """The catalogue entry of ``name``, or a file-only entry for a system of one's own (``train_file``/``test_file``)."""
    catalogue = system_specs()
    if not train_file and not test_file:
        return lookup(catalogue, name, "system")
    if not (train_file and test_file):
        raise ValueError("a system of one's own needs both system.train_file and system.test_file")
    if name in catalogue:
        raise ValueError(
            f"system.name={name!r} is a catalogued benchmark ({sorted(catalogue)}), whose files are fixed; "
            "give data of your own a name of its own (system.name=<a new name>)"
        )
    return {"rhs": None, "parameters": {}, "dt": None, "files": {"train": train_file, "test": test_file}}


def _read_rows(path: Path, rows: int, what: str) -> np.ndarray:
    """The first ``rows`` rows of ``path`` (0 or less: all); more rows than the file has are refused."""
    x = np.load(path).astype(np.float64)
    if rows > x.shape[0]:
        raise ValueError(
            f"{what}={rows} exceeds the {x.shape[0]} rows of {path}; use {what}=0 (all rows) or at most {x.shape[0]}"
        )
    return x[:rows] if rows > 0 else x


def load_system(
    name: str,
    *,
    source: str = "file",
    data_dir: str | Path = DEFAULT_DATA_DIR,
    n_train: int = 100_000,
    n_test: int = 100_000,
    noise_std: float = 0.0,
    standardize: bool | None = None,
    parameters: dict[str, Any] | None = None,
    seed: int = 0,
    inputs_train: str | None = None,
    inputs_test: str | None = None,
    train_file: str | None = None,
    test_file: str | None = None,
) -> DSRData:
    """Load or simulate a system's training and test series.

    The data's origin is recorded in ``DSRData.provenance``: the absolute file paths and their SHA-256, or
    ``simulate`` with the simulator's parameters and seed, plus checksums of the final arrays. Nothing is ever
    simulated in place of missing files: ``file`` (and ``auto``) refuse a missing folder or file, and a file named
    like a shipped benchmark file must match its pinned SHA-256 (:func:`check_pinned`).

    Args:
        name: a key of ``systems.json``, or a name of one's own with ``train_file`` and ``test_file``.
        source: ``file`` (``auto`` is the same) or ``simulate``.
        data_dir: folder of the ``.npy`` files (relative to the repository root unless absolute).
        n_train: rows of training data (files: the first ``n_train`` rows; 0 or less keeps all; more rows than the
            file has are refused).
        n_test: rows of test data (same convention).
        noise_std: observation noise added to the training series, in units of each dimension's std.
        standardize: z-score with the training statistics; ``None`` means yes for simulations and no for
            files (the benchmark files are already in the paper's units).
        parameters: simulator parameter overrides, by name.
        seed: simulation and noise seed.
        inputs_train: ``.npy`` file of external inputs aligned with the training series (in ``data_dir`` unless
            absolute), or ``None``.
        inputs_test: the same for the test series (required when ``inputs_train`` is given).
        train_file: training series of a system of one's own (in ``data_dir`` unless absolute); ``name`` must not
            be a catalogued system.
        test_file: its test series (required with ``train_file``).
    """
    spec = _system_spec(name, train_file, test_file)
    check_choice(source, SOURCES, "data source")
    folder = resolve_data_dir(data_dir)
    provenance: dict[str, Any]
    if source != "simulate":
        if parameters:
            raise ValueError(
                f"system.parameters={parameters} change the simulator, but system.source={source!r} reads files; "
                "drop them or use system.source=simulate"
            )
        files = spec["files"]
        if files is None:
            raise ValueError(f"system {name!r} has no data files; use system.source=simulate")
        if not folder.is_dir():
            raise ValueError(
                f"system.data_dir={str(data_dir)!r} does not exist (resolved to {folder}); fix the path (nothing is "
                "simulated in place of the files; system.source=simulate asks for simulated data)"
            )
        paths = {k: (Path(f) if Path(f).is_absolute() else folder / f).resolve() for k, f in files.items()}
        missing = sorted(str(p) for p in paths.values() if not p.is_file())
        if missing:
            raise ValueError(
                f"system.data_dir={str(data_dir)!r} has no {missing}: no data files for {name!r}; fix system.data_dir "
                "(nothing is simulated in their place; system.source=simulate asks for simulated data)"
            )
        digests = {k: check_pinned(p) for k, p in paths.items()}
        train = _read_rows(paths["train"], n_train, "system.n_train")
        test = _read_rows(paths["test"], n_test, "system.n_test")
        used = "file"
        provenance = {
            "source": "file",
            "train_file": str(paths["train"]),
            "test_file": str(paths["test"]),
            "train_file_sha256": digests["train"],
            "test_file_sha256": digests["test"],
        }
    else:
        if spec["rhs"] is None:
            raise ValueError(f"system {name!r} is file-only (no simulator); use system.source=file")
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

"""Data of the NODE tasks; nothing is downloaded (MNIST only from files the user points at)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dynamics.node.types import ClassBatch, SeriesBatch

#: the spiral of torchdiffeq's examples/ode_demo.py: dy/dt = y^3 A
SPIRAL_A = ((-0.1, 2.0), (-2.0, -0.1))


def load_digits_split(seed: int = 0, test_size: float = 0.2) -> tuple[ClassBatch, ClassBatch]:
    """The 8x8 digits of sklearn (1797 images, bundled with sklearn), scaled to [0, 1], stratified 1437/360 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=test_size, random_state=seed, stratify=y)
    to = torch.as_tensor
    return (
        ClassBatch(to(x_tr, dtype=torch.float32), to(y_tr, dtype=torch.int64)),
        ClassBatch(to(x_te, dtype=torch.float32), to(y_te, dtype=torch.int64)),
    )


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise ValueError(f"MNIST file {stem}[.gz] not found in {folder}; this project downloads nothing, put the IDX files there")


def load_mnist_split(data_dir: str | None) -> tuple[ClassBatch, ClassBatch]:
    """MNIST from local IDX files (``train-images-idx3-ubyte[.gz]`` etc.) in ``data_dir``; flattened, in [0, 1]."""
    if not data_dir:
        raise ValueError("task=mnist needs task.data_dir=<folder with the MNIST IDX files>; nothing is downloaded")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise ValueError(f"task.data_dir={data_dir!r} is not a folder")
    parts = []
    for prefix in ("train", "t10k"):
        images = _read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
        x = torch.as_tensor(images.reshape(len(images), -1) / 255.0, dtype=torch.float32)
        parts.append(ClassBatch(x, torch.as_tensor(labels.astype(np.int64))))
    return parts[0], parts[1]


def spiral_trajectory(n_points: int = 1000, t1: float = 25.0) -> tuple[Tensor, Tensor]:
    """The ground-truth spiral of ode_demo.py (y0 = [2, 0]), solved with dopri5 at tight tolerances; (t, y (n, 2))."""
    from torchdiffeq import odeint

    a = torch.tensor(SPIRAL_A, dtype=torch.float64)
    t = torch.linspace(0.0, t1, n_points, dtype=torch.float64)
    with torch.no_grad():
        y = odeint(lambda _t, y: (y**3) @ a, torch.tensor([2.0, 0.0], dtype=torch.float64), t, rtol=1e-9, atol=1e-9)
    return t.float(), y.float()


def irregular_series(n_series: int, n_grid: int, obs_prob: float, rng: np.random.Generator, t1: float = 5.0) -> SeriesBatch:
    """Synthetic irregularly sampled 2-D series (a stand-in for PhysioNet).

    Each series is a damped oscillation ``x(t) = a exp(-d t) (cos(w t + p), sin(w t + p))`` with random amplitude,
    damping, frequency and phase, on a shared grid of ``n_grid`` random times in ``[0, t1]``; each point is observed
    with probability ``obs_prob`` (both channels together; the first time is always observed).
    """
    t = np.sort(rng.uniform(0.0, t1, n_grid - 1))
    t = np.concatenate([[0.0], t])
    amp = rng.uniform(0.5, 1.5, (n_series, 1))
    damp = rng.uniform(0.05, 0.3, (n_series, 1))
    freq = rng.uniform(0.8, 2.0, (n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    env = amp * np.exp(-damp * t[None])
    values = np.stack([env * np.cos(freq * t[None] + phase), env * np.sin(freq * t[None] + phase)], axis=-1)
    observed = rng.random((n_series, n_grid)) < obs_prob
    observed[:, 0] = True
    mask = np.repeat(observed[..., None], 2, axis=-1)
    f32 = torch.float32
    return SeriesBatch(torch.as_tensor(t, dtype=f32), torch.as_tensor(values, dtype=f32), torch.as_tensor(mask, dtype=f32))

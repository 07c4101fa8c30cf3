"""DSR data: simulators bound by name, standardisation recorded, noise, files, errors."""

from __future__ import annotations

import numpy as np
import pytest

from dynamics.dsr.data import DEFAULT_DATA_DIR, REPO_ROOT, check_series, load_system, simulate, system_specs

DATA = REPO_ROOT / DEFAULT_DATA_DIR


@pytest.mark.parametrize("name", ["lorenz63", "rossler", "lorenz96"])
def test_simulated_systems_are_bounded_and_standardised(name: str, tmp_path) -> None:
    data = load_system(name, data_dir=tmp_path, n_train=1000, n_test=300)  # empty folder: simulated
    assert data.source == "simulate" and data.train.shape[0] == 1000 and data.test.shape[0] == 300
    assert np.allclose(data.train.mean(0), 0, atol=1e-9) and np.allclose(data.train.std(0), 1)
    assert np.all(np.isfinite(data.test)) and np.abs(data.test).max() < 10
    raw = data.train * data.std + data.mean  # standardisation is invertible from the record
    assert np.allclose(raw, simulate(name, 1000, seed=0))


def test_lorenz96_dimension_from_parameters() -> None:
    assert simulate("lorenz96", 50, parameters={"dim": 6}).shape == (50, 6)


def test_parameters_bound_by_name() -> None:
    with pytest.raises(ValueError, match="did you mean 'rho'"):
        simulate("lorenz63", 10, parameters={"rhoo": 20.0})
    assert system_specs()["lorenz63"]["parameters"]["rho"] == 28.0


def test_noise_only_on_training_series(tmp_path) -> None:
    clean = load_system("lorenz63", data_dir=tmp_path, n_train=2000, n_test=300, standardize=False)
    noisy = load_system("lorenz63", data_dir=tmp_path, n_train=2000, n_test=300, standardize=False, noise_std=0.05)
    resid = (noisy.train - clean.train) / clean.train.std(0)
    assert resid.std() == pytest.approx(0.05, rel=0.1) and np.array_equal(noisy.test, clean.test)


def test_errors_name_valid_choices(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown system"):
        load_system("lorenz64")
    with pytest.raises(ValueError, match="file-only"):
        load_system("ecg", data_dir=tmp_path)
    with pytest.raises(ValueError, match="no data files"):
        load_system("lorenz63", source="file", data_dir=tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        check_series(np.array([[0.0, np.nan]]), "x")
    with pytest.raises(ValueError, match="fewer than one training window"):
        check_series(np.zeros((10, 2)), "x", min_rows=11)


@pytest.mark.skipif(not (DATA / "eeg.npy").exists(), reason="shared benchmark data absent")
def test_benchmark_files_load_unstandardised() -> None:
    data = load_system("ecg", n_train=1000, n_test=1000)
    assert data.source == "file" and data.train.shape == (1000, 5) and np.all(data.std == 1)
    eeg = load_system("eeg", n_train=0, n_test=0)
    assert eeg.train.shape == (9640, 64) and np.array_equal(eeg.train, eeg.test)

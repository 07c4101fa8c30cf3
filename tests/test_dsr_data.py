"""DSR data: simulators bound by name, standardisation recorded, noise, files, provenance, inputs, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dynamics.dsr.data import (
    DEFAULT_DATA_DIR,
    REPO_ROOT,
    array_digest,
    check_provenance,
    check_series,
    load_system,
    sha256,
    simulate,
    system_specs,
)

DATA = REPO_ROOT / DEFAULT_DATA_DIR


@pytest.mark.parametrize("name", ["lorenz63", "rossler", "lorenz96"])
def test_simulated_systems_are_bounded_and_standardised(name: str, tmp_path) -> None:
    data = load_system(name, source="simulate", n_train=1000, n_test=300)
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
    clean = load_system("lorenz63", source="simulate", n_train=2000, n_test=300, standardize=False)
    noisy = load_system("lorenz63", source="simulate", n_train=2000, n_test=300, standardize=False, noise_std=0.05)
    resid = (noisy.train - clean.train) / clean.train.std(0)
    assert resid.std() == pytest.approx(0.05, rel=0.1) and np.array_equal(noisy.test, clean.test)


def test_errors_name_valid_choices(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown system"):
        load_system("lorenz64")
    with pytest.raises(ValueError, match="has no"):
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


def write_pair(folder, train: np.ndarray, test: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "lorenz63_train.npy", train)
    np.save(folder / "lorenz63_test.npy", test)


def test_no_silent_switch_to_simulated_data(tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_system("lorenz63", data_dir=tmp_path / "typo", n_train=100, n_test=100)
    with pytest.raises(ValueError, match="has no"):  # a folder that exists but lacks the files
        load_system("lorenz96", data_dir=tmp_path, n_train=100, n_test=100)
    with pytest.warns(UserWarning, match="SIMULATED"):  # default folder, no files (rossler has none): warned
        data = load_system("rossler", n_train=200, n_test=100)
    assert data.provenance["source"] == "simulate" and data.provenance["seed"] == 0
    assert data.provenance["parameters"] == system_specs()["rossler"]["parameters"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_system("rossler", source="simulate", n_train=200, n_test=100)  # asked for: no warning


def test_file_provenance_records_paths_and_checksums(tmp_path) -> None:
    rng = np.random.default_rng(0)
    write_pair(tmp_path / "d", rng.standard_normal((300, 3)), rng.standard_normal((200, 3)))
    data = load_system("lorenz63", data_dir=tmp_path / "d", n_train=0, n_test=150)
    prov = data.provenance
    assert prov["source"] == "file" and prov["train_file"] == str((tmp_path / "d" / "lorenz63_train.npy").resolve())
    assert prov["train_file_sha256"] == sha256(tmp_path / "d" / "lorenz63_train.npy")
    assert prov["test_sha256"] == array_digest(data.test) and prov["rows"] == [300, 150]
    check_provenance(data, prov)  # the same data pass
    write_pair(tmp_path / "e", rng.standard_normal((300, 3)), rng.standard_normal((200, 3)))
    other = load_system("lorenz63", data_dir=tmp_path / "e", n_train=0, n_test=150)
    with pytest.raises(ValueError, match="differ from the run's recorded data"):
        check_provenance(other, prov)


def test_train_test_column_mismatch_is_an_error(tmp_path) -> None:
    write_pair(tmp_path, np.zeros((50, 3)) + np.arange(50)[:, None], np.zeros((50, 2)) + np.arange(50)[:, None])
    with pytest.raises(ValueError, match="3 columns but test data has 2"):
        load_system("lorenz63", data_dir=tmp_path, n_train=0, n_test=0)


def test_external_inputs_load_aligned(tmp_path) -> None:
    rng = np.random.default_rng(1)
    write_pair(tmp_path, rng.standard_normal((120, 3)), rng.standard_normal((80, 3)))
    np.save(tmp_path / "s_train.npy", rng.standard_normal((130, 2)))
    np.save(tmp_path / "s_test.npy", rng.standard_normal((80, 2)))
    files = {"inputs_train": "s_train.npy", "inputs_test": "s_test.npy"}
    data = load_system("lorenz63", data_dir=tmp_path, n_train=0, n_test=0, **files)
    assert data.inputs_train.shape == (120, 2) and data.inputs_test.shape == (80, 2)
    assert np.array_equal(data.inputs_train, np.load(tmp_path / "s_train.npy")[:120])
    with pytest.raises(ValueError, match="both"):
        load_system("lorenz63", data_dir=tmp_path, n_train=0, n_test=0, inputs_train="s_train.npy")
    np.save(tmp_path / "short.npy", rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match="must align"):
        load_system("lorenz63", data_dir=tmp_path, n_train=0, n_test=0, inputs_train="short.npy", inputs_test="s_test.npy")

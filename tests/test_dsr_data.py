"""DSR data: simulators bound by name, standardisation recorded, noise, files, provenance, inputs, errors, pins."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dynamics.dsr.data import (
    DEFAULT_DATA_DIR,
    PINNED_SHA256,
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
    with pytest.raises(ValueError, match=r"has no data files; use system\.source=simulate"):
        load_system("rossler", source="file")
    with pytest.raises(ValueError, match=r"change the simulator, but system\.source='file' reads files"):
        load_system("lorenz63", source="file", parameters={"rho": 20.0})  # was silently ignored
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


#: a system of one's own: data of one's own never take a catalogued system's name or file names.
MINE = {"train_file": "mine_train.npy", "test_file": "mine_test.npy"}


def write_pair(folder, train: np.ndarray, test: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / MINE["train_file"], train)
    np.save(folder / MINE["test_file"], test)


def test_no_silent_switch_to_simulated_data(tmp_path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_system("lorenz63", data_dir=tmp_path / "typo", n_train=100, n_test=100)
    with pytest.raises(ValueError, match="has no"):  # a folder that exists but lacks the files
        load_system("lorenz96", data_dir=tmp_path, n_train=100, n_test=100)
    # the default folder without the files (a checkout without ../shared): auto never simulates, even with a warning
    monkeypatch.setattr("dynamics.dsr.data.REPO_ROOT", tmp_path / "checkout")
    for source in ("auto", "file"):
        with pytest.raises(ValueError, match="source=simulate"):
            load_system("lorenz63", source=source, n_train=100, n_test=100)
        with pytest.raises(ValueError, match=r"has no data files; use system\.source=simulate"):
            load_system("rossler", source=source, n_train=100, n_test=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_system("rossler", source="simulate", n_train=200, n_test=100)  # asked for: no warning
    assert data.provenance["source"] == "simulate" and data.provenance["seed"] == 0
    assert data.provenance["parameters"] == system_specs()["rossler"]["parameters"]


def test_every_catalogued_file_is_pinned() -> None:
    files = {f for spec in system_specs().values() if spec["files"] for f in spec["files"].values()}
    assert files == set(PINNED_SHA256) and all(len(d) == 64 for d in PINNED_SHA256.values())


@pytest.mark.skipif(not (DATA / "eeg.npy").exists(), reason="shared benchmark data absent")
def test_shipped_files_match_their_pins() -> None:
    assert {f: sha256(DATA / f) for f in PINNED_SHA256} == PINNED_SHA256


def test_a_known_file_name_with_other_bytes_is_refused(tmp_path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "ecg_train.npy", rng.standard_normal((500, 5)))  # e.g. a truncated copy
    np.save(tmp_path / "ecg_test.npy", rng.standard_normal((500, 5)))
    found = sha256(tmp_path / "ecg_train.npy")
    with pytest.raises(ValueError, match=f"expected {PINNED_SHA256['ecg_train.npy']}, found {found}"):
        load_system("ecg", data_dir=tmp_path, n_train=0, n_test=0)
    # the same bytes under names of their own, as a system of its own, are fine
    (tmp_path / "ecg_train.npy").rename(tmp_path / MINE["train_file"])
    (tmp_path / "ecg_test.npy").rename(tmp_path / MINE["test_file"])
    assert load_system("mine", data_dir=tmp_path, n_train=0, n_test=0, **MINE).train.shape == (500, 5)
    with pytest.raises(ValueError, match="catalogued benchmark"):  # but not under a catalogued system's name
        load_system("ecg", data_dir=tmp_path, n_train=0, n_test=0, **MINE)
    np.save(tmp_path / "lorenz63_train.npy", np.zeros((50, 3)))  # nor under a shipped file's name
    with pytest.raises(ValueError, match=r"not the shipped benchmark file 'lorenz63_train\.npy'"):
        load_system("mine", data_dir=tmp_path, n_train=0, n_test=0, train_file="lorenz63_train.npy", test_file="mine_test.npy")


def test_more_rows_than_the_file_has_are_refused(tmp_path) -> None:
    write_pair(tmp_path, np.zeros((300, 3)), np.zeros((200, 3)))
    with pytest.raises(ValueError, match=r"system\.n_train=500 exceeds the 300 rows"):
        load_system("mine", data_dir=tmp_path, n_train=500, n_test=0, **MINE)
    with pytest.raises(ValueError, match=r"system\.n_test=201 exceeds the 200 rows"):
        load_system("mine", data_dir=tmp_path, n_train=0, n_test=201, **MINE)
    assert load_system("mine", data_dir=tmp_path, n_train=300, n_test=200, **MINE).provenance["rows"] == [300, 200]


def test_file_provenance_records_paths_and_checksums(tmp_path) -> None:
    rng = np.random.default_rng(0)
    write_pair(tmp_path / "d", rng.standard_normal((300, 3)), rng.standard_normal((200, 3)))
    data = load_system("mine", data_dir=tmp_path / "d", n_train=0, n_test=150, **MINE)
    prov = data.provenance
    assert prov["source"] == "file" and prov["train_file"] == str((tmp_path / "d" / MINE["train_file"]).resolve())
    assert prov["train_file_sha256"] == sha256(tmp_path / "d" / MINE["train_file"])
    assert prov["test_sha256"] == array_digest(data.test) and prov["rows"] == [300, 150]
    check_provenance(data, prov)  # the same data pass
    write_pair(tmp_path / "e", rng.standard_normal((300, 3)), rng.standard_normal((200, 3)))
    other = load_system("mine", data_dir=tmp_path / "e", n_train=0, n_test=150, **MINE)
    with pytest.raises(ValueError, match="differ from the run's recorded data"):
        check_provenance(other, prov)


def test_train_test_column_mismatch_is_an_error(tmp_path) -> None:
    write_pair(tmp_path, np.zeros((50, 3)) + np.arange(50)[:, None], np.zeros((50, 2)) + np.arange(50)[:, None])
    with pytest.raises(ValueError, match="3 columns but test data has 2"):
        load_system("mine", data_dir=tmp_path, n_train=0, n_test=0, **MINE)


def test_external_inputs_load_aligned(tmp_path) -> None:
    rng = np.random.default_rng(1)
    write_pair(tmp_path, rng.standard_normal((120, 3)), rng.standard_normal((80, 3)))
    np.save(tmp_path / "s_train.npy", rng.standard_normal((130, 2)))
    np.save(tmp_path / "s_test.npy", rng.standard_normal((80, 2)))
    files = {"inputs_train": "s_train.npy", "inputs_test": "s_test.npy"}
    data = load_system("mine", data_dir=tmp_path, n_train=0, n_test=0, **MINE, **files)
    assert data.inputs_train.shape == (120, 2) and data.inputs_test.shape == (80, 2)
    assert np.array_equal(data.inputs_train, np.load(tmp_path / "s_train.npy")[:120])
    with pytest.raises(ValueError, match="both"):
        load_system("mine", data_dir=tmp_path, n_train=0, n_test=0, **MINE, inputs_train="s_train.npy")
    np.save(tmp_path / "short.npy", rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match="must align"):
        load_system("mine", data_dir=tmp_path, n_train=0, n_test=0, **MINE, inputs_train="short.npy", inputs_test="s_test.npy")

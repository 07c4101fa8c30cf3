"""DSR runs and pinned data: a shipped file's name with other bytes is refused at training and at evaluation; data of
one's own train and evaluate as a system of their own; ``select_holdout`` keeps the selection tail out of training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dynamics.dsr import train as train_mod
from dynamics.dsr.data import PINNED_SHA256, sha256
from dynamics.dsr.types import DSRData
from tests.test_dsr_gtf import tiny_cfg


def test_training_and_evaluation_refuse_a_shipped_file_name_with_other_bytes(tmp_path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "ecg_train.npy", rng.standard_normal((800, 5)))  # a truncated or edited copy
    np.save(folder / "ecg_test.npy", rng.standard_normal((800, 5)))
    found = sha256(folder / "ecg_train.npy")
    system = {"name": "ecg", "source": "file", "data_dir": str(folder), "n_train": 0, "n_test": 0}
    cfg = tiny_cfg(tmp_path, system=system, model={"latent_dim": 5})
    with pytest.raises(ValueError, match=f"expected {PINNED_SHA256['ecg_train.npy']}, found {found}"):
        train_mod.train(cfg)
    assert not (tmp_path / "run").exists()  # refused before the run folder is made
    # evaluation: a run that recorded these files (e.g. the files were replaced after training) is refused too
    run_dir = tmp_path / "old_run"
    (run_dir / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / "config.yaml")
    prov = {"source": "file", "train_file": str(folder / "ecg_train.npy"), "test_file": str(folder / "ecg_test.npy")}
    torch.save({"data_provenance": prov}, run_dir / "checkpoints" / "last.pt")
    with pytest.raises(ValueError, match=f"expected {PINNED_SHA256['ecg_train.npy']}, found {found}"):
        train_mod.load_run(run_dir)


def test_data_of_ones_own_train_and_evaluate_as_a_system_of_their_own(tmp_path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(1)
    np.save(folder / "mine_train.npy", rng.standard_normal((1500, 3)))
    np.save(folder / "mine_test.npy", rng.standard_normal((600, 3)))
    system = {"name": "mine", "source": "file", "data_dir": str(folder), "n_train": 0, "n_test": 0}
    system |= {"train_file": "mine_train.npy", "test_file": "mine_test.npy"}
    train_mod.train(tiny_cfg(tmp_path, system=system, epochs=1, keep_best=False))
    _, _, data, state = train_mod.load_run(tmp_path / "run")
    assert data.provenance["train_file"] == str((folder / "mine_train.npy").resolve())
    assert state["data_provenance"]["train_file_sha256"] == sha256(folder / "mine_train.npy")


def test_select_holdout_keeps_the_selection_tail_out_of_training(tmp_path, monkeypatch) -> None:
    from dynamics.dsr.data import load_system

    data: DSRData = load_system("lorenz63", source="simulate", n_train=3000, n_test=1200)
    monkeypatch.setattr(train_mod, "load_data", lambda cfg: data)
    batches, scored = [], []
    real_batch, real_score = train_mod.sample_batch, train_mod.selection_score

    def batch_spy(train, *args, **kwargs):
        batches.append(train.detach().cpu().numpy())
        return real_batch(train, *args, **kwargs)

    def score_spy(model, obs_model, train, select_len, inputs=None):
        scored.append((train, select_len))
        return real_score(model, obs_model, train, select_len, inputs)

    monkeypatch.setattr(train_mod, "sample_batch", batch_spy)
    monkeypatch.setattr(train_mod, "selection_score", score_spy)
    result = train_mod.train(tiny_cfg(tmp_path / "a", select_holdout=True, select_len=600, keep_best=False))
    assert batches and all(b.shape[0] == 2400 for b in batches)  # windows are drawn from the first 2400 rows only
    assert np.allclose(batches[0], data.train[:2400], atol=1e-6)
    assert len(scored) == 3 and all(t is data.train and n == 600 for t, n in scored)  # scored on the last 600 rows
    assert np.isfinite(result["select_d_stsp_holdout"]) and "select_d_stsp_train" not in result
    batches.clear()
    result = train_mod.train(tiny_cfg(tmp_path / "b", select_len=600))  # default: the tail is trained on too
    assert all(b.shape[0] == 3000 for b in batches) and "select_d_stsp_train" in result
    with pytest.raises(ValueError, match="select_holdout needs 0 < select_len < 3000"):
        train_mod.train(tiny_cfg(tmp_path / "c", select_holdout=True, select_len=0))
    with pytest.raises(ValueError, match="before the held-out tail"):
        train_mod.train(tiny_cfg(tmp_path / "d", select_holdout=True, select_len=2990))

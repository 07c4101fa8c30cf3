"""Subprocess smoke runs of scripts/train_gtf.py and scripts/eval_gtf.py with a tiny budget (simulated data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / script), *overrides]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)


def test_train_then_eval_smoke(tmp_path: Path) -> None:
    run_dir = tmp_path / "train"
    proc = run(
        "train_gtf.py",
        "system=rossler",
        "system.n_train=1500",
        "system.n_test=600",
        "model=clipped_shplrnn",
        "model.hidden_dim=16",
        "forcing=adaptive",
        "epochs=2",
        "batches_per_epoch=3",
        "batch_size=4",
        "seq_len=20",
        "eval_every=2",
        "eval_len=500",
        "device=cpu",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.system.name == "rossler" and cfg.forcing.alpha_method == "product_upper_bound"
    assert (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "checkpoints" / "best.pt").is_file()
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "dynamics/gtf_alpha", "eval/d_stsp", "eval/d_h", "eval/pe20", "select/d_stsp_train"} <= scalars
    assert {"eval/attractor", "eval/power_spectrum"} <= set(acc.Tags()["images"])

    out = tmp_path / "eval"
    proc = run("eval_gtf.py", f"runs=[{run_dir}]", "lyapunov_steps=200", f"output={out}", f"hydra.run.dir={tmp_path / 'e'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert len(rows) == 1 and rows[0]["test_rows"] == 600 and rows[0]["pe"] >= 0 and rows[0]["checkpoint"] == "last.pt"
    assert "last.pt (" in proc.stdout  # the printed table says which checkpoint was scored (the last, as the paper)
    assert rows[0]["data"]["source"] == "simulate" and rows[0]["data"]["parameters"]["c"] == 5.7  # provenance
    assert json.loads((run_dir / "data.json").read_text())["test_sha256"] == rows[0]["data"]["test_sha256"]
    assert "median ± MAD" in (out / "metrics.md").read_text()

"""Quality within a CPU budget: train with ``scripts/train_gtf.py``'s config, then the paper's full protocol.

Composes ``configs/train_gtf.yaml`` with the given Hydra overrides, trains (single thread), and evaluates on the whole
test series (generate 1.25 T from the first test point, drop 0.25 T, 30 bins or float32 GMM, D_H σ = 20, PE(20)) both
the LAST model (what the paper scores; the headline) and, when the run kept one, ``best.pt`` (selected on training
data). Prints the metrics, the data's provenance and the CPU seconds of training.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_gtf_quality.py run_dir=runs/bench_quality \
        system=lorenz63 forcing=adaptive epochs=500 batch_size=32 lr=5e-3 lr_end=1e-5
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from dynamics.dsr.config import register_configs
from dynamics.dsr.evaluate import evaluate_model
from dynamics.dsr.train import load_run, train

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main(overrides: list[str]) -> None:
    torch.set_num_threads(1)
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train_gtf", overrides=["progress=false", *overrides])
    if not cfg.run_dir:
        raise ValueError("pass run_dir=<folder>")
    t0 = time.process_time()
    result = train(cfg)
    train_cpu = time.process_time() - t0
    out: dict = {"train_cpu_s": train_cpu, **result}
    for which in ("last", "best"):
        if which == "best" and not (Path(cfg.run_dir) / "checkpoints" / "best.pt").is_file():
            continue
        model, obs, data, state = load_run(Path(cfg.run_dir), checkpoint=which)
        t1 = time.process_time()
        metrics, _ = evaluate_model(model, obs, data.test, inputs=data.inputs_test)
        out[which] = {**metrics._asdict(), "epoch": int(state["epoch"]), "eval_cpu_s": time.process_time() - t1}
        out["data"] = data.provenance
    (Path(cfg.run_dir) / "quality.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])

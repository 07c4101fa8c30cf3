"""Quality within a CPU budget: train with ``scripts/train_gtf.py``'s config, then the paper's full protocol.

Composes ``configs/train_gtf.yaml`` with the given Hydra overrides, trains (single thread), and evaluates the final
checkpoint on the whole test series (generate 1.25 T from the first test point, drop 0.25 T, 30 bins, D_H σ = 20,
PE(20)). Prints the metrics and the CPU seconds of training.

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
    model, obs, data, _ = load_run(Path(cfg.run_dir))
    t1 = time.process_time()
    metrics, _ = evaluate_model(model, obs, data.test)
    out = {**metrics._asdict(), "train_cpu_s": train_cpu, "eval_cpu_s": time.process_time() - t1, **result}
    (Path(cfg.run_dir) / "quality.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])

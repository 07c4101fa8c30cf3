"""Run the paper's evaluation protocol on training runs: ``'runs=[runs/train_gtf/...]'``."""

import hydra
from omegaconf import DictConfig

from dynamics.dsr.config import register_configs
from dynamics.dsr.evaluate import evaluate_runs

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval_gtf")
def main(cfg: DictConfig) -> None:
    """Entry point; writes ``metrics.json`` and ``metrics.md``."""
    rows = evaluate_runs(cfg)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()

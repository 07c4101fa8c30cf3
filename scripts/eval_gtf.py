"""Run the paper's evaluation protocol on training runs: ``'runs=[runs/train_gtf/...]'``.

Scores each run's last model (as the paper; ``checkpoint=best|auto`` for the selected one) on the data the run
recorded, with the reference's float32 GMM ``D_stsp`` from 6 dimensions on (``gmm_precision=float64``: exact).
"""

import hydra
from omegaconf import DictConfig

from dynamics.dsr.config import register_configs
from dynamics.dsr.evaluate import evaluate_runs, metrics_table

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval_gtf")
def main(cfg: DictConfig) -> None:
    """Entry point; writes ``metrics.json`` and ``metrics.md`` and prints the table (with the checkpoint scored)."""
    rows = evaluate_runs(cfg)
    print(metrics_table(rows), end="")


if __name__ == "__main__":
    main()

"""Robustness of trained QARL runs: ``python scripts/eval_robustness.py run=runs/train_qarl/<name>/<date-time>``."""

import sys

import hydra
from omegaconf import DictConfig

from rl.robustness.config import register_configs
from rl.robustness.evaluate import evaluate

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval_robustness")
def main(cfg: DictConfig) -> float:
    """Entry point; returns the mean grid average of the evaluated runs."""
    try:
        results, errors = evaluate(cfg)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if errors:
        sys.exit(
            f"error: {len(errors)} of {len(errors) + len(results)} runs could not be evaluated: " + "; ".join(errors.values())
        )
    return sum(r.grid_average for r in results) / len(results)


if __name__ == "__main__":
    main()

"""The QARL results report: ``python scripts/report_qarl.py 'runs=[runs/train_qarl]'``."""

import sys

import hydra
from omegaconf import DictConfig

from rl.robustness.config import register_configs
from rl.robustness.report import report

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="report_qarl")
def main(cfg: DictConfig) -> None:
    """Entry point."""
    try:
        report(cfg)
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

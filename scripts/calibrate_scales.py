"""QARL's reward scales: ``python scripts/calibrate_scales.py env=Hopper protagonist_steps=50000 rationality=true``."""

import sys

import hydra
from omegaconf import DictConfig

from rl.robustness.calibration import calibrate
from rl.robustness.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="calibrate_scales")
def main(cfg: DictConfig) -> None:
    """Entry point."""
    try:
        calibrate(cfg)
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

"""Train a neural ODE/SDE, optionally regularized by its solver's heuristics: ``task=digits reg=error``."""

import hydra
from omegaconf import DictConfig

from dynamics.node.config import register_configs
from dynamics.node.train import train

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="train_node")
def main(cfg: DictConfig) -> float:
    """Entry point; returns the final test NFE (for sweepers)."""
    return float(train(cfg)["test_nfe"])


if __name__ == "__main__":
    main()

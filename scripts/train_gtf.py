"""Train a PLRNN with generalized teacher forcing: ``system=lorenz63 model=clipped_shplrnn forcing=adaptive``."""

import hydra
from omegaconf import DictConfig

from dynamics.dsr.config import register_configs
from dynamics.dsr.train import train

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="train_gtf")
def main(cfg: DictConfig) -> float:
    """Entry point; returns the last monitoring D_stsp (for sweepers)."""
    return train(cfg).get("d_stsp", float("nan"))


if __name__ == "__main__":
    main()

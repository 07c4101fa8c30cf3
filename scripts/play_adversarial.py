"""Random protagonist against random adversary in a two-player MuJoCo game: ``env=Hopper episodes=5``."""

import hydra
from omegaconf import DictConfig

from envs.adversarial.demo import play
from envs.common.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="play_adversarial")
def main(cfg: DictConfig) -> float:
    """Entry point; returns the mean protagonist return (for sweepers)."""
    return play(cfg)["mean_return"]


if __name__ == "__main__":
    main()

"""Markov coding games: rate and message-space sweeps (MEME, MEC-B) and the EBIM curve.

``python scripts/run_mcg.py mcg_mdp=gridworld episodes=50 rate_fractions=[1.0,0.5,0.25]``
"""

import hydra
from omegaconf import DictConfig

from envs.coding.config import register_mcg_configs
from envs.coding.experiments import train

register_mcg_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="run_mcg")
def main(cfg: DictConfig) -> float:
    """Entry point; returns MEME's decoding accuracy at full rate (for sweepers)."""
    return train(cfg).get("meme_accuracy", float("nan"))


if __name__ == "__main__":
    main()

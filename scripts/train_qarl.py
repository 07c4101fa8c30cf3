"""Train QARL or a baseline: ``python scripts/train_qarl.py env=Hopper algo=qarl seed=0 budget=demo``."""

import sys

import hydra
from omegaconf import DictConfig

from rl.qarl import NotARunError, TrainingError, TrainingInterrupted, train
from rl.qarl.checkpoint import CheckpointWriteError
from rl.qarl.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="train_qarl")
def main(cfg: DictConfig) -> float:
    """Entry point; returns the last evaluation's return against the adversary (nominal without one).

    Exits with 130 (SIGINT) or 143 (SIGTERM) after checkpointing when a signal stops the run.
    """
    try:
        result = train(cfg)
    except TrainingInterrupted as e:
        sys.exit(e.exit_code)
    except (TrainingError, CheckpointWriteError, NotARunError, ValueError) as e:
        sys.exit(f"error: {e}")
    return result.get("eval/return_vs_adversary", result.get("eval/return_nominal", float("nan")))


if __name__ == "__main__":
    main()

"""rldyn's reinforcement-learning package: QARL and its baselines, and robustness evaluation.

``rl.qarl`` holds the algorithm on stable-baselines3 (its baselines in ``rl.qarl.baselines``), ``rl.robustness`` evaluates
any trained agent. Shared plumbing lives in ``envs.common``.
"""

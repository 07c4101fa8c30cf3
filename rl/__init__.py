"""rldyn's reinforcement-learning package: QARL and its baselines on stable-baselines3.

``rl.common`` holds the helpers that every script of the project shares (seeding, devices,
run directories, atomic checkpoints, TensorBoard writers, registries with helpful errors).
"""

"""The paper's baselines that ride on QARL's two-player trainer (arXiv:2311.01642, §5).

- :mod:`~rl.qarl.baselines.temperature_schedules`: the QARL ablations without the self-paced Gamma teacher
  (a linear temperature schedule, one self-paced point temperature).
- :mod:`~rl.qarl.baselines.action_adversary`: action adversaries, CAT with the MAS attack (arXiv:1909.02583).
- :mod:`~rl.qarl.baselines.mixedne` and :mod:`~rl.qarl.baselines.sgld`: MixedNE-LD (arXiv:2002.06063), SAC against an
  action adversary, both updated with stochastic-gradient Langevin dynamics.

SAC, RARL, fixed temperature and the force curriculum need no code of their own: they are modes of the trainer
(:mod:`rl.qarl.modes`). The registry there imports from this subpackage; nothing here imports the trainer.
"""

"""Robustness evaluation of any trained agent of the project (specs/qarl.md §8), apart from how it was trained.

- :mod:`.tasks`: the mass x friction grid, the 1-D sweeps and the seeded units of work;
- :mod:`.runs`: finding run folders and checking what they hold; :mod:`.workers`: the process pool;
- :mod:`.evaluate`: one run's evaluation (:func:`~rl.robustness.evaluate.evaluate_run`) and the script's entry point;
- :mod:`.result` and :mod:`.output`: the result as data, and its JSON, CSV, figures and TensorBoard;
- :mod:`.best_response`: attackers trained against a frozen protagonist;
- :mod:`.calibration`: the reward scale c, J_rand and the rationality check of specs/qarl.md §3.3;
- :mod:`.report`: the comparison over seeds and methods (tables, rliable statistics, figures);
- :mod:`.config`: the schemas of the evaluation, report and calibration scripts; :mod:`.plots`: shared figures.

Imports run one way: this package reads QARL run folders through :mod:`rl.qarl.checkpoint` and plays episodes with
:mod:`envs.adversarial.episodes`; nothing in :mod:`rl.qarl` imports it.
"""

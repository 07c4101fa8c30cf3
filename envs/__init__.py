"""rldyn's gymnasium environments.

Importing this package registers every environment under the ``rldyn/`` namespace, e.g.
``gymnasium.make("rldyn/AdversarialHopper-v5")``.
"""

import envs.coding.registration  # noqa: F401  (importing it registers the Markov coding games)
from envs.adversarial.registration import register_adversarial_envs

register_adversarial_envs()

"""Two-player adversarial MuJoCo games (RARL/QARL) and their single-agent views."""

from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.policies import PredictPolicy, RandomPolicy, ZeroPolicy, as_policy
from envs.adversarial.registration import make_adversarial_env, register_adversarial_envs
from envs.adversarial.specs import ADVERSARIAL_ENVS, AdversarialEnvSpec, get_env_spec
from envs.adversarial.views import AdversaryView, PlayerView, ProtagonistView

__all__ = [
    "ADVERSARIAL_ENVS",
    "AdversarialEnvSpec",
    "AdversarialMujocoEnv",
    "AdversaryView",
    "PlayerView",
    "PredictPolicy",
    "ProtagonistView",
    "RandomPolicy",
    "ZeroPolicy",
    "as_policy",
    "get_env_spec",
    "make_adversarial_env",
    "register_adversarial_envs",
]

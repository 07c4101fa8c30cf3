"""Two-player adversarial MuJoCo games (RARL/QARL), gymnasium and dm_control families, and their single-agent views."""

from envs.adversarial.dmc import DMControlGymEnv, DMControlTask
from envs.adversarial.dmc_specs import dmc_name
from envs.adversarial.env import AdversarialMujocoEnv
from envs.adversarial.policies import PredictPolicy, RandomPolicy, ZeroPolicy, as_policy
from envs.adversarial.registration import make_adversarial_env, register_adversarial_envs
from envs.adversarial.specs import ADVERSARIAL_ENVS, AdversarialEnvSpec, family_envs, get_env_spec
from envs.adversarial.views import AdversaryView, PlayerView, ProtagonistView

__all__ = [
    "ADVERSARIAL_ENVS",
    "AdversarialEnvSpec",
    "AdversarialMujocoEnv",
    "AdversaryView",
    "DMControlGymEnv",
    "DMControlTask",
    "PlayerView",
    "PredictPolicy",
    "ProtagonistView",
    "RandomPolicy",
    "ZeroPolicy",
    "as_policy",
    "dmc_name",
    "family_envs",
    "get_env_spec",
    "make_adversarial_env",
    "register_adversarial_envs",
]

"""Hydra configs through the compose API: every env option composes and builds, typos fail at launch."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig, OmegaConf

from envs.adversarial import ADVERSARIAL_ENVS
from envs.adversarial.demo import make_game
from envs.common.config import register_configs

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
ENV_OPTIONS = sorted(p.stem for p in (CONFIG_DIR / "env").glob("*.yaml"))

register_configs()


@contextmanager
def hydra_dir(config_dir: Path = CONFIG_DIR) -> Iterator[None]:
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        yield


def play_cfg(*overrides: str, config_dir: Path = CONFIG_DIR) -> DictConfig:
    with hydra_dir(config_dir):
        return compose("play_adversarial", overrides=list(overrides))


def test_every_env_has_a_config_option() -> None:
    assert ENV_OPTIONS == sorted(ADVERSARIAL_ENVS)


def test_play_defaults() -> None:
    cfg = play_cfg()
    assert cfg.script == "play_adversarial"
    assert cfg.name == "Hopper__random_vs_random__s0"
    assert (cfg.seed, cfg.device, cfg.episodes, cfg.run_dir) == (0, "auto", 5, None)
    assert not OmegaConf.missing_keys(cfg)


def test_run_dir_layout() -> None:
    with hydra_dir():
        cfg = compose("play_adversarial", overrides=["env=Swimmer", "seed=3", "adversary=zero"], return_hydra_config=True)
    parts = Path(cfg.hydra.run.dir).parts
    assert parts[:3] == ("runs", "play_adversarial", "Swimmer__random_vs_zero__s3") and len(parts) == 4
    assert cfg.hydra.job.chdir is False


@pytest.mark.parametrize("option", ENV_OPTIONS)
def test_env_option_composes_and_builds(option: str) -> None:
    cfg = play_cfg(f"env={option}")
    assert cfg.env.name == option
    assert cfg.name.startswith(f"{option}__")
    spec = ADVERSARIAL_ENVS[option]
    game = make_game(cfg.env)
    assert (game.bodies, game.axes, game.force_bound) == (spec.bodies, spec.axes, spec.force_bound)
    game.close()


def test_env_fields_override() -> None:
    cfg = play_cfg("env=Walker2d", "env.bodies=[torso]", "env.axes=[z]", "env.force_bound=1.5", "env.max_episode_steps=50")
    game = make_game(cfg.env)
    assert (game.bodies, game.axes, game.force_bound, game.max_episode_steps) == (("torso",), ("z",), 1.5, 50)
    assert isinstance(cfg.env.force_bound, float)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("sed=3", "Could not override 'sed'"),
        ("env.forcebound=1", "Could not override 'env.forcebound'"),
        ("seed=abc", "Error merging override seed=abc"),
        ("episodes=1.5", "Error merging override episodes=1.5"),
        ("env.force_bound=abc", "Error merging override env.force_bound=abc"),
        ("env.max_episode_steps=ten", "Error merging override env.max_episode_steps=ten"),
    ],
)
def test_typos_and_wrong_types_fail_at_compose(override: str, match: str) -> None:
    with pytest.raises(ConfigCompositionException, match=match):
        play_cfg(override)


def test_unknown_env_option_lists_options() -> None:
    with pytest.raises(MissingConfigException, match="Could not find 'env/Hoper'") as err:
        play_cfg("env=Hoper")
    assert all(name in str(err.value) for name in ADVERSARIAL_ENVS)


def test_unknown_env_name_inside_the_group_fails_when_building() -> None:
    cfg = play_cfg("env.name=Hoper")
    with pytest.raises(ValueError, match="did you mean 'Hopper'"):
        make_game(cfg.env)


def test_typo_inside_an_env_yaml_is_caught_by_the_schema(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    (configs / "env" / "Typo.yaml").write_text("defaults:\n  - base_env\n  - _self_\nname: Hopper\nforcebound: 1.0\n")
    (configs / "env" / "Ok.yaml").write_text("defaults:\n  - base_env\n  - _self_\nname: Hopper\nforce_bound: 1.0\n")
    assert make_game(play_cfg("env=Ok", config_dir=configs).env).force_bound == 1.0
    with pytest.raises(ConfigCompositionException, match="forcebound"):
        play_cfg("env=Typo", config_dir=configs)

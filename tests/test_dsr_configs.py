"""Hydra configs of train_gtf / eval_gtf through the compose API: every group option composes, typos fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from dynamics.dsr.config import register_configs
from dynamics.dsr.data import system_specs
from dynamics.dsr.forcing import ALPHA_METHODS, FORCING_METHODS
from dynamics.dsr.models import MODEL_NAMES

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
register_configs()


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def train_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train_gtf", overrides=list(overrides))


def test_defaults_compose() -> None:
    cfg = train_cfg()
    assert (cfg.system.name, cfg.model.name, cfg.forcing.alpha_method) == (
        "lorenz63",
        "clipped_shplrnn",
        "product_upper_bound",
    )
    assert cfg.name == "lorenz63__clipped_shplrnn__gtf_product_upper_bound__s0"
    assert cfg.system.data_dir == "../shared/data/dsr"
    assert not OmegaConf.missing_keys(cfg)


@pytest.mark.parametrize("system", options("system"))
def test_system_options(system: str) -> None:
    assert train_cfg(f"system={system}").system.name in system_specs()


@pytest.mark.parametrize("model", options("model"))
def test_model_options(model: str) -> None:
    assert train_cfg(f"model={model}").model.name in MODEL_NAMES


@pytest.mark.parametrize("forcing", options("forcing"))
def test_forcing_options(forcing: str) -> None:
    cfg = train_cfg(f"forcing={forcing}")
    assert cfg.forcing.method in FORCING_METHODS and cfg.forcing.alpha_method in ALPHA_METHODS


def test_every_model_has_an_option() -> None:
    assert set(MODEL_NAMES) <= set(options("model"))


def test_typo_and_wrong_type_fail_at_compose() -> None:
    with pytest.raises(ConfigCompositionException):
        train_cfg("lerning_rate=1e-3")
    with pytest.raises(ConfigCompositionException):
        train_cfg("batch_size=many")
    with pytest.raises(ConfigCompositionException):
        train_cfg("model.latnt_dim=4")


def test_eval_config_composes() -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval_gtf", overrides=["runs=[a,b]"])
    assert list(cfg.runs) == ["a", "b"] and cfg.pe_steps == 20 and cfg.n_bins == 30
    assert cfg.checkpoint == "last" and cfg.gmm_precision == "float32"  # the paper scores the last model


@pytest.mark.parametrize("forcing", options("forcing"))
def test_partial_forcing_defaults_to_the_reference(forcing: str) -> None:
    assert train_cfg(f"forcing={forcing}").forcing.partial is False  # GTF settings/defaults.json: partial_forcing false


def test_reference_options_compose() -> None:
    cfg = train_cfg("grad_clip_norm=10", "teacher_noise=0.05", "mar_ratio=0.5", "model.obs_bias=true", "lambda_ar=1e-3")
    assert cfg.grad_clip_norm == 10 and cfg.model.obs_bias and cfg.system.inputs_train is None

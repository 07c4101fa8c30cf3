"""Keys no script reads are refused at launch (issue 23, item 5): ``+key=...`` additions and ``run_dir=`` under Hydra."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from envs.common.launch import LaunchChecks, check_launch

ROOT = Path(__file__).resolve().parents[1]
# the Hydra scripts (convert_state_file and deps are plain command-line tools)
SCRIPTS = sorted(
    p.stem for p in (ROOT / "scripts").glob("*.py") if (ROOT / "configs" / f"{p.stem}.yaml").exists()
)  # Hydra scripts
REGISTER = [
    ("envs.common.config", "register_configs"),
    ("envs.coding.config", "register_mcg_configs"),
    ("dynamics.dsr.config", "register_configs"),
    ("dynamics.node.config", "register_configs"),
    ("rl.qarl.config", "register_configs"),
    ("rl.robustness.config", "register_configs"),
]


@pytest.fixture(scope="module", autouse=True)
def schemas() -> None:
    for module, function in REGISTER:
        getattr(importlib.import_module(module), function)()


def composed(script: str, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(script, overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_runs_the_checks_and_refuses_added_keys(script: str) -> None:
    cfg = composed(script)
    (callback,) = [c for c in map(instantiate, cfg.hydra.callbacks.values()) if isinstance(c, LaunchChecks)]
    callback.on_run_start(cfg)  # the script's own config passes
    callback.on_job_start(cfg)
    with pytest.raises(ValueError, match="unknown config keys added with '\\+': 'sede'"):
        check_launch(composed(script, "+sede=3"))
    elsewhere = composed(script, "run_dir=/tmp/elsewhere")
    with pytest.raises(ValueError, match=r"pass hydra\.run\.dir=<folder> instead"):
        check_launch(elsewhere)
    with pytest.raises(SystemExit, match="error: run_dir='/tmp/elsewhere' is for callers outside Hydra"):
        callback.on_run_start(elsewhere)


def test_nested_additions_name_a_close_match() -> None:
    cfg = composed("train_node", "reg=local_error", "+reg.local_k1=true", "++device_typo=cpu", "preset=paper2023")
    with pytest.raises(ValueError, match=r"'reg\.local_k1' .*did you mean 'local_k1_grad'.*'device_typo'"):
        check_launch(cfg)
    check_launch(composed("train_gtf", "system=rossler", "+system.parameters.c=5.0"))  # free-form dicts: not checked


@pytest.mark.slow  # a second interpreter start (~10-30 s on 2 shared cores); the in-process tests cover the logic
def test_a_script_refuses_before_hydra_makes_its_folder(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "scripts/eval_gtf.py", f"runs=[{tmp_path / 'no_run'}]", f"hydra.run.dir={tmp_path / 'h'}"]
    proc = subprocess.run([*cmd, f"run_dir={tmp_path / 'x'}"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "error: run_dir=" in proc.stderr and "pass hydra.run.dir=<folder>" in proc.stderr
    assert not (tmp_path / "h").exists() and not (tmp_path / "x").exists()

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rl.qarl.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = str(ROOT / "configs")


def installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # no hydra_plugins namespace at all
        return False


def compose_launcher(launcher):
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose("train_qarl", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)


@pytest.mark.skipif(not installed("hydra_plugins.hydra_joblib_launcher"), reason="no joblib launcher")
def test_joblib_launcher_composes():
    cfg = compose_launcher("joblib")
    assert "JoblibLauncher" in cfg.hydra.launcher._target_


@pytest.mark.skipif(
    not installed("hydra_plugins.hydra_submitit_launcher"),
    reason="hydra-submitit-launcher (the optional 'slurm' extra) is not installed",
)
def test_slurm_launcher_config_composes():
    cfg = compose_launcher("slurm")
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.timeout_min == 720 and launcher.cpus_per_task == 4 and launcher.gpus_per_node == 0
    assert launcher.array_parallelism == 64 and "OMP_NUM_THREADS=1" in launcher.setup[0]
    assert "submitit_folder" in launcher  # inherited from the plugin's submitit_slurm schema


@pytest.mark.slow
def test_seed_and_method_sweep_with_joblib(tmp_path):
    """The multirun of the README, at a tiny budget: 2 methods x 2 seeds through the joblib launcher."""
    args = [
        "-m",
        "env=InvertedPendulum",
        "algo=qarl,sac",
        "seed=0,1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "budget=demo",
        "budget.iterations=1",
        "budget.max_env_steps=200",
        "budget.episodes_per_phase=1",
        "budget.horizon=20",
        "budget.eval_episodes=1",
        "sac.net_arch=[16]",
        "sac.batch_size=8",
        "progress=false",
        f"hydra.sweep.dir={tmp_path}",
    ]
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_qarl.py"), *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sorted(p.parents[2].name for p in tmp_path.glob("*/*/checkpoints/latest"))
    assert runs == [
        "InvertedPendulum__qarl__s0",
        "InvertedPendulum__qarl__s1",
        "InvertedPendulum__sac__s0",
        "InvertedPendulum__sac__s1",
    ]

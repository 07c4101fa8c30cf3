"""Cost of the per-iteration in-memory snapshot that lets an interrupted QARL iteration be rolled back.

Hopper, the paper's networks (3x256), both replay buffers marked full (the worst case: the rows one iteration may
overwrite, 5 x 500 + 1, are copied too). Prints the median of 20 snapshots and 20 rollbacks.

    python benchmarks/bench_qarl_snapshot.py
"""

import pathlib
import tempfile
import time

import torch as th
from hydra import compose, initialize_config_dir

from envs.common.runs import prepare_run_dir
from rl.qarl.config import register_configs
from rl.qarl.trainer import QARLTrainer

th.set_num_threads(1)
register_configs()
with initialize_config_dir(config_dir=str(pathlib.Path(__file__).resolve().parents[1] / "configs"), version_base="1.3"):
    cfg = compose(
        "train_qarl", overrides=["env=Hopper", "sac.buffer_size=100000", "progress=false", f"run_dir={tempfile.mkdtemp()}"]
    )
tr = QARLTrainer(cfg, prepare_run_dir(cfg), th.device("cpu"))
for a in tr.agents().values():
    a.replay_buffer.full = True  # worst case: the rows an iteration may overwrite are copied too
ts = []
for _ in range(20):
    t = time.perf_counter()
    s = tr.state_dict(buffers="mark")
    ts.append(time.perf_counter() - t)
ts.sort()
print(f"snapshot median {ts[10] * 1e3:.1f} ms")
ts = []
for _ in range(20):
    t = time.perf_counter()
    tr.load_state_dict(s)
    ts.append(time.perf_counter() - t)
ts.sort()
print(f"rollback median {ts[10] * 1e3:.1f} ms")

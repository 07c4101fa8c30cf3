"""Cost of verifying ``resume.pt``: SHA-256 while writing, read back from the disk after the fsync, and at resume.

Writes a synthetic resume state of the given size (default 330 MB, HalfCheetah's ``resume.pt`` at the paper budget:
two replay buffers of float32 rows) three ways and prints the best of ``--repeat`` timings of each:

- ``plain``: what checkpoints did before (``torch.save`` to the path, then fsync);
- ``verified``: :func:`envs.common.io.save_state_file_verified` (SHA-256 of the stream, fsync, read back from the
  disk, compare);
- ``check``: the check a resume runs before anything is written (:func:`envs.common.io.file_sha256`).

    python benchmarks/bench_qarl_checkpoint_verify.py --mb 330 --repeat 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from envs.common.io import file_sha256, fsync_path, save_state_file_verified, torch_save_weights_only


def synthetic_state(megabytes: float) -> dict[str, object]:
    """Two players' buffers of float32 rows (obs 17, action 6, next obs 17, reward, done) summing to ``megabytes``."""
    row = (17 + 6 + 17 + 1 + 1) * 4
    rows = int(megabytes * 1e6 / (2 * row))
    rng = np.random.default_rng(0)
    return {
        player: {
            name: rng.standard_normal((rows, width), dtype=np.float32)
            for name, width in (("obs", 17), ("action", 6), ("next_obs", 17), ("reward", 1), ("done", 1))
        }
        for player in ("protagonist", "adversary")
    }


def best(repeat: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeat`` timings of ``run``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Print the timings and the overhead of verifying."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=330.0, help="size of the synthetic resume state (MB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder to write in (default: a temporary folder)")
    args = parser.parse_args()
    state = synthetic_state(args.mb)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = Path(d) / "resume.pt"

        def plain() -> None:
            torch_save_weights_only(state, path)
            fsync_path(path)

        t_plain = best(args.repeat, plain)
        t_verified = best(args.repeat, lambda: save_state_file_verified(state, path))
        t_check = best(args.repeat, lambda: file_sha256(path))
        size = path.stat().st_size
    print(f"resume.pt {size / 1e6:.0f} MB")
    print(f"plain write + fsync          {t_plain:6.2f} s")
    print(f"verified write (SHA-256, read back) {t_verified:6.2f} s  (+{t_verified - t_plain:.2f} s)")
    print(f"resume check (SHA-256)       {t_check:6.2f} s  ({size / 1e6 / t_check:.0f} MB/s)")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The GPU checks of issue 22, prepared for a machine with a CUDA GPU (none was available when they were written):
#
#   benchmarks/gpu_check.sh          # PYTHON=<a python whose torch is a CUDA build>; OUT=<folder for the outputs>
#
# 1. the gpu-marked tests of the fast SAC engine (tests/test_sac_fast.py -m gpu): fast engine == SB3's update on CUDA,
#    CUDA graphs (torch.compile mode="reduce-overhead") == eager, and no host synchronisation inside an update
#    (torch.cuda.set_sync_debug_mode("error") raises on any synchronising call);
# 2. the update benchmark on the GPU (benchmarks/bench_sac_update.py --device cuda; the trainer parts need dm_control).
# Both outputs go to $OUT (default benchmarks/results/). The exit status is the tests'.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUTDIR=${OUT:-benchmarks/results}
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONHASHSEED=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUTDIR/gpu_machine.txt"
"$PYTHON" - <<'PY' || exit 2
import sys

import torch

if not torch.cuda.is_available():
    sys.exit(f"no CUDA device visible to torch {torch.__version__} (a CPU build?): set PYTHON to a python with CUDA torch")
print("torch", torch.__version__, "on", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
PY
"$PYTHON" -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_sac_fast.py 2>&1 | tee "$OUTDIR/gpu_tests.txt"
tests=${PIPESTATUS[0]}
skip=""
"$PYTHON" -c "import dm_control" 2>/dev/null || skip="--skip-loop"
timeout 540 "$PYTHON" benchmarks/bench_sac_update.py --device cuda --rounds 5 $skip 2>&1 | tee "$OUTDIR/sac_update_cuda.txt"
exit "$tests"

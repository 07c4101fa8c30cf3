#!/usr/bin/env bash
# Robustness evaluation (specs/qarl.md §8: 20 nominal and 20 attacked episodes, 11 x 11 mass x friction grid, one
# episode per cell) of every run of the comparison, then the report (table, learning curves, heatmaps) into
# benchmarks/qarl_comparison/<env>/. Run from the repository root after train_comparison.sh:
#   nice -n 10 bash benchmarks/qarl_comparison/evaluate_and_report.sh
#   RUNS=runs/bench_qarl_comparison/InvertedPendulum_6k REPORT=benchmarks/qarl_comparison/InvertedPendulum_6k nice -n 10 bash ...
set -euo pipefail
ENV=${ENV:-InvertedPendulum}
RUNS=${RUNS:-runs/bench_qarl_comparison/$ENV}
REPORT=${REPORT:-benchmarks/qarl_comparison/$ENV}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# attack=both: the co-trained adversary (the paper's protocol) and a fresh best-response SAC adversary (BR_STEPS env
# steps against the frozen protagonist; 10k was stable on InvertedPendulum, benchmarks/README.md), reused when present.
BR_STEPS=${BR_STEPS:-10000}
BR_NET=${BR_NET:-[64,64]}
WORKERS=${WORKERS:-1}
.venv/bin/python scripts/eval_robustness.py run="$RUNS" expect_env="$ENV" grid_size=11 episodes_per_cell=1 eval_episodes=20 \
  attack=both best_response.steps="$BR_STEPS" best_response.net_arch="$BR_NET" best_response.batch_size=64 \
  workers="$WORKERS" progress=false
.venv/bin/python scripts/report_qarl.py "runs=[$RUNS]" out="$REPORT" source=robustness

#!/usr/bin/env bash
# Robustness evaluation (specs/qarl.md §8: 20 nominal and 20 attacked episodes, 11 x 11 mass x friction grid, one
# episode per cell) of every run of the comparison, then the report (table, learning curves, heatmaps) into
# benchmarks/qarl_comparison/<env>/. Run from the repository root after train_comparison.sh:
#   nice -n 10 bash benchmarks/qarl_comparison/evaluate_and_report.sh
set -euo pipefail
ENV=${ENV:-InvertedPendulum}
RUNS=${RUNS:-runs/bench_qarl_comparison/$ENV}
REPORT=${REPORT:-benchmarks/qarl_comparison/$ENV}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python scripts/eval_robustness.py run="$RUNS" expect_env="$ENV" grid_size=11 episodes_per_cell=1 eval_episodes=20 progress=false
.venv/bin/python scripts/report_qarl.py "runs=[$RUNS]" out="$REPORT" source=robustness

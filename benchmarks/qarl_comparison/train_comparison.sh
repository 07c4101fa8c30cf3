#!/usr/bin/env bash
# Budgeted QARL vs RARL vs SAC comparison, 3 seeds, as one Hydra multirun (joblib launcher, one job at a time:
# the benchmark machine has 2 cores shared with other work). Run from the repository root:
#   STEPS=10000 nice -n 10 bash benchmarks/qarl_comparison/train_comparison.sh          # InvertedPendulum
#   ENV=Hopper HORIZON=500 STEPS=30000 nice -n 10 bash benchmarks/qarl_comparison/train_comparison.sh
# then: ENV=... nice -n 10 bash benchmarks/qarl_comparison/evaluate_and_report.sh
# The budget is tiny (STEPS env steps per run, counting both players' phases for QARL and RARL): see
# benchmarks/README.md for what it does and does not show.
set -euo pipefail
ENV=${ENV:-InvertedPendulum}
OUT=${OUT:-runs/bench_qarl_comparison/$ENV}
STEPS=${STEPS:-10000}
HORIZON=${HORIZON:-200}
SEEDS=${SEEDS:-0,1,2}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python scripts/train_qarl.py -m env="$ENV" algo=qarl,rarl,sac seed="$SEEDS" \
  budget=demo budget.iterations=100000 budget.max_env_steps="$STEPS" budget.horizon="$HORIZON" \
  budget.eval_every=10 budget.eval_episodes=2 \
  sac.net_arch=[64,64] sac.batch_size=64 sac.learning_starts=500 sac.actor_learning_starts=500 \
  device=cpu progress=false \
  hydra/launcher=joblib hydra.launcher.n_jobs=1 \
  hydra.sweep.dir="$OUT" 'hydra.sweep.subdir=${name}'

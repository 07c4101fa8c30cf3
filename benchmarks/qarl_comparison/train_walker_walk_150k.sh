#!/usr/bin/env bash
# Issue 25: QARL vs RARL vs SAC (then MixedNE-LD, CAT) on dm_control walker-walk at the paper's settings (budget=paper:
# 3 x 256 networks, batch 256, one update per 3 env steps, horizon 500, 5 + 5 episodes per iteration, c = 1, xi = 10),
# 150k protagonist env steps (60 iterations), 5 seeds, as ONE Hydra multirun: joblib, two jobs at a time, a fixed
# sweep folder and resume=auto, so re-running this exact command continues unfinished runs from their last
# checkpoint (every 10 iterations) and skips finished ones. Seeds are the outer loop, so a partial sweep is balanced.
# Update mode: the fast engine, compiled, bf16 (sac.precision=bf16, explicit): the fastest mode that the learning-parity
# table (issue 22, benchmarks/results/sac_parity.md) shows to learn like SB3's eager fp32 update on both tasks.
# Run from the repository root:
#   nohup nice -n 5 bash benchmarks/qarl_comparison/train_walker_walk_150k.sh > runs/walker_walk_150k.log 2>&1 &
#   ALGOS=mixedne_ld,cat nohup nice -n 5 bash benchmarks/qarl_comparison/train_walker_walk_150k.sh ...   # afterwards
# then: bash benchmarks/qarl_comparison/collect_runs.sh   (commits-sized per-run results into the benchmark folder)
set -euo pipefail
OUT=${OUT:-runs/bench_qarl_comparison/dmc_walker_walk_150k}
STEPS=${STEPS:-150000}
SEEDS=${SEEDS:-0,1,2,3,4}
ALGOS=${ALGOS:-qarl,rarl,sac}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
# the code that trains: the commit and any uncommitted change, once per launch
{ date -u +%FT%TZ; git rev-parse HEAD; git status --porcelain --untracked-files=no; } >> "$OUT/commits.txt"
.venv/bin/python scripts/train_qarl.py -m seed="$SEEDS" algo="$ALGOS" env=dmc_walker_walk \
  budget=paper budget.max_env_steps="$STEPS" budget.eval_every=5 budget.eval_episodes=5 \
  sac.engine=fast sac.compile=true sac.precision=bf16 \
  algo.mixedne.target=official \
  device=cpu progress=false resume=auto \
  hydra/launcher=joblib hydra.launcher.n_jobs="$JOBS" \
  hydra.sweep.dir="$OUT" 'hydra.sweep.subdir=${name}'

#!/usr/bin/env bash
# Issue 22's learning-parity study: does an update mode learn like SB3's eager fp32 update?
# Modes (each a separate Hydra multirun, seeds the outer loop, one job at a time, resume=auto: re-running this exact
# command continues unfinished runs and skips finished ones):
#   reference  sac.engine=reference                                  SB3's own eager fp32 update: the baseline
#   bf16       sac.engine=fast sac.compile=true sac.precision=bf16     the candidate for precision=auto
#   fp32c      sac.engine=fast sac.compile=true sac.precision=fp32     today's default
# Tasks, both at the paper's networks (3 x 256, batch 256, one update per 3 env steps):
#   InvertedPendulum: 10k protagonist steps, horizon 200, learning from 1k steps, 5 seeds, eval every 2 iterations
#   dmc_walker_walk:  budget=paper, 40k protagonist steps, 3 seeds, eval every iteration (2.5k protagonist steps)
# Both with QARL and SAC, 5 evaluation episodes per evaluation. Run from the repository root:
#   nohup nice -n 5 bash benchmarks/sac_parity/run_parity.sh > runs/sac_parity.log 2>&1 &
# then: .venv/bin/python benchmarks/sac_parity/parity_table.py   (writes benchmarks/results/sac_parity.{md,csv})
set -euo pipefail
OUT=${OUT:-runs/sac_parity}
MODES=${MODES:-reference bf16 fp32c}
TASKS=${TASKS:-InvertedPendulum dmc_walker_walk}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
# the code that trains: the commit and any uncommitted change, once per launch
{ date -u +%FT%TZ; git rev-parse HEAD; git status --porcelain --untracked-files=no; } >> "$OUT/commits.txt"
mode_args() {
  case "$1" in
    reference) echo "sac.engine=reference sac.compile=false sac.precision=fp32" ;;
    bf16) echo "sac.engine=fast sac.compile=true sac.precision=bf16" ;;
    fp32c) echo "sac.engine=fast sac.compile=true sac.precision=fp32" ;;
    *) echo "unknown mode $1 (valid: reference bf16 fp32c)" >&2; exit 2 ;;
  esac
}
# Task-major order (one task's modes finish together): InvertedPendulum's three modes, then walker-walk's.
for task in $TASKS; do
  for mode in $MODES; do
    case "$task" in
      InvertedPendulum)
        # shellcheck disable=SC2046
        .venv/bin/python scripts/train_qarl.py -m seed=0,1,2,3,4 algo=qarl,sac env=InvertedPendulum \
          budget=paper budget.max_env_steps=10000 budget.horizon=200 budget.eval_every=2 budget.eval_episodes=5 \
          sac.learning_starts=1000 sac.actor_learning_starts=1000 $(mode_args "$mode") \
          device=cpu progress=false resume=auto hydra/launcher=joblib hydra.launcher.n_jobs=1 \
          hydra.sweep.dir="$OUT/InvertedPendulum/$mode" 'hydra.sweep.subdir=${name}' ;;
      dmc_walker_walk)
        # shellcheck disable=SC2046
        .venv/bin/python scripts/train_qarl.py -m seed=0,1,2 algo=qarl,sac env=dmc_walker_walk \
          budget=paper budget.max_env_steps=40000 budget.eval_every=1 budget.eval_episodes=5 $(mode_args "$mode") \
          device=cpu progress=false resume=auto hydra/launcher=joblib hydra.launcher.n_jobs=1 \
          hydra.sweep.dir="$OUT/dmc_walker_walk/$mode" 'hydra.sweep.subdir=${name}' ;;
      *) echo "unknown task $task (valid: InvertedPendulum dmc_walker_walk)" >&2; exit 2 ;;
    esac
  done
done

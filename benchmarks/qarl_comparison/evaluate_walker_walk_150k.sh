#!/usr/bin/env bash
# Issue 25: the robustness evaluation of every FINISHED run (done.json) of train_walker_walk_150k.sh that has none yet
# (specs/qarl.md §8: 20 nominal episodes, 20 against the co-trained adversary, the official 11 x 11 torso-mass x
# friction grid at one episode per cell, the 1-D sweeps, and the best found attack: best_response.seeds=2 learned SAC
# attackers of BR_STEPS env steps each plus the fixed strategies), then the small per-run results are copied into the
# benchmark folder (collect_runs.sh), the report is rebuilt from those committed copies, and episodes.md counts falls
# per method (episode_stats.py). Unfinished runs are left
# for a later call: running it again evaluates only what finished since. Run from the repository root:
#   nohup nice -n 5 bash benchmarks/qarl_comparison/evaluate_walker_walk_150k.sh > runs/eval_walker_walk_150k.log 2>&1 &
set -euo pipefail
RUNS=${RUNS:-runs/bench_qarl_comparison/dmc_walker_walk_150k}
DEST=${DEST:-benchmarks/qarl_comparison/dmc_walker_walk_150k}
BR_STEPS=${BR_STEPS:-10000}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
todo=()
for d in "$RUNS"/*/; do
  d=${d%/}
  if [ -f "$d/done.json" ] && [ ! -f "$d/robustness/robustness.json" ]; then todo+=("$d"); fi
done
# one call per run (eval_robustness's run= takes one folder or glob; a glob would include unfinished runs)
for run in "${todo[@]}"; do
  .venv/bin/python scripts/eval_robustness.py run="$run" expect_env=dmc_walker_walk grid_size=11 \
    episodes_per_cell=1 eval_episodes=20 attack=both best_response.steps="$BR_STEPS" \
    best_response.net_arch=[64,64] best_response.batch_size=64 workers=1 progress=false
done
[ ${#todo[@]} -gt 0 ] || echo "no finished run without an evaluation under $RUNS"
RUNS="$RUNS" DEST="$DEST" bash benchmarks/qarl_comparison/collect_runs.sh
.venv/bin/python scripts/report_qarl.py "runs=[$DEST/runs]" out="$DEST" source=auto
.venv/bin/python benchmarks/qarl_comparison/episode_stats.py "$DEST/runs" --out "$DEST/episodes.md"

#!/usr/bin/env bash
# Copy what each finished run (done.json) produced that is small into the benchmark folder, to be committed: the
# resolved config, the command, done.json, the logged scalars (progress.csv: the learning curves), the robustness
# results (robustness.json and the grid/sweep CSVs, when evaluated) and the sweep's commits.txt (the commit that
# trained). scripts/report_qarl.py reads these copies like the runs themselves. Checkpoints and events stay in runs/.
#   RUNS=runs/bench_qarl_comparison/dmc_walker_walk_150k DEST=benchmarks/qarl_comparison/dmc_walker_walk_150k \
#     bash benchmarks/qarl_comparison/collect_runs.sh
set -euo pipefail
RUNS=${RUNS:?set RUNS to the sweep folder}
DEST=${DEST:?set DEST to the benchmark folder}
mkdir -p "$DEST/runs"
[ -f "$RUNS/commits.txt" ] && cp "$RUNS/commits.txt" "$DEST/runs/commits.txt"
n=0
for d in "$RUNS"/*/; do
  d=${d%/}
  [ -f "$d/done.json" ] || continue
  out="$DEST/runs/$(basename "$d")"
  mkdir -p "$out"
  cp "$d/config.yaml" "$d/command.txt" "$d/done.json" "$d/progress.csv" "$out/"
  latest="$d/checkpoints/$(cat "$d/checkpoints/latest" 2>/dev/null || true)"
  [ -f "$latest/state.json" ] && cp "$latest/state.json" "$out/final_state.json"
  if [ -f "$d/robustness/robustness.json" ]; then
    mkdir -p "$out/robustness"
    cp "$d"/robustness/*.json "$d"/robustness/*.csv "$out/robustness/" 2>/dev/null || true
  fi
  n=$((n + 1))
done
echo "collected $n finished runs into $DEST/runs"

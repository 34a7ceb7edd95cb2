#!/usr/bin/env bash
# run_measured_bubble.sh [BUILD_DIR] - the pipeline bubble measured on real
# ranks: `tessera train` on PP = 4 ranks for m in {4, 8, 16} micro batches,
# 1F1B and interleaved (2 chunks per rank), printing each stage's share of
# the step spent waiting in exchanges beside the schedule's theoretical
# bubble ((p-1)/(v*m+p-1)). Meaningful with one core set per rank: with
# more ranks than cores, the ranks' turns on the cores add to the waits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
source "$here/../../scripts/mpi-env.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
p=4
printf '%-12s %3s %10s %s\n' schedule m theory "measured idle share per stage"
for schedule in 1f1b interleaved; do
  for m in 4 8 16; do
    extra=()
    [ "$schedule" = interleaved ] && extra=(--num-layers-per-virtual-pipeline-stage 1)
    metrics=$(mktemp)
    mpirun --oversubscribe -np $p "$build/bin/tessera" train --num-layers 8 --hidden-size 128 \
      --num-attention-heads 4 --seq-length 64 --micro-batch-size 2 --global-batch-size $((2 * m)) \
      --pipeline-model-parallel-size $p "${extra[@]}" --train-iters 4 --log-level warn \
      --data-path synthetic:random --metrics-file "$metrics"
    theory=$(grep '"type": "pipeline"' "$metrics" | head -n 1 | sed 's/.*"theoretical_bubble": \([0-9.]*\).*/\1/')
    stages=$(grep '"type": "pipeline"' "$metrics" | sed 's/.*"idle_fraction": \([0-9.]*\).*/\1/' | tr '\n' ' ')
    printf '%-12s %3d %10.3f %s\n' "$schedule" "$m" "$theory" "$stages"
    rm -f "$metrics"
  done
done

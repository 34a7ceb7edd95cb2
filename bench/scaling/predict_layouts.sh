#!/usr/bin/env bash
# predict_layouts.sh [TESSERA] [MPIEXEC] - the time model against this
# machine: calibrates it (tessera calibrate under mpirun, one thread per
# rank), then trains 15 layouts of one model (1-4 ranks; TP, SP, PP, DP, the
# distributed optimizer, overlapped reductions, recomputation, an MoE model under EP) with
# --cluster and prints, per layout, the predicted and the measured
# iteration time (mean of the iterations after the first) and the
# predicted memory (the plan + the process before it) against the peak
# RSS, with their ratios; under expert parallelism also the prediction at
# the routing's measured load (the prediction itself takes it as even).
# Ranks beyond the cores
# share them: the model scales their rate by cores / threads asked (see
# docs/planner.md). Not a test: the numbers go to the closing notes.
set -u
tessera=${1:-build/bin/tessera}
mpiexec=${2:-mpirun}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/common.sh"
calibrate "$work/local.json"

model=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256
       --micro-batch-size 4 --global-batch-size 16 --data-path synthetic:addition:4
       --train-iters 6 --log-interval 6 --log-level warn)
moe=(--num-experts 4 --moe-router-topk 2 --moe-ffn-hidden-size 512)
layouts=("1|"
         "2|"
         "2|--use-distributed-optimizer"
         "2|--overlap-grad-reduce"
         "2|--use-distributed-optimizer --overlap-grad-reduce --overlap-param-gather"
         "2|--tensor-model-parallel-size 2"
         "2|--tensor-model-parallel-size 2 --sequence-parallel"
         "2|--pipeline-model-parallel-size 2"
         "2|--tensor-model-parallel-size 2 --recompute-granularity full --recompute-method uniform --recompute-num-layers 1"
         "4|"
         "4|--tensor-model-parallel-size 2"
         "4|--pipeline-model-parallel-size 2"
         "4|--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2"
         "4|--pipeline-model-parallel-size 4 --global-batch-size 32"
         "2|--expert-model-parallel-size 2 moe")
printf "%-4s %-62s %11s %11s %7s %9s %9s %7s\n" ranks layout "pred (ms)" "meas (ms)" ratio \
  "pred MiB" "RSS MiB" ratio
for l in "${layouts[@]}"; do
  np=${l%%|*}
  flags=${l#*|}
  extra=()
  if [[ $flags == *moe ]]; then
    flags=${flags% moe}
    extra=("${moe[@]}")
  fi
  name="${flags:-(data parallel)}${extra:+ (MoE)}"
  # shellcheck disable=SC2086
  if ! measure "$np" "$work/local.json" "${model[@]}" "${extra[@]}" $flags; then
    printf "%-4s %-62s failed\n" "$np" "$name"
    continue
  fi
  awk -v np="$np" -v name="$name" -v p="$pred_ms" -v m="$meas_ms" -v plan="$pred_mem" \
    -v rss="$rss" 'BEGIN { printf "%-4s %-62s %11.2f %11.2f %7.3f %9.1f %9.1f %7.3f\n", np,
             substr(name, 1, 62), p, m, m / p, plan / 1048576, rss / 1048576, rss / plan }'
  if [ "$load" != 1 ]; then
    awk -v load="$load" -v p="$load_ms" -v m="$meas_ms" 'BEGIN {
      printf "     at the measured expert load %.3f (busiest rank of each exchange): predicted %.2f ms, ratio %.3f\n",
             load, p, m / p }'
  fi
done

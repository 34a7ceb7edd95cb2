#!/usr/bin/env bash
# predict_layouts.sh [TESSERA] [MPIEXEC] - the time model against this
# machine: calibrates it (tessera calibrate under mpirun, one thread per
# rank), then trains 13 layouts of one model (1-4 ranks; TP, SP, PP, DP, the
# distributed optimizer, recomputation, an MoE model under EP) with
# --cluster and prints, per layout, the predicted and the measured
# iteration time (mean of the iterations after the first) and the
# predicted memory (the plan + the process before it) against the peak
# RSS, with their ratios. Ranks beyond the cores
# share them: the model scales their rate by cores / threads asked (see
# docs/planner.md). Not a test: the numbers go to the closing notes.
set -u
tessera=${1:-build/bin/tessera}
mpiexec=${2:-mpirun}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
"$mpiexec" -np 2 --oversubscribe "$tessera" calibrate --out "$work/local.json" | tail -n 1

model=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256
       --micro-batch-size 4 --global-batch-size 16 --data-path synthetic:addition:4
       --train-iters 6 --log-interval 6 --log-level warn)
moe=(--num-experts 4 --moe-router-topk 2 --moe-ffn-hidden-size 512)
layouts=("1|"
         "2|"
         "2|--use-distributed-optimizer"
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
  rm -f "$work/m.jsonl"
  # shellcheck disable=SC2086
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${model[@]}" "${extra[@]}" $flags \
    --cluster "$work/local.json" --metrics-file "$work/m.jsonl" >/dev/null 2>&1
  line=$(grep '"type": "prediction"' "$work/m.jsonl" 2>/dev/null)
  get() { echo "$line" | sed "s/.*\"$1\": \([^,}]*\).*/\1/"; }
  if [ -z "$line" ]; then
    printf "%-4s %-62s failed\n" "$np" "${flags:-data parallel}${extra:+ (MoE)}"
    continue
  fi
  awk -v np="$np" -v name="${flags:-(data parallel)}${extra:+ (MoE)}" -v p="$(get predicted_ms)" \
    -v m="$(get measured_ms)" -v plan="$(get predicted_memory_bytes)" -v rss="$(get peak_rss_bytes)" \
    'BEGIN { printf "%-4s %-62s %11.2f %11.2f %7.3f %9.1f %9.1f %7.3f\n", np, substr(name, 1, 62),
             p, m, m / p, plan / 1048576, rss / 1048576, rss / plan }'
done

#!/usr/bin/env bash
# pp_e2e.sh TESSERA MPIEXEC - pipeline parallelism through the CLI:
#   20-step loss curves of PP 2, PP 4, interleaved PP 2 x 2 chunks, an
#   uneven split, and TP 2 x PP 2, equal to the 1 rank run within 1e-4
#   relative at every step (dropout and clipping on);
#   each stage reports its measured bubble;
#   a checkpoint written by TP 2 x PP 2 x DP 2 (8 ranks) continues on 1 rank,
#   TP 4, PP 4 and DP 2 with the distributed optimizer within 1e-4 of the run
#   that never changed layout.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
within() { # a b steps: same iterations, every loss within 1e-4 relative
  join <(losses_by_iteration "$1") <(losses_by_iteration "$2") | awk -v n="$3" '
    { r = ($2 - $3) / $2; if (r < 0) r = -r; if (r > w) w = r; if (r > 1e-4) bad = 1 }
    END { printf "  worst relative loss difference %.3g over %d steps\n", w, NR; exit bad || NR != n }'
}

base=(--num-layers 8 --hidden-size 64 --num-attention-heads 4 --seq-length 32
      --micro-batch-size 2 --global-batch-size 16 --lr 3e-3 --lr-warmup-iters 5
      --lr-decay-iters 20 --data-path synthetic:addition --log-interval 1 --log-level warn
      --seed 13 --hidden-dropout 0.1)
"$tessera" train "${base[@]}" --train-iters 20 --metrics-file "$work/one.jsonl"

run() { # name np flags...
  local name=$1 np=$2
  shift 2
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${base[@]}" --train-iters 20 "$@" \
    --metrics-file "$work/run.jsonl"
  within "$work/one.jsonl" "$work/run.jsonl" 20
  check "$name: 20 losses equal 1 rank within 1e-4" $?
}
run "pp 2 (1f1b)" 2 --pipeline-model-parallel-size 2
run "pp 4 (1f1b)" 4 --pipeline-model-parallel-size 4
run "pp 2 interleaved, 2 chunks" 2 --pipeline-model-parallel-size 2 \
  --num-layers-per-virtual-pipeline-stage 2
run "pp 4 uneven (1 + 3 + 3 + 1 layers)" 4 --pipeline-model-parallel-size 4 \
  --decoder-first-pipeline-num-layers 1 --decoder-last-pipeline-num-layers 1
run "tp 2 x pp 2" 4 --pipeline-model-parallel-size 2 --tensor-model-parallel-size 2

[ "$(grep -c '"type": "pipeline"' "$work/run.jsonl")" -eq 2 ] &&
  grep '"type": "pipeline"' "$work/run.jsonl" | grep -q "\"theoretical_bubble\": 0.111111"
check "each stage reports its measured bubble beside the theory ((p-1)/(m+p-1) = 1/9 for p 2, m 8)" $?

# --- any layout: saved by tp 2 x pp 2 x dp 2, continued elsewhere
"$tessera" train "${base[@]}" --train-iters 10 --save "$work/ref" >/dev/null
"$tessera" train "${base[@]}" --train-iters 20 --load "$work/ref" --metrics-file "$work/stay.jsonl"
"$mpiexec" -np 8 --oversubscribe "$tessera" train "${base[@]}" --train-iters 10 \
  --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --save "$work/ck8"
for layout in "1" "4 --tensor-model-parallel-size 4" "4 --pipeline-model-parallel-size 4" \
              "2 --use-distributed-optimizer"; do
  set -- $layout
  np=$1
  shift
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${base[@]}" --train-iters 20 "$@" \
    --load "$work/ck8" --metrics-file "$work/moved.jsonl"
  within "$work/stay.jsonl" "$work/moved.jsonl" 10
  check "checkpoint of tp 2 x pp 2 x dp 2 continues on ${np} rank(s) ${*:-} within 1e-4" $?
done

finish

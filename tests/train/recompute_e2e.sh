#!/usr/bin/env bash
# recompute_e2e.sh TESSERA MPIEXEC - activation recomputation
# (--recompute-granularity full): losses bitwise equal to the run that keeps
# every activation, for the uniform and block methods, with dropout, on one
# rank and under TP 2 x SP x PP 2; and the memory plan's activations shrink.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
activations() { grep "memory plan: activations" "$1" | head -n 1 | awk '{print $(NF-1)}'; }

common=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 5
        --data-path synthetic:addition --log-interval 1 --seed 7 --train-iters 10
        --hidden-dropout 0.1 --attention-dropout 0.1)
"$tessera" train "${common[@]}" --metrics-file "$work/keep.jsonl" >"$work/keep.log"
for method in "uniform 2" "uniform 3" "block 2"; do
  set -- $method
  "$tessera" train "${common[@]}" --recompute-granularity full --recompute-method "$1" \
    --recompute-num-layers "$2" --metrics-file "$work/re.jsonl" >"$work/re.log"
  [ "$(losses "$work/re.jsonl" | wc -l)" -eq 10 ] && cmp -s <(losses "$work/keep.jsonl") <(losses "$work/re.jsonl")
  check "recompute $1 $2: losses bitwise equal to keeping activations" $?
  awk -v a="$(activations "$work/re.log")" -v b="$(activations "$work/keep.log")" 'BEGIN {exit !(a < b)}'
  check "recompute $1 $2: planned activations $(activations "$work/re.log") MiB < $(activations "$work/keep.log") MiB" $?
done
par=(--tensor-model-parallel-size 2 --sequence-parallel --pipeline-model-parallel-size 2)
"$mpiexec" -np 4 --oversubscribe "$tessera" train "${common[@]}" "${par[@]}" \
  --metrics-file "$work/p0.jsonl" >/dev/null
"$mpiexec" -np 4 --oversubscribe "$tessera" train "${common[@]}" "${par[@]}" \
  --recompute-granularity full --recompute-num-layers 1 --metrics-file "$work/p1.jsonl" >/dev/null
[ "$(losses "$work/p1.jsonl" | wc -l)" -eq 10 ] && cmp -s <(losses "$work/p0.jsonl") <(losses "$work/p1.jsonl")
check "tp 2 x sp x pp 2: recompute bitwise equal" $?
finish

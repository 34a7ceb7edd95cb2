#!/usr/bin/env bash
# compare_builds_paired.sh BASELINE_TESSERA [CANDIDATE_TESSERA] - the two
# builds trained AT THE SAME TIME, one thread each, each pinned to its own
# core, the cores swapped every round: whatever else disturbs the machine
# disturbs both alike, which turn-taking runs (compare_builds.sh) cannot
# promise on a shared host. Prints each round's median tokens/s and ratio.
#   ROUNDS=4 bench/train/compare_builds_paired.sh /tmp/base/build/bin/tessera build/bin/tessera
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
baseline=$1
candidate=${2:-$here/../../build/bin/tessera}
rounds=${ROUNDS:-2}
iters=${ITERS:-5}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # core binary metrics shape...
  local core=$1 bin=$2 out=$3; shift 3
  taskset -c "$core" "$bin" train "$@" --train-iters $((iters + 2)) --log-interval 1 \
    --data-path synthetic:random --lr 1e-4 --log-level warn --make-vocab-size-divisible-by 1 \
    --bind none --metrics-file "$out"
}
median_tps() {
  grep '"type": "train"' "$1" | tail -n "$iters" |
    sed 's/.*"tokens_per_second": \([0-9.e+]*\).*/\1/' | sort -g |
    awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
run_shape() {
  local name=$1; shift
  for r in $(seq "$rounds"); do
    local cb=$(((r + 1) % 2)) cn=$((r % 2))
    run "$cb" "$baseline" "$work/b.jsonl" "$@" &
    run "$cn" "$candidate" "$work/c.jsonl" "$@"
    wait
    local b c
    b=$(median_tps "$work/b.jsonl")
    c=$(median_tps "$work/c.jsonl")
    printf '%-10s round %d (baseline on core %d): baseline %8.1f  candidate %8.1f tok/s  ratio %.3f\n' \
      "$name" "$r" "$cb" "$b" "$c" "$(awk -v a="$c" -v b="$b" 'BEGIN {print a / b}')"
  done
}
run_shape tiny --num-layers 4 --hidden-size 256 --num-attention-heads 4 --vocab-size 256 \
  --seq-length 128 --micro-batch-size 8
run_shape gpt2-124M --num-layers 12 --hidden-size 768 --num-attention-heads 12 \
  --vocab-size 50304 --seq-length 256 --micro-batch-size 4

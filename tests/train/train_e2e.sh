#!/usr/bin/env bash
# train_e2e.sh TESSERA MPIEXEC - end-to-end checks of `tessera train`:
#   1. the same command twice gives bitwise identical losses (determinism)
#   2. on synthetic:addition the loss falls and answer accuracy rises
#   3. data parallel 2 ranks (mpirun) matches 1 rank with 2 micro batches
#      within 1e-4 relative at every step, and is itself deterministic
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
field() { grep "\"type\": \"$2\"" "$1" | sed "s/.*\"$3\": \([^,}]*\).*/\1/"; }

common=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 4 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 5
        --data-path synthetic:addition --log-interval 1 --log-level warn --seed 7)

"$tessera" train "${common[@]}" --train-iters 12 --hidden-dropout 0.1 --attention-dropout 0.1 \
  --metrics-file "$work/a.jsonl" && "$tessera" train "${common[@]}" --train-iters 12 \
  --hidden-dropout 0.1 --attention-dropout 0.1 --metrics-file "$work/b.jsonl"
check "runs complete" $?
[ "$(losses "$work/a.jsonl" | wc -l)" -eq 12 ] && cmp -s <(losses "$work/a.jsonl") <(losses "$work/b.jsonl")
check "same command twice: bitwise identical losses (with dropout)" $?

"$tessera" train "${common[@]}" --train-iters 150 --eval-interval 50 --eval-iters 8 \
  --metrics-file "$work/learn.jsonl" >/dev/null
first=$(losses "$work/learn.jsonl" | head -n 5 | awk '{s += $1} END {print s / NR}')
last=$(losses "$work/learn.jsonl" | tail -n 5 | awk '{s += $1} END {print s / NR}')
acc_first=$(field "$work/learn.jsonl" valid answer_accuracy | head -n 1)
acc_last=$(field "$work/learn.jsonl" valid answer_accuracy | tail -n 1)
echo "  addition: loss $first -> $last, answer accuracy $acc_first -> $acc_last"
awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < 0.8 * a)}'
check "addition: loss falls by more than 20%" $?
awk -v a="$acc_first" -v b="$acc_last" 'BEGIN {exit !(b > a + 0.05)}'
check "addition: answer accuracy rises" $?

"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --train-iters 20 \
  --metrics-file "$work/dp2.jsonl" >/dev/null
check "data parallel 2 ranks runs" $?
"$tessera" train "${common[@]}" --train-iters 20 --metrics-file "$work/dp1.jsonl" >/dev/null
paste <(losses "$work/dp1.jsonl") <(losses "$work/dp2.jsonl") | awk '
  NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > worst) worst = r; if (r > 1e-4) bad = 1 }
  END { printf "  dp2 vs 1 rank: worst relative loss difference %.3g over %d steps\n", worst, NR; exit bad || NR != 20 }'
check "data parallel 2 ranks == 1 rank within 1e-4 relative" $?
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --train-iters 20 \
  --metrics-file "$work/dp2b.jsonl" >/dev/null
cmp -s <(losses "$work/dp2.jsonl") <(losses "$work/dp2b.jsonl")
check "data parallel 2 ranks twice: bitwise identical losses" $?

finish

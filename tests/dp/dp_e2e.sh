#!/usr/bin/env bash
# dp_e2e.sh TESSERA MPIEXEC - data parallelism and the distributed optimizer
# through `tessera train`, against the 1-rank run of the same global batch
# (every DP rank accumulates several micro batches):
#   DP 2; DP 2 and 3 with --use-distributed-optimizer (3: padded shards);
#   DP 4 with small buckets overlapped with backward, with and without the
#   distributed optimizer and --overlap-param-gather; TP 2 x PP 2 x DP 2 on
#   8 ranks, with and without the distributed optimizer (and sequence
#   parallelism): loss and gradient norm within 1e-4 relative at each of 20
#   steps
#   the same multi-rank command twice (4 and 8 ranks): bitwise identical
#   overlap on and off: bitwise identical (the same reductions, started earlier)
#   the optimizer state in the memory plan shrinks by the DP size
#   distributed-optimizer checkpoints: save at 10 + resume == 20 straight,
#   bitwise; loaded on 1 rank and on another DP size, within 1e-4
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
# "iteration loss grad_norm" per train line
steps() { grep '"type": "train"' "$1" | sed 's/.*"iteration": \([0-9]*\),.*"lm_loss": \([^,]*\),.*"grad_norm": \([^,]*\),.*/\1 \2 \3/'; }
# every common step (by iteration) within 1e-4 relative in loss and norm, and `want` of them
compare() { # name a b want
  awk -v name="$1" -v want="$4" '
    NR == FNR { loss[$1] = $2; norm[$1] = $3; next }
    ($1 in loss) { n++
      for (i = 0; i < 2; i++) { a = i ? norm[$1] : loss[$1]; b = $(2 + i); r = (a - b) / b;
        if (r < 0) r = -r; if (r > w[i]) w[i] = r; if (r > 1e-4) bad = 1 } }
    END { printf "  %s: worst relative difference loss %.3g, grad norm %.3g over %d steps\n",
                 name, w[0], w[1], n; exit bad || n != want }' <(steps "$2") <(steps "$3")
}
run() { # ranks metrics-file flags...
  local np=$1 out=$2
  shift 2
  if [ "$np" -eq 1 ]; then
    "$tessera" train "${common[@]}" "$@" --metrics-file "$out" >"$out.log" 2>&1
  else
    "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${common[@]}" "$@" \
      --metrics-file "$out" >"$out.log" 2>&1
  fi
  local rc=$?
  [ "$rc" -eq 0 ] || { echo "  run failed ($np ranks, $*):"; tail -n 5 "$out.log" | sed 's/^/    /'; }
  return $rc
}

common=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 2 --global-batch-size 24 --lr 3e-3 --lr-warmup-iters 3
        --lr-decay-iters 20 --clip-grad 1.0 --data-path synthetic:addition --log-interval 1
        --log-level info --hidden-dropout 0.1 --seed 5)
dist=(--use-distributed-optimizer)
overlap=(--overlap-grad-reduce --overlap-param-gather --ddp-bucket-size 3000)

run 1 "$work/one.jsonl" --train-iters 20
check "1 rank runs" $?

# --- equivalence with the 1-rank run
run 2 "$work/dp2.jsonl" --train-iters 20 && compare "dp 2" "$work/dp2.jsonl" "$work/one.jsonl" 20
check "DP 2 (6 micro batches accumulated per rank) == 1 rank within 1e-4 (loss, grad norm)" $?
run 2 "$work/d2.jsonl" --train-iters 20 "${dist[@]}" && compare "dp 2 dist-opt" "$work/d2.jsonl" "$work/one.jsonl" 20
check "DP 2 with the distributed optimizer == 1 rank within 1e-4" $?
run 3 "$work/d3.jsonl" --train-iters 20 "${dist[@]}" && compare "dp 3 dist-opt (padded)" "$work/d3.jsonl" "$work/one.jsonl" 20
check "DP 3 with the distributed optimizer (padded shards) == 1 rank within 1e-4" $?
run 4 "$work/dp4o.jsonl" --train-iters 20 "${overlap[@]:0:1}" "${overlap[@]:2}" &&
  compare "dp 4 overlapped" "$work/dp4o.jsonl" "$work/one.jsonl" 20
check "DP 4, buckets overlapped with backward == 1 rank within 1e-4" $?
run 4 "$work/d4o.jsonl" --train-iters 20 "${dist[@]}" "${overlap[@]}" &&
  compare "dp 4 dist-opt + overlap" "$work/d4o.jsonl" "$work/one.jsonl" 20
check "DP 4, distributed optimizer, overlapped reduce and gather, small buckets == 1 rank within 1e-4" $?
buckets=$(grep -o "[0-9]* gradient bucket(s)" "$work/d4o.jsonl.log" | cut -d' ' -f1)
early=$(grep -o "[0-9.]* of [0-9]* gradient buckets per iteration started during backward" \
  "$work/d4o.jsonl.log" | cut -d' ' -f1)
echo "  $early of $buckets buckets per iteration started during backward"
[ "${buckets:-0}" -gt 8 ] && awk -v e="${early:-0}" -v b="$buckets" 'BEGIN { exit !(e >= b / 2) }'
check "--overlap-grad-reduce: most buckets start during backward" $?

# --- determinism
run 4 "$work/d4o_again.jsonl" --train-iters 20 "${dist[@]}" "${overlap[@]}" &&
  cmp -s <(steps "$work/d4o.jsonl") <(steps "$work/d4o_again.jsonl")
check "DP 4 dist-opt + overlap twice: bitwise identical losses and norms" $?
run 4 "$work/d4.jsonl" --train-iters 20 "${dist[@]}" --ddp-bucket-size 3000 &&
  cmp -s <(steps "$work/d4o.jsonl") <(steps "$work/d4.jsonl")
check "DP 4 dist-opt: overlap on and off give bitwise identical losses and norms" $?

# --- the whole layout: TP 2 x PP 2 x DP 2
tp_pp=(--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2)
run 8 "$work/t8.jsonl" --train-iters 20 "${tp_pp[@]}" &&
  compare "tp 2 x pp 2 x dp 2" "$work/t8.jsonl" "$work/one.jsonl" 20
check "TP 2 x PP 2 x DP 2 == 1 rank within 1e-4" $?
run 8 "$work/t8d.jsonl" --train-iters 20 "${tp_pp[@]}" --sequence-parallel "${dist[@]}" \
  "${overlap[@]}" && compare "tp 2 x pp 2 x dp 2, sp, dist-opt" "$work/t8d.jsonl" "$work/one.jsonl" 20
check "TP 2 x PP 2 x DP 2 with sequence parallelism, the distributed optimizer and overlap == 1 rank within 1e-4" $?
run 8 "$work/t8d_again.jsonl" --train-iters 20 "${tp_pp[@]}" --sequence-parallel "${dist[@]}" \
  "${overlap[@]}" && cmp -s <(steps "$work/t8d.jsonl") <(steps "$work/t8d_again.jsonl")
check "the same 8-rank command twice: bitwise identical losses and norms" $?

# --- memory plan: Adam state divided by the DP size
mib() { grep -m1 "memory plan: optimizer state" "$1" | awk '{print $(NF-1)}'; }
one=$(mib "$work/one.jsonl.log")
four=$(mib "$work/d4o.jsonl.log")
plain=$(mib "$work/dp4o.jsonl.log")
echo "  optimizer state per rank: 1 rank $one MiB, DP 4 $plain MiB, DP 4 distributed $four MiB"
awk -v a="$one" -v b="$four" -v c="$plain" 'BEGIN { r = a / b; exit !(r > 3.9 && r < 4.1 && a == c) }'
check "memory plan: optimizer state per rank is 1/4 with the distributed optimizer on 4 ranks" $?

# --- checkpoints of the distributed optimizer
run 4 "$work/h1.jsonl" --train-iters 10 "${dist[@]}" "${overlap[@]}" --save "$work/ck" &&
  run 4 "$work/h2.jsonl" --train-iters 20 "${dist[@]}" "${overlap[@]}" --load "$work/ck" &&
  cmp -s <(steps "$work/d4o.jsonl") <(cat <(steps "$work/h1.jsonl") <(steps "$work/h2.jsonl"))
check "DP 4 dist-opt: 10 + save + load + 10 == 20 straight, bitwise" $?
run 1 "$work/l1.jsonl" --train-iters 20 --load "$work/ck" &&
  compare "dist-opt checkpoint on 1 rank" "$work/l1.jsonl" "$work/h2.jsonl" 10
check "DP 4 dist-opt checkpoint continues on 1 rank within 1e-4" $?
run 3 "$work/l3.jsonl" --train-iters 20 --load "$work/ck" "${dist[@]}" &&
  compare "dist-opt checkpoint on dp 3" "$work/l3.jsonl" "$work/h2.jsonl" 10
check "DP 4 dist-opt checkpoint continues on DP 3 dist-opt within 1e-4" $?

finish

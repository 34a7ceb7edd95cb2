#!/usr/bin/env bash
# fp16_e2e.sh TESSERA MPIEXEC SET_ROOT_ATTR - --fp16 training (fp16-rounded products,
# fp32 accumulation, fp32 master weights) and Megatron's loss scaling:
#   dynamic scaling from the default 2^32: the first iterations overflow
#   and are skipped (not NaN iterations), the scale halves from the second
#   overflow on (hysteresis 2), then training goes on with finite losses
#   --loss-scale-window 5 doubles the scale after 5 clean iterations;
#   --min-loss-scale bounds the halving
#   a constant --loss-scale 1024: step-1 loss within 1e-2 of fp32, not equal
#   TP 2, PP 2, DP 2 + distributed optimizer: 20 losses within 1e-3 of
#   1 rank; with the default scale the same iterations are skipped
#   exact resume mid-halving: the scaler's state is in the checkpoint
#   a skipped iteration advances the iteration and the consumed samples,
#   not the LR schedule nor Adam's step: the first update's logged LR is
#   the warmup's step 1, every logged LR the schedule's at (updates before
#   it + 1); the checkpoint holds the overflowed count (overflow_iterations)
#   and a resume among the updates, with a skip still ahead, is exact; a
#   forged count (more than the iterations without an update) is refused
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
set_root_attr=$3
source "$(dirname "$0")/../harness/e2e.sh"
field() { grep "\"type\": \"$2\"" "$1" | sed "s/.*\"$3\": \([^,}]*\).*/\1/"; }
# rows FILE: "iteration learning_rate skipped consumed_samples" per training line
rows() {
  paste <(field "$1" train iteration) <(field "$1" train learning_rate) \
    <(field "$1" train skipped_iterations) <(field "$1" train consumed_samples)
}
# the LR of step K under common's flags (--lr 3e-3, warmup 5, cosine to 0 at 30)
schedule='function lr_at(k) { return k <= 5 ? 3e-3 * k / 5 : 0.5 * (cos(3.14159265358979 * (k - 5) / 25) + 1) * 3e-3 }'
root_attr() { h5dump -a "$2" "$1" 2>/dev/null | sed -n 's/^ *(0): //p'; }
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { r = (a - b) / b; if (r < 0) r = -r; exit !(r <= t) }'; }

common=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 5
        --lr-decay-iters 30 --data-path synthetic:addition --log-interval 1 --seed 5
        --train-iters 30)

# --- dynamic scaling from 2^32
"$tessera" train "${common[@]}" --fp16 --metrics-file "$work/dyn.jsonl" >"$work/dyn.log"
scales=$(field "$work/dyn.jsonl" train loss_scale | tr '\n' ' ')
skipped=$(field "$work/dyn.jsonl" train skipped_iterations | paste -sd+ | bc)
nans=$(field "$work/dyn.jsonl" train nan_iterations | paste -sd+ | bc)
echo "  loss scales: $scales"
echo "  skipped $skipped, nan $nans; last loss $(losses "$work/dyn.jsonl" | tail -n 1)"
field "$work/dyn.jsonl" train loss_scale | head -n 2 | paste -s - |
  awk '{ exit !($1 / 4294967296 - 1 < 1e-7 && $1 / 4294967296 - 1 > -1e-7 && $2 / $1 == 0.5) }' &&
  [ "$skipped" -ge 5 ] && [ "$skipped" -lt 30 ] && [ "$nans" -eq 0 ]
check "dynamic scale: 2^32 kept at the first overflow (hysteresis 2), halved from the second; overflows skipped, not NaN" $?
losses "$work/dyn.jsonl" | tail -n 5 | awk '$1 + 0 == $1 && $1 < 2.8 { n++ } END { exit n != 5 }'
check "dynamic scale: once it fits, the loss is finite and falls" $?
grep -q "fp16: linear products through sgemm on fp16-rounded operands" "$work/dyn.log"
check "the log says what computes the fp16 products" $?

# --- what a skipped iteration advances
rows "$work/dyn.jsonl" | awk '$3 == 0 { print "  first update at iteration " $1 ", learning rate " $2; exit }'
rows "$work/dyn.jsonl" | awk '$3 == 0 { ok = $1 > 1 && $2 == 0.0006; exit } END { exit !ok }'
check "dynamic scale: the first update, after the skipped ones, logs the warmup's step-1 LR (6e-4)" $?
rows "$work/dyn.jsonl" | awk "$schedule"'
  { want = lr_at(updates + 1); r = ($2 - want) / want; if (r < 0) r = -r
    if (r > 1e-7 || $4 != 8 * $1) bad = 1; updates += $3 == 0 }
  END { exit bad || NR != 30 || updates == 30 }'
check "dynamic scale: every logged LR is the schedule's at the updates so far + 1; samples still advance" $?

"$tessera" train "${common[@]}" --fp16 --initial-loss-scale 1024 --loss-scale-window 5 \
  --train-iters 12 --metrics-file "$work/grow.jsonl" >/dev/null
[ "$(field "$work/grow.jsonl" train loss_scale | tr '\n' ' ')" = \
  "1024 1024 1024 1024 2048 2048 2048 2048 2048 4096 4096 4096 " ]
check "--loss-scale-window 5: the scale doubles after every 5 clean iterations" $?
"$tessera" train "${common[@]}" --fp16 --min-loss-scale 268435456 --train-iters 8 \
  --metrics-file "$work/floor.jsonl" >/dev/null
[ "$(field "$work/floor.jsonl" train loss_scale | sort -g | head -n 1)" = 268435456 ] &&
  [ "$(field "$work/floor.jsonl" train skipped_iterations | paste -sd+ | bc)" -eq 8 ]
check "--min-loss-scale 2^28: the scale stops there (and every iteration still overflows)" $?

# --- a constant scale against fp32
"$tessera" train "${common[@]}" --train-iters 20 --metrics-file "$work/fp32.jsonl" >/dev/null
"$tessera" train "${common[@]}" --train-iters 20 --fp16 --loss-scale 1024 \
  --metrics-file "$work/fp16.jsonl" >/dev/null
f1=$(losses "$work/fp32.jsonl" | head -n 1)
h1=$(losses "$work/fp16.jsonl" | head -n 1)
echo "  step-1 loss fp32 $f1, fp16 $h1"
close "$h1" "$f1" 1e-2 && [ "$h1" != "$f1" ] &&
  [ "$(field "$work/fp16.jsonl" train loss_scale | sort -u)" = 1024 ]
check "--loss-scale 1024: step-1 loss within 1e-2 of fp32, not equal; the scale stays" $?
within "$work/fp32.jsonl" "$work/fp16.jsonl" 1e-2 20
check "--loss-scale 1024: 20 losses within 1e-2 of fp32" $?

# --- layouts against 1 rank, in fp16
layout() { # NAME NP FLAGS...
  local name=$1 np=$2
  shift 2
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${common[@]}" --train-iters 20 --fp16 \
    --loss-scale 1024 "$@" --metrics-file "$work/l.jsonl" >/dev/null
  within "$work/fp16.jsonl" "$work/l.jsonl" 1e-3 20
  check "fp16 $name: 20 losses within 1e-3 of 1 rank" $?
}
layout "tp 2" 2 --tensor-model-parallel-size 2
layout "pp 2" 2 --pipeline-model-parallel-size 2
layout "dp 2 + distributed optimizer" 2 --use-distributed-optimizer
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --fp16 \
  --tensor-model-parallel-size 2 --metrics-file "$work/dyn2.jsonl" >/dev/null
cmp -s <(field "$work/dyn.jsonl" train skipped_iterations) \
  <(field "$work/dyn2.jsonl" train skipped_iterations) &&
  cmp -s <(field "$work/dyn.jsonl" train loss_scale) <(field "$work/dyn2.jsonl" train loss_scale)
check "tp 2, dynamic scale: the same iterations skipped, the same scales" $?

# --- resume in the middle of the halving
"$tessera" train "${common[@]}" --fp16 --train-iters 6 --save "$work/ck" \
  --metrics-file "$work/h1.jsonl" >/dev/null
"$tessera" train "${common[@]}" --fp16 --load "$work/ck" --metrics-file "$work/h2.jsonl" >/dev/null
cmp -s <(losses_by_iteration "$work/dyn.jsonl") \
  <(cat <(losses_by_iteration "$work/h1.jsonl") <(losses_by_iteration "$work/h2.jsonl")) &&
  cmp -s <(field "$work/dyn.jsonl" train loss_scale) \
    <(cat <(field "$work/h1.jsonl" train loss_scale) <(field "$work/h2.jsonl" train loss_scale))
check "fp16: 6 + save + load + 24 == 30 straight (losses and scales), bitwise" $?

# --- resume among the updates: the schedule's step is not the iteration
overflowed=$(rows "$work/dyn.jsonl" | head -n 16 | awk '{ n += $3 } END { print n }')
"$tessera" train "${common[@]}" --fp16 --train-iters 16 --save "$work/ck16" \
  --metrics-file "$work/u1.jsonl" >/dev/null
"$tessera" train "${common[@]}" --fp16 --load "$work/ck16" --metrics-file "$work/u2.jsonl" \
  >/dev/null
echo "  at iteration 16: overflow_iterations $(root_attr "$work/ck16/iter_0000016.h5" \
  overflow_iterations) ($overflowed skipped), adam_step $(root_attr "$work/ck16/iter_0000016.h5" adam_step)"
[ "$(root_attr "$work/ck16/iter_0000016.h5" overflow_iterations)" = "$overflowed" ] &&
  [ "$(root_attr "$work/ck16/iter_0000016.h5" adam_step)" = $((16 - overflowed)) ] &&
  [ "$overflowed" -lt 16 ] && rows "$work/u2.jsonl" | awk '$3 == 1 { n++ } END { exit !n }'
check "fp16: the checkpoint of iteration 16 holds the overflowed iterations and the updates (a skip still ahead)" $?
cmp -s <(losses_by_iteration "$work/dyn.jsonl") \
  <(cat <(losses_by_iteration "$work/u1.jsonl") <(losses_by_iteration "$work/u2.jsonl")) &&
  cmp -s <(rows "$work/dyn.jsonl" | cut -f 1-3) \
    <(cat <(rows "$work/u1.jsonl") <(rows "$work/u2.jsonl") | cut -f 1-3)
check "fp16: 16 + save + load + 14 == 30 straight (losses, LRs, skips), bitwise" $?
cp -r "$work/ck16" "$work/forged"
"$set_root_attr" "$work/forged/iter_0000016.h5" overflow_iterations 14
"$tessera" train "${common[@]}" --fp16 --load "$work/forged" >"$work/forged.log" 2>&1
[ $? -eq 2 ] && grep -q "is damaged: .*overflow_iterations 14" "$work/forged.log"
check "fp16: a checkpoint claiming 14 overflowed iterations beside 3 updates in 16: exit 2" $?
finish

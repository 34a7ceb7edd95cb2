#!/usr/bin/env bash
# moe_e2e.sh TESSERA MPIEXEC - mixture-of-experts layers, every expert on
# every rank (expert parallelism: moe_ep_e2e.sh), in the layouts they run in:
#   a LLaMA-style model (grouped queries) with 8 experts, top-2, a shared
#   expert, load-balancing and z-losses on layers 0 and 2 of 4, dropout on:
#   20-step loss curves of DP 2, DP 2 with the distributed optimizer, PP 2
#   (an MoE layer on each stage), PP 2 x DP 2 and full recomputation equal
#   the 1-rank curve within 1e-5 relative, and so does the logged
#   load-balancing loss (which the layout must not change, PP included);
#   --moe-router-pre-softmax and
#   seq_aux_loss change the curve (they are in force); with capacity
#   factor 1.0 (assignments dropped) DP 2 and PP 2 x DP 2 equal 1 rank
#   within 1e-5, and dropping by probability or by position each change
#   the curve; a checkpoint saved
#   at DP 2 resumes on 1 rank as the run that never moved (1e-6); TP
#   without SP is refused with one message, exit 2.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
source "$(dirname "$0")/moe_model.sh"
aux() { column moe_aux_loss "$1"; }
aux_within() { # a b: every step's balancing loss within 1e-5 relative
  paste <(aux "$1") <(aux "$2") | awk '
    NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > w) w = r; if (r > 1e-5) bad = 1 }
    END { printf "  worst relative balancing-loss difference %.3g\n", w; exit bad || NR != 20 }'
}


"$tessera" train "${model[@]}" --metrics-file "$work/one.jsonl" >/dev/null 2>&1
check "MoE model: 1-rank run" $?
layouts=("2 --data-parallel-size-unused"
         "2 --use-distributed-optimizer"
         "2 --pipeline-model-parallel-size 2"
         "4 --pipeline-model-parallel-size 2 --use-distributed-optimizer"
         "1 --recompute-granularity full --recompute-method uniform --recompute-num-layers 2")
for layout in "${layouts[@]}"; do
  read -r np flags <<<"$layout"
  flags=${flags/--data-parallel-size-unused/}
  # shellcheck disable=SC2086
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${model[@]}" $flags \
    --metrics-file "$work/run.jsonl" >/dev/null 2>&1
  within "$work/one.jsonl" "$work/run.jsonl" 1e-5 20 && aux_within "$work/one.jsonl" "$work/run.jsonl"
  check "MoE, $np ranks ${flags:-(data parallel)}: 20 losses and balancing losses equal 1 rank within 1e-5" $?
done

for variant in --moe-router-pre-softmax "--moe-router-load-balancing-type seq_aux_loss"; do
  # shellcheck disable=SC2086
  "$tessera" train "${model[@]}" $variant --metrics-file "$work/v.jsonl" >/dev/null 2>&1
  ! within "$work/one.jsonl" "$work/v.jsonl" 1e-5 20 >/dev/null
  check "MoE: $variant changes the loss curve" $?
done

cap=(--moe-expert-capacity-factor 1.0)
"$tessera" train "${model[@]}" "${cap[@]}" --metrics-file "$work/cap1.jsonl" >/dev/null 2>&1
! within "$work/one.jsonl" "$work/cap1.jsonl" 1e-5 20 >/dev/null
check "MoE: capacity factor 1.0 drops assignments (the curve changes)" $?
for layout in "2 " "4 --pipeline-model-parallel-size 2"; do
  read -r np flags <<<"$layout"
  # shellcheck disable=SC2086
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${model[@]}" "${cap[@]}" $flags \
    --metrics-file "$work/capn.jsonl" >/dev/null 2>&1
  within "$work/cap1.jsonl" "$work/capn.jsonl" 1e-5 20
  check "MoE with dropping, $np ranks ${flags:-(data parallel)}: 20 losses equal 1 rank within 1e-5" $?
done
"$tessera" train "${model[@]}" "${cap[@]}" --moe-token-drop-policy position \
  --metrics-file "$work/cappos.jsonl" >/dev/null 2>&1
! within "$work/cap1.jsonl" "$work/cappos.jsonl" 1e-5 20 >/dev/null
check "MoE: dropping by position keeps other assignments than by probability" $?

"$mpiexec" -np 2 --oversubscribe "$tessera" train "${model[@]}" --exit-interval 10 \
  --save "$work/ck" >/dev/null 2>&1
"$tessera" train "${model[@]}" --load "$work/ck" --metrics-file "$work/resumed.jsonl" >/dev/null 2>&1
paste <(losses "$work/one.jsonl" | tail -n 10) <(losses "$work/resumed.jsonl") | awk '
  NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > 1e-6) bad = 1 } END { exit bad || NR != 10 }'
check "MoE: saved at DP 2 after 10 steps, resumed on 1 rank: the last 10 losses (1e-6)" $?
h5ls "$work/ck/iter_0000010.h5/model" | grep -q "layers.0.mlp.experts.linear_fc1.weight" &&
  ! h5ls "$work/ck/iter_0000010.h5/model" | grep -q "layers.1.mlp.experts"
check "the checkpoint holds experts on layers 0 and 2, a dense MLP on 1 and 3" $?
h5ls "$work/ck/iter_0000010.h5/model/decoder.layers.2.mlp.experts.linear_fc1.weight" |
  grep -q "{8, 96, 64}" &&
  h5ls "$work/ck/iter_0000010.h5/optimizer/exp_avg/decoder.layers.2.mlp.experts.linear_fc2.weight" |
  grep -q "{8, 64, 48}"
check "experts are stored at (experts, rows, cols): fc1 {8, 96, 64}, fc2 moments {8, 64, 48}" $?
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${model[@]}" --exit-interval 10 \
  --use-distributed-optimizer --save "$work/ckd" >/dev/null 2>&1
"$tessera" train "${model[@]}" --load "$work/ckd" --metrics-file "$work/resumed2.jsonl" >/dev/null 2>&1
paste <(losses "$work/one.jsonl" | tail -n 10) <(losses "$work/resumed2.jsonl") | awk '
  NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > 1e-6) bad = 1 } END { exit bad || NR != 10 }'
check "MoE: saved sharded (DP 2, distributed optimizer), resumed on 1 rank (1e-6)" $?

"$mpiexec" -np 2 --oversubscribe "$tessera" train "${model[@]}" --tensor-model-parallel-size 2 \
  >"$work/tp.out" 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c 'need --sequence-parallel' "$work/tp.out")" -eq 1 ]
check "MoE under TP without SP: refused (exit $rc), one message" $?
finish

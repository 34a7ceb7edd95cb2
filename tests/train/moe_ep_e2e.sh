#!/usr/bin/env bash
# moe_ep_e2e.sh TESSERA MPIEXEC - expert parallelism: the MoE model of
# moe_e2e.sh (8 experts, top-2, a shared expert, balancing and z-losses,
# grouped queries, dropout) with its experts split over
# --expert-model-parallel-size ranks:
#   20-step loss curves, gradient norms and balancing losses of EP 2, EP 4,
#   EP 2 x DP 2, PP 2 x EP 2, TP 2 with SP, TP 2 x EP 2 with SP,
#   TP 2 x PP 2 x EP 2 with SP (8 ranks), the last three again with the
#   experts cut over tp (--expert-tensor-parallel-size 2) and EP 2 under full
#   recomputation, each with and without the distributed optimizer, equal
#   the 1-rank run within 1e-5 relative;
#   the expert load EP 2 reports (the ranks' shares of an even routing
#   sum to 2; the busiest of each exchange at least the run's busiest;
#   padded to capacity, every rank as busy in every exchange);
#   with capacity factor 1.0 (assignments dropped) EP 2, EP 4,
#   PP 2 x EP 2, TP 2 with SP and TP 2 x EP 2 with SP (experts whole or cut
#   over tp) equal 1 rank within 1e-5 (drops are decided over each micro batch before dispatch, so the
#   layout cannot change them); padding each expert's input to its
#   capacity changes nothing (1 rank, EP 2, EP 4, TP 2 x EP 2 with SP, with
#   experts whole or cut over tp) and
#   drops the count exchange; the allgather dispatcher gives the same
#   curves (EP 2, EP 4, EP 2 x DP 2 with the distributed optimizer,
#   PP 2 x EP 2, TP 2 x EP 2 with SP, experts whole or cut over tp;
#   dropping at EP 2 and TP 2 x EP 2);
#   a checkpoint saved at EP 4 (plain and sharded) holds all 8 experts of
#   each MoE layer, each different, equal to the 1-rank run's at the same
#   step (1e-5 absolute: Adam magnifies last-bit gradient differences of
#   rarely routed rows), and continues on 1 rank, EP 2, EP 2 x DP 2 with the
#   distributed optimizer, PP 2 x EP 2 and TP 2 x EP 2 with SP (experts
#   whole or cut over tp) as the run that never moved (1e-6);
#   LoRA on an MoE base (experts frozen) at EP 2 and at TP 2 x EP 2 with
#   the experts cut and the distributed optimizer equals 1 rank (1e-5),
#   and the frozen experts are saved unchanged;
#   MoE under TP without SP, experts cut over a size other than 1 or TP,
#   expert parallelism of a
#   dense model or of experts it does not divide are refused (exit 2).
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
source "$(dirname "$0")/moe_model.sh"
same_column() { # name a b: every step within 1e-5 relative
  paste <(column "$1" "$2") <(column "$1" "$3") | awk -v name="$1" '
    NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > w) w = r; if (r > 1e-5) bad = 1 }
    END { printf "  worst relative %s difference %.3g\n", name, w; exit bad || NR != 20 }'
}
last10() { # a b: the last 10 losses of a against the 10 of b within 1e-6
  paste <(losses "$1" | tail -n 10) <(losses "$2") | awk '
    NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > w) w = r; if (r > 1e-6) bad = 1 }
    END { printf "  worst relative loss difference %.3g\n", w; exit bad || NR != 10 }'
}

run() { # np output flags...
  local np=$1 out=$2
  shift 2
  rm -f "$out"
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${model[@]}" "$@" \
    --metrics-file "$out" >"$work/run.out" 2>&1
}

"$tessera" train "${model[@]}" --metrics-file "$work/one.jsonl" --exit-interval 10 \
  --save "$work/ck1" >/dev/null 2>&1
"$tessera" train "${model[@]}" --metrics-file "$work/one.jsonl" >/dev/null 2>&1
check "MoE model: 1-rank run" $?
sp="--tensor-model-parallel-size 2 --sequence-parallel"
etp="$sp --expert-tensor-parallel-size 2"
layouts=("2 --expert-model-parallel-size 2"
         "4 --expert-model-parallel-size 4"
         "4 --expert-model-parallel-size 2"
         "4 --expert-model-parallel-size 2 --pipeline-model-parallel-size 2"
         "2 $sp"
         "4 --expert-model-parallel-size 2 $sp"
         "8 --expert-model-parallel-size 2 --pipeline-model-parallel-size 2 $sp"
         "2 $etp"
         "4 --expert-model-parallel-size 2 $etp"
         "8 --expert-model-parallel-size 2 --pipeline-model-parallel-size 2 $etp"
         "2 --expert-model-parallel-size 2 --recompute-granularity full --recompute-method uniform --recompute-num-layers 2")
for layout in "${layouts[@]}"; do
  for optimizer in "" --use-distributed-optimizer; do
    read -r np flags <<<"$layout"
    # shellcheck disable=SC2086
    run "$np" "$work/run.jsonl" $flags $optimizer
    within "$work/one.jsonl" "$work/run.jsonl" 1e-5 20 &&
      same_column grad_norm "$work/one.jsonl" "$work/run.jsonl" &&
      same_column moe_aux_loss "$work/one.jsonl" "$work/run.jsonl"
    check "$np ranks $flags ${optimizer}: 20 losses, gradient norms and balancing losses equal 1 rank (1e-5)" $?
  done
done

# the expert load the run reports (its "expert_load" line): at EP 2 every
# assignment is computed on one of the two ranks, so their shares of an
# even routing sum to 2 (to the 6 digits printed); each exchange waits for
# its busiest rank, so the share at the busiest of each exchange is at
# least the run's busiest
load_of() { grep '"type": "expert_load"' "$1" | sed "s/.*\"$2\": \([^,}]*\).*/\1/"; }
run 2 "$work/load.jsonl" --expert-model-parallel-size 2
awk -v x="$(load_of "$work/load.jsonl" exchange)" -v n="$(load_of "$work/load.jsonl" exchanges)" \
  -v b="$(load_of "$work/load.jsonl" busiest)" -v l="$(load_of "$work/load.jsonl" least_busy)" '
  BEGIN { printf "  exchange %s over %s, busiest %s, least %s\n", x, n, b, l
          s = b + l - 2; if (s < 0) s = -s
          exit !(n == 80 && s < 1e-5 && b >= 1 && x >= b && x < 2) }'
check "EP 2: the expert load (2 MoE layers x 2 micro batches x 20 steps exchanges; the two shares sum to 2; the busiest of each exchange at least the run's busiest)" $?

cap=(--moe-expert-capacity-factor 1.0)
"$tessera" train "${model[@]}" "${cap[@]}" --metrics-file "$work/cap1.jsonl" >/dev/null 2>&1
! within "$work/one.jsonl" "$work/cap1.jsonl" 1e-5 20 >/dev/null
check "capacity factor 1.0 drops assignments (the curve changes)" $?
for layout in "2 --expert-model-parallel-size 2" "4 --expert-model-parallel-size 4" \
  "4 --expert-model-parallel-size 2 --pipeline-model-parallel-size 2" "2 $sp" \
  "4 --expert-model-parallel-size 2 $sp" "4 --expert-model-parallel-size 2 $etp"; do
  read -r np flags <<<"$layout"
  # shellcheck disable=SC2086
  run "$np" "$work/capn.jsonl" "${cap[@]}" $flags
  within "$work/cap1.jsonl" "$work/capn.jsonl" 1e-5 20
  check "with dropping, $np ranks ${flags}: 20 losses equal 1 rank (1e-5)" $?
done

for layout in "1 " "2 --expert-model-parallel-size 2" "4 --expert-model-parallel-size 4" \
  "4 --expert-model-parallel-size 2 $sp" "4 --expert-model-parallel-size 2 $etp"; do
  read -r np flags <<<"$layout"
  # shellcheck disable=SC2086
  run "$np" "$work/pad.jsonl" "${cap[@]}" --moe-pad-expert-input-to-capacity $flags
  within "$work/cap1.jsonl" "$work/pad.jsonl" 1e-5 20 &&
    ! grep -q '"group": "ep", "kind": "alltoall"' "$work/pad.jsonl" &&
    { [ "$np" = 1 ] || [ "$(load_of "$work/pad.jsonl" exchange)" = \
      "$(load_of "$work/pad.jsonl" least_busy)" ]; }
  check "padded to capacity, $np rank(s) ${flags}: 20 losses as unpadded (1e-5), no count exchange, every rank as busy in every exchange" $?
done

ag=(--moe-token-dispatcher-type allgather)
for layout in "2 --expert-model-parallel-size 2" "4 --expert-model-parallel-size 4" \
  "4 --expert-model-parallel-size 2 --use-distributed-optimizer" \
  "4 --expert-model-parallel-size 2 --pipeline-model-parallel-size 2" \
  "4 --expert-model-parallel-size 2 $sp" "4 --expert-model-parallel-size 2 $etp"; do
  read -r np flags <<<"$layout"
  # shellcheck disable=SC2086
  run "$np" "$work/ag.jsonl" "${ag[@]}" $flags
  within "$work/one.jsonl" "$work/ag.jsonl" 1e-5 20 &&
    grep -q '"group": "ep", "kind": "allgather"' "$work/ag.jsonl" &&
    ! grep -q '"group": "ep", "kind": "alltoallv"' "$work/ag.jsonl"
  check "allgather dispatcher, $np ranks ${flags}: 20 losses equal 1 rank (1e-5)" $?
done
for layout in "2 --expert-model-parallel-size 2" "4 --expert-model-parallel-size 2 $sp"; do
  read -r np flags <<<"$layout"
  # shellcheck disable=SC2086
  run "$np" "$work/ag.jsonl" "${ag[@]}" "${cap[@]}" $flags
  within "$work/cap1.jsonl" "$work/ag.jsonl" 1e-5 20
  check "allgather dispatcher with dropping, $np ranks ${flags}: 20 losses equal 1 rank (1e-5)" $?
done

for optimizer in "" --use-distributed-optimizer; do
  ck="$work/ck4$optimizer"
  # shellcheck disable=SC2086
  run 4 "$work/save.jsonl" --expert-model-parallel-size 4 --exit-interval 10 --save "$ck" $optimizer
  file="$ck/iter_0000010.h5"
  ok=0
  for layer in 0 2; do
    for w in linear_fc1 linear_fc2; do
      set="/model/decoder.layers.$layer.mlp.experts.$w.weight"
      firsts=$(for e in 0 1 2 3 4 5 6 7; do
        h5dump -A 0 -d "$set" -s "$e,0,0" -c "1,1,1" "$file" | sed -n 's/^ *([0-9,]*): //p'
      done | sort -u | wc -l)
      [ "$firsts" -eq 8 ] || ok=1
      # the data only: the checksum attributes differ in their last bits
      [ "$(h5diff -r -d 1e-5 "$work/ck1/iter_0000010.h5" "$file" "$set" | sed -n 2p)" = \
        "0 differences found" ] || ok=1
    done
  done
  check "saved at EP 4 ${optimizer}: every layer's 8 experts written, each different, equal to 1 rank's (1e-5 absolute)" $ok
  for layout in "1 " "2 --expert-model-parallel-size 2" \
    "4 --expert-model-parallel-size 2 --use-distributed-optimizer" \
    "4 --expert-model-parallel-size 2 --pipeline-model-parallel-size 2" \
    "4 --expert-model-parallel-size 2 $sp" "4 --expert-model-parallel-size 2 $etp"; do
    read -r np flags <<<"$layout"
    # shellcheck disable=SC2086
    run "$np" "$work/resumed.jsonl" $flags --load "$ck"
    last10 "$work/one.jsonl" "$work/resumed.jsonl"
    check "saved at EP 4 ${optimizer}, continued on $np rank(s) ${flags}: the last 10 losses (1e-6)" $?
  done
done

# LoRA on the 10-step base: the experts frozen, held apart from the trained
lora=(--lora-rank 4 --pretrained-checkpoint "$work/ck1" --finetune)
run 1 "$work/lora1.jsonl" "${lora[@]}"
for layout in "2 --expert-model-parallel-size 2" \
  "4 --expert-model-parallel-size 2 $etp --use-distributed-optimizer"; do
  read -r np flags <<<"$layout"
  rm -rf "$work/lck"
  # shellcheck disable=SC2086
  run "$np" "$work/lora.jsonl" "${lora[@]}" $flags --save "$work/lck"
  ok=0
  within "$work/lora1.jsonl" "$work/lora.jsonl" 1e-5 20 || ok=1
  for w in linear_fc1 linear_fc2; do
    [ "$(h5diff -r -d 0 "$work/ck1/iter_0000010.h5" "$work/lck/iter_0000020.h5" \
      "/model/decoder.layers.2.mlp.experts.$w.weight" | sed -n 2p)" = "0 differences found" ] || ok=1
  done
  check "LoRA on the MoE base, $np ranks ${flags}: 20 losses equal 1 rank (1e-5), frozen experts saved unchanged" $ok
done

refused "MoE under TP without SP" "need --sequence-parallel" \
  "$mpiexec" -np 4 --oversubscribe "$tessera" train "${model[@]}" \
  --expert-model-parallel-size 2 --tensor-model-parallel-size 2
refused "experts cut over another size than TP" "give 1 (experts whole on every" \
  "$mpiexec" -np 4 --oversubscribe "$tessera" train "${model[@]}" \
  --expert-model-parallel-size 2 $sp --expert-tensor-parallel-size 4
refused "expert parallelism of a dense model" "needs a mixture-of-experts model" \
  "$mpiexec" -np 2 --oversubscribe "$tessera" train --num-layers 2 --hidden-size 64 \
  --num-attention-heads 4 --seq-length 32 --data-path synthetic:addition:2 \
  --expert-model-parallel-size 2
refused "more expert-parallel ranks than experts divide" "not divisible by --expert-model-parallel-size" \
  "$mpiexec" -np 4 --oversubscribe "$tessera" train "${model[@]}" --num-experts 6 \
  --expert-model-parallel-size 4
finish

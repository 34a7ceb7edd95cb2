#!/usr/bin/env bash
# plan_e2e.sh TESSERA MPIEXEC - `tessera plan`:
#   for a 4-layer model on 4 devices it lists the 26 layouts the model
#   takes (TP x PP x DP with sequence parallelism, the distributed
#   optimizer and full recomputation); for three of them the memory it
#   gives for stage 0 is, to the printed 0.01 MiB, the memory plan rank 0
#   of a real 4-rank `tessera train` of that layout logs (both with one
#   thread per rank); the pipeline bubble it prints, from simulating the
#   schedule training runs, is 1F1B's (p-1)/(m+p-1): 20.0% for PP 2 and
#   42.9% for PP 4 with 4 micro batches; no layout fitting --device-memory, and --gpus no
#   layout takes, exit 2 with one message, as does a plan under mpirun.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"

model=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32
       --micro-batch-size 2 --global-batch-size 8 --data-path synthetic:addition:2)
"$tessera" plan --gpus 4 --threads-per-device 1 "${model[@]}" >"$work/plan.out" 2>&1
check "plan --gpus 4 runs" $?
grep -q "^26 layouts of 4 devices" "$work/plan.out"
check "it lists 26 layouts ($(head -n 1 "$work/plan.out" | cut -c1-60))" $?

# TP PP DP SP DOPT RC, and the train flags of that layout
cases=("2 2 1 - - -|--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2"
       "1 1 4 - on -|--use-distributed-optimizer"
       "4 1 1 on - full|--tensor-model-parallel-size 4 --sequence-parallel --recompute-granularity full --recompute-method uniform --recompute-num-layers 1")
for c in "${cases[@]}"; do
  key=${c%%|*}
  flags=${c#*|}
  read -r tp pp dp sp dopt rc <<<"$key"
  planned=$(awk -v tp="$tp" -v pp="$pp" -v dp="$dp" -v sp="$sp" -v d="$dopt" -v rc="$rc" \
    '$1 == tp && $2 == pp && $3 == dp && $4 == sp && $5 == d && $6 == rc { print $NF }' "$work/plan.out")
  # shellcheck disable=SC2086
  "$mpiexec" -np 4 --oversubscribe "$tessera" train "${model[@]}" $flags --train-iters 1 \
    --bind none >"$work/train.out" 2>&1
  logged=$(grep "memory plan: total" "$work/train.out" | awk '{ print $(NF-1) }')
  echo "  TP $tp PP $pp DP $dp SP $sp DOPT $dopt RC $rc: planned $planned MiB, the run's plan $logged MiB"
  [ -n "$planned" ] && [ "$planned" = "$logged" ]
  check "TP $tp x PP $pp x DP $dp (SP $sp, DOPT $dopt, RC $rc): planned = the run's memory plan" $?
done

awk '$1 == 2 && $2 == 2 && $3 == 1 { if ($14 != "20.0%") bad = 1; n++ }
     $1 == 1 && $2 == 4 { if ($14 != "42.9%") bad = 1; n++ }
     $2 == 1 && $14 != "-" { bad = 1 }
     END { exit bad || n == 0 }' "$work/plan.out"
check "bubbles: PP 2 20.0%, PP 4 42.9% (1F1B, 4 micro batches), none without a pipeline" $?

refused "no layout fits the device memory" "no layout fits --device-memory 1e-06 GiB" \
  "$tessera" plan --gpus 4 "${model[@]}" --device-memory 0.000001
refused "devices no layout takes" "no layout of 3 devices takes this model" \
  "$tessera" plan --gpus 3 "${model[@]}"
refused "--gpus not a number" "--gpus x: give a positive whole number of devices" \
  "$tessera" plan --gpus x "${model[@]}"
refused "no --gpus" "give --gpus N" "$tessera" plan "${model[@]}"
refused "under mpirun" "runs as one process" \
  "$mpiexec" -np 2 --oversubscribe "$tessera" plan --gpus 4 "${model[@]}"
finish

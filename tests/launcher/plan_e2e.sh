#!/usr/bin/env bash
# plan_e2e.sh TESSERA MPIEXEC - `tessera plan`:
#   for a 4-layer model on 4 devices it lists the 58 layouts the model
#   takes (TP x CP x PP x DP, virtual pipeline stages, with sequence
#   parallelism, the distributed optimizer and full recomputation), a
#   context-parallel rank's activations a cp share of the sequence's; an MoE
#   model adds EP layouts, each holding fewer parameters, and
#   --vary-micro-batch the micro batches 1 to 8; for three of them the memory it
#   gives for stage 0 is, to the printed 0.01 MiB, the memory plan rank 0
#   of a real 4-rank `tessera train` of that layout logs (both with one
#   thread per rank); the pipeline bubble it prints, from simulating the
#   schedule training runs, is 1F1B's (p-1)/(m+p-1): 20.0% for PP 2 and
#   42.9% for PP 4 with 4 micro batches; with --cluster dgx-a100 every layout
#   gets a predicted iteration time, fastest first; `tessera calibrate`
#   under mpirun measures this machine into a file that `tessera train
#   --cluster` reads, logging the predicted and the measured iteration time
#   and their ratio (also in --metrics-file); a bad cluster file, an unknown
#   cluster, no layout fitting --device-memory, and --gpus no layout takes,
#   exit 2 with one message, as does a plan under mpirun.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"

model=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32
       --micro-batch-size 2 --global-batch-size 8 --data-path synthetic:addition:2)
"$tessera" plan --gpus 4 --threads-per-device 1 "${model[@]}" >"$work/plan.out" 2>&1
check "plan --gpus 4 runs" $?
grep -q "^58 layouts of 4 devices" "$work/plan.out"
check "it lists 58 layouts ($(head -n 1 "$work/plan.out" | cut -c1-60))" $?
layouts=58
# context parallelism (planned, not trained here): a rank holds T / cp of
# each sequence, so TP 1 x PP 1 activations halve with CP 2 and quarter with CP 4
awk '$1 == 1 && $3 == 1 && $6 == 1 && $8 == "-" && $9 == "-" && $10 == "-" { a[$2] = $14 }
     function near(x, y) { return y / x > 0.999 && y / x < 1.001 }
     END { exit !(near(a[1], 2 * a[2]) && near(a[1], 4 * a[4])) }' "$work/plan.out"
check "CP 2 and CP 4 hold half and a quarter of CP 1's activations" $?

# TP PP DP SP DOPT RC, and the train flags of that layout
cases=("2 2 1 - - -|--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2"
       "1 1 4 - on -|--use-distributed-optimizer"
       "4 1 1 on - full|--tensor-model-parallel-size 4 --sequence-parallel --recompute-granularity full --recompute-method uniform --recompute-num-layers 1")
for c in "${cases[@]}"; do
  key=${c%%|*}
  flags=${c#*|}
  read -r tp pp dp sp dopt rc <<<"$key"
  planned=$(awk -v tp="$tp" -v pp="$pp" -v dp="$dp" -v sp="$sp" -v d="$dopt" -v rc="$rc" \
    '$1 == tp && $3 == pp && $4 == dp && $5 == 1 && $6 == 1 && $8 == sp && $9 == d && $10 == rc {
       print $NF }' "$work/plan.out")
  # shellcheck disable=SC2086
  "$mpiexec" -np 4 --oversubscribe "$tessera" train "${model[@]}" $flags --train-iters 1 \
    --bind none >"$work/train.out" 2>&1
  logged=$(grep "memory plan: total" "$work/train.out" | awk '{ print $(NF-1) }')
  echo "  TP $tp PP $pp DP $dp SP $sp DOPT $dopt RC $rc: planned $planned MiB, the run's plan $logged MiB"
  [ -n "$planned" ] && [ "$planned" = "$logged" ]
  check "TP $tp x PP $pp x DP $dp (SP $sp, DOPT $dopt, RC $rc): planned = the run's memory plan" $?
done

awk '$1 == 2 && $3 == 2 && $4 == 1 && $6 == 1 { if ($18 != "20.0%") bad = 1; n++ }
     $1 == 1 && $3 == 4 && $6 == 1 { if ($18 != "42.9%") bad = 1; n++ }
     $1 == 2 && $3 == 2 && $6 == 2 { if (!($18 + 0 < 20.0)) bad = 1; v++ }
     $3 == 1 && $1 ~ /^[0-9]+$/ && $18 != "-" { bad = 1 }
     END { exit bad || n == 0 || v == 0 }' "$work/plan.out"
check "bubbles: PP 2 20.0%, PP 4 42.9% (1F1B, 4 micro batches), less interleaved (VPP 2), none without a pipeline" $?

# expert parallelism and the micro batch
"$tessera" plan --gpus 4 --threads-per-device 1 "${model[@]}" --num-experts 4 \
  --moe-router-topk 2 >"$work/moe.out" 2>&1
awk '$1 == 1 && $3 == 1 && $4 == 4 && $6 == 1 && $8 == "-" && $9 == "-" && $10 == "-" {
       p[$5] = $11 }
     END { exit !(p[1] > p[2] && p[2] > p[4]) }' "$work/moe.out"
check "an MoE model on 4 devices: EP 1, 2, 4 layouts, fewer parameters per device with more EP" $?
"$tessera" plan --gpus 4 --threads-per-device 1 --vary-micro-batch "${model[@]}" \
  >"$work/mbs.out" 2>&1
awk '$1 ~ /^[0-9]+$/ { seen[$7] = 1 } END { exit !(seen[1] && seen[2] && seen[4] && seen[8]) }' \
  "$work/mbs.out" && [ "$(head -n 1 "$work/mbs.out" | cut -d' ' -f1)" -gt "$layouts" ]
check "--vary-micro-batch adds micro batches 1, 2, 4, 8 ($(head -n 1 "$work/mbs.out" | cut -c1-40))" $?

# the time model: on a preset every layout gets a predicted time, fastest first
"$tessera" plan --gpus 4 --threads-per-device 1 --cluster dgx-a100 "${model[@]}" \
  >"$work/timed.out" 2>&1
check "plan --cluster dgx-a100 runs" $?
sed -n '/^predicted iteration time/,$p' "$work/timed.out" | awk '
  $1 ~ /^[0-9]+$/ { n++; if ($11 + 0 < last) bad = 1; last = $11 + 0; if (!($11 > 0)) bad = 1 }
  END { exit bad || n != '"$layouts"' }'
check "$layouts layouts with a positive predicted time, fastest first" $?
sed -n '/^predicted iteration time/,$p' "$work/timed.out" | awk '
  $1 ~ /^[0-9]+$/ { for (i = 11; i <= NF; i++) if (!($i >= 0 && $i < 1e6)) bad = 1 }
  END { exit bad }'
check "every term of every layout is a number from 0 to 1e6 ms (no uninitialised input)" $?

# Megatron's mixed precision on a GPU: the fp32 plan's categories converted,
# the time of 2-byte activations and messages
"$tessera" plan --gpus 4 --threads-per-device 1 --cluster dgx-a100 --precision bf16 \
  "${model[@]}" >"$work/bf16.out" 2>&1
check "plan --precision bf16 runs ($(head -n 1 "$work/bf16.out" | cut -c60-140))" $?
row='$1 == 2 && $3 == 2 && $4 == 1 && $6 == 1 && $8 == "-" && $9 == "-" && $10 == "-"'
paste <(awk "$row"' { print $11, $12, $13, $14; exit }' "$work/plan.out") \
      <(awk "$row"' { print $11, $12, $13, $14; exit }' "$work/bf16.out") |
  awk 'function near(x, y) { return x > 0 && y / x > 0.95 * r && y / x < 1.05 * r }
       { r = 0.5; a = near($1, $5); r = 1.0; b = near($2, $6); r = 1.5; c = near($3, $7)
         r = 0.5; d = near($4, $8); exit !(a && b && c && d) }'
check "bf16 memory of TP 2 x PP 2: weights and activations halved, fp32 gradients, optimizer + fp32 master" $?
fp32_ms=$(sed -n '/^predicted iteration time/,$p' "$work/timed.out" | awk "$row"' { print $11; exit }')
bf16_ms=$(sed -n '/^predicted iteration time/,$p' "$work/bf16.out" | awk "$row"' { print $11; exit }')
awk -v a="$fp32_ms" -v b="$bf16_ms" 'BEGIN { exit !(b > 0 && b < a) }'
check "bf16 predicts TP 2 x PP 2 faster than fp32 ($bf16_ms vs $fp32_ms ms)" $?

# calibrate this machine, then train with the prediction beside the measurement
OMP_NUM_THREADS=1 "$mpiexec" -np 2 --oversubscribe "$tessera" calibrate --out "$work/local.json" \
  >"$work/cal.out" 2>&1 && grep -q "(measured)" "$work/cal.out" &&
  grep -q '"intra_node_bandwidth"' "$work/local.json" &&
  grep -q '"allreduce_busbw"' "$work/local.json" && grep -q '"gemm_by_threads"' "$work/local.json"
check "calibrate under mpirun measures GEMM by threads, memory and the links by size ($(tail -n 1 "$work/cal.out" | cut -c1-70))" $?
OMP_NUM_THREADS=1 "$mpiexec" -np 2 --oversubscribe "$tessera" train "${model[@]}" --train-iters 6 \
  --pipeline-model-parallel-size 2 --cluster "$work/local.json" --log-interval 6 \
  --metrics-file "$work/pred.jsonl" >"$work/pred.out" 2>&1
grep -q "predicted iteration" "$work/pred.out" && grep -q "measured / predicted" "$work/pred.out" &&
  grep '"type": "prediction"' "$work/pred.jsonl" | sed 's/.*"ratio": \([^,]*\),.*/\1/' |
  awk '{ exit !($1 > 0.2 && $1 < 5) }'
check "train --cluster logs predicted and measured iteration time, and their ratio ($(grep -o 'measured / predicted [0-9.]*' "$work/pred.out"))" $?
echo '{"name": "broken", "gemm_flops": 1e9}' >"$work/broken.json"
refused "a cluster file missing a rate" "\"memory_bandwidth\" is missing" \
  "$tessera" train "${model[@]}" --cluster "$work/broken.json"
refused "an unknown cluster" "no such preset or file" \
  "$tessera" plan --gpus 4 "${model[@]}" --cluster nope

refused "no layout fits the device memory" "no layout fits --device-memory 1e-06 GiB" \
  "$tessera" plan --gpus 4 "${model[@]}" --device-memory 0.000001
refused "devices no layout takes" "no layout of 3 devices takes this model" \
  "$tessera" plan --gpus 3 "${model[@]}"
refused "--gpus not a number" "--gpus x: give a positive whole number of devices" \
  "$tessera" plan --gpus x "${model[@]}"
refused "no --gpus" "give --gpus N" "$tessera" plan "${model[@]}"
refused "an unknown precision" "--precision bf8: give fp32" \
  "$tessera" plan --gpus 4 "${model[@]}" --precision bf8
refused "under mpirun" "runs as one process" \
  "$mpiexec" -np 2 --oversubscribe "$tessera" plan --gpus 4 "${model[@]}"
finish

#!/usr/bin/env bash
# bf16_e2e.sh TESSERA MPIEXEC - --bf16 training (bf16 products, fp32
# accumulation, fp32 master weights), on oneDNN's bf16 matmul or, on a CPU
# it has none for, on sgemm over bf16-rounded operands (the log says which):
#   1 rank: the step-1 loss within 1e-2 relative of fp32, yet not equal
#   to it (the products really are bf16); the plan holds 2-byte weights
#   and an fp32 view of only the weights read in fp32 (positions, norms,
#   biases: parameters 0.5-0.65 x fp32's for this small model, whose
#   view is a few pages) and the fp32 master beside the moments (optimizer
#   state 1.5 x fp32's); under the distributed optimizer over 2 ranks the
#   master is sharded with the moments (optimizer state 0.5 x 1 rank's)
#   and the all-gather after each step moves the bf16 weights (half the
#   bytes of fp32's)
#   addition demo: answer accuracy at iterations 100-400 within 0.02 of
#   fp32's (the plateau; when each run leaves it is chaotic: docs/training.md)
#   TP 2, TP 2 + SP, PP 2, DP 2, DP 2 + distributed optimizer, TP 2 x PP 2,
#   interleaved PP 2 x DP 2: every loss of 20 steps within 1e-3 relative
#   of the 1-rank bf16 run
#   saved activations in 16 bits (bf16 and fp16), the residual stream
#   too: the plan's activations 0.5-0.55 of fp32's; full recomputation
#   (uniform, block) bitwise equal to none; --fp32-residual-connection
#   holds the stream in fp32 (the plan's activations grow by half of its
#   fp32 size, the losses differ); PP 2 sends the stream in half the
#   bytes of --fp32-residual-connection's
#   --grad-reduce-in-bf16 (all-reduce, and reduce-scatter in buckets
#   overlapped with backward): 20 losses within 1e-2 of 1 rank, half the
#   reduction bytes
#   checkpoints hold the fp32 master: bf16 10 + save + load + 10 equals 20
#   straight bitwise; fp32 continues a bf16 checkpoint and bf16 an fp32
#   one (step-11 loss within 1e-2 of the run that wrote it); the sharded
#   master of DP 2 + distributed optimizer saved and loaded on 1 rank, and
#   a 1-rank checkpoint loaded into it: 10 + 10 within 1e-3 of 20 straight
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
field() { grep "\"type\": \"$2\"" "$1" | sed "s/.*\"$3\": \([^,}]*\).*/\1/"; }
plan_mib() { grep "memory plan: $2" "$1" | head -n 1 | awk '{print $(NF-1)}'; }
params_mib() { plan_mib "$1" parameters; }
ratio_in() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" -v lo="$3" -v hi="$4" 'BEGIN { r = a / b; exit !(r >= lo && r <= hi) }'; }
close() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { r = (a - b) / b; if (r < 0) r = -r; exit !(r <= t) }'; }

common=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 5 --lr-decay-iters 20
        --data-path synthetic:addition --log-interval 1 --seed 5 --train-iters 20)

# --- 1 rank against fp32
"$tessera" train "${common[@]}" --metrics-file "$work/fp32.jsonl" >"$work/fp32.log"
"$tessera" train "${common[@]}" --bf16 --metrics-file "$work/bf16.jsonl" >"$work/bf16.log"
f1=$(losses "$work/fp32.jsonl" | head -n 1)
b1=$(losses "$work/bf16.jsonl" | head -n 1)
echo "  step-1 loss fp32 $f1, bf16 $b1"
close "$b1" "$f1" 1e-2 && [ "$b1" != "$f1" ]
check "1 rank: bf16 step-1 loss within 1e-2 of fp32 and not equal to it" $?
engine=$(grep -o "bf16: linear products through [^,]*" "$work/bf16.log")
echo "  $engine"
[ -n "$engine" ]
check "1 rank: the log says which products are bf16, and on what" $?
ratio_in "$(params_mib "$work/bf16.log")" "$(params_mib "$work/fp32.log")" 0.5 0.65
check "memory plan: parameters $(params_mib "$work/bf16.log") MiB, 0.5-0.65 x fp32's $(params_mib "$work/fp32.log") (2-byte weights; fp32 view of positions, norms, biases only)" $?
ratio_in "$(plan_mib "$work/bf16.log" optimizer)" "$(plan_mib "$work/fp32.log" optimizer)" 1.49 1.51
check "memory plan: optimizer state $(plan_mib "$work/bf16.log" optimizer) MiB = 1.5 x fp32's $(plan_mib "$work/fp32.log" optimizer) (fp32 master, m, v)" $?

# --- the addition demo's answer accuracy
demo=(--num-layers 2 --hidden-size 128 --num-attention-heads 4 --seq-length 64
      --position-embedding-type rope --lr 3e-3 --min-lr 1e-4 --lr-warmup-iters 50
      --lr-decay-iters 1200 --data-path synthetic:addition:2 --micro-batch-size 16
      --train-iters 400 --eval-interval 100 --eval-iters 8 --log-interval 100 --log-level warn)
"$tessera" train "${demo[@]}" --metrics-file "$work/demo32.jsonl"
"$tessera" train "${demo[@]}" --bf16 --metrics-file "$work/demo16.jsonl"
a32=$(field "$work/demo32.jsonl" valid answer_accuracy | tr '\n' ' ')
a16=$(field "$work/demo16.jsonl" valid answer_accuracy | tr '\n' ' ')
echo "  addition answer accuracy at iterations 100-400: fp32 $a32; bf16 $a16"
paste <(field "$work/demo32.jsonl" valid answer_accuracy) \
  <(field "$work/demo16.jsonl" valid answer_accuracy) |
  awk 'NF != 2 {bad = 1} { d = $1 - $2; if (d < 0) d = -d; if (d > 0.02) bad = 1 }
       END { exit bad || NR != 4 }'
check "addition: bf16 answer accuracy within 0.02 of fp32 at each of iterations 100-400" $?

# --- layouts against 1 rank, in bf16
layout() { # NAME NP FLAGS...
  local name=$1 np=$2
  shift 2
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${common[@]}" --bf16 "$@" \
    --metrics-file "$work/l.jsonl" >"$work/l.log"
  within "$work/bf16.jsonl" "$work/l.jsonl" 1e-3 20
  check "bf16 $name: 20 losses within 1e-3 of 1 rank" $?
}
layout "tp 2" 2 --tensor-model-parallel-size 2
layout "tp 2 + sp" 2 --tensor-model-parallel-size 2 --sequence-parallel
layout "pp 2" 2 --pipeline-model-parallel-size 2
layout "dp 2" 2
layout "dp 2 + distributed optimizer" 2 --use-distributed-optimizer
ratio_in "$(plan_mib "$work/l.log" optimizer)" "$(plan_mib "$work/bf16.log" optimizer)" 0.49 0.51 &&
  ratio_in "$(params_mib "$work/l.log")" "$(params_mib "$work/bf16.log")" 0.99 1.02
gather_bytes() { grep '"type": "comm", "group": "dp", "kind": "allgather"' "$1" |
  sed 's/.*"bytes": \([0-9]*\).*/\1/'; }
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --use-distributed-optimizer \
  --metrics-file "$work/g32.jsonl" >/dev/null
g16=$(gather_bytes "$work/l.jsonl")
g32=$(gather_bytes "$work/g32.jsonl")
[ -n "$g16" ] && [ -n "$g32" ] && [ $((2 * g16)) -eq "$g32" ]
check "dp 2 + distributed optimizer: the step's all-gather moves the bf16 weights, $g16 bytes, half of fp32's $g32" $?
check "memory plan, dp 2 + distributed optimizer: optimizer state $(plan_mib "$work/l.log" optimizer) MiB = 0.5 x 1 rank's (the fp32 master sharded with m and v), parameters $(params_mib "$work/l.log") MiB as 1 rank's (no fp32 copy of the weights)" $?
layout "tp 2 x pp 2" 4 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2

layout "pp 2 interleaved x dp 2" 4 --pipeline-model-parallel-size 2 \
  --num-layers-per-virtual-pipeline-stage 1 --use-distributed-optimizer

# --- saved activations held in 16 bits between forward and backward
act_mib() { grep "memory plan: activations" "$1" | head -n 1 | awk '{print $(NF-1)}'; }
deep=(--num-layers 8 --hidden-size 128 --num-attention-heads 4 --seq-length 64
      --micro-batch-size 4 --global-batch-size 4 --data-path synthetic:addition
      --log-interval 1 --seed 5 --train-iters 6)
"$tessera" train "${deep[@]}" >"$work/deep32.log"
for p in bf16 fp16; do
  # fp16 from a scale that does not overflow: its losses are then defined
  scale=()
  [ $p = fp16 ] && scale=(--initial-loss-scale 1024)
  "$tessera" train "${deep[@]}" --$p "${scale[@]}" >"$work/deep16.log"
  echo "  activations in the plan: fp32 $(act_mib "$work/deep32.log") MiB, $p $(act_mib "$work/deep16.log") MiB"
  awk -v b="$(act_mib "$work/deep16.log")" -v f="$(act_mib "$work/deep32.log")" \
    'BEGIN { r = b / f; exit !(r >= 0.5 && r < 0.55) }'
  check "memory plan: $p activations 0.5-0.55 of fp32's (16-bit saved activations and residual stream; statistics fp32)" $?
  # the stream in fp32: 9 stream buffers (the input and 8 layer outputs) of
  # B 4 x T 64 x h 128 take 2 bytes more per element
  "$tessera" train "${deep[@]}" --$p "${scale[@]}" --fp32-residual-connection \
    --metrics-file "$work/res32.jsonl" >"$work/res32.log"
  awk -v r="$(act_mib "$work/res32.log")" -v h="$(act_mib "$work/deep16.log")" \
    'BEGIN { d = r - h - 9 * 4 * 64 * 128 * 2 / 1048576; if (d < 0) d = -d; exit !(d < 0.01) }'
  check "$p --fp32-residual-connection: the plan's activations $(act_mib "$work/res32.log") MiB, 0.5625 MiB (the stream at 2 more bytes an element) above the 16-bit stream's" $?
  # a recomputed layer's backward reads the values a held one's does
  "$tessera" train "${deep[@]}" --$p "${scale[@]}" --metrics-file "$work/nore.jsonl" >/dev/null
  for method in "uniform --recompute-num-layers 2" "block --recompute-num-layers 3"; do
    "$tessera" train "${deep[@]}" --$p "${scale[@]}" --recompute-granularity full \
      --recompute-method $method --metrics-file "$work/re.jsonl" >/dev/null
    cmp -s <(losses_by_iteration "$work/nore.jsonl") <(losses_by_iteration "$work/re.jsonl") &&
      [ -n "$(losses "$work/re.jsonl")" ] && ! losses "$work/re.jsonl" | grep -q null
    check "$p: full recomputation ($method) gives bitwise the losses of none" $?
  done
  [ -n "$(losses "$work/res32.jsonl")" ] &&
    ! cmp -s <(losses_by_iteration "$work/nore.jsonl") <(losses_by_iteration "$work/res32.jsonl")
  check "$p: the 16-bit residual stream changes the losses (--fp32-residual-connection's differ)" $?
done

# --- pipelines send the stream as it is kept
pp_bytes() { grep '"type": "comm", "group": "pp"' "$1" | grep '"kind": "send"' |
  sed 's/.*"bytes": \([0-9]*\).*/\1/' | paste -sd+ | bc; }
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --bf16 \
  --pipeline-model-parallel-size 2 --fp32-residual-connection --eval-interval 10 --eval-iters 2 \
  --metrics-file "$work/p32.jsonl" >/dev/null
within "$work/bf16.jsonl" "$work/p32.jsonl" 1e-2 20
check "bf16 pp 2 --fp32-residual-connection: 20 losses within 1e-2 of the 1-rank run's 16-bit stream" $?
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --bf16 \
  --pipeline-model-parallel-size 2 --eval-interval 10 --eval-iters 2 \
  --metrics-file "$work/p16.jsonl" >/dev/null
echo "  pipeline send bytes: fp32 stream $(pp_bytes "$work/p32.jsonl"), bf16 $(pp_bytes "$work/p16.jsonl")"
[ -n "$(pp_bytes "$work/p16.jsonl")" ] &&
  [ $(( 2 * $(pp_bytes "$work/p16.jsonl") )) -eq "$(pp_bytes "$work/p32.jsonl")" ]
check "bf16 pp 2: the stream crosses stages in half the bytes of --fp32-residual-connection (stage 0's sends: activations, in training and evaluation)" $?
valid=$(grep '"type": "valid"' "$work/p16.jsonl" | sed 's/.*"lm_loss": \([^,}]*\).*/\1/')
[ "$(echo "$valid" | wc -w)" -eq 2 ] && ! echo "$valid" | grep -qi "nan\|null"
check "bf16 pp 2: evaluation through the 16-bit stream gives a loss at iterations 10 and 20" $?

# --- --grad-reduce-in-bf16: the reductions in bf16, half the bytes
dp_bytes() { grep '"type": "comm", "group": "dp"' "$1" | grep -v '"kind": "allgather"' |
  sed 's/.*"bytes": \([0-9]*\).*/\1/' | paste -sd+ | bc; }
for extra in "" "--use-distributed-optimizer --overlap-grad-reduce --ddp-bucket-size 50000"; do
  "$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --bf16 $extra \
    --metrics-file "$work/r32.jsonl" >/dev/null
  "$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --bf16 $extra \
    --grad-reduce-in-bf16 --metrics-file "$work/r16.jsonl" >/dev/null
  name="dp 2${extra:+ $extra}"
  within "$work/bf16.jsonl" "$work/r16.jsonl" 1e-2 20
  check "$name --grad-reduce-in-bf16: 20 losses within 1e-2 of 1 rank" $?
  echo "  gradient reduction bytes: fp32 $(dp_bytes "$work/r32.jsonl"), bf16 $(dp_bytes "$work/r16.jsonl")"
  [ "$(dp_bytes "$work/r16.jsonl")" -gt 0 ] &&
    awk -v a="$(dp_bytes "$work/r16.jsonl")" -v b="$(dp_bytes "$work/r32.jsonl")" \
      'BEGIN { r = a / b; exit !(r > 0.49 && r < 0.51) }'
  check "$name --grad-reduce-in-bf16: half the gradient reduction's bytes" $?
done

# --- checkpoints: the fp32 master
"$tessera" train "${common[@]}" --bf16 --train-iters 10 --save "$work/ckb" \
  --metrics-file "$work/b1.jsonl" >/dev/null
"$tessera" train "${common[@]}" --bf16 --load "$work/ckb" --metrics-file "$work/b2.jsonl" >/dev/null
[ "$(losses "$work/bf16.jsonl" | wc -l)" -eq 20 ] && cmp -s <(losses_by_iteration "$work/bf16.jsonl") \
  <(cat <(losses_by_iteration "$work/b1.jsonl") <(losses_by_iteration "$work/b2.jsonl"))
check "bf16: 10 + save + load + 10 == 20 straight, bitwise" $?
"$tessera" train "${common[@]}" --load "$work/ckb" --metrics-file "$work/b2f.jsonl" >/dev/null
close "$(losses "$work/b2f.jsonl" | head -n 1)" "$(losses "$work/b2.jsonl" | head -n 1)" 1e-2
check "fp32 continues a bf16 checkpoint: step-11 loss within 1e-2 of bf16's" $?
"$tessera" train "${common[@]}" --train-iters 10 --save "$work/ckf" >/dev/null
"$tessera" train "${common[@]}" --bf16 --load "$work/ckf" --metrics-file "$work/f2b.jsonl" >/dev/null
close "$(losses "$work/f2b.jsonl" | head -n 1)" "$(losses "$work/fp32.jsonl" | sed -n 11p)" 1e-2
check "bf16 continues an fp32 checkpoint: step-11 loss within 1e-2 of fp32's" $?

dopt=(--use-distributed-optimizer --overlap-param-gather)
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --bf16 "${dopt[@]}" \
  --train-iters 10 --save "$work/ckd" --metrics-file "$work/d1.jsonl" >/dev/null
"$tessera" train "${common[@]}" --bf16 --load "$work/ckd" --metrics-file "$work/d2.jsonl" >/dev/null
cat "$work/d1.jsonl" "$work/d2.jsonl" >"$work/d12.jsonl"
within "$work/bf16.jsonl" "$work/d12.jsonl" 1e-3 20
check "bf16 dp 2 + distributed optimizer saves its sharded master; 1 rank goes on: 20 losses within 1e-3 of 20 straight" $?
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${common[@]}" --bf16 "${dopt[@]}" \
  --load "$work/ckb" --metrics-file "$work/d3.jsonl" >/dev/null
cat "$work/b1.jsonl" "$work/d3.jsonl" >"$work/d13.jsonl"
within "$work/bf16.jsonl" "$work/d13.jsonl" 1e-3 20
check "bf16 1-rank checkpoint loaded into dp 2 + distributed optimizer (each rank takes its master shard): 20 losses within 1e-3 of 20 straight" $?

# --- MoE (expert products) and LoRA (frozen base weights mapped too)
moe=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --group-query-attention
     --num-query-groups 2 --normalization RMSNorm --position-embedding-type rope --swiglu
     --ffn-hidden-size 96 --disable-bias-linear --seq-length 32 --micro-batch-size 2
     --global-batch-size 8 --lr 3e-3 --data-path synthetic:addition:2 --log-interval 1
     --seed 11 --train-iters 5)
for kind in moe lora; do
  extra=()
  [ "$kind" = moe ] && extra=(--num-experts 8 --moe-router-topk 2 --moe-ffn-hidden-size 48)
  if [ "$kind" = lora ]; then
    "$tessera" train "${moe[@]}" --save "$work/base" >/dev/null
    extra=(--lora-rank 4 --lora-alpha 8 --pretrained-checkpoint "$work/base")
  fi
  "$tessera" train "${moe[@]}" "${extra[@]}" --metrics-file "$work/k32.jsonl" >/dev/null
  "$tessera" train "${moe[@]}" "${extra[@]}" --bf16 --metrics-file "$work/k16.jsonl" >/dev/null
  within "$work/k32.jsonl" "$work/k16.jsonl" 1e-2 5
  check "$kind in bf16: 5 losses within 1e-2 of fp32" $?
done
finish

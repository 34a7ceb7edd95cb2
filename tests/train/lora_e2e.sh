#!/usr/bin/env bash
# lora_e2e.sh TESSERA MPIEXEC - LoRA through the CLI:
#   a LLaMA-style base (rope, grouped queries, SwiGLU, untied) trained 5
#   steps; rank-4 adapters on all four linears with --lora-dropout 0.1
#   fine-tuned from it for 12 steps: TP 2 x PP 2 x DP 2 with sequence
#   parallelism, the same with the distributed optimizer, and TP 2 x DP 2
#   equal the 1-rank curve within 1e-5 relative at every step; the dropout
#   changes the curve (it is in force); a GPT-2-style model (biases,
#   learned positions, tied output) with adapters on qkv and fc2 only,
#   TP 2 x PP 2 against 1 rank; resuming a LoRA checkpoint continues the
#   run it came from (within 1e-6); the checkpoint names its base and holds
#   the adapters with optimizer moments, the frozen base without;
#   tessera convert --merge-lora gives a plain model that evaluates as
#   the adapted one (validation loss within 1e-5); misuse exits 2 with one
#   message.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
field() { grep "\"type\": \"$2\"" "$1" | sed "s/.*\"$3\": \([^,}]*\).*/\1/"; }

llama=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --group-query-attention
       --num-query-groups 2 --normalization RMSNorm --position-embedding-type rope --swiglu
       --ffn-hidden-size 96 --disable-bias-linear --untie-embeddings-and-output-weights
       --seq-length 32 --micro-batch-size 2 --global-batch-size 8 --lr 3e-3
       --data-path synthetic:addition:2 --log-interval 1 --log-level warn --seed 11)
gpt=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 32
     --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --data-path synthetic:addition:2
     --log-interval 1 --log-level warn --seed 11)
lora=(--lora-rank 4 --lora-alpha 8 --lora-dropout 0.1 --train-iters 12 --lr-warmup-iters 2)

"$tessera" train "${llama[@]}" --train-iters 5 --save "$work/base" >/dev/null 2>&1
check "llama base trained and saved" $?
"$tessera" train "${llama[@]}" "${lora[@]}" --pretrained-checkpoint "$work/base" \
  --save "$work/lora1" --metrics-file "$work/one.jsonl" 2>"$work/one.err"
check "llama LoRA: 1-rank run from the base" $?

layouts=("8 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --sequence-parallel"
         "8 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --use-distributed-optimizer"
         "4 --tensor-model-parallel-size 2 --sequence-parallel")
for layout in "${layouts[@]}"; do
  read -r np flags <<<"$layout"
  # shellcheck disable=SC2086
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${llama[@]}" "${lora[@]}" $flags \
    --pretrained-checkpoint "$work/base" --metrics-file "$work/run.jsonl" >/dev/null 2>&1
  within "$work/one.jsonl" "$work/run.jsonl" 1e-5 12
  check "llama LoRA, $np ranks $flags: 12 losses equal 1 rank within 1e-5" $?
done

"$tessera" train "${llama[@]}" "${lora[@]}" --lora-dropout 0 --pretrained-checkpoint "$work/base" \
  --metrics-file "$work/nodrop.jsonl" >/dev/null 2>&1
! within "$work/one.jsonl" "$work/nodrop.jsonl" 1e-4 12 >/dev/null
check "llama LoRA: --lora-dropout changes the loss curve" $?

"$tessera" train "${gpt[@]}" --train-iters 5 --save "$work/gbase" >/dev/null 2>&1
gl=(--lora-rank 4 --lora-target qkv,fc2 --train-iters 10 --pretrained-checkpoint "$work/gbase")
"$tessera" train "${gpt[@]}" "${gl[@]}" --metrics-file "$work/g1.jsonl" >/dev/null 2>&1
"$mpiexec" -np 4 --oversubscribe "$tessera" train "${gpt[@]}" "${gl[@]}" \
  --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 \
  --metrics-file "$work/g4.jsonl" >/dev/null 2>&1
within "$work/g1.jsonl" "$work/g4.jsonl" 1e-5 10
check "gpt LoRA on qkv,fc2: TP 2 x PP 2 equals 1 rank within 1e-5" $?

# resume: 6 steps saved, then 6 more from that checkpoint
"$tessera" train "${llama[@]}" "${lora[@]}" --pretrained-checkpoint "$work/base" --exit-interval 6 \
  --save "$work/half" >/dev/null 2>&1
"$tessera" train "${llama[@]}" "${lora[@]}" --pretrained-checkpoint "$work/base" --load "$work/half" \
  --metrics-file "$work/resumed.jsonl" >/dev/null 2>&1
paste <(losses "$work/one.jsonl" | tail -n 6) <(losses "$work/resumed.jsonl") | awk '
  NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > 1e-6) bad = 1 } END { exit bad || NR != 6 }'
check "llama LoRA: resuming at iteration 6 continues the uninterrupted run (1e-6)" $?

"$tessera" train "${llama[@]}" "${lora[@]}" --load "$work/half" --save "$work/half" >/dev/null 2>&1
h5dump -a lora_base "$work/half/iter_0000012.h5" 2>/dev/null | grep -q "\"$work/base\""
check "resumed with --load alone, the checkpoint still names the base it adapts" $?

ckpt=$work/lora1/iter_0000012.h5
h5dump -a lora_base "$ckpt" 2>/dev/null | grep -q "$work/base"
check "the checkpoint names its base (lora_base)" $?
h5ls "$ckpt/optimizer/exp_avg" 2>/dev/null | grep -q "lora_A.weight" &&
  ! h5ls "$ckpt/optimizer/exp_avg" 2>/dev/null | grep -v lora_ | grep -q weight &&
  h5ls "$ckpt/model" | grep -q "linear_qkv.weight"
check "the checkpoint: adapters with moments, the frozen base under model/ only" $?

"$tessera" convert --merge-lora --load "$work/lora1" --save "$work/merged" >"$work/merge.out" 2>&1
check "tessera convert --merge-lora" $?
! h5ls "$work/merged/iter_0000012.h5/model" | grep -q lora_
check "the merged checkpoint holds no adapters" $?
"$tessera" train "${llama[@]}" "${lora[@]}" --load "$work/lora1" --skip-train --eval-iters 4 \
  --metrics-file "$work/eval_lora.jsonl" >/dev/null 2>&1
"$tessera" train "${llama[@]}" --train-iters 12 --load "$work/merged" --no-load-optim --skip-train \
  --eval-iters 4 --metrics-file "$work/eval_merged.jsonl" >/dev/null 2>&1
a=$(field "$work/eval_lora.jsonl" valid lm_loss)
b=$(field "$work/eval_merged.jsonl" valid lm_loss)
echo "  validation loss: adapted $a, merged $b"
awk -v a="$a" -v b="$b" 'BEGIN { r = (a - b) / a; if (r < 0) r = -r; exit !(a != "" && r <= 1e-5) }'
check "the merged model evaluates as the adapted one (1e-5)" $?
"$tessera" train "${llama[@]}" --train-iters 12 --load "$work/base" --skip-train --eval-iters 4 \
  --metrics-file "$work/eval_base.jsonl" >/dev/null 2>&1
c=$(field "$work/eval_base.jsonl" valid lm_loss)
[ -n "$c" ] && [ "$c" != "$a" ]
check "the adapters changed the model (base $c)" $?

refused "a LoRA checkpoint loaded without --lora-rank" "holds LoRA adapters of rank 4" \
  "$tessera" train "${llama[@]}" --train-iters 14 --load "$work/lora1"
refused "a LoRA checkpoint exported without merging" "fold them into the weights first" \
  "$tessera" convert --load "$work/lora1" --save "$work/hf"
refused "resuming with another --lora-alpha" "trained with --lora-alpha 8" \
  "$tessera" train "${llama[@]}" "${lora[@]}" --lora-alpha 16 --train-iters 14 --load "$work/lora1"
refused "resuming with other --lora-target" "holds LoRA adapters on qkv,proj,fc1,fc2" \
  "$tessera" train "${llama[@]}" "${lora[@]}" --lora-target qkv --train-iters 14 --load "$work/lora1"
refused "--merge-lora of a plain model" "holds no LoRA adapters" \
  "$tessera" convert --merge-lora --load "$work/base" --save "$work/m2"
refused "--lora-rank with no base" "there is no base" \
  "$tessera" train "${llama[@]}" --lora-rank 4
refused "an unknown --lora-target" "'attn' is not a linear" \
  "$tessera" train "${llama[@]}" --lora-rank 4 --lora-target qkv,attn --load "$work/base"
refused "a base with optimizer state resumed into adapters" "no optimizer state for them" \
  "$mpiexec" -np 2 --oversubscribe "$tessera" train "${llama[@]}" --lora-rank 4 --train-iters 8 --load "$work/base"
finish

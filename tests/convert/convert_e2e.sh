#!/usr/bin/env bash
# convert_e2e.sh TESSERA - `tessera convert` through the CLI:
#   a checkpoint -> Hugging Face -> checkpoint -> Hugging Face gives the
#   same safetensors bytes and the same checkpoint tensors (GPT-2 and a
#   LLaMA with grouped queries and an untied head); a converted checkpoint
#   holds weights only and fine-tunes exactly like the checkpoint it came
#   from (the same first loss, bitwise); a plain --load of it says how to
#   use it; bad input is one message and exit 2, and nothing is written.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
source "$(dirname "$0")/../harness/e2e.sh"

gpt=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
     --micro-batch-size 2 --global-batch-size 4 --lr 3e-3 --data-path synthetic:addition
     --log-interval 1 --seed 5)
llama=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --group-query-attention
       --num-query-groups 2 --ffn-hidden-size 96 --normalization RMSNorm
       --position-embedding-type rope --rotary-base 500 --swiglu --disable-bias-linear
       --untie-embeddings-and-output-weights --seq-length 32 --micro-batch-size 2
       --global-batch-size 4 --lr 3e-3 --data-path synthetic:addition --log-interval 1 --seed 5)

tensors_equal() { # A.h5 B.h5: every dataset under /model equal
  h5diff -q "$1" "$2" /model /model >/dev/null 2>&1
}

for family in gpt llama; do
  declare -n flags=$family
  d=$work/$family
  "$tessera" train "${flags[@]}" --train-iters 6 --save "$d/trained" >/dev/null 2>&1
  check "$family: a 6-iteration run saves a checkpoint" $?
  "$tessera" convert --load "$d/trained" --save "$d/hf" >"$d/export.log" 2>&1 &&
    [ -s "$d/hf/model.safetensors" ] && [ -s "$d/hf/config.json" ]
  check "$family: exports to model.safetensors + config.json ($(head -c 90 "$d/export.log"))" $?
  "$tessera" convert --load "$d/hf" --save "$d/back" >"$d/import.log" 2>&1 &&
    grep -q "fine-tune with: tessera train --finetune --pretrained-checkpoint $d/back" \
      "$d/import.log"
  check "$family: imports back, printing the flags to fine-tune with" $?
  "$tessera" convert --load "$d/back" --save "$d/hf2" >/dev/null 2>&1 &&
    cmp -s "$d/hf/model.safetensors" "$d/hf2/model.safetensors" &&
    cmp -s "$d/hf/config.json" "$d/hf2/config.json"
  check "$family: export -> import -> export gives the same bytes" $?
  tensors_equal "$d/trained/iter_0000006.h5" "$d/back/iter_0000000.h5"
  check "$family: the imported checkpoint's tensors equal the trained ones (h5diff)" $?
  ! h5ls "$d/back/iter_0000000.h5" | grep -q optimizer
  check "$family: the converted checkpoint holds weights only" $?

  "$tessera" train "${flags[@]}" --train-iters 2 --finetune --load "$d/trained" \
    --metrics-file "$d/a.jsonl" >/dev/null 2>&1
  "$tessera" train "${flags[@]}" --train-iters 2 --finetune \
    --pretrained-checkpoint "$d/back" --metrics-file "$d/b.jsonl" >"$d/ft.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && [ -n "$(losses "$d/b.jsonl")" ] &&
    cmp -s <(losses "$d/a.jsonl") <(losses "$d/b.jsonl")
  check "$family: fine-tuning from the converted weights == from the original, bitwise ($(losses "$d/b.jsonl" | tr '\n' ' '))" $?
done

# a plain --load of a weights-only checkpoint: refused with the way out
"$tessera" train "${gpt[@]}" --train-iters 8 --load "$work/gpt/back" >"$work/plain.log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "holds weights only" "$work/plain.log" && grep -q -- "--finetune" "$work/plain.log"
check "--load of a converted checkpoint without --finetune: exit 2, names --finetune" $?
"$tessera" train "${gpt[@]}" --train-iters 2 --load "$work/gpt/back" --no-load-optim >/dev/null 2>&1
check "--load of it with --no-load-optim trains" $?

# bad input: exit 2, one message, nothing written
bad() { # NAME EXPECTED-TEXT ARGS...: exit 2, one error line holding the text
  local name=$1 text=$2
  shift 2
  "$tessera" convert "$@" >"$work/bad.out" 2>"$work/bad.err"
  local rc=$?
  [ $rc -eq 2 ] && [ "$(grep -c 'error' "$work/bad.err")" -eq 1 ] && grep -q -- "$text" "$work/bad.err"
  check "bad input: $name (exit $rc: $(head -c 140 "$work/bad.err"))" $?
}
mkdir -p "$work/empty" "$work/h" "$work/t"
bad "no --save" "give --load DIR and --save DIR" --load "$work/gpt/hf"
bad "--load holds neither format" "holds neither" --load "$work/empty" --save "$work/o1"
cp "$work/gpt/hf/config.json" "$work/h/"
bad "config.json without weights" "neither model.safetensors" --load "$work/h" --save "$work/o2"
head -c 4000 "$work/gpt/hf/model.safetensors" >"$work/h/model.safetensors"
bad "a truncated safetensors file" "outside the" --load "$work/h" --save "$work/o3"
printf '\xff\xff\xff\x00\x00\x00\x00\x00{}' >"$work/h/model.safetensors"
bad "a header length past the file" "header length" --load "$work/h" --save "$work/o4"
sed 's/"n_layer": 2/"n_layer": 3/' "$work/gpt/hf/config.json" >"$work/h/config.json"
cp "$work/gpt/hf/model.safetensors" "$work/h/"
bad "config.json with more layers than the weights" "lacks tensor" --load "$work/h" --save "$work/o5"
sed 's/"n_inner": 256/"n_inner": 128/' "$work/gpt/hf/config.json" >"$work/h/config.json"
bad "config.json disagreeing with a shape" "disagree" --load "$work/h" --save "$work/o6"
sed 's/"gelu_new"/"relu"/' "$work/gpt/hf/config.json" >"$work/h/config.json"
bad "an activation tessera does not have" "activation_function" --load "$work/h" --save "$work/o7"
bad "--save already holds a checkpoint" "already holds a tessera checkpoint" \
  --load "$work/gpt/hf" --save "$work/gpt/back"
bad "--save already holds a Hugging Face model" "already holds a Hugging Face model" \
  --load "$work/gpt/back" --save "$work/gpt/hf"
bad "--ckpt-step of a missing iteration" "iteration" --load "$work/gpt/trained" --ckpt-step 3 \
  --save "$work/o8"
"$tessera" train "${gpt[@]}" --position-embedding-type rope --train-iters 0 --save "$work/t" \
  >/dev/null 2>&1
bad "a model with no Hugging Face counterpart" "cannot export" --load "$work/t" --save "$work/o9"
ls -d "$work"/o? >/dev/null 2>&1
check "no bad input wrote an output directory" $((!$?))
mpirun --oversubscribe -np 2 "$tessera" convert --load "$work/gpt/hf" --save "$work/o10" \
  >"$work/np2.out" 2>"$work/np2.err"
rc=$?
[ $rc -ne 0 ] && [ "$(grep -c 'runs as one process' "$work/np2.err")" -eq 1 ]
check "under mpirun -np 2: one message, no conversion" $?

finish

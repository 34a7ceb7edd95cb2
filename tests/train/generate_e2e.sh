#!/usr/bin/env bash
# generate_e2e.sh TESSERA MPIEXEC - `tessera generate` through the CLI:
#   greedy answers to 40 held-out addition problems are the same text on 1
#   rank and under TP 2, for a GPT-2-style and a LLaMA-style model (rope,
#   grouped queries); prompts of different lengths give the same
#   continuations alone, in batches of 2 and in one batch of 5 (sampled
#   with a seed too: a prompt's draws do not depend on its batch); the same
#   seed draws the same text, another seed other text; --max-new-tokens
#   and --eos-token stop sequences; a LoRA checkpoint generates through its
#   adapters; misuse exits 2 with one message.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"

gpt=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
     --micro-batch-size 8 --lr 3e-3 --data-path synthetic:addition:2 --log-level warn)
llama=("${gpt[@]}" --normalization RMSNorm --position-embedding-type rope --swiglu
       --ffn-hidden-size 96 --disable-bias-linear --untie-embeddings-and-output-weights
       --group-query-attention --num-query-groups 2)
"$tessera" train "${gpt[@]}" --train-iters 150 --save "$work/gpt" >/dev/null 2>&1
check "gpt model trained" $?
"$tessera" train "${llama[@]}" --train-iters 150 --save "$work/llama" >/dev/null 2>&1
check "llama model trained" $?

for m in gpt llama; do
  "$tessera" generate --load "$work/$m" --held-out 40 --greedy --max-new-tokens 4 \
    >"$work/$m-1.out" 2>"$work/err"
  check "$m: greedy answers to 40 held-out problems" $?
  grep -q "of 40 held-out problems answered right" "$work/$m-1.out"
  check "$m: the count of right answers is printed ($(tail -n 1 "$work/$m-1.out"))" $?
  "$mpiexec" -np 2 --oversubscribe "$tessera" generate --load "$work/$m" --held-out 40 --greedy \
    --max-new-tokens 4 --tensor-model-parallel-size 2 >"$work/$m-2.out" 2>"$work/err"
  cmp -s "$work/$m-1.out" "$work/$m-2.out"
  check "$m: TP 2 prints the same text as 1 rank" $?
done

printf '12+3\n4+55=\n1\n07+81=9\n99+99=\n' >"$work/prompts"
gen() { "$tessera" generate --load "$work/llama" --max-new-tokens 6 --eos-token -1 "$@" 2>/dev/null; }
gen --prompt-file "$work/prompts" --greedy --batch-size 5 >"$work/b5" &&
  gen --prompt-file "$work/prompts" --greedy --batch-size 2 >"$work/b2" &&
  while read -r line; do gen --prompt "$line" --greedy; done <"$work/prompts" >"$work/b1"
cmp -s "$work/b5" "$work/b2" && cmp -s "$work/b5" "$work/b1" && [ "$(wc -l <"$work/b5")" -eq 5 ]
check "greedy: 5 prompts of 1-7 tokens continue alike alone, in batches of 2 and of 5" $?
paste "$work/prompts" "$work/b5" | awk -F'\t' '{ if (length($2) != length($1) + 6 || index($2, $1) != 1) bad = 1 }
  END { exit bad }'
check "--max-new-tokens 6 with --eos-token -1: every prompt gets exactly 6 tokens" $?
sample=(--prompt-file "$work/prompts" --temperature 1.5 --top-k 8 --top-p 0.95)
gen "${sample[@]}" --seed 3 --batch-size 5 >"$work/s5" &&
  gen "${sample[@]}" --seed 3 --batch-size 2 >"$work/s2" &&
  gen "${sample[@]}" --seed 4 --batch-size 5 >"$work/s4"
cmp -s "$work/s5" "$work/s2"
check "sampled, seed 3: the same text in batches of 2 and of 5" $?
! cmp -s "$work/s5" "$work/s4" && ! cmp -s "$work/s5" "$work/b5"
check "sampled: another seed draws other text, and sampling differs from greedy" $?
gen --prompt "12+34=" --greedy --eos-token 12 --max-new-tokens 20 >"$work/eos"
[ "$(head -c 6 "$work/eos")" = "12+34=" ] && [ "$(tr -d '\n' <"$work/eos" | wc -c)" -le 26 ] &&
  ! grep -q '|' "$work/eos"
check "the end token (the newline) stops a sequence and is not printed" $?

"$tessera" train "${llama[@]}" --train-iters 20 --lora-rank 4 --lora-alpha 8 \
  --pretrained-checkpoint "$work/llama" --lr 1e-2 --save "$work/lora" >/dev/null 2>&1
"$tessera" generate --load "$work/lora" --held-out 40 --greedy --max-new-tokens 4 \
  >"$work/lora.out" 2>"$work/lora.err"
check "a LoRA checkpoint generates" $?
grep -q "of 40 held-out" "$work/lora.out" && ! cmp -s "$work/lora.out" "$work/llama-1.out"
check "its answers differ from the base's (the adapters are in force)" $?

refused "no prompt" "give --load DIR and one of" "$tessera" generate --load "$work/gpt"
refused "two prompt sources" "give --load DIR and one of" \
  "$tessera" generate --load "$work/gpt" --prompt 1+2= --held-out 3
refused "a character the tokens do not spell" "has 'x'" \
  "$tessera" generate --load "$work/gpt" --prompt 1x2=
refused "an empty prompt" "--prompt needs a non-empty value" "$tessera" generate --load "$work/gpt" --prompt ""
refused "ids outside the vocabulary" "outside the model's vocabulary of 14" \
  "$tessera" generate --load "$work/gpt" --prompt "hello" --tokenizer-type byte
refused "gpt2 without its files" "needs --vocab-file" \
  "$tessera" generate --load "$work/gpt" --prompt 1 --tokenizer-type gpt2
refused "more positions than the model has" "need 1006 positions; the model has 32" \
  "$tessera" generate --load "$work/gpt" --prompt 12+34= --max-new-tokens 1000
refused "--top-p 0" "--top-p" "$tessera" generate --load "$work/gpt" --prompt 1 --top-p 0
refused "an end token outside the vocabulary" "--eos-token 99 is outside the model's vocabulary" \
  "$tessera" generate --load "$work/gpt" --prompt 1+2= --eos-token 99 --max-new-tokens 4
"$tessera" train "${gpt[@]}" --train-iters 2 --prefix-lm --save "$work/prefix" >/dev/null 2>&1
refused "a prefix-LM model" "was trained with --prefix-lm" \
  "$tessera" generate --load "$work/prefix" --prompt 1+2=
refused "2 ranks without --tensor-model-parallel-size 2" "start exactly 1 rank" \
  "$mpiexec" -np 2 --oversubscribe "$tessera" generate --load "$work/gpt" --prompt 1+2=
refused "no checkpoint" "no checkpoint there" \
  "$tessera" generate --load "$work/none" --prompt 1+2=
finish

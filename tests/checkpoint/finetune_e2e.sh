#!/usr/bin/env bash
# finetune_e2e.sh TESSERA - Megatron's fine-tuning flags through the CLI:
#   --finetune --load DIR: the weights only; iterations count from 1, the
#   data from its first sample and the learning rate from its warm-up, as a
#   run from scratch, but the first loss is that of the loaded weights;
#   --pretrained-checkpoint DIR with an empty --load: fine-tunes from DIR,
#   and once --load holds a checkpoint resumes from it instead, the two
#   halves' losses bitwise those of one straight fine-tuning run;
#   --no-load-optim: the same weights and position (the first loss equal,
#   bitwise, to a plain resume's) and fresh Adam moments (the next differs).
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
source "$(dirname "$0")/../harness/e2e.sh"

common=(--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
        --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 3
        --lr-decay-iters 400 --data-path synthetic:addition --log-interval 1 --log-level info
        --seed 11)
field() { # FILE ITERATION NAME: that iteration's value of NAME
  grep '"type": "train"' "$1" | grep "\"iteration\": $2," | sed "s/.*\"$3\": \([^,}]*\).*/\1/"
}

"$tessera" train "${common[@]}" --train-iters 20 --save "$work/pre" >/dev/null 2>&1
check "a 20-iteration run saves the checkpoint to fine-tune" $?
"$tessera" train "${common[@]}" --train-iters 5 --metrics-file "$work/scratch.jsonl" >/dev/null 2>&1

# --finetune: fresh counters and schedule, loaded weights
"$tessera" train "${common[@]}" --train-iters 5 --finetune --load "$work/pre" \
  --metrics-file "$work/ft.jsonl" >"$work/ft.log" 2>&1
rc=$?
grep -q "fine-tuning from the weights of iteration 20 in $work/pre" "$work/ft.log"
check "--finetune: exit 0 and says it starts from iteration 20's weights" $((rc | $?))
[ "$(losses_by_iteration "$work/ft.jsonl" | cut -d' ' -f1 | tr '\n' ' ')" = "1 2 3 4 5 " ]
check "--finetune: iterations count 1..5" $?
[ "$(field "$work/ft.jsonl" 1 learning_rate)" = "$(field "$work/scratch.jsonl" 1 learning_rate)" ] &&
  [ "$(field "$work/ft.jsonl" 1 consumed_samples)" = "8" ]
check "--finetune: the learning rate restarts its warm-up, the data its first sample" $?
awk -v a="$(field "$work/ft.jsonl" 1 lm_loss)" -v b="$(field "$work/scratch.jsonl" 1 lm_loss)" \
  'BEGIN { exit !(a < 0.8 * b) }'
check "--finetune: the first loss is the trained weights' ($(field "$work/ft.jsonl" 1 lm_loss) vs $(field "$work/scratch.jsonl" 1 lm_loss) from scratch)" $?

# --pretrained-checkpoint: fine-tune into an empty --load, then resume from it
pt=(--pretrained-checkpoint "$work/pre" --load "$work/ft2" --save "$work/ft2")
"$tessera" train "${common[@]}" "${pt[@]}" --train-iters 5 --metrics-file "$work/pt1.jsonl" \
  >"$work/pt1.log" 2>&1
rc=$?
grep -q "fine-tuning from the weights of iteration 20 in $work/pre" "$work/pt1.log"
check "--pretrained-checkpoint with an empty --load: fine-tunes from it" $((rc | $?))
"$tessera" train "${common[@]}" "${pt[@]}" --train-iters 8 --metrics-file "$work/pt2.jsonl" \
  >"$work/pt2.log" 2>&1
rc=$?
grep -q "loaded checkpoint of iteration 5 from $work/ft2" "$work/pt2.log"
check "--pretrained-checkpoint once --load holds a checkpoint: resumes from --load" $((rc | $?))
"$tessera" train "${common[@]}" --pretrained-checkpoint "$work/pre" --train-iters 8 \
  --metrics-file "$work/pt8.jsonl" >/dev/null 2>&1
cmp -s <(losses_by_iteration "$work/pt8.jsonl") \
  <(cat <(losses_by_iteration "$work/pt1.jsonl") <(losses_by_iteration "$work/pt2.jsonl"))
check "fine-tuned 5 + resumed to 8 == fine-tuned 8 straight, bitwise" $?

# --no-load-optim: same weights and position, fresh moments
"$tessera" train "${common[@]}" --train-iters 22 --load "$work/pre" \
  --metrics-file "$work/resume.jsonl" >/dev/null 2>&1
"$tessera" train "${common[@]}" --train-iters 22 --load "$work/pre" --no-load-optim \
  --metrics-file "$work/nlo.jsonl" >"$work/nlo.log" 2>&1
rc=$?
grep -q "optimizer state starts fresh (--no-load-optim)" "$work/nlo.log"
check "--no-load-optim: exit 0 and says so" $((rc | $?))
[ "$(field "$work/nlo.jsonl" 21 lm_loss)" = "$(field "$work/resume.jsonl" 21 lm_loss)" ] &&
  [ "$(field "$work/nlo.jsonl" 22 lm_loss)" != "$(field "$work/resume.jsonl" 22 lm_loss)" ]
check "--no-load-optim: iteration 21's loss that of a plain resume, 22's not (fresh moments)" $?
finish

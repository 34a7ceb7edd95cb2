#!/usr/bin/env bash
# finetune-demo.sh - fine-tuning with LoRA: installs what is missing,
# builds, trains a small GPT on the built-in addition task (1 rank, 1000
# iterations; --vocab-size 15 leaves a row for the '-' sign), measures its
# answer accuracy on subtraction problems it has never seen, then trains
# rank-8 LoRA adapters on subtraction (the base frozen: 7% of the
# parameters train), measures again, and folds the adapters into the
# weights with tessera convert --merge-lora. About a minute here.
# Extra flags go to every tessera train run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release
tessera=build/bin/tessera
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=(--num-layers 2 --hidden-size 128 --num-attention-heads 4 --seq-length 64 --vocab-size 15
       --micro-batch-size 16 --eval-iters 8 --log-interval 200)
accuracy() { # METRICS-FILE: the last validation answer accuracy
  grep '"type": "valid"' "$1" | tail -n 1 | sed 's/.*"answer_accuracy": \([0-9.]*\).*/\1/'
}
echo "== the base: 1000 iterations of 2-digit addition"
"$tessera" train "${model[@]}" --data-path synthetic:addition:2 --lr 3e-3 --min-lr 1e-4 \
  --lr-warmup-iters 50 --train-iters 1000 --eval-interval 1000 --save "$work/base" \
  --metrics-file "$work/base.jsonl" "$@"
echo "== the base on subtraction (no training)"
"$tessera" train "${model[@]}" --data-path synthetic:subtraction:2 --load "$work/base" \
  --skip-train --metrics-file "$work/before.jsonl" "$@"
echo "== LoRA rank 8 on qkv,proj,fc1,fc2: 1000 iterations of 2-digit subtraction, base frozen"
"$tessera" train "${model[@]}" --data-path synthetic:subtraction:2 --finetune \
  --pretrained-checkpoint "$work/base" --lora-rank 8 --lora-alpha 16 --lr 3e-3 --min-lr 1e-4 \
  --lr-warmup-iters 20 --train-iters 1000 --eval-interval 250 --save "$work/lora" \
  --metrics-file "$work/after.jsonl" "$@"
echo "== folding the adapters into the weights"
"$tessera" convert --merge-lora --load "$work/lora" --save "$work/merged"
echo "== summary (teacher-forced answer accuracy on held-out problems)"
echo "   base on addition:               $(accuracy "$work/base.jsonl")"
echo "   base on subtraction, before:    $(accuracy "$work/before.jsonl")"
echo "   LoRA on subtraction, after:     $(accuracy "$work/after.jsonl")"

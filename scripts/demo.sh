#!/usr/bin/env bash
# demo.sh - the main job: installs what is missing, builds, then trains a
# small GPT on the built-in synthetic addition task (2-digit additions,
# loss on the answer digits): once on 1 rank, then on 4 data-parallel
# ranks under mpirun from the 1-rank run's checkpoint. Watch the lm loss
# fall and the validation answer accuracy rise; then the model answers 100
# held-out sums by itself (tessera generate, greedy): the first 10 are
# shown, with how many of the 100 it got right. Extra flags are passed to
# both training runs, e.g. scripts/demo.sh --train-iters 200.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release
source scripts/mpi-env.sh
ckpt=$(mktemp -d)
trap 'rm -rf "$ckpt"' EXIT
model=(--data-path synthetic:addition:2 --num-layers 2 --hidden-size 128 --num-attention-heads 4
       --seq-length 64 --position-embedding-type rope --lr 3e-3 --min-lr 1e-4
       --lr-warmup-iters 50 --lr-decay-iters 1200 --log-interval 100 --eval-interval 200
       --eval-iters 8)
echo "== 1 rank: 1000 iterations, global batch 16"
build/bin/tessera train "${model[@]}" --micro-batch-size 16 --train-iters 1000 --save "$ckpt" "$@"
echo "== 4 ranks (data-parallel 4, 2 threads shared): iterations 1001-1200 from the checkpoint"
mpirun --oversubscribe -np 4 build/bin/tessera train "${model[@]}" --micro-batch-size 4 \
  --global-batch-size 16 --train-iters 1200 --load "$ckpt" --save "$ckpt" "$@"
echo "== generating: greedy answers to 100 held-out sums (written least significant digit first)"
build/bin/tessera generate --load "$ckpt" --held-out 100 --greedy --max-new-tokens 4 \
  >"$ckpt/answers.txt"
head -n 10 "$ckpt/answers.txt"
echo "   ..."
tail -n 1 "$ckpt/answers.txt"

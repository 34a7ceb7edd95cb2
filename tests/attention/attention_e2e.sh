#!/usr/bin/env bash
# attention_e2e.sh TESSERA MPIEXEC - attention patterns in every layout:
#   two models at seq 256 (four 64-token tiles per side, so that the masks
#   skip and cut tiles): (a) GPT-2 style, one layer each of dense, window
#   80, fixed and strided block-sparse with 32-token blocks (finer than a
#   tile), documents with learned positions restarting in each
#   (--reset-attention-mask --reset-position-ids); (b) LLaMA style (rope,
#   grouped queries), window 40 and fixed
#   64/128 layers alternating, with --prefix-lm, --reset-attention-mask
#   and --reset-position-ids
#   on 58-token addition problems (documents and prefixes cross tiles).
#   Each: 20-step loss curves of TP 2 with SP, PP 2, DP 2 with the
#   distributed optimizer, TP 2 x PP 2 and PP 2 x DP 2 equal to the 1-rank
#   run within 1e-4 relative at every step (dropout on); and the 1-rank
#   curve differs from the all-dense model's, so the masks are in force.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"
differs() { # a b: some step differs by more than 1e-3 relative
  paste <(losses "$1") <(losses "$2") | awk '
    { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > w) w = r }
    END { printf "  largest relative difference %.3g\n", w; exit !(w > 1e-3) }'
}

base=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --seq-length 256
      --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 5
      --data-path synthetic:addition:18 --log-interval 1 --log-level warn --seed 5
      --hidden-dropout 0.1 --attention-dropout 0.1 --train-iters 20)
model_a=(--attention-pattern dense,window,fixed,strided --window-size 80 --sparse-block 32
         --sparse-stride 96 --reset-attention-mask --reset-position-ids)
model_b=(--attention-pattern '(window,fixed)*2' --window-size 40 --sparse-block 64
         --sparse-stride 128 --prefix-lm --reset-attention-mask --reset-position-ids
         --normalization RMSNorm --position-embedding-type rope --swiglu --ffn-hidden-size 96
         --disable-bias-linear --untie-embeddings-and-output-weights --num-query-groups 2)
dense_b=(--prefix-lm --reset-attention-mask --reset-position-ids --normalization RMSNorm --position-embedding-type rope
         --swiglu --ffn-hidden-size 96 --disable-bias-linear --untie-embeddings-and-output-weights
         --num-query-groups 2)

layouts=("2 --tensor-model-parallel-size 2 --sequence-parallel"
         "2 --pipeline-model-parallel-size 2"
         "2 --use-distributed-optimizer"
         "4 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2"
         "4 --pipeline-model-parallel-size 2 --use-distributed-optimizer")

for name in a b; do
  if [ $name = a ]; then model=("${model_a[@]}"); dense=(); else model=("${model_b[@]}"); dense=("${dense_b[@]}"); fi
  "$tessera" train "${base[@]}" "${model[@]}" --metrics-file "$work/$name-1.jsonl"
  check "model $name: 1-rank run" $?
  "$tessera" train "${base[@]}" "${dense[@]}" --metrics-file "$work/$name-dense.jsonl"
  differs "$work/$name-1.jsonl" "$work/$name-dense.jsonl"
  check "model $name: the patterns change the loss curve (against all-dense layers)" $?
  for layout in "${layouts[@]}"; do
    read -r np flags <<<"$layout"
    # shellcheck disable=SC2086
    "$mpiexec" -np "$np" --oversubscribe "$tessera" train "${base[@]}" "${model[@]}" $flags \
      --metrics-file "$work/run.jsonl"
    within "$work/$name-1.jsonl" "$work/run.jsonl" 1e-4 20
    check "model $name, $np ranks $flags: 20 losses equal 1 rank within 1e-4" $?
  done
done
finish

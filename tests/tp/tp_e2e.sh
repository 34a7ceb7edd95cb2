#!/usr/bin/env bash
# tp_e2e.sh TESSERA MPIEXEC - tensor and sequence parallelism through the CLI:
#   20-step loss curves of TP 2 and 4, SP off and on, GPT-2 and LLaMA style,
#   and TP 2 x DP 2, equal to the 1-rank run within 1e-4 relative at every
#   step (dropout on, clipping on);
#   one training step moves exactly the bytes of the analytic formula.
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"

base=(--num-layers 2 --hidden-size 64 --num-attention-heads 8 --seq-length 32
      --micro-batch-size 4 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 5
      --data-path synthetic:addition --log-interval 1 --log-level warn --seed 3
      --hidden-dropout 0.1 --attention-dropout 0.1 --train-iters 20)
llama=(--normalization RMSNorm --position-embedding-type rope --swiglu --ffn-hidden-size 96
       --disable-bias-linear --untie-embeddings-and-output-weights --num-query-groups 4)

for style in gpt2 llama; do
  extra=()
  [ "$style" = llama ] && extra=("${llama[@]}")
  "$tessera" train "${base[@]}" "${extra[@]}" --metrics-file "$work/$style-1.jsonl"
  for tp in 2 4; do
    for sp in "" --sequence-parallel; do
      "$mpiexec" -np "$tp" --oversubscribe "$tessera" train "${base[@]}" "${extra[@]}" \
        --tensor-model-parallel-size "$tp" $sp --metrics-file "$work/run.jsonl"
      within "$work/$style-1.jsonl" "$work/run.jsonl" 1e-4 20
      check "$style tp $tp ${sp:-(no sp)}: 20 losses equal 1 rank within 1e-4" $?
    done
  done
done
"$mpiexec" -np 4 --oversubscribe "$tessera" train "${base[@]}" --tensor-model-parallel-size 2 \
  --sequence-parallel --metrics-file "$work/tpdp.jsonl"
within "$work/gpt2-1.jsonl" "$work/tpdp.jsonl" 1e-4 20
check "gpt2 tp 2 x dp 2 (sp): 20 losses equal 1 rank within 1e-4" $?

# --- communication accounting: one step, one micro batch, GPT-2 style
# N = B*T rows, C hidden, L layers, 4-byte floats; learned positions, LayerNorm
B=4 T=32 C=64 L=2
N=$((B * T))
one=(--num-layers $L --hidden-size $C --num-attention-heads 8 --seq-length $T
     --micro-batch-size $B --data-path synthetic:addition --train-iters 1 --log-level warn)
bytes() { grep "\"type\": \"comm\", \"group\": \"tp\", \"kind\": \"$2\"" "$1" | sed 's/.*"bytes": \([0-9]*\).*/\1/'; }
"$mpiexec" -np 2 --oversubscribe "$tessera" train "${one[@]}" --tensor-model-parallel-size 2 \
  --metrics-file "$work/comm.jsonl"
# without SP: per layer 2 all-reduces forward (after proj, fc2) and 2 backward
# (qkv and fc1 input gradients) of N x C; plus the embedding (forward) and the
# final-norm input gradient of the LM head (backward); plus the cross-entropy's
# max and (sum-exp, target logit) reductions of N and 2N floats
expect=$((4 * (N * C * (4 * L + 2) + 3 * N)))
got=$(bytes "$work/comm.jsonl" allreduce)
echo "  tp 2: all-reduce bytes $got, formula $expect"
[ "$got" = "$expect" ] && [ -z "$(bytes "$work/comm.jsonl" allgather)" ]
check "tp 2 step moves exactly the formula's all-reduce bytes" $?

"$mpiexec" -np 2 --oversubscribe "$tessera" train "${one[@]}" --tensor-model-parallel-size 2 \
  --sequence-parallel --metrics-file "$work/comm_sp.jsonl"
# with SP, each all-reduce becomes an all-gather + reduce-scatter pair: forward
# gathers before qkv and fc1 (2 per layer) and before the LM head (1); reduce-
# scatters after proj and fc2 (2 per layer) and after the embedding (1); backward
# mirrors them. Counted as the whole N x C buffer each. Left as all-reduces: the
# cross-entropy's 3N floats and, once per iteration, the sequence-split
# gradients of the replicated norms (2 LayerNorms x (weight, bias) per layer and
# the final one) and of the position embedding (seq x C).
expect_gather=$((4 * N * C * (4 * L + 2)))
expect_scatter=$((4 * N * C * (4 * L + 2)))
expect_reduce=$((4 * (3 * N + (4 * L + 2) * C + T * C)))
g=$(bytes "$work/comm_sp.jsonl" allgather) s=$(bytes "$work/comm_sp.jsonl" reduce_scatter)
r=$(bytes "$work/comm_sp.jsonl" allreduce)
echo "  tp 2 sp: all-gather $g (formula $expect_gather), reduce-scatter $s ($expect_scatter), all-reduce $r ($expect_reduce)"
[ "$g" = "$expect_gather" ] && [ "$s" = "$expect_scatter" ] && [ "$r" = "$expect_reduce" ]
check "tp 2 sp step moves exactly the formula's bytes" $?

finish

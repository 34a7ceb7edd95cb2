#!/usr/bin/env bash
# plugin_layouts_e2e.sh TESSERA MPIEXEC PLUGIN - the parallel_gpt plugin
# (examples/custom_model) on TP 2 x PP 2 x DP 2, with and without sequence
# parallelism (which makes the gate's gradient partial per rank), against
# its own 1-rank run: step-1 loss within 1e-5 relative and gradient norm
# within 1e-6 (layouts agree to ~1e-8; a gate gradient left partial under
# SP is off by ~5e-6: Adam all but hides it from the losses),
# the 20-step curve within 1e-4 (dropout on, clipping on).
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
plugin=$3
source "$(dirname "$0")/../harness/e2e.sh"
within() { # a b tolerance steps: the first `steps` losses of a and b
  paste <(losses "$1" | head -n "$4") <(losses "$2" | head -n "$4") | awk -v tol="$3" -v n="$4" '
    NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > w) w = r; if (r > tol) bad = 1 }
    END { printf "  worst relative loss difference %.3g over %d steps\n", w, NR; exit bad || NR != n }'
}

# grad_norms FILE: the gradient norm of each training log line
grad_norms() { grep '"type": "train"' "$1" | sed 's/.*"grad_norm": \([^,]*\),.*/\1/'; }
norm_within() { # a b tolerance: the step-1 gradient norms
  paste <(grad_norms "$1" | head -n 1) <(grad_norms "$2" | head -n 1) | awk -v tol="$3" '
    { r = ($1 - $2) / $1; if (r < 0) r = -r; printf "  step-1 gradient norm %s vs %s (relative %.3g)\n", $1, $2, r }
    END { exit NR != 1 || r > tol }'
}

base=(--model-plugin "$plugin" --model parallel_gpt
      --num-layers 4 --hidden-size 64 --num-attention-heads 8 --seq-length 32
      --micro-batch-size 2 --global-batch-size 16 --lr 3e-3 --lr-warmup-iters 5
      --data-path synthetic:addition --log-interval 1 --log-level warn --seed 5
      --hidden-dropout 0.1 --attention-dropout 0.1 --train-iters 20)

"$tessera" train "${base[@]}" --metrics-file "$work/one.jsonl" >"$work/one.log" 2>&1
rc=$?
[ "$rc" -eq 0 ] && [ "$(losses "$work/one.jsonl" | wc -l)" -eq 20 ] || { cat "$work/one.log"; rc=1; }
check "parallel_gpt trains 20 iterations on 1 rank" $rc

for sp in "" --sequence-parallel; do
  what="tp 2 x pp 2 x dp 2 ${sp:-(no sp)}"
  "$mpiexec" -np 8 --oversubscribe "$tessera" train "${base[@]}" --tensor-model-parallel-size 2 \
    --pipeline-model-parallel-size 2 $sp --metrics-file "$work/run.jsonl" >"$work/run.log" 2>&1
  rc=$?
  [ "$rc" -eq 0 ] || cat "$work/run.log"
  check "parallel_gpt $what runs" $rc
  within "$work/one.jsonl" "$work/run.jsonl" 1e-5 1
  check "parallel_gpt $what: step-1 loss equals 1 rank within 1e-5" $?
  norm_within "$work/one.jsonl" "$work/run.jsonl" 1e-6
  check "parallel_gpt $what: step-1 gradient norm equals 1 rank within 1e-6" $?
  within "$work/one.jsonl" "$work/run.jsonl" 1e-4 20
  check "parallel_gpt $what: 20 losses equal 1 rank within 1e-4" $?
done

finish

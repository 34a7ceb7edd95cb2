#!/usr/bin/env bash
# old_checkpoint_e2e.sh TESSERA MPIEXEC [FIXTURE_DIR] - checkpoints written by
# an older tessera still load and continue as that tessera continued them.
#
# FIXTURE_DIR (default: fixtures/main-f0aa091 next to this script) holds one
# directory per model flavour, written by fixtures/make_main_fixture.sh with
# the release build of main at commit f0aa091 (see that script for how):
#   gpt/    default GPT-2-style decoder (LayerNorm, learned positions, GELU,
#           biases, tied output)
#   llama/  --model llama (RMSNorm, rope, SwiGLU, no biases, untied output,
#           grouped query attention with 2 groups)
# each with the checkpoint directory as tessera wrote it after 5 iterations
# (iter_0000005.h5, latest_checkpointed_iteration.txt), the flags that wrote
# it (flags.txt, one per line) and the losses of iterations 6..10 that the
# old binary trained after --load, per layout (expected_losses_<layout>.txt).
#
# For each flavour, on a scratch copy of the fixture (the source tree is
# never written), with F = the words of flags.txt:
#   gpt:   F = --num-layers 2 --hidden-size 32 --num-attention-heads 4 --seq-length 16
#              --micro-batch-size 2 --global-batch-size 4 --lr 3e-3 --lr-warmup-iters 2
#              --lr-decay-iters 20 --data-path synthetic:addition --log-interval 1
#              --log-level warn --seed 7
#   llama: F = --model llama, the same, --num-query-groups 2 --ffn-hidden-size 64
#   1rank:  TESSERA train F --train-iters 10 --load COPY --metrics-file M
#   tp2pp2: MPIEXEC -np 4 --oversubscribe TESSERA train F --tensor-model-parallel-size 2
#               --pipeline-model-parallel-size 2 --train-iters 10 --load COPY --metrics-file M
#   the same flags with --hidden-size 64 must still be refused (exit 2, "written
#   for a different model"): the old file's config attributes are read, not skipped.
#
# Pass: the run exits 0, logs exactly the iterations of the expected file
# (6..10: it resumed at iteration 6), and each lm_loss is within a relative
# 1e-6 of the expected one (float32 losses printed with 9 digits; a rebuilt
# model may change the order of a summation; loading the weights of a run
# with a 3% lower LR instead moves the losses by 9e-4 to 1.3e-3 relative,
# a perturbed expected loss of +2e-6 relative fails). The binary of f0aa091 itself
# (the one that wrote the fixture) reproduces every expected loss bitwise,
# on both layouts; a bitwise match is reported as such.
#
# Outside CTest, export the environment of scripts/mpi-env.sh first (mpirun
# as root, oversubscribed ranks that yield).
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
here=$(cd "$(dirname "$0")" && pwd)
fixture=${3:-$here/fixtures/main-f0aa091}
source "$here/../harness/e2e.sh"
tolerance=1e-6

# compare EXPECTED METRICS: the iterations equal, each loss within $tolerance
compare() {
  awk -v tol="$tolerance" '
    FNR == NR { if ($0 !~ /^#/ && NF == 2) { want[$1] = $2; n++ } next }
    { got[$1] = $2; m++ }
    END {
      bad = (n == 0 || n != m); bitwise = 1
      for (i in want) {
        if (!(i in got)) { bad = 1; printf "  iteration %s: missing\n", i; continue }
        d = got[i] - want[i]; if (d < 0) d = -d
        r = d / (want[i] < 0 ? -want[i] : want[i])
        if (got[i] != want[i]) bitwise = 0
        if (d > da) da = d
        if (r > dr) dr = r
        if (r > tol) { bad = 1; printf "  iteration %s: loss %s, expected %s\n", i, got[i], want[i] }
      }
      for (i in got) if (!(i in want)) { bad = 1; printf "  iteration %s: not expected\n", i }
      printf "  %d of %d iterations, max |difference| %.3g, max relative %.3g%s\n", m, n, da, dr,
             (bitwise && !bad) ? " (bitwise equal)" : ""
      exit bad
    }' "$1" <(losses_by_iteration "$2")
}

found=0
for dir in "$fixture"/*/; do
  [ -f "$dir/flags.txt" ] || continue
  flavour=$(basename "$dir")
  found=$((found + 1))
  copy=$work/$flavour
  mkdir -p "$copy"
  cp "$dir"/latest_checkpointed_iteration.txt "$dir"/iter_* "$copy"/
  mapfile -t flags <"$dir/flags.txt"

  for expected in "$dir"/expected_losses_*.txt; do
    layout=$(basename "$expected" .txt)
    layout=${layout#expected_losses_}
    metrics=$work/$flavour.$layout.jsonl
    case $layout in
      1rank) "$tessera" train "${flags[@]}" --train-iters 10 --load "$copy" \
               --metrics-file "$metrics" >"$work/out" 2>"$work/err" ;;
      tp2pp2) "$mpiexec" -np 4 --oversubscribe "$tessera" train "${flags[@]}" \
                --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --train-iters 10 \
                --load "$copy" --metrics-file "$metrics" >"$work/out" 2>"$work/err" ;;
      *) echo "  no command for layout $layout" >"$work/err"; false ;;
    esac
    rc=$?
    if [ "$rc" -eq 0 ]; then
      compare "$expected" "$metrics"
      rc=$?
    else
      echo "  rc=$rc, stderr:"
      sed 's/^/    /' "$work/err" | tail -n 20
    fi
    check "$(basename "$fixture")/$flavour: --load, $layout, iterations 6..10 within $tolerance of the old binary" "$rc"
  done

  "$tessera" train "${flags[@]}" --train-iters 10 --load "$copy" --hidden-size 64 \
    >"$work/out" 2>"$work/err"
  rc=$?
  grep -q "written for a different model: hidden_size is 32" "$work/err"
  found_msg=$?
  [ "$rc" -eq 2 ] && [ "$found_msg" -eq 0 ]
  ok=$?
  [ "$ok" -eq 0 ] || { echo "  rc=$rc, stderr:"; sed 's/^/    /' "$work/err" | tail -n 20; }
  check "$(basename "$fixture")/$flavour: --hidden-size 64 refuses it (exit 2, names hidden_size)" "$ok"
done
[ "$found" -ge 2 ]
check "$fixture holds the gpt and llama fixtures ($found found)" $?

finish

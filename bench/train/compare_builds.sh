#!/usr/bin/env bash
# compare_builds.sh BASELINE_TESSERA [CANDIDATE_TESSERA] - training
# throughput of two tessera binaries on the same shapes, in one run:
# the binaries take turns (ROUNDS rounds, each a fresh process); printed
# are the median over rounds of each run's median tokens/s, and the best
# iteration of all, each with the candidate/baseline ratio.
# Used to show that a change costs no speed, e.g. against a build of main:
#   git clone . /tmp/base && (cd /tmp/base && git checkout <rev> && scripts/build.sh)
#   ROUNDS=3 ITERS=4 bench/train/compare_builds.sh /tmp/base/build/bin/tessera build/bin/tessera
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
baseline=$1
candidate=${2:-$here/../../build/bin/tessera}
threads=${THREADS:-2}
iters=${ITERS:-4}
rounds=${ROUNDS:-3}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

# median and best tokens/s of the iterations after two warm-up ones, as
# "median/best": on a shared machine the best iteration is the one least
# disturbed by other work
tokens_per_second() {
  local bin=$1; shift
  local metrics
  metrics=$(mktemp)
  "$bin" train "$@" --train-iters $((iters + 2)) --log-interval 1 --data-path synthetic:random \
    --lr 1e-4 --log-level warn --metrics-file "$metrics" --make-vocab-size-divisible-by 1
  grep '"type": "train"' "$metrics" | tail -n "$iters" |
    sed 's/.*"tokens_per_second": \([0-9.e+]*\).*/\1/' | sort -g |
    awk '{a[NR]=$1} END {printf "%s/%s\n", a[int((NR+1)/2)], a[NR]}'
  rm -f "$metrics"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
best() { tr ' ' '\n' | grep . | sort -g | tail -n 1; }
field() { tr ' ' '\n' | grep . | cut -d/ -f"$1" | tr '\n' ' '; }

printf '%-10s %10s %10s %7s %10s %10s %7s\n' shape "base med" "cand med" ratio "base best" \
  "cand best" ratio
run_shape() {
  local name=$1; shift
  local base_all="" cand_all=""
  for _ in $(seq "$rounds"); do
    base_all="$base_all $(tokens_per_second "$baseline" "$@")"
    cand_all="$cand_all $(tokens_per_second "$candidate" "$@")"
  done
  local bm cm bb cb
  bm=$(echo "$base_all" | field 1 | median)
  cm=$(echo "$cand_all" | field 1 | median)
  bb=$(echo "$base_all" | field 2 | best)
  cb=$(echo "$cand_all" | field 2 | best)
  printf '%-10s %10.1f %10.1f %7.3f %10.1f %10.1f %7.3f\n' "$name" "$bm" "$cm" \
    "$(awk -v a="$cm" -v b="$bm" 'BEGIN {print a / b}')" "$bb" "$cb" \
    "$(awk -v a="$cb" -v b="$bb" 'BEGIN {print a / b}')"
  echo "  rounds (tok/s median/best): baseline$base_all; candidate$cand_all"
}

[ "${SHAPES:-all}" = 124m ] || run_shape tiny --num-layers 4 --hidden-size 256 --num-attention-heads 4 --vocab-size 256 \
  --seq-length 128 --micro-batch-size 8
run_shape gpt2-124M --num-layers 12 --hidden-size 768 --num-attention-heads 12 \
  --vocab-size 50304 --seq-length 256 --micro-batch-size 4

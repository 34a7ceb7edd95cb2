#!/usr/bin/env bash
# soak.sh [BUILD_DIR] - a long run that must not leak (not a test).
#
# 10,000 iterations of the addition demo's tiny model on 4 ranks (mpirun),
# a checkpoint every 500 and an evaluation every 1,000. While it runs, every
# 2 s, the resident set (VmRSS) and the open file descriptors of each rank
# are read from /proc. After warm-up (the first save and evaluation, i.e.
# from iteration 1,000 on) the peak RSS of any rank may grow by at most 1%
# over its value at warm-up, and each rank's descriptor count must stay
# constant. Then every checkpoint written is loaded again (1 rank, its
# checksums verified). Prints the figures and one verdict line each.
#   ITERS=10000 RANKS=4 bench/soak/soak.sh build
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
tessera=$(realpath "$build/bin/tessera")
iters=${ITERS:-10000}
ranks=${RANKS:-4}
source "$here/../../scripts/mpi-env.sh"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

model=(--data-path synthetic:addition:2 --num-layers 2 --hidden-size 128 --num-attention-heads 4
       --seq-length 64 --micro-batch-size 4 --global-batch-size 16 --lr 3e-3 --min-lr 1e-4
       --lr-warmup-iters 50)
mpirun --oversubscribe -np "$ranks" "$tessera" train "${model[@]}" --train-iters "$iters" \
  --save-interval 500 --eval-interval 1000 --eval-iters 8 --log-interval 100 --save "$work/ck" \
  >"$work/run.log" 2>&1 &
pid=$!
start=$(date +%s)
: >"$work/samples"
while kill -0 "$pid" 2>/dev/null; do
  it=$(grep -o 'iteration *[0-9]*/' "$work/run.log" | tail -n 1 | tr -dc 0-9)
  for r in $(pgrep -P "$pid" -f "tessera train"); do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$r/status" 2>/dev/null)
    fds=$(ls "/proc/$r/fd" 2>/dev/null | wc -l)
    [ -n "$rss" ] && echo "${it:-0} $r $rss $fds" >>"$work/samples"
  done
  sleep 2
done
wait "$pid"
rc=$?
seconds=$(($(date +%s) - start))
echo "soak: $iters iterations on $ranks ranks in $seconds s, exit $rc"
[ "$rc" -eq 0 ] || { tail -20 "$work/run.log"; exit 1; }

# per rank: RSS at warm-up (first sample at or after iteration 1000), peak after it, fd range
awk -v warm=1000 '
  $1 >= warm { if (!($2 in base)) { base[$2] = $3; lo[$2] = $4; hi[$2] = $4 }
               if ($3 > peak[$2]) peak[$2] = $3
               if ($4 < lo[$2]) lo[$2] = $4; if ($4 > hi[$2]) hi[$2] = $4; n[$2]++ }
  END { worst = 0; fdbad = 0
        for (r in base) {
          g = (peak[r] - base[r]) / base[r] * 100; if (g > worst) worst = g
          printf "  rank pid %s: RSS %.1f MiB at warm-up, peak after %.1f MiB (%+.2f%%), fds %d..%d over %d samples\n",
                 r, base[r] / 1024, peak[r] / 1024, g, lo[r], hi[r], n[r]
          if (lo[r] != hi[r]) fdbad = 1 }
        printf "peak RSS growth after warm-up: %.2f%% (limit 1%%): %s\n", worst, worst <= 1 ? "ok" : "NOT ok"
        printf "open file descriptors constant: %s\n", fdbad ? "NOT ok" : "ok" }' "$work/samples"

loaded=0 total=0
for f in "$work"/ck/iter_*.h5; do
  step=$(basename "$f" .h5 | sed 's/iter_0*//')
  total=$((total + 1))
  "$tessera" train "${model[@]}" --train-iters "$step" --load "$work/ck" --ckpt-step "$step" \
    --log-level warn >/dev/null 2>"$work/load.err" && loaded=$((loaded + 1)) ||
    { echo "  iteration $step does not load:"; cat "$work/load.err"; }
done
echo "checkpoints loadable (checksums verified): $loaded of $total: $([ "$loaded" -eq "$total" ] && [ "$total" -gt 0 ] && echo ok || echo NOT ok)"

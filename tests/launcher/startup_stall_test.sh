#!/usr/bin/env bash
# startup_stall_test.sh TESSERA MPIEXEC - the start-up watchdog
# (launcher/startup_watch.h) on 2 ranks with --distributed-timeout-minutes
# 0.05 (3 s):
#   a healthy start-up, and one where a rank opens its dataset in 1 s (the
#   other waits that long in MPI_Init): exit 0, the watchdog silent
#   world rank 1 (then 0) stalls 60 s opening the dataset
#   (TSR_TEST_STALL_DATASET_RANK): the job ends non-zero within 30 s, the
#   stalled rank named with the phase and the data path, the other rank
#   never blamed for a stall of its own
#   world rank 1 stopped (SIGSTOP) in its stall: world rank 0 ends the job,
#   saying it waited in MPI_Init for a peer
# Prints one line per check and "N passed, M failed".
set -u
tessera=$1
mpiexec=$2
source "$(dirname "$0")/../harness/e2e.sh"

train=(train --num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 32
       --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --train-iters 2
       --data-path synthetic:addition --log-interval 1 --distributed-timeout-minutes 0.05)

# run TAG [VAR=VALUE...]: the 2-rank job under `timeout 90`, its output in
# $work/TAG.log; sets rc and took (seconds)
run() {
  local tag=$1
  shift
  local start
  start=$(date +%s)
  env "$@" timeout 90 "$mpiexec" -np 2 --oversubscribe "$tessera" "${train[@]}" \
    >"$work/$tag.log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
}

run healthy
[ $rc -eq 0 ] && ! grep -q "start-up watchdog" "$work/healthy.log"
check "healthy start-up (${took} s): exit 0, the watchdog silent" $?

run slow TSR_TEST_STALL_DATASET_RANK=1 TSR_TEST_STALL_SECONDS=1
[ $rc -eq 0 ] && ! grep -q "start-up watchdog" "$work/slow.log"
check "rank 1 opens its dataset in 1 s (${took} s): exit 0, the watchdog silent" $?

for stalled in 1 0; do
  other=$((1 - stalled))
  run stall$stalled TSR_TEST_STALL_DATASET_RANK=$stalled TSR_TEST_STALL_SECONDS=60
  log=$work/stall$stalled.log
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -le 30 ] &&
    grep -q "start-up watchdog: world rank $stalled has spent more than 3.0 s opening the dataset (synthetic:addition): a slow or hung file system? Ending the job" "$log" &&
    ! grep -q "world rank $other has spent more than" "$log"
  check "world rank $stalled stalls opening the dataset: exit $rc after $took s, named; rank $other not blamed" $?
  grep "start-up watchdog" "$log"
done

# world rank 1 stopped (SIGSTOP) while stalled, as a stopped process or a
# lost node: it cannot explain, so world rank 0 speaks, after the timeout
# plus the grace (3 + 3 s) in MPI_Init (mpirun's SIGCONT before it kills
# rank 1 may let rank 1's own line out too)
start=$(date +%s)
TSR_TEST_STALL_DATASET_RANK=1 TSR_TEST_STALL_SECONDS=60 timeout 90 "$mpiexec" -np 2 \
  --oversubscribe "$tessera" "${train[@]}" >"$work/stopped.log" 2>&1 &
job=$!
pid=
for _ in $(seq 300); do
  pid=$(sed -n 's/.*world rank 1 (pid \([0-9]*\)) stalls.*/\1/p' "$work/stopped.log" 2>/dev/null)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] && kill -STOP "$pid"
wait $job
rc=$?
took=$(($(date +%s) - start))
[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -le 30 ] &&
  grep -q "start-up watchdog: world rank 0 has waited [6-9]\.[0-9] s in MPI_Init (waiting for every rank to start): a peer has not started" "$work/stopped.log"
check "world rank 1 stopped: exit $rc after $took s, world rank 0 says it waited in MPI_Init" $?
grep "start-up watchdog" "$work/stopped.log"

finish

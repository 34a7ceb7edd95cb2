#!/usr/bin/env bash
# test_watchdog_kill.sh MPIEXEC VICTIM - rank 1 of four dies by SIGKILL in
# the middle of a run; the job must end with a message naming it.
#   1. as launched normally: the launcher (or, failing that, the watchdog)
#      ends the job;
#   2. Open MPI only: with --enable-recovery mpirun lets the others run on,
#      so the message must come from tessera's watchdog; for each kind of
#      communication (all-reduce, reduce-scatter, all-gather, all-to-all,
#      a pipeline's send/recv).
# Each run is bounded by `timeout` (30 s); timing itself is not asserted.
set -u
mpiexec=$1 victim=$2
log=$(mktemp)
# the watchdog writes every rank's ring of recent calls into the working
# directory
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
cd "$work" || exit 1

timeout 30 "$mpiexec" -np 4 --oversubscribe "$victim" kill 1 0.05 >"$log" 2>&1
rc=$?
cat "$log"
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
  echo "FAIL: run 1 exit code $rc (0: finished, 124: hung)"; exit 1
fi
if ! grep -Eq "rank 1 with PID .* (exited|killed)|never arrived: world rank 1 " "$log"; then
  echo "FAIL: run 1 ended without naming rank 1"; exit 1
fi

if "$mpiexec" --version 2>&1 | grep -Eq "Open MPI|OpenRTE"; then # mpiexec says OpenRTE
  # every kind of communication: the watchdog names the dead rank
  for op in allreduce reduce_scatter allgather alltoall sendrecv; do
    timeout 30 "$mpiexec" -np 4 --oversubscribe --enable-recovery "$victim" kill 1 0.05 "$op" \
      >"$log" 2>&1
    rc=$?
    cat "$log"
    if [ "$rc" -eq 124 ]; then
      echo "FAIL: run 2 ($op) hung until the test's 30 s bound"; exit 1
    fi
    if ! grep -Eq "never arrived: world rank 1 |Not waiting in communication: world rank 1: " "$log"; then
      echo "FAIL: run 2 ($op): the watchdog did not name rank 1"; exit 1
    fi
  done
fi
echo "PASS: rank 1 named"

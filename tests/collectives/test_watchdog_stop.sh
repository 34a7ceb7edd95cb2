#!/usr/bin/env bash
# test_watchdog_stop.sh MPIEXEC VICTIM - rank 1 of four is stopped with
# SIGSTOP (alive, never answering) in the middle of each kind of
# communication: all-reduce, reduce-scatter, all-gather, all-to-all and a
# pipeline's send/recv. mpirun sees nothing wrong, so tessera's watchdog
# must end the job, within 30 s of its timeout (0.05 min = 3 s here), with
# a message naming rank 1 and the operation.
set -u
mpiexec=$1 victim=$2
log=$(mktemp)
# the watchdog writes every rank's ring of recent calls into the working
# directory
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
cd "$work" || exit 1
failed=0
for op in allreduce reduce_scatter allgather alltoall sendrecv; do
  start=$(date +%s)
  timeout 60 "$mpiexec" -np 4 --oversubscribe "$victim" stop 1 0.05 "$op" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  case $op in
    sendrecv) named="watchdog: send/recv on group tp .*Not waiting in communication: world rank 1: " ;;
    *) named="watchdog: $op #[0-9]+ on group tp .*never arrived: world rank 1 " ;;
  esac
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$took" -gt 33 ] || ! grep -Eq "$named" "$log"; then
    cat "$log"
    echo "FAIL $op: exit $rc after $took s, or rank 1 and the operation not named"
    failed=1
  else
    echo "PASS $op: ended after $took s: $(grep -Eo "watchdog: [^;]*" "$log" | head -n 1)"
  fi
done
exit $failed

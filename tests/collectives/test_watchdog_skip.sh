#!/usr/bin/env bash
# test_watchdog_skip.sh MPIEXEC VICTIM - one rank of four skips an
# all-reduce; the others must end the job (non-zero exit) with the
# watchdog's message naming the missing rank, well within the bound below.
set -u
mpiexec=$1 victim=$2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# timeout 0.05 min = 3 s; 60 s only bounds a broken watchdog
timeout 60 "$mpiexec" -np 4 --oversubscribe "$victim" skip 1 0.05 >"$log" 2>&1
rc=$?
cat "$log"
if [ "$rc" -eq 0 ]; then
  echo "FAIL: the job finished although rank 1 skipped a collective"; exit 1
fi
if [ "$rc" -eq 124 ]; then
  echo "FAIL: the job hung until the test's own 60 s bound"; exit 1
fi
if ! grep -q "allreduce #4 on group tp" "$log"; then
  echo "FAIL: no watchdog message naming the operation and the group"; exit 1
fi
if ! grep -q "never arrived: world rank 1 " "$log"; then
  echo "FAIL: the watchdog message does not name rank 1 as missing"; exit 1
fi
if grep -q "never arrived: world rank [023]" "$log"; then
  echo "FAIL: a rank that arrived was reported missing"; exit 1
fi
echo "PASS: exit code $rc, rank 1 named"

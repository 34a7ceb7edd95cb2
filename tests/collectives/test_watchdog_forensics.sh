#!/usr/bin/env bash
# test_watchdog_forensics.sh MPIEXEC VICTIM - the watchdog's diagnosis of
# a rank that is alive but elsewhere, on four ranks with a 3 s timeout
# (0.05 min; 60 s only bounds a broken watchdog). Rank 1 in turn:
#   sleep   - sleeps in computation instead of all-reduce #4 on tp;
#   skip    - leaves all-reduce #4 out and goes on, to wait in the final
#             barrier on the world while the others wait at tp #6;
#   other   - makes a barrier where the others make all-reduce #4;
#   nosplit - never comes to the split that makes tp.
# Each must end the job naming rank 1, what it is doing and where the
# calls diverge, and leave every rank's ring of recent calls in a report
# file, the stuck rank's written by a peer from a remote read.
set -u
mpiexec=$1 victim=$2
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
cd "$work" || exit 1
failed=0

fail() {
  cat "$log"
  echo "FAIL $1: $2"
  failed=1
}

# expect MODE PATTERN... : the job fails, in time, and the log matches
# every extended regular expression given.
expect() {
  local mode=$1
  shift
  rm -f tessera-hang-*
  local start rc took
  start=$(date +%s)
  timeout 60 "$mpiexec" -np 4 --oversubscribe "$victim" "$mode" 1 0.05 >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  if [ "$rc" -eq 0 ]; then fail "$mode" "the job finished"; return; fi
  if [ "$rc" -eq 124 ] || [ "$took" -gt 33 ]; then fail "$mode" "took $took s"; return; fi
  for pattern in "$@"; do
    if ! grep -Eq -- "$pattern" "$log"; then fail "$mode" "no line matches: $pattern"; return; fi
  done
  local reports
  reports=$(ls tessera-hang-*.rank*.txt 2>/dev/null | wc -l)
  if [ "$reports" -ne 4 ]; then fail "$mode" "$reports ring reports, not 4"; return; fi
  if ! grep -q "^# tessera: recent communication calls of world rank 1" tessera-hang-*.rank1.txt; then
    fail "$mode" "rank 1's report is not its ring"; return
  fi
  echo "PASS $mode: ended after $took s; $(grep -Eo "Where the ranks diverge: [^.]*|The calls first differ[^.]*" "$log" | head -n 1)"
}

# rank 1 in computation: named as missing and as busy outside
# communication, its ring written for it from a remote read
expect sleep \
  "allreduce #4 on group tp .*never arrived: world rank 1 \(" \
  "world rank 1 is behind on tp: made 3 collectives there, not #4; in computation since [0-9.]+ s; its last call: allreduce #3 on tp \(64 B, from main \(watchdog_victim.c:[0-9]+\)\) - slow or stuck outside communication"
if grep -Eq "never arrived: world ranks? [023]" "$log"; then fail sleep "a rank that arrived was reported missing"; fi
if ! grep -q "^# written by world rank [023] from a remote read" tessera-hang-*.rank1.txt; then
  fail sleep "rank 1's ring was not written by a peer"
fi

# rank 1 skipped one: one collective behind on tp, waiting elsewhere
expect skip \
  "allreduce #6 on group tp .*never arrived: world rank 1 \(" \
  "world rank 1 is behind on tp: made 5 collectives there, not #6; waiting for [0-9.]+ s for barrier #2 on world \(0 B, from main \(watchdog_victim.c:[0-9]+\)\) - waiting in another call, so this one was skipped"

# rank 1 made another collective: the first differing call, with its site
expect other \
  "allreduce #4 on group tp .*at a different collective: world rank 1 \(" \
  "The calls first differ at tp #4: world ranks 0, 2, 3: allreduce \(64 B\) from main \(watchdog_victim.c:[0-9]+\); world rank 1: barrier \(0 B\) from main \(watchdog_victim.c:[0-9]+\)"

# communicator set-up is bounded too
expect nosplit \
  "split #1 on group world .*never arrived: world rank 1 \(" \
  "world rank 1 is behind on world: made 0 collectives there, not #1; in computation since [0-9.]+ s, with no communication call since the world communicator was made"

exit $failed

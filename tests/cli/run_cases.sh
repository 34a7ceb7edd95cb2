#!/usr/bin/env bash
# run_cases.sh - runs `tessera` once per line of a case table and checks the
# exit code and the message of each run.
#
#   run_cases.sh TESSERA TABLE                       each case must exit 2 and
#                                                    print SUBSTRING on stderr
#   run_cases.sh --expect-ok TESSERA TABLE           each case must exit 0 and
#                                                    print SUBSTRING on stdout
#   run_cases.sh --mpirun MPIEXEC NP TESSERA TABLE   each case runs under
#       `MPIEXEC -np NP --oversubscribe`, must exit 2, and exactly one line of
#       the combined output of all ranks may contain SUBSTRING (and exactly
#       one line may carry "error:"): the error is printed once, not per rank
#
# Table format, one case per line ('#' starts a comment line):
#   SUBSTRING | ARGUMENTS
# SUBSTRING is matched literally. ARGUMENTS are split as the shell splits
# them (quotes work). Leading NAME=value words are put in the environment
# of that case only: OMPI_COMM_WORLD_SIZE=4 OMPI_COMM_WORLD_RANK=0 makes
# `tessera` believe it is rank 0 of a 4-rank mpirun job, which is all the
# validation needs, since it runs before MPI is initialised.
#
# Prints one line per case and "N passed, M failed"; exits non-zero if any
# case failed or the table held no case. Called by ctest (tests/cli/).
set -u

mode=single
mpiexec=""
np=0
case "${1:-}" in
--expect-ok) mode=ok; shift ;;
--mpirun) mode=mpi; mpiexec=$2; np=$3; shift 3 ;;
esac
if [ $# -ne 2 ]; then
  echo "usage: $0 [--expect-ok | --mpirun MPIEXEC NP] TESSERA TABLE" >&2
  exit 2
fi
tessera=$1
table=$2
[ -x "$tessera" ] || { echo "run_cases: $tessera is not an executable" >&2; exit 2; }
[ -r "$table" ] || { echo "run_cases: cannot read $table" >&2; exit 2; }

# A case that unexpectedly passes validation would go on to start MPI;
# the limit keeps such a case from hanging the suite.
case_timeout=${TSR_CLI_CASE_TIMEOUT:-60}
workdir=$(mktemp -d "${TMPDIR:-/tmp}/tsr-cli.XXXXXX")
trap 'rm -rf "$workdir"' EXIT

passed=0
failed=0
line_no=0

trim() {
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  s=${s%"${s##*[![:space:]]}"}
  printf '%s' "$s"
}

report_failure() {
  local what=$1 reason=$2
  failed=$((failed + 1))
  echo "FAIL  line $line_no: $what"
  echo "      $reason"
  echo "      --- stdout ---"
  sed 's/^/      | /' "$workdir/out"
  echo "      --- stderr ---"
  sed 's/^/      | /' "$workdir/err"
}

while IFS= read -r raw || [ -n "$raw" ]; do
  line_no=$((line_no + 1))
  line=$(trim "$raw")
  [ -z "$line" ] && continue
  [ "${line#\#}" != "$line" ] && continue
  if [ "${line#*|}" = "$line" ]; then
    echo "run_cases: $table:$line_no: expected 'SUBSTRING | ARGUMENTS'" >&2
    failed=$((failed + 1))
    continue
  fi
  expected=$(trim "${line%%|*}")
  arguments=$(trim "${line#*|}")
  if [ -z "$expected" ]; then
    echo "run_cases: $table:$line_no: empty SUBSTRING" >&2
    failed=$((failed + 1))
    continue
  fi
  # The table is part of the source tree, so letting the shell split it
  # (quotes and all) is as safe as running a script from the same tree.
  words=()
  if ! eval "words=($arguments)" 2>/dev/null; then
    echo "FAIL  line $line_no: cannot split the arguments: $arguments"
    failed=$((failed + 1))
    continue
  fi
  envs=()
  while [ ${#words[@]} -gt 0 ] && [[ ${words[0]} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    envs+=("${words[0]}")
    words=("${words[@]:1}")
  done
  what="tessera ${words[*]:-}"
  [ ${#envs[@]} -gt 0 ] && what="${envs[*]} $what"

  : >"$workdir/out"
  : >"$workdir/err"
  case $mode in
  single | ok)
    env ${envs[@]+"${envs[@]}"} timeout "$case_timeout" "$tessera" ${words[@]+"${words[@]}"} \
      >"$workdir/out" 2>"$workdir/err" </dev/null
    rc=$?
    ;;
  mpi)
    what="mpirun -np $np $what"
    env ${envs[@]+"${envs[@]}"} timeout "$case_timeout" "$mpiexec" -np "$np" --oversubscribe \
      "$tessera" ${words[@]+"${words[@]}"} >"$workdir/out" 2>&1 </dev/null
    rc=$?
    ;;
  esac

  case $mode in
  single)
    if [ "$rc" -ne 2 ]; then
      report_failure "$what" "exit code $rc, expected 2"
    elif ! grep -qF -- "$expected" "$workdir/err"; then
      report_failure "$what" "stderr lacks: $expected"
    elif [ -s "$workdir/out" ]; then
      report_failure "$what" "bad input must print nothing on stdout"
    else
      passed=$((passed + 1))
      echo "ok    line $line_no: $what"
    fi
    ;;
  ok)
    if [ "$rc" -ne 0 ]; then
      report_failure "$what" "exit code $rc, expected 0"
    elif ! grep -qF -- "$expected" "$workdir/out"; then
      report_failure "$what" "stdout lacks: $expected"
    else
      passed=$((passed + 1))
      echo "ok    line $line_no: $what"
    fi
    ;;
  mpi)
    printed=$(grep -cF -- "$expected" "$workdir/out")
    errors=$(grep -c "error:" "$workdir/out")
    if [ "$rc" -ne 2 ]; then
      report_failure "$what" "exit code $rc, expected 2"
    elif [ "$printed" -ne 1 ]; then
      report_failure "$what" "'$expected' printed $printed times, expected once (by rank 0)"
    elif [ "$errors" -ne 1 ]; then
      report_failure "$what" "$errors lines carry 'error:', expected 1"
    else
      passed=$((passed + 1))
      echo "ok    line $line_no: $what"
    fi
    ;;
  esac
done <"$table"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

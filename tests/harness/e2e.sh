# e2e.sh - sourced by the end-to-end test scripts (tests/*/*_e2e.sh): a
# scratch directory removed on exit, PASS/FAIL bookkeeping, the closing
# "N passed, M failed" line, and readers of `--metrics-file` JSON lines.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# check NAME STATUS: counts and prints one result line
check() {
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "PASS $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
}

# refused NAME TEXT COMMAND...: COMMAND exits 2 and its output holds TEXT
# exactly once (bad input: one message, not one per rank)
refused() {
  local name=$1 text=$2
  shift 2
  "$@" >"$work/refused.out" 2>&1
  local rc=$?
  [ $rc -eq 2 ] && [ "$(grep -c -- "$text" "$work/refused.out")" -eq 1 ]
  check "refused: $name (exit $rc)" $?
}

# finish: the closing line; exit status 1 if any check failed
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# losses FILE: the lm loss of each training log line, one per line
losses() { grep '"type": "train"' "$1" | sed 's/.*"lm_loss": \([^,]*\),.*/\1/'; }

# losses_by_iteration FILE: "iteration loss" per training log line
losses_by_iteration() {
  grep '"type": "train"' "$1" | sed 's/.*"iteration": \([0-9]*\),.*"lm_loss": \([^,]*\),.*/\1 \2/'
}

# within A B TOLERANCE STEPS: both files hold STEPS training losses, each
# pair within TOLERANCE relative; prints the worst difference
within() { # a b tolerance steps
  paste <(losses "$1") <(losses "$2") | awk -v tol="$3" -v n="$4" '
    NF != 2 {bad = 1} { r = ($1 - $2) / $1; if (r < 0) r = -r; if (r > w) w = r; if (r > tol) bad = 1 }
    END { printf "  worst relative loss difference %.3g over %d steps\n", w, NR; exit bad || NR != n }'
}

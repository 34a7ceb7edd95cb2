#!/usr/bin/env bash
# expect_exit.sh CODE REGEX COMMAND... - runs COMMAND and passes if it exits
# with CODE and its output (stdout and stderr) matches the extended REGEX.
# Lets CTest check exact exit codes, which it cannot do by itself.
code=$1 regex=$2
shift 2
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne "$code" ]; then echo "FAIL: exit code $rc, expected $code" >&2; exit 1; fi
if ! grep -Eq -- "$regex" <<<"$out"; then echo "FAIL: output does not match: $regex" >&2; exit 1; fi
echo "ok: exit $rc, output matches"

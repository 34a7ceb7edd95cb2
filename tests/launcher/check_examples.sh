#!/usr/bin/env bash
# check_examples.sh TESSERA DIR [--update] - every DIR/*.sbatch was written
# by `tessera slurm`; its "remake:" comment holds the command. Runs that
# command again (with --tessera tessera, as the examples were made) and
# fails if the output differs from the checked-in file; --update rewrites
# the files instead.
set -uo pipefail
tessera=$1 dir=$2 update=${3:-}
status=0 count=0
for file in "$dir"/*.sbatch; do
  cmd=$(sed -n 's/^#   remake:  tessera slurm //p' "$file")
  [ -n "$cmd" ] || { echo "FAIL: $file has no remake line" >&2; status=1; continue; }
  count=$((count + 1))
  eval "set -- $cmd"
  if [ "$update" = --update ]; then
    "$tessera" slurm --tessera tessera "$@" > "$file" && echo "updated $file"
  elif ! diff -u "$file" <("$tessera" slurm --tessera tessera "$@"); then
    echo "FAIL: $file differs from what 'tessera slurm' writes now (rerun with --update if intended)" >&2
    status=1
  fi
done
[ "$count" -gt 0 ] || { echo "FAIL: no example in $dir" >&2; exit 1; }
[ "$status" -eq 0 ] && echo "ok: $count example(s) match"
exit "$status"

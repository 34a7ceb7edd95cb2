#!/usr/bin/env bash
# bad_input_files.sh - makes the files that bad_input_files*.table name
# (FIFOs, directories, a socket, a path longer than PATH_MAX, an HDF5 file
# that needs a filter libhdf5 lacks), then runs a table with run_cases.sh.
#
#   bad_input_files.sh [--mpirun MPIEXEC NP] TESSERA MAKE_FILTERED_H5 TABLE
#
# The files live in a fresh directory exported as $TSR_FILES, and
# $TSR_LONG_PATH is a path inside it longer than PATH_MAX; the tables name
# both (run_cases.sh lets the shell expand its arguments). Cases that need
# a file this user may not read or write are added only when not running
# as root, who may read and write everything; the socket case only where
# python3 can make a socket. Called by ctest (tests/cli/).
set -u

here=$(cd "$(dirname "$0")" && pwd)
mpi=()
if [ "${1:-}" = --mpirun ]; then
  mpi=(--mpirun "$2" "$3")
  shift 3
fi
if [ $# -ne 3 ]; then
  echo "usage: $0 [--mpirun MPIEXEC NP] TESSERA MAKE_FILTERED_H5 TABLE" >&2
  exit 2
fi
tessera=$1
make_h5=$2
table=$3

files=$(mktemp -d "${TMPDIR:-/tmp}/tsr-files.XXXXXX")
trap 'chmod -R u+rwx "$files" 2>/dev/null; rm -rf "$files"' EXIT
export TSR_FILES=$files

set -e
mkfifo "$files/fifo.idx" "$files/binfifo.bin" "$files/fifo.h5" "$files/vocab.fifo" \
  "$files/merges.fifo" "$files/xml.fifo"
: >"$files/fifo.bin"
: >"$files/binfifo.idx"
mkdir "$files/dir.idx" "$files/dir.h5" "$files/indir" "$files/out_text_document.bin"
: >"$files/dir.bin"
: >"$files/plain"
echo "one document" >"$files/in.txt"
echo '{"a": 0, "<|endoftext|>": 1}' >"$files/vocab.json"
: >"$files/merges.txt"
echo '<machine/>' >"$files/notxml.xml"
"$make_h5" "$files/filtered.h5"
long=$files
while [ ${#long} -le 4200 ]; do
  long=$long/$(printf 'd%.0s' $(seq 200))
done
export TSR_LONG_PATH=$long/x_text_document
set +e

# A case that is not refused blocks on a FIFO; fail it fast.
export TSR_CLI_CASE_TIMEOUT=${TSR_CLI_CASE_TIMEOUT:-20}

cases=$files/cases.table
cp "$table" "$cases"
if [ ${#mpi[@]} -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  : >"$files/locked.idx"
  : >"$files/locked.bin"
  chmod 000 "$files/locked.idx"
  cp "$files/vocab.json" "$files/locked.json"
  chmod 000 "$files/locked.json"
  mkdir "$files/readonly"
  chmod 555 "$files/readonly"
  : >"$files/readonly.sbatch"
  chmod 444 "$files/readonly.sbatch"
  cat >>"$cases" <<'EOF'
locked.idx: permission denied | train --data-path "$TSR_FILES/locked" --vocab-size 300
locked.json: permission denied | preprocess --input "$TSR_FILES/in.txt" --output-prefix "$TSR_FILES/out2" --tokenizer-type gpt2 --vocab-file "$TSR_FILES/locked.json" --merge-file "$TSR_FILES/merges.txt"
cannot create files in the directory | slurm --nodes 1 --ntasks-per-node 1 --output "$TSR_FILES/readonly/job.sbatch" -- train
readonly.sbatch cannot be written (permission denied) | slurm --nodes 1 --ntasks-per-node 1 --output "$TSR_FILES/readonly.sbatch" -- train
EOF
fi
if [ ${#mpi[@]} -eq 0 ] && command -v python3 >/dev/null &&
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$files/socket.h5" 2>/dev/null; then
  cat >>"$cases" <<'EOF'
socket.h5 is a socket, not a regular file | train --data-path "$TSR_FILES/socket.h5" --vocab-size 300
socket.h5 is a socket, not a regular file | slurm --nodes 1 --ntasks-per-node 1 --output "$TSR_FILES/socket.h5" -- train
EOF
fi

bash "$here/run_cases.sh" ${mpi[@]+"${mpi[@]}"} "$tessera" "$cases"

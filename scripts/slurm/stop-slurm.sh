#!/usr/bin/env bash
# stop-slurm.sh - stops the daemons start-slurm.sh started, by the PIDs it
# recorded under $TSR_SLURM_DIR/pids and only if each PID still runs the
# program it was recorded for (never by name). slurmd and slurmctld first,
# munged last; SIGKILL after 10 s. Safe to run twice or after a failed start.
DIR=${TSR_SLURM_DIR:-/tmp/tessera-slurm}
PIDS=$DIR/pids

# signal_recorded FILE PROGRAM: sends SIGTERM, prints the pid if it did
signal_recorded() {
  local file=$1 program=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  rm -f "$file"
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$program" ]; then
    kill -TERM "$pid" 2>/dev/null && echo "$pid"
  fi
}

wait_gone() {
  for _ in $(seq 50); do
    local alive=""
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && return 0
    sleep 0.2
  done
  for p in $alive; do
    echo "stop-slurm: pid $p ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$p" 2>/dev/null
  done
}

slurm_pids=""
for f in "$PIDS"/slurmd-*.pid; do
  [ -e "$f" ] && slurm_pids="$slurm_pids $(signal_recorded "$f" slurmd)"
done
slurm_pids="$slurm_pids $(signal_recorded "$PIDS/slurmctld.pid" slurmctld)"
slurm_pids=$(echo $slurm_pids)
[ -n "$slurm_pids" ] && { wait_gone $slurm_pids; echo "stop-slurm: stopped slurm daemons $slurm_pids"; }
munge_pid=$(signal_recorded "$PIDS/munged.pid" munged)
[ -n "$munge_pid" ] && { wait_gone "$munge_pid"; echo "stop-slurm: stopped munged $munge_pid"; }
exit 0

# slurm_harness.sh - sourced by the Slurm job tests (slurm_*_test.sh) once
# TESSERA, REPO, JOB_TIMEOUT, TSR_SLURM_NODES and TSR_SLURM_CPUS are set.
# Skips the test (exit 77) without root or the Slurm packages, starts
# munged, slurmctld and the emulated nodes (scripts/slurm) with their state
# in a scratch $DIR, stops every daemon by its recorded PID (and cancels
# $JID) on every exit path, and leaves the caller in $DIR/job.
#   fail MESSAGE          prints it and the daemons' log tails; exit 1
#   job_field JID FIELD   one field of `scontrol show job` (JobState, Restarts)
#   wait_done JID         waits until the job has ended; prints its state
if [ "$(id -u)" -ne 0 ]; then echo "skipped: needs root"; exit 77; fi
for tool in munged slurmctld slurmd sbatch scontrol scancel; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool missing (scripts/install-deps.sh)"; exit 77; }
done

DIR=$(mktemp -d /tmp/tessera-slurm-test.XXXXXX)
export TSR_SLURM_DIR=$DIR TSR_SLURM_NODES TSR_SLURM_CPUS
JID=""
cleanup() {
  [ -n "$JID" ] && scancel "$JID" 2>/dev/null
  "$REPO/scripts/slurm/stop-slurm.sh"
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
  echo "FAIL: $*" >&2
  for f in "$DIR"/log/*.log; do echo "--- tail $f" >&2; tail -15 "$f" >&2; done
  exit 1
}
job_field() { scontrol show job "$1" -o 2>/dev/null | grep -o "$2=[A-Za-z0-9_]*" | cut -d= -f2; }
wait_done() {
  local state=""
  for _ in $(seq $((JOB_TIMEOUT * 5))); do
    state=$(job_field "$1" JobState)
    case "$state" in PENDING|CONFIGURING|RUNNING|COMPLETING|REQUEUED|"") sleep 0.2 ;; *) break ;; esac
  done
  echo "$state"
}

"$REPO/scripts/slurm/start-slurm.sh" || fail "Slurm did not start"
mkdir -p "$DIR/job" && cd "$DIR/job" || fail "no job directory"

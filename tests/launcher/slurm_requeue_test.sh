#!/usr/bin/env bash
# slurm_requeue_test.sh TESSERA REPO - a real Slurm job stopped early by
# its signal, requeued and resumed.
#
# Starts Slurm with one emulated node (scripts/slurm), has `tessera slurm`
# write the sbatch script of a 2-rank training with --save (which asks Slurm
# for USR1 before the time limit, adds --exit-signal-handler and requeues
# the job when training stopped early), and runs it twice:
#   reference: to the end, undisturbed;
#   signalled: `scancel --signal=USR1` once a few iterations are logged, as
#   Slurm does before the time limit. The ranks save and exit 0, the script
#   requeues, the job runs again, resumes from the checkpoint and completes.
# Checks the requeue happened (Restarts=1, the log says why) and that the
# signalled job's losses (--metrics-file, appended by the resumed run)
# equal the reference's, bitwise.
# Slurm set-up and clean-up: slurm_harness.sh (exit 77 without root or
# the Slurm packages).
set -uo pipefail
TESSERA=$(realpath "$1")
REPO=$(realpath "$2")
JOB_TIMEOUT=${TSR_SLURM_JOB_TIMEOUT:-150}

# the loss readers (their scratch directory is not needed)
source "$REPO/tests/harness/e2e.sh"
rm -rf "$work"
TSR_SLURM_NODES=1 TSR_SLURM_CPUS=4
source "$REPO/tests/launcher/slurm_harness.sh"

# write_script NAME: the sbatch script of the 2-rank run saving to NAME/
write_script() {
  "$TESSERA" slurm --nodes 1 --ntasks-per-node 2 --time 00:05:00 --job-name "$1" \
    --output "$1.sbatch" -- train --train-iters 300 --num-layers 2 --hidden-size 64 \
    --num-attention-heads 4 --seq-length 32 --micro-batch-size 2 --global-batch-size 8 \
    --lr 3e-3 --lr-warmup-iters 3 --hidden-dropout 0.1 --seed 5 --log-interval 1 \
    --save "$DIR/job/$1" --metrics-file "$DIR/job/$1.jsonl" ||
    fail "tessera slurm could not write the script"
}
write_script ref
grep -q -- '--exit-signal-handler' ref.sbatch && grep -q '^#SBATCH --signal=USR1@120$' ref.sbatch &&
  grep -q '^#SBATCH --requeue$' ref.sbatch || fail "the script does not ask for the signal and the requeue"
JID=$(sbatch --parsable ref.sbatch) || fail "sbatch refused the script"
state=$(wait_done "$JID")
[ "$state" = COMPLETED ] || { cat ref-"$JID".out; fail "reference job $JID ended $state"; }
[ "$(losses ref.jsonl | wc -l)" -eq 300 ] || fail "the reference logged $(losses ref.jsonl | wc -l) of 300 iterations"
echo "reference job $JID: COMPLETED, 300 iterations"

write_script sig
JID=$(sbatch --parsable sig.sbatch) || fail "sbatch refused the script"
for _ in $(seq $((JOB_TIMEOUT * 10))); do
  [ "$(losses sig.jsonl 2>/dev/null | wc -l)" -ge 5 ] && break
  sleep 0.1
done
scancel --signal=USR1 "$JID" || fail "scancel --signal=USR1 failed"
echo "signalled job $JID with USR1"
# Slurm holds a requeued batch job back for a while before it may start
# again (its begin time moves about two minutes on); the test lets it start
# at once, which is all that changes from a real requeue
for _ in $(seq $((JOB_TIMEOUT * 5))); do
  [ "$(job_field "$JID" Restarts)" = 1 ] && [ "$(job_field "$JID" JobState)" = PENDING ] && break
  sleep 0.2
done
scontrol update JobId="$JID" StartTime=now 2>/dev/null
state=$(wait_done "$JID")
log=sig-$JID.out
echo "----- $log"; cat "$log"; echo "-----"
[ "$state" = COMPLETED ] || fail "signalled job $JID ended $state"
[ "$(job_field "$JID" Restarts)" = 1 ] || fail "job $JID was not requeued once (Restarts=$(job_field "$JID" Restarts))"
stopped=$(sed -n 's/.*stopping at iteration \([0-9]*\) of 300: SIGUSR1 received.*/\1/p' "$log")
[ -n "$stopped" ] && [ "$stopped" -lt 300 ] || fail "the log does not say the run stopped on SIGUSR1"
grep -q "tessera job: stopped at iteration $stopped of 300; requeueing" "$log" ||
  fail "the script did not requeue after the stop at $stopped"
grep -q "loaded checkpoint of iteration $stopped" "$log" || fail "the requeued run did not resume at $stopped"
cmp -s <(losses_by_iteration ref.jsonl) <(losses_by_iteration sig.jsonl) ||
  fail "the stopped and requeued job's losses differ from the reference's"
echo "PASS: job $JID stopped at iteration $stopped on USR1, was requeued, resumed and its 300 losses equal the undisturbed job's bitwise"

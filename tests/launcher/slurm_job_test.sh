#!/usr/bin/env bash
# slurm_job_test.sh TESSERA REPO - a real Slurm job, end to end.
#
# Starts munged, slurmctld and two emulated nodes (scripts/slurm), has
# `tessera slurm` write the sbatch script for 2 nodes x 2 tasks running a
# short 4-rank training, submits it, waits, and checks that the job
# COMPLETED and that its log shows 4 ranks on 2 nodes, each bound (as read
# back from the OS) to the cores `tessera topo` plans for its local rank.
# Slurm set-up and clean-up: slurm_harness.sh (exit 77 without root or
# the Slurm packages).
set -uo pipefail
TESSERA=$(realpath "$1")
REPO=$(realpath "$2")
JOB_TIMEOUT=${TSR_SLURM_JOB_TIMEOUT:-100}

TSR_SLURM_NODES=2 TSR_SLURM_CPUS=8
source "$REPO/tests/launcher/slurm_harness.sh"

# a tiny data-parallel run (4 ranks = dp 4): what is checked is the launch,
# the placement and the exit status, not what training prints
"$TESSERA" slurm --nodes 2 --ntasks-per-node 2 --time 00:03:00 --job-name tsr-ci \
  --output job.sbatch -- train --train-iters 3 --num-layers 2 --hidden-size 32 \
  --num-attention-heads 4 --seq-length 16 --micro-batch-size 2 ||
  fail "tessera slurm could not write the script"

run_job() { # sets JID, state, log
  JID=$(sbatch --parsable job.sbatch) || fail "sbatch refused the script"
  echo "submitted job $JID"
  state=$(wait_done "$JID")
  log=$DIR/job/tsr-ci-$JID.out
  echo "job $JID: $state"; echo "----- $log"; cat "$log" 2>/dev/null; echo "-----"
}
run_job
# Emulated nodes share one host, so Open MPI talks TCP over loopback; under
# load its TCP transport occasionally fails to connect ("failed to TCP
# connect", then a crash inside the library). That is the test bed, not
# tessera: such a failure gets one more attempt, and says so.
if [ "$state" != COMPLETED ] && grep -q "failed to TCP connect" "$log" 2>/dev/null; then
  echo "job $JID failed in Open MPI's TCP transport between emulated nodes; one more attempt"
  run_job
fi
[ "$state" = COMPLETED ] || fail "job $JID ended $state, not COMPLETED"

# the binding each local rank should have, planned on this machine
declare -A want
while read -r _ _ local_rank _ _ _ cpus _; do
  want[${local_rank%:}]=$cpus
done < <("$TESSERA" topo --ranks-per-node 2 | grep '^  local rank ')
[ "${#want[@]}" -eq 2 ] || fail "tessera topo did not print a plan for 2 local ranks"

grep -q '^ranks: 4 on 2 node(s) (srun)$' "$log" || fail "the log does not show 4 ranks on 2 nodes"
lines=$(grep -c '^tessera bind: ' "$log")
[ "$lines" -eq 4 ] || fail "expected 4 'tessera bind:' lines, found $lines"
declare -A seen_rank nodes
while read -r line; do
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  rank=$(field rank); node=$(field node); local=$(field local)
  cpus=$(field cpus); actual=$(field actual); host=$(field host)
  r=${rank%/4}; n=${node%/2}; l=${local%/2}
  [ "$rank" = "$r/4" ] && [ "$node" = "$n/2" ] && [ "$local" = "$l/2" ] ||
    fail "rank/node/local not of 4 ranks, 2 nodes, 2 per node: $line"
  [ "$n" -eq $((r / 2)) ] && [ "$l" -eq $((r % 2)) ] || fail "rank $r placed on node $n as local $l: $line"
  [ "$host" = "n$((n + 1))" ] || fail "rank $r on node $n reports host $host: $line"
  [ "$cpus" = "${want[$l]}" ] || fail "local rank $l planned cpus $cpus, tessera topo says ${want[$l]}"
  [ "$actual" = "$cpus" ] || fail "rank $r is bound to $actual, not to its planned $cpus"
  seen_rank[$r]=1; nodes[$n]=$(( ${nodes[$n]:-0} + 1 ))
done < <(grep '^tessera bind: ' "$log")
[ "${#seen_rank[@]}" -eq 4 ] || fail "not every rank 0..3 reported"
[ "${nodes[0]:-0}" -eq 2 ] && [ "${nodes[1]:-0}" -eq 2 ] || fail "ranks are not 2 per node"
echo "PASS: job $JID ran 4 ranks on 2 nodes, bound as planned (local 0: ${want[0]}, local 1: ${want[1]})"

#!/usr/bin/env bash
# start-slurm.sh - starts a throw-away Slurm cluster on this machine: munged,
# slurmctld and one slurmd per emulated node, all as root, without systemd.
# Used by the "slurm" tests (tests/launcher/slurm_job_test.sh) and by anyone
# who wants to try the generated sbatch scripts locally.
#
#   TSR_SLURM_DIR    state, logs and pid files (default /tmp/tessera-slurm)
#   TSR_SLURM_NODES  emulated nodes n1..nN (default 2); they share this
#                    host, each slurmd on its own port
#   TSR_SLURM_CPUS   CPUs each node advertises (default 8; may exceed the
#                    real count: slurm.conf is trusted over the hardware)
#
# Every daemon's PID is recorded under $TSR_SLURM_DIR/pids; stop-slurm.sh
# stops exactly those. The packages come from scripts/install-deps.sh.
# Writes /etc/slurm/slurm.conf (clients read it from there).
set -euo pipefail
DIR=${TSR_SLURM_DIR:-/tmp/tessera-slurm}
NODES=${TSR_SLURM_NODES:-2}
CPUS=${TSR_SLURM_CPUS:-8}
PIDS=$DIR/pids LOGS=$DIR/log STATE=$DIR/state
HOST=$(hostname -s)
say() { echo "start-slurm: $*"; }
die() { echo "start-slurm: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (Slurm's daemons and munge need it)"
for tool in munged slurmctld slurmd sinfo scontrol; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh"
done
case "$NODES" in ''|*[!0-9]*|0) die "TSR_SLURM_NODES must be a positive number";; esac
mkdir -p "$PIDS" "$LOGS"
for f in "$PIDS"/*.pid; do
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null &&
    die "$(basename "$f" .pid) is already running (pid $(cat "$f")); run stop-slurm.sh first"
done
rm -rf "$STATE" "$PIDS"/*.pid "$LOGS"/*.log
mkdir -p "$STATE/ctld"

# munge: the key is made by the package; create one if it is missing
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if [ -S /run/munge/munge.socket.2 ] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  die "a munged not started by this script already serves /run/munge; stop it first"
fi
rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
runuser -u munge -- munged
for _ in $(seq 100); do [ -s /run/munge/munged.pid ] && [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
[ -s /run/munge/munged.pid ] || die "munged did not start (see /var/log/munge/munged.log)"
cp /run/munge/munged.pid "$PIDS/munged.pid"
munge -n | unmunge >/dev/null || die "munge cannot encode and decode a credential"

# slurm.conf: n1..nN on this host, each slurmd on its own port; no cgroups,
# no accounting; every node's tasks get a private TmpFS (PMIx creates its
# per-step directory there, which would collide in a shared /tmp)
mem=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
mem=$(( mem / NODES / 2 )); [ "$mem" -ge 256 ] || mem=256
node_lines=""
for i in $(seq 1 "$NODES"); do
  mkdir -p "$STATE/spool-n$i" "$STATE/tmp-n$i"
  node_lines+="NodeName=n$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((17000 + i)) CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN"$'\n'
done
mkdir -p /etc/slurm
cat > "$DIR/slurm.conf" <<CONF
# written by tessera's scripts/slurm/start-slurm.sh
ClusterName=tessera
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool-%n
TmpFS=$STATE/tmp-%n
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd-%n.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
$node_lines
PartitionName=debug Nodes=n[1-$NODES] Default=YES MaxTime=INFINITE State=UP
CONF
cp "$DIR/slurm.conf" /etc/slurm/slurm.conf

slurmctld -i
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q 'is UP' || { tail -20 "$LOGS/slurmctld.log" >&2; die "slurmctld did not come up"; }
for i in $(seq 1 "$NODES"); do slurmd -N "n$i"; done
for _ in $(seq 150); do
  [ "$(sinfo -h -N -t idle -o %N | sort -u | wc -l)" -ge "$NODES" ] && break
  sleep 0.2
done
[ "$(sinfo -h -N -t idle -o %N | sort -u | wc -l)" -ge "$NODES" ] ||
  { tail -20 "$LOGS"/slurmd-*.log >&2; die "the nodes did not become idle"; }
for f in "$PIDS"/*.pid; do say "$(basename "$f" .pid) pid $(cat "$f")"; done
say "up: $NODES node(s) x $CPUS CPUs; state in $DIR"

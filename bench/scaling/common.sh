# common.sh - sourced by the bench/scaling scripts: calibrate this machine
# and train one layout with --cluster, reading back the prediction line.
#   calibrate FILE                 one thread per rank, 2 ranks (the links)
#   measure NP FILE FLAGS...       sets pred_ms meas_ms pred_mem rss, and load and
#                                  load_ms (the busiest expert load of an exchange and the
#                                  prediction at it; 1 and pred_ms without expert
#                                  parallelism); empty on failure
export OMP_NUM_THREADS=1
calibrate() {
  "$mpiexec" -np 2 --oversubscribe "$tessera" calibrate --out "$1" | tail -n 1
}
measure() {
  local np=$1 cluster=$2 line
  shift 2
  rm -f "$work/m.jsonl"
  "$mpiexec" -np "$np" --oversubscribe "$tessera" train "$@" --cluster "$cluster" \
    --metrics-file "$work/m.jsonl" >/dev/null 2>&1
  line=$(grep '"type": "prediction"' "$work/m.jsonl" 2>/dev/null)
  get() { echo "$line" | sed "s/.*\"$1\": \([^,}]*\).*/\1/"; }
  pred_ms="" meas_ms="" pred_mem="" rss="" load="" load_ms=""
  [ -n "$line" ] || return 1
  pred_ms=$(get predicted_ms)
  load=$(get expert_load)
  load_ms=$(get predicted_at_load_ms)
  meas_ms=$(get measured_ms)
  pred_mem=$(get predicted_memory_bytes)
  rss=$(get peak_rss_bytes)
}

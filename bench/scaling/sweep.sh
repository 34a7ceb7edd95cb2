#!/usr/bin/env bash
# sweep.sh [TESSERA] [MPIEXEC] [OUTDIR] - scaling studies on this machine,
# measured and predicted on the same axes: strong scaling (data parallel,
# a fixed global batch of 32 samples, 1, 2, 4 ranks), weak scaling (8
# samples per rank) and a layout sweep at 4 ranks (TP, PP, DP mixes).
# Calibrates the machine first (tessera calibrate), trains each point
# with --cluster, and writes OUTDIR/scaling.csv (one row per point) and
# OUTDIR/scaling.png (gnuplot: tokens/s measured and predicted per
# point). One thread per rank; this machine's 2 cores make the 4-rank
# points oversubscribed (the model shares the cores: docs/planner.md).
set -u
tessera=${1:-build/bin/tessera}
mpiexec=${2:-mpirun}
out=${3:-bench/scaling/out}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/common.sh"
calibrate "$work/local.json"

model=(--num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256
       --micro-batch-size 4 --data-path synthetic:addition:4 --train-iters 6
       --log-interval 6 --log-level warn)
csv="$out/scaling.csv"
echo "study,ranks,layout,samples,predicted_ms,measured_ms,predicted_tokens_per_s,measured_tokens_per_s" >"$csv"
point() { # study ranks samples name flags...
  local study=$1 np=$2 samples=$3 name=$4
  shift 4
  if measure "$np" "$work/local.json" "${model[@]}" --global-batch-size "$samples" "$@"; then
    awk -v s="$study" -v np="$np" -v n="$name" -v b="$samples" -v p="$pred_ms" -v m="$meas_ms" \
      'BEGIN { t = b * 256; printf "%s,%d,%s,%d,%.3f,%.3f,%.1f,%.1f\n", s, np, n, b, p, m,
               t / (p / 1e3), t / (m / 1e3) }' >>"$csv"
  else
    echo "sweep: $study $np ranks $name failed" >&2
  fi
}
for np in 1 2 4; do point strong "$np" 32 "DP $np"; done
for np in 1 2 4; do point weak "$np" $((8 * np)) "DP $np"; done
point layouts 4 32 "DP 4"
point layouts 4 32 "TP 2 x DP 2" --tensor-model-parallel-size 2
point layouts 4 32 "TP 2 SP x DP 2" --tensor-model-parallel-size 2 --sequence-parallel
point layouts 4 32 "PP 2 x DP 2" --pipeline-model-parallel-size 2
point layouts 4 32 "TP 2 x PP 2" --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2
point layouts 4 32 "TP 4" --tensor-model-parallel-size 4
point layouts 4 32 "PP 4" --pipeline-model-parallel-size 4
column -s, -t <"$csv"

# one panel per study: measured and predicted tokens/s per point
gnuplot <<PLOT
set terminal pngcairo size 1500,450 font ",10"
set output "$out/scaling.png"
set datafile separator ","
set key top left
set grid ytics
set ylabel "tokens/s"
set style data linespoints
set multiplot layout 1,3 title "tessera on this machine (2 cores, 1 thread per rank): measured and predicted"
set title "strong scaling (32 samples)"
set xlabel "ranks"
set xtics 1
set yrange [0:*]
plot "< grep ^strong $csv" using 2:8 title "measured" pt 7, "" using 2:7 title "predicted" pt 4 dt 2
set title "weak scaling (8 samples per rank)"
plot "< grep ^weak $csv" using 2:8 title "measured" pt 7, "" using 2:7 title "predicted" pt 4 dt 2
set title "layouts of 4 ranks (32 samples)"
set xlabel ""
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.6 border -1
set key top right
set xtics rotate by -30
plot "< grep ^layouts $csv" using 8:xtic(3) title "measured", "" using 7 title "predicted"
unset multiplot
PLOT
echo "sweep: $csv, $out/scaling.png"

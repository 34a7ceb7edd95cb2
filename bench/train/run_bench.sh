#!/usr/bin/env bash
# run_bench.sh [BUILD_DIR] - training throughput of tessera against PyTorch
# on this machine, in one run: sgemm peak, then for each shape tessera and
# PyTorch (same threads), tokens/s, ratio, achieved GFLOP/s (Megatron's
# FLOPs formula) and MFU against the measured sgemm peak.
#   THREADS=2 ITERS=6 bench/train/run_bench.sh build
# Needs Debian's python3-torch for the PyTorch column.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
threads=${THREADS:-2}
iters=${ITERS:-6}
tessera=$build/bin/tessera
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

peak=$("$build/bench/train/sgemm_peak" "$threads" | awk '{print $2}')
echo "sgemm peak ($threads threads): $peak GFLOP/s"
echo "tessera sets OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 for itself (launcher/main.c);"
echo "PyTorch is run both as installed (torch) and with the same two settings (torch/passive)"
printf '%-10s %14s %12s %14s %7s %9s %10s %7s\n' shape "tessera tok/s" "torch tok/s" \
  "torch/passive" ratio "ratio/p" "GFLOP/s" MFU

run_shape() {
  local name=$1 layers=$2 hidden=$3 heads=$4 vocab=$5 seq=$6 mb=$7
  local metrics
  metrics=$(mktemp)
  "$tessera" train --num-layers "$layers" --hidden-size "$hidden" --num-attention-heads "$heads" \
    --vocab-size "$vocab" --make-vocab-size-divisible-by 1 --seq-length "$seq" \
    --micro-batch-size "$mb" --train-iters $((iters + 2)) --log-interval 1 \
    --data-path synthetic:random --lr 1e-4 --log-level warn --metrics-file "$metrics"
  # median of the iterations after two warm-up ones
  local tok tflops
  tok=$(grep '"type": "train"' "$metrics" | tail -n "$iters" |
        sed 's/.*"tokens_per_second": \([0-9.e+]*\).*/\1/' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  tflops=$(grep '"type": "train"' "$metrics" | tail -n "$iters" |
        sed 's/.*"tflops_per_second": \([0-9.e+-]*\).*/\1/' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  rm -f "$metrics"
  local torch_tok="n/a" torch_passive="n/a" ratio="n/a" ratio_passive="n/a"
  if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    torch_tok=$(/usr/bin/python3 "$here/torch_train.py" "$layers" "$hidden" "$heads" "$vocab" "$seq" "$mb" "$iters" "$threads" | awk '{print $2}')
    torch_passive=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 /usr/bin/python3 "$here/torch_train.py" "$layers" "$hidden" "$heads" "$vocab" "$seq" "$mb" "$iters" "$threads" | awk '{print $2}')
    ratio=$(awk -v a="$tok" -v b="$torch_tok" 'BEGIN {printf "%.2fx", a / b}')
    ratio_passive=$(awk -v a="$tok" -v b="$torch_passive" 'BEGIN {printf "%.2fx", a / b}')
  fi
  local gflops mfu
  gflops=$(awk -v t="$tflops" 'BEGIN {printf "%.1f", t * 1000}')
  mfu=$(awk -v g="$gflops" -v p="$peak" 'BEGIN {printf "%.1f%%", 100 * g / p}')
  printf '%-10s %14.1f %12s %14s %7s %9s %10s %7s\n' "$name" "$tok" "$torch_tok" \
    "$torch_passive" "$ratio" "$ratio_passive" "$gflops" "$mfu"
}

run_shape tiny 4 256 4 256 128 8
run_shape gpt2-124M 12 768 12 50304 256 4

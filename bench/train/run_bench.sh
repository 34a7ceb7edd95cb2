#!/usr/bin/env bash
# run_bench.sh [BUILD_DIR] - training throughput of tessera against PyTorch
# on this machine, in one run with the same thread settings throughout:
# first the two peaks, then two rows per shape.
#   THREADS=2 ITERS=6 bench/train/run_bench.sh build
# Printed first:
#   sgemm peak  OpenBLAS sgemm, best of sgemm_peak's square sizes: the
#               fp32 rows' MFU denominator
#   bf16 peak   oneDNN's bf16 matmul (fp32 accumulation), the best GFLOP/s
#               bench_gemm_bf16 reports on the GPT-2-124M step's GEMMs:
#               the bf16 rows' MFU denominator
# Then per shape a row of each precision, with these columns:
#   prec           fp32: tessera and PyTorch in fp32;
#                  bf16: `tessera train --bf16` (bf16 matrix products through
#                  oneDNN, fp32 accumulation, fp32 master weights) and PyTorch
#                  under torch.autocast("cpu", dtype=torch.bfloat16)
#   tessera tok/s  tessera's median tokens/s after two warm-up iterations
#   torch tok/s    PyTorch as installed (its OpenMP threads spin when idle)
#   torch/passive  PyTorch with tessera's idle-thread settings
#                  (OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=4)
#   ratio          tessera tok/s / torch tok/s of the same row's precision
#                  (bf16 row: tessera bf16 / PyTorch bf16 autocast)
#   ratio/p        tessera tok/s / torch/passive tok/s, likewise
#   bf16/fp32      bf16 row only: tessera bf16 tok/s / tessera fp32 tok/s
#   GFLOP/s        tessera's achieved GFLOP/s (the metrics file's
#                  tflops_per_second, Megatron's FLOPs formula)
#   MFU            GFLOP/s / peak: fp32 row against the sgemm peak, bf16 row
#                  against the bf16 peak
# Needs Debian's python3-torch for the PyTorch columns and a build with
# oneDNN for the bf16 row (n/a where either is missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
threads=${THREADS:-2}
iters=${ITERS:-6}
tessera=$build/bin/tessera
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

peak=$("$build/bench/train/sgemm_peak" "$threads" | awk '{print $2}')
# bench_gemm_bf16's shape rows: the name fills 26 columns, then fp32,
# sbgemm, x, rel, oneDNN GFLOP/s ("-" where oneDNN is missing), x, rel, impl
bf16_peak=$("$build/bench/kernels/bench_gemm_bf16" --threads "$threads" |
  awk '/^(fwd|dX|dW) / {split(substr($0, 27), f, " "); if (f[5] != "-" && f[5] + 0 > best) best = f[5] + 0}
       END {if (best > 0) printf "%.1f\n", best; else print "n/a"}')
echo "sgemm peak ($threads threads): $peak GFLOP/s (OpenBLAS sgemm, fp32 rows' MFU)"
echo "bf16 peak ($threads threads): $bf16_peak GFLOP/s (oneDNN bf16 matmul, best of bench_gemm_bf16; bf16 rows' MFU)"
echo "tessera sets OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 for itself (launcher/main.c);"
echo "PyTorch is run both as installed (torch) and with the same two settings (torch/passive);"
echo "bf16 rows: tessera --bf16 against PyTorch under torch.autocast(\"cpu\", dtype=torch.bfloat16)"
printf '%-10s %4s %14s %12s %14s %7s %9s %9s %10s %7s\n' shape prec "tessera tok/s" "torch tok/s" \
  "torch/passive" ratio "ratio/p" "bf16/fp32" "GFLOP/s" MFU

# median of the iterations after two warm-up ones of one metrics field
median_field() {
  grep '"type": "train"' "$1" | tail -n "$iters" |
    sed "s/.*\"$2\": \([0-9.e+-]*\).*/\1/" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# tessera_run EXTRA_FLAG LAYERS HIDDEN HEADS VOCAB SEQ MB: prints
# "tokens_per_second tflops_per_second", or fails
tessera_run() {
  local extra=$1 layers=$2 hidden=$3 heads=$4 vocab=$5 seq=$6 mb=$7
  local metrics
  metrics=$(mktemp)
  if ! "$tessera" train --num-layers "$layers" --hidden-size "$hidden" --num-attention-heads "$heads" \
    --vocab-size "$vocab" --make-vocab-size-divisible-by 1 --seq-length "$seq" \
    --micro-batch-size "$mb" --train-iters $((iters + 2)) --log-interval 1 \
    --data-path synthetic:random --lr 1e-4 --log-level warn --metrics-file "$metrics" ${extra:+"$extra"}; then
    rm -f "$metrics"
    return 1
  fi
  echo "$(median_field "$metrics" tokens_per_second) $(median_field "$metrics" tflops_per_second)"
  rm -f "$metrics"
}

# torch_run PRECISION [ENV=VALUE...] -- LAYERS ... THREADS: PyTorch's tokens/s
torch_run() {
  local precision=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" /usr/bin/python3 "$here/torch_train.py" "$@" "$precision" | awk '{print $2}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.2fx", a / b}'; }

run_shape() {
  local name=$1 layers=$2 hidden=$3 heads=$4 vocab=$5 seq=$6 mb=$7
  local shape=("$layers" "$hidden" "$heads" "$vocab" "$seq" "$mb")
  local have_torch=0
  /usr/bin/python3 -c "import torch" 2>/dev/null && have_torch=1
  local fp32_tok="" prec
  for prec in fp32 bf16; do
    local flag="" tok="n/a" tflops="n/a" out
    if [ "$prec" = bf16 ]; then flag=--bf16; fi
    if out=$(tessera_run "$flag" "${shape[@]}"); then
      read -r tok tflops <<<"$out"
    elif [ "$prec" = fp32 ]; then
      exit 1
    fi
    local torch_tok="n/a" torch_passive="n/a"
    if [ "$have_torch" = 1 ]; then
      torch_tok=$(torch_run "$prec" -- "${shape[@]}" "$iters" "$threads")
      torch_passive=$(torch_run "$prec" OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 -- \
        "${shape[@]}" "$iters" "$threads")
    fi
    local vs_fp32="-" gflops="n/a" mfu="n/a" p=$peak
    if [ "$prec" = fp32 ]; then
      fp32_tok=$tok
    else
      vs_fp32=$(ratio "$tok" "$fp32_tok")
      p=$bf16_peak
    fi
    if [ "$tflops" != n/a ]; then
      gflops=$(awk -v t="$tflops" 'BEGIN {printf "%.1f", t * 1000}')
      if [ "$p" != n/a ]; then
        mfu=$(awk -v g="$gflops" -v p="$p" 'BEGIN {printf "%.1f%%", 100 * g / p}')
      fi
      tok=$(awk -v t="$tok" 'BEGIN {printf "%.1f", t}')
    fi
    printf '%-10s %4s %14s %12s %14s %7s %9s %9s %10s %7s\n' "$name" "$prec" "$tok" "$torch_tok" \
      "$torch_passive" "$(ratio "$tok" "$torch_tok")" "$(ratio "$tok" "$torch_passive")" "$vs_fp32" \
      "$gflops" "$mfu"
  done
}

run_shape tiny 4 256 4 256 128 8
run_shape gpt2-124M 12 768 12 50304 256 4

#!/usr/bin/env bash
# gpu-check.sh [BUILD_DIR] - on a machine with a GPU: builds tessera with
# CUDA and NCCL and runs every GPU test in one go (ctest label "gpu"):
#   test_kernels_cuda            the norm, activation, rotary and bf16
#                                conversion kernels against the CPU's
#   test_kernels_cuda_train      the embedding, loss, element-wise, sum of
#                                squares and optimizer kernels against the CPU's
#   test_kernels_cuda_attention  flash attention (forward, backward) and the
#                                cuBLASLt products (fp32 and bf16) against the CPU's
#   test_kernels_cuda_head       the fused LM head (fp32 and bf16) against the
#                                CPU kernels
#   test_optimizer_cuda          the optimizer step (sum of squares, AdamW) over
#                                the CPU optimizer's pieces, against the CPU's
#   test_comm_gpu_np1/np2        the collectives on device memory: 1 rank per
#                                GPU -> NCCL; 2 ranks on one GPU -> MPI staging
#                                through pinned host memory
# The report (ctest's output) goes to BUILD_DIR/gpu-check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
dir=${1:-build-gpu}
nvidia-smi -L || { echo "gpu-check: no GPU visible"; exit 1; }
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DTSR_ENABLE_CUDA=ON -DTSR_BUILD_BENCH=OFF
cmake --build "$dir" -j"$(nproc)" --target test_comm_gpu test_kernels_cuda \
  test_kernels_cuda_train test_kernels_cuda_attention test_kernels_cuda_head \
  test_optimizer_cuda
(cd "$dir" && ctest -L gpu --output-on-failure 2>&1 | tee gpu-check.log)

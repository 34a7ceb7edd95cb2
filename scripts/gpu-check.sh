#!/usr/bin/env bash
# gpu-check.sh [BUILD_DIR] - on a machine with a GPU: builds tessera with
# CUDA and NCCL and runs the device-memory collectives tests in one go
# (ctest label "gpu"): 1 rank per GPU -> the NCCL backend; 2 ranks on one
# GPU -> the MPI backend staging device buffers through pinned host memory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
dir=${1:-build-gpu}
nvidia-smi -L || { echo "gpu-check: no GPU visible"; exit 1; }
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DTSR_ENABLE_CUDA=ON -DTSR_BUILD_BENCH=OFF
cmake --build "$dir" -j"$(nproc)" --target test_comm_gpu
(cd "$dir" && ctest -L gpu --output-on-failure)

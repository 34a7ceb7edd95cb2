#!/usr/bin/env bash
# build.sh [BUILD_DIR] [CMAKE_ARGS...] - configures and builds tessera.
#   scripts/build.sh                      release build in ./build
#   scripts/build.sh build-asan -DTSR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" "$@"
cmake --build "$dir" -j"$(nproc)"

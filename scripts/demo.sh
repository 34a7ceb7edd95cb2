#!/usr/bin/env bash
# demo.sh - the main job: installs what is missing, builds, then trains on
# the built-in synthetic data on 1 rank and on 4 ranks under mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release
source scripts/mpi-env.sh
echo "== 1 rank"
build/bin/tessera train --data-path synthetic:addition "$@"
echo "== 4 ranks (tensor-parallel 2 x data-parallel 2)"
mpirun --oversubscribe -np 4 build/bin/tessera train --tensor-model-parallel-size 2 \
  --data-path synthetic:addition "$@"

#!/usr/bin/env bash
# install-deps.sh - installs what tessera needs on Debian 12 (as root, or
# through sudo). Does nothing when everything is already there, so the
# README's commands stay fast on a prepared machine.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev          # MPI between ranks
  libhdf5-openmpi-dev hdf5-tools      # parallel HDF5 checkpoints; h5dump
  libhwloc-dev hwloc                  # topology and binding
  libcunit1-dev                       # unit tests
  libopenblas-dev                     # sgemm on CPU
  libjansson-dev                      # Hugging Face config.json and safetensors headers
  libdnnl-dev                         # oneDNN bf16 matmul (bench/kernels/bench_gemm_bf16)
  ocl-icd-opencl-dev                  # Debian's oneDNN CMake config requires OpenCL's (a recommend only)
  gnuplot-nox                         # bench/scaling plots
  slurmctld slurmd slurm-client munge # a throw-away Slurm for the "slurm" tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Package scripts must not start daemons (munge, slurmctld, slurmd): on a
# machine without systemd they would run unmanaged, and the tests start their
# own by scripts/slurm/start-slurm.sh. A policy-rc.d that refuses every
# start is in place only while apt runs, and only if none was there already.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 0755 "$policy"
  own_policy=1
fi
status=0
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" || status=$?
[ "$own_policy" -eq 1 ] && $sudo rm -f "$policy"
exit "$status"

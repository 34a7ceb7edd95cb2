# Finds every dependency of tessera and records what was found for the
# configure summary. Required: MPI, HDF5, hwloc, OpenBLAS, OpenMP (and CUnit
# for tests). Optional: oneDNN (--bf16), CUDA toolkit + cuBLAS, NCCL. scripts/install-deps.sh
# installs the required ones on Debian 12.
find_package(PkgConfig REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(OpenMP REQUIRED COMPONENTS C)
pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc>=2.0)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
# config.json and safetensors headers of Hugging Face models (tessera convert)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson>=2.10)
if(TSR_BUILD_TESTS)
  pkg_check_modules(CUNIT REQUIRED IMPORTED_TARGET cunit)
endif()

# Parallel HDF5 lets every rank write its own hyperslab of one checkpoint
# file through MPI-IO; the serial build cannot do that, so it is refused.
# >= 1.10.2: checkpoints use H5F_LIBVER_V18 (checksummed metadata)
pkg_check_modules(HDF5 IMPORTED_TARGET hdf5-openmpi>=1.10.2)
if(HDF5_FOUND)
  set(TSR_HDF5_IS_PARALLEL 1)
  set(TSR_HDF5_SUMMARY "${HDF5_VERSION} (parallel, Open MPI)")
else()
  # checkpoints write every rank's block of one file through MPI-IO
  # (H5Pset_fapl_mpio), which only the parallel library provides
  message(FATAL_ERROR "tessera needs the parallel (MPI) build of HDF5, 1.10.2 or "
                      "later: install libhdf5-openmpi-dev (scripts/install-deps.sh does)")
endif()

# oneDNN (libdnnl-dev): the bf16 matrix products of --bf16. Without it the
# build trains in fp32 only and --bf16 is refused with the reason.
set(TSR_HAVE_DNNL 0)
set(TSR_DNNL_SUMMARY "not found; --bf16 is refused (install libdnnl-dev)")
find_package(dnnl CONFIG QUIET)
if(dnnl_FOUND)
  set(TSR_HAVE_DNNL 1)
  set(TSR_DNNL_SUMMARY "oneDNN ${dnnl_VERSION} (bf16 matmul of --bf16)")
endif()

# CUDA: compiled whenever the toolkit is there, so the GPU code is built and
# type-checked on every machine that can, even without a GPU.
set(TSR_HAVE_CUDA 0)
set(TSR_HAVE_NCCL 0)
set(TSR_CUDA_SUMMARY "not built (TSR_ENABLE_CUDA=OFF)")
set(TSR_NCCL_SUMMARY "not built")
if(TSR_ENABLE_CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)  # A100, H100/H200
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(TSR_HAVE_CUDA 1)
    set(TSR_CUDA_SUMMARY "built with CUDA ${CUDAToolkit_VERSION} (${CMAKE_CUDA_COMPILER}), archs ${CMAKE_CUDA_ARCHITECTURES}")
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
    if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      set(TSR_HAVE_NCCL 1)
      add_library(tsr_nccl INTERFACE)
      target_include_directories(tsr_nccl INTERFACE ${NCCL_INCLUDE_DIR})
      target_link_libraries(tsr_nccl INTERFACE ${NCCL_LIBRARY})
      set(TSR_NCCL_SUMMARY "found (${NCCL_LIBRARY})")
    else()
      set(TSR_NCCL_SUMMARY "not found; the NCCL backend is not built")
    endif()
  else()
    set(TSR_CUDA_SUMMARY "not built (no nvcc found)")
  endif()
endif()

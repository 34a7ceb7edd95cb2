# mpi-env.sh - sourced by the scripts: lets mpirun run as root (CI and
# containers) and keeps oversubscribed ranks from spinning on one core.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_mpi_yield_when_idle=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none

/*
 * cmd_train.c - `tessera train`: flags -> validated config -> run.
 *
 * Everything that can be wrong with the flags is found here, before MPI is
 * initialised or memory is allocated, and printed once by rank 0 with exit
 * code 2. Every rank parses the same argv, so every rank reaches the same
 * verdict without communicating.
 */
#include <mpi.h>
#include <stdio.h>

#include "commands.h"
#include "rank_env.h"
#include "tessera/log.h"
#include "train_flags.h"

static void print_help(void)
{
    tsr_config defaults;
    tsr_config_defaults(&defaults);
    puts("usage: tessera train [flags]\n"
         "       mpirun -np N tessera train [flags]\n"
         "       srun --mpi=pmix tessera train [flags]\n\n"
         "trains a GPT/LLaMA-style model; flags use Megatron-LM's spellings\n\nflags:");
    tsr_flags_print_help(&tsr_train_flag_table, &defaults, stdout);
}

static int run_training(const tsr_config *cfg, const tsr_rank_info *info)
{
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "tessera train: error: MPI_Init failed on rank %d\n", info->rank);
        return 1;
    }
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    tsr_log_configure(rank, world, (tsr_log_level)cfg->log_level);
    int dp = tsr_config_data_parallel_size(cfg, world);
    tsr_log_once(TSR_LOG_INFO,
                 "layout: world %d = tp %d x cp %d x pp %d x dp %d; model %d layers, hidden %d, "
                 "%d heads",
                 world, cfg->tensor_model_parallel_size, cfg->context_parallel_size,
                 cfg->pipeline_model_parallel_size, dp, cfg->num_layers, cfg->hidden_size,
                 cfg->num_attention_heads);
    int one = 1, ranks_alive = 0;
    MPI_Allreduce(&one, &ranks_alive, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    tsr_log_once(TSR_LOG_INFO, "%d of %d ranks answered", ranks_alive, world);
    MPI_Finalize();
    return ranks_alive == world ? 0 : 1;
}

int tsr_cmd_train(int argc, char **argv)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    if (tsr_args_want_help(argc, argv)) {
        if (info.rank == 0)
            print_help();
        return 0;
    }
    tsr_config cfg;
    tsr_status st = tsr_train_config_from_args(&cfg, argc, argv, info.world_size);
    if (st != TSR_OK)
        return tsr_report_error_once(info.rank, "train", st);
    return run_training(&cfg, &info);
}

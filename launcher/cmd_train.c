/*
 * cmd_train.c - `tessera train`: flags -> validated config -> plan ->
 * allocate once -> train.
 *
 * Everything that can be wrong with the flags is found before MPI is
 * initialised or memory is allocated, and printed once by rank 0 with exit
 * code 2. Every rank parses the same argv, so every rank reaches the same
 * verdict without communicating.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>

#include "arena.h"
#include "commands.h"
#include "data/dataset.h"
#include "gpt.h"
#include "rank_env.h"
#include "tessera/log.h"
#include "train/metrics.h"
#include "train/trainer.h"
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

/* Layouts this build can run; the others are rejected up front. */
static tsr_status check_supported_layout(const tsr_config *cfg)
{
    if (cfg->tensor_model_parallel_size > 1 || cfg->pipeline_model_parallel_size > 1 ||
        cfg->context_parallel_size > 1 || cfg->expert_model_parallel_size > 1 ||
        cfg->num_experts > 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "this build trains with data parallelism only; tensor, pipeline, "
                             "context and expert parallelism and MoE layers are not available "
                             "yet: drop --tensor-model-parallel-size, "
                             "--pipeline-model-parallel-size, --context-parallel-size, "
                             "--expert-model-parallel-size and --num-experts");
    if (cfg->use_distributed_optimizer || cfg->bf16 ||
        cfg->recompute_granularity != TSR_RECOMPUTE_NONE || cfg->save != NULL ||
        cfg->load != NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--use-distributed-optimizer, --bf16, --recompute-granularity, "
                             "--save and --load are not available in this build yet");
    return TSR_OK;
}

static tsr_status mpi_average(void *ctx, float *grads, size_t count)
{
    int world = *(int *)ctx;
    for (size_t off = 0; off < count;) {
        int chunk = count - off > (size_t)1 << 30 ? 1 << 30 : (int)(count - off);
        if (MPI_Allreduce(MPI_IN_PLACE, grads + off, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return tsr_error_set(TSR_ERR_COMM, "gradient all-reduce failed");
        off += (size_t)chunk;
    }
    /* each rank's gradient is already scaled by 1/(micro batches x dp) */
    (void)world;
    return TSR_OK;
}

static tsr_status mpi_sum(void *ctx, double *values, int count)
{
    (void)ctx;
    if (MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
        return tsr_error_set(TSR_ERR_COMM, "scalar all-reduce failed");
    return TSR_OK;
}

static tsr_status train(const tsr_config *cfg, tsr_dataset *dataset, int rank, int world)
{
    int vocab = cfg->vocab_size > 0 ? cfg->vocab_size : dataset->vocab_size;
    tsr_gpt_dims dims = tsr_gpt_dims_from_config(cfg, vocab);
    tsr_memory_plan plan = {0};
    size_t param_floats = 0;
    tsr_gpt_plan(cfg, &dims, &plan);
    param_floats = plan.bytes[TSR_MEM_PARAMS] / sizeof(float);
    tsr_trainer_plan(cfg, param_floats, &plan);
    tsr_plan_log(&plan);
    tsr_status st = tsr_plan_allocate(&plan);
    if (st != TSR_OK)
        return st;
    tsr_gpt *gpt = NULL;
    st = tsr_gpt_create(cfg, &dims, &plan, &gpt);
    FILE *metrics = NULL;
    if (st == TSR_OK && rank == 0)
        st = tsr_metrics_open(cfg->metrics_file, &metrics);
    if (st == TSR_OK) {
        size_t n_params = 0, count = 0;
        const tsr_gpt_param *table = tsr_gpt_params(gpt, &count);
        for (size_t i = 0; i < count; i++)
            n_params += (size_t)(table[i].rows * table[i].cols);
        tsr_log_once(TSR_LOG_INFO,
                     "model: %lld layers, hidden %lld, %lld heads (%lld query groups), ffn "
                     "%lld, vocab %lld (padded %lld), seq %lld: %.3f M parameters",
                     (long long)dims.layers, (long long)dims.hidden, (long long)dims.heads,
                     (long long)dims.groups, (long long)dims.ffn, (long long)dims.vocab,
                     (long long)dims.padded_vocab, (long long)dims.seq, (double)n_params / 1e6);
        tsr_trainer trainer;
        tsr_trainer_hooks hooks = {&world, world > 1 ? mpi_average : NULL,
                                   world > 1 ? mpi_sum : NULL, rank, world};
        st = tsr_trainer_init(&trainer, cfg, dataset, tsr_gpt_as_model(gpt), &hooks,
                              tsr_gpt_flops_per_sample(cfg, &dims), &plan);
        if (st == TSR_OK)
            st = tsr_trainer_run(&trainer, metrics);
        if (st == TSR_OK)
            tsr_log_once(TSR_LOG_INFO, "peak RSS %.1f MiB, memory plan %.1f MiB",
                         (double)tsr_peak_rss_bytes() / 1048576.0,
                         (double)tsr_plan_total_bytes(&plan) / 1048576.0);
    }
    if (metrics != NULL)
        fclose(metrics);
    tsr_plan_release(&plan);
    return st;
}

static int run_training(const tsr_config *cfg, tsr_dataset *dataset, const tsr_rank_info *info)
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
    tsr_log_once(TSR_LOG_INFO, "layout: world %d = data-parallel %d; dataset %s", world, world,
                 dataset->name);
    tsr_status st = train(cfg, dataset, rank, world);
    int failed = st != TSR_OK, any_failed = 0;
    if (failed)
        fprintf(stderr, "tessera train: error on rank %d: %s\n", rank, tsr_last_error());
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any_failed ? tsr_status_exit_code(st == TSR_OK ? TSR_ERR_COMM : st) : 0;
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
    if (st == TSR_OK)
        st = check_supported_layout(&cfg);
    tsr_dataset *dataset = NULL;
    if (st == TSR_OK)
        st = tsr_dataset_open(&cfg, &dataset);
    if (st != TSR_OK)
        return tsr_report_error_once(info.rank, "train", st);
    int rc = run_training(&cfg, dataset, &info);
    tsr_dataset_close(dataset);
    return rc;
}

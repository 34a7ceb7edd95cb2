/*
 * cmd_train.c - `tessera train`: flags -> validated config -> plan ->
 * allocate once -> train.
 *
 * Everything that can be wrong with the flags is found before MPI is
 * initialised or memory is allocated, and printed once by rank 0 with exit
 * code 2. Every rank parses the same argv, so every rank reaches the same
 * verdict without communicating.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bind.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint_watch.h"
#include "collectives/comm.h"
#include "commands.h"
#include "data/dataset.h"
#include "model_select.h"
#include "rank_env.h"
#include "sharding/data_parallel.h"
#include "sharding/grid.h"
#include "sharding/net.h"
#include "sharding/pipeline_schedule.h"
#include "startup_watch.h"
#include "tessera/kernels.h"
#include "tessera/log.h"
#include "tessera/timer.h"
#include "train/exit_signal.h"
#include "train/metrics.h"
#include "train/trainer.h"
#include "train_checkpoint.h"
#include "train_flags.h"
#include "train_prediction.h"
#include "train_preflight.h"
#include "train_supported.h"

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



/* Bytes moved per collective kind and group, for the log and the metrics
 * file: what a layout costs, and proof that no collective moves more than
 * the parallelism needs (tests/tp checks them against the formula). */
static void report_communication(tsr_grid *grid, FILE *metrics)
{
    static const tsr_group_kind groups[] = {TSR_GROUP_TP, TSR_GROUP_DP, TSR_GROUP_PP,
                                            TSR_GROUP_CP, TSR_GROUP_EP, TSR_GROUP_EXPERT_DP};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        tsr_comm *comm = tsr_grid_comm(grid, groups[i]);
        if (comm == NULL || tsr_comm_size(comm) < 2)
            continue;
        tsr_comm_counters counters;
        tsr_comm_counters_get(comm, &counters);
        const char *group = tsr_group_kind_name(groups[i]);
        for (int k = 0; k < TSR_COMM_KIND_COUNT; k++) {
            if (counters.calls[k] == 0)
                continue;
            tsr_log_once(TSR_LOG_INFO, "communication on the %s group: %-14s %8llu calls %12.3f MiB",
                         group, tsr_comm_kind_name((tsr_comm_kind)k),
                         (unsigned long long)counters.calls[k],
                         (double)counters.bytes[k] / 1048576.0);
            if (metrics != NULL)
                fprintf(metrics,
                        "{\"type\": \"comm\", \"group\": \"%s\", \"kind\": \"%s\", "
                        "\"calls\": %llu, \"bytes\": %llu}\n",
                        group, tsr_comm_kind_name((tsr_comm_kind)k),
                        (unsigned long long)counters.calls[k],
                        (unsigned long long)counters.bytes[k]);
        }
    }
    if (metrics != NULL)
        fflush(metrics);
}

/* Each pipeline stage's measured idle share beside the schedule's theory. */
static tsr_status report_bubble(const tsr_config *cfg, tsr_net *net, const tsr_net_dims *dims,
                                FILE *metrics)
{
    if (dims->pp <= 1)
        return TSR_OK;
    double fractions[1024];
    if (dims->pp > 1024)
        return TSR_OK;
    tsr_status st = tsr_net_pipeline_bubble(net, fractions);
    if (st != TSR_OK)
        return st;
    tsr_pp_schedule_spec spec = {dims->chunks > 1 ? TSR_PP_SCHEDULE_INTERLEAVED
                                                  : TSR_PP_SCHEDULE_1F1B,
                                 dims->pp, 0, dims->microbatches, dims->chunks};
    double theory = tsr_pp_schedule_bubble_theory(&spec);
    for (int r = 0; r < dims->pp; r++) {
        tsr_log_once(TSR_LOG_INFO,
                     "pipeline stage %d: waited %.1f%% of its steps in exchanges (schedule %s, "
                     "%d micro batches: bubble %.1f%% in theory)",
                     r, 100.0 * fractions[r], tsr_pp_schedule_kind_name(spec.kind),
                     dims->microbatches, 100.0 * theory);
        if (metrics != NULL)
            fprintf(metrics,
                    "{\"type\": \"pipeline\", \"stage\": %d, \"idle_fraction\": %.6f, "
                    "\"theoretical_bubble\": %.6f, \"microbatches\": %d, \"chunks\": %d}\n",
                    r, fractions[r], theory, dims->microbatches, dims->chunks);
    }
    (void)cfg;
    return TSR_OK;
}

static void describe_mask(const tsr_attn_mask *m, char *out, size_t size)
{
    switch (m->pattern) {
    case TSR_ATTN_WINDOW:
        snprintf(out, size, "window %lld", (long long)m->window);
        break;
    case TSR_ATTN_FIXED:
    case TSR_ATTN_STRIDED:
        snprintf(out, size, "%s %lld/%lld", m->pattern == TSR_ATTN_FIXED ? "fixed" : "strided",
                 (long long)m->block, (long long)m->stride);
        break;
    default:
        snprintf(out, size, "dense");
    }
}

/* The layers' attention patterns, runs of equal layers joined ("dense*2"),
 * and the share of the T x T scores the kernels compute. */
static void log_attention(const tsr_config *cfg)
{
    char text[512] = "", item[64], repeat[24];
    size_t used = 0;
    double square = (double)cfg->seq_length * (double)cfg->seq_length;
    double elements = tsr_config_attention_elements(cfg, 0, cfg->num_layers, cfg->seq_length);
    for (int64_t l = 0, run = 1; l < cfg->num_layers; l++) {
        tsr_attn_mask mask, next;
        if (tsr_config_layer_attention(cfg, l, &mask) != TSR_OK)
            return;
        if (l + 1 < cfg->num_layers && tsr_config_layer_attention(cfg, l + 1, &next) == TSR_OK &&
            memcmp(&mask, &next, sizeof mask) == 0) {
            run++;
            continue;
        }
        describe_mask(&mask, item, sizeof item);
        snprintf(repeat, sizeof repeat, run > 1 ? "*%lld" : "", (long long)run);
        if (used < sizeof text)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s%s",
                                     used > 0 ? ", " : "", item, repeat);
        run = 1;
    }
    tsr_log_once(TSR_LOG_INFO,
                 "attention of layers 0-%d: %s; %.1f%% of the T x T scores computed (64x64 "
                 "tiles); documents %s; prefix LM %s",
                 cfg->num_layers - 1, text, 100.0 * elements / (square * cfg->num_layers),
                 !cfg->reset_attention_mask ? "not reset"
                 : cfg->reset_position_ids  ? "reset at the end-of-document token, positions too"
                                            : "reset at the end-of-document token",
                 cfg->prefix_lm ? "on" : "off");
}

static void log_experts(const tsr_config *cfg, const tsr_net_dims *dims)
{
    int moe_layers = 0, el = cfg->num_experts / dims->ep, k = cfg->moe_router_topk;
    for (int64_t l = 0; l < dims->layers; l++)
        moe_layers += tsr_config_layer_is_moe(cfg, l);
    char capacity[64] = "dropless";
    if (cfg->moe_expert_capacity_factor > 0.0)
        snprintf(capacity, sizeof capacity, "capacity factor %g", cfg->moe_expert_capacity_factor);
    tsr_log_once(TSR_LOG_INFO,
                 "MoE: %d of %lld layers, %d experts of width %d, top-%d, shared expert %d, %s; "
                 "expert parallel %d (%d experts per rank, expert-data-parallel %d), expert "
                 "tensor parallel %d, %s dispatch",
                 moe_layers, (long long)dims->layers, cfg->num_experts,
                 tsr_config_moe_ffn_hidden_size(cfg), k,
                 cfg->moe_shared_expert_intermediate_size, capacity, dims->ep, el,
                 dims->dp / dims->ep,
                 cfg->expert_tensor_parallel_size > 1 ? cfg->expert_tensor_parallel_size : 1,
                 cfg->moe_token_dispatcher_type == 1 ? "allgather" : "all-to-all");
}

static void log_model(const tsr_config *cfg, const tsr_net *net)
{
    const tsr_net_dims *dims = tsr_net_get_dims(net);
    tsr_log_once(TSR_LOG_INFO,
                 "model %s: %lld layers, hidden %lld, %d heads (%d query groups), ffn %d, vocab "
                 "%lld (padded %lld), seq %lld: %.3f M parameters",
                 cfg->model_name != NULL ? cfg->model_name : "gpt", (long long)dims->layers,
                 (long long)dims->hidden, cfg->num_attention_heads,
                 tsr_config_num_query_groups(cfg), tsr_config_ffn_hidden_size(cfg),
                 (long long)dims->vocab, (long long)dims->padded_vocab, (long long)dims->seq,
                 (double)tsr_net_global_param_count(net) / 1e6);
    if (cfg->lora_rank > 0) {
        int64_t trainable = 0, frozen = 0;
        tsr_net_trainable_count(net, &trainable, &frozen);
        tsr_log_once(TSR_LOG_INFO,
                     "LoRA rank %d, alpha %g (scale %g), dropout %g on %s: %.4f M adapter "
                     "parameters trained (%.3f%% of the model), %.3f M frozen",
                     cfg->lora_rank, tsr_config_lora_scale(cfg) * cfg->lora_rank,
                     tsr_config_lora_scale(cfg), cfg->lora_dropout,
                     cfg->lora_target != NULL ? cfg->lora_target : "qkv,proj,fc1,fc2",
                     (double)trainable / 1e6, 100.0 * (double)trainable / (double)(trainable + frozen),
                     (double)frozen / 1e6);
    }
    if (cfg->num_experts > 0)
        log_experts(cfg, dims);
    log_attention(cfg);
}

/* The model chosen by --model (and --model-plugin), declared as a spec. */
typedef struct model_choice {
    const tsr_model_entry *entry;
    tsr_spec_arena *arena;
    tsr_model_spec spec;
} model_choice;

static int64_t vocab_of(const tsr_config *cfg, const tsr_dataset *dataset)
{
    return cfg->vocab_size > 0 ? cfg->vocab_size : dataset->vocab_size;
}

/* Builds the spec and checks it against the layout (as pipeline and
 * tensor-parallel rank 0; every rank declares every module, so the checks
 * are the same on all), before MPI starts or anything is allocated: a bad
 * model is a configuration error. */
static tsr_status prepare_model(const tsr_config *cfg, const tsr_dataset *dataset,
                                int world_size, int ranks_on_node, model_choice *m)
{
    memset(m, 0, sizeof *m);
    tsr_status st = tsr_train_prediction_check(cfg);
    if (st != TSR_OK)
        return st;
    st = tsr_model_select(cfg, &m->entry);
    if (st != TSR_OK)
        return st;
    st = tsr_spec_arena_create(&m->arena);
    if (st == TSR_OK)
        st = m->entry->build(cfg, m->arena, &m->spec);
    tsr_net_dims dims = tsr_net_dims_from_config(cfg, vocab_of(cfg, dataset), 0);
    int dp = tsr_config_data_parallel_size(cfg, world_size);
    tsr_net_dims_set_experts(&dims, 0, dp);
    if (st == TSR_OK)
        st = tsr_net_dims_set_pipeline(&dims, cfg, 0,
                                       tsr_config_microbatches_per_rank(cfg, world_size));
    tsr_net *net = NULL;
    if (st == TSR_OK)
        st = tsr_net_build(&m->spec, cfg, &dims, &net);
    if (st == TSR_OK) { /* rank 0's plan: the first stage holds the embedding */
        tsr_memory_plan plan = {0};
        tsr_net_plan(net, &plan);
        tsr_model model = tsr_net_as_model(net);
        tsr_trainer_plan_sharded_experts(cfg, model.param_count, model.expert_count, dp,
                                         dp / dims.ep, &plan);
        tsr_trainer_plan_precision(cfg, &model, dp, &plan);
        st = tsr_train_check_memory(tsr_plan_total_bytes(&plan), ranks_on_node);
        if (st != TSR_OK) {
            tsr_net_destroy(net);
            return st; /* not the model's fault: no "model 'gpt':" prefix */
        }
    }
    tsr_net_destroy(net);
    if (st == TSR_OK)
        return TSR_OK;
    char message[768];
    snprintf(message, sizeof message, "%s", tsr_last_error());
    if (cfg->model_plugin != NULL)
        return tsr_error_set(st, "model '%s' from plugin %s: %s", m->entry->name,
                             cfg->model_plugin, message);
    return tsr_error_set(st, "model '%s': %s", m->entry->name, message);
}

/* A run that continues an earlier one appends to its --metrics-file; a
 * fine-tuning start is a new run. */
static bool resumes(const tsr_config *cfg)
{
    tsr_train_load_source source = tsr_train_load_source_of(cfg);
    return source.dir != NULL && !source.finetune;
}

static tsr_status train(const tsr_config *cfg, tsr_dataset *dataset, tsr_grid *grid,
                        const model_choice *choice, int mpi_thread_level)
{
    tsr_net_dims dims =
        tsr_net_dims_from_config(cfg, vocab_of(cfg, dataset), tsr_grid_tp_rank(grid));
    int microbatches = tsr_config_microbatches_per_rank(cfg, tsr_comm_size(tsr_grid_world(grid)));
    tsr_net_dims_set_experts(&dims, tsr_grid_ep_rank(grid), tsr_grid_dp_size(grid));
    tsr_status st = tsr_net_dims_set_pipeline(&dims, cfg, tsr_grid_pp_rank(grid), microbatches);
    tsr_net *net = NULL;
    if (st == TSR_OK)
        st = tsr_net_build(&choice->spec, cfg, &dims, &net);
    if (st != TSR_OK)
        return st;
    tsr_memory_plan plan = {0};
    tsr_net_plan(net, &plan);
    tsr_trainer_plan_sharded_experts(cfg, tsr_net_as_model(net).param_count,
                                     tsr_net_as_model(net).expert_count, tsr_grid_dp_size(grid),
                                     tsr_grid_expert_dp_size(grid), &plan);
    tsr_model planned = tsr_net_as_model(net);
    tsr_trainer_plan_precision(cfg, &planned, tsr_grid_dp_size(grid), &plan);
    tsr_plan_log(&plan);
    tsr_train_prediction prediction;
    st = tsr_train_prediction_make(cfg, net, grid, &prediction);
    if (st == TSR_OK)
        st = tsr_plan_allocate(&plan);
    tsr_dp *dp = NULL;
    if (st == TSR_OK)
        st = tsr_net_carve(net, grid, &plan);
    FILE *metrics = NULL;
    if (st == TSR_OK && tsr_log_rank() == 0)
        st = tsr_metrics_open(cfg->metrics_file, resumes(cfg), &metrics);
    if (st == TSR_OK) {
        log_model(cfg, net);
        train_run run = {cfg, grid, tsr_net_as_model(net), NULL, ""};
        tsr_trainer_hooks hooks = {0};
        tsr_trainer trainer;
        memset(&trainer, 0, sizeof trainer);
        st = tsr_dp_create(cfg, grid, &run.model, &dp);
        if (st == TSR_OK) {
            tsr_dp_fill_hooks(dp, &hooks);
            hooks.save_ctx = &run;
            hooks.save = cfg->save != NULL ? tsr_train_save_checkpoint : NULL;
            st = tsr_trainer_init(&trainer, cfg, dataset, run.model, &hooks,
                                  tsr_net_flops_per_sample(net), &plan);
        }
        if (st == TSR_OK && trainer.master != NULL)
            tsr_dp_gather_weights(dp, trainer.precision.weight_copies,
                                  trainer.precision.element_bytes);
        if (st == TSR_OK && tsr_train_load_source_of(cfg).dir != NULL)
            st = tsr_train_load_checkpoint(&run, &trainer);
        if (st == TSR_OK && cfg->async_save)
            st = tsr_train_async_begin(&run, &trainer, mpi_thread_level, dataset->reads_hdf5);
        double started = tsr_time_s();
        if (st == TSR_OK)
            st = tsr_trainer_run(&trainer, metrics);
        if (st == TSR_OK)
            tsr_precision_report(&trainer.precision, tsr_time_s() - started);
        if (run.async != NULL) { /* the last save completes before the run ends */
            tsr_status end = tsr_train_async_end(&run);
            st = st == TSR_OK ? end : st;
        }
        if (st == TSR_OK)
            report_communication(grid, metrics);
        if (st == TSR_OK)
            st = report_bubble(cfg, net, &dims, metrics);
        if (st == TSR_OK)
            tsr_log_once(TSR_LOG_INFO, "peak RSS %.1f MiB, memory plan %.1f MiB",
                         (double)tsr_peak_rss_bytes() / 1048576.0,
                         (double)tsr_plan_total_bytes(&plan) / 1048576.0);
        double expert_load = 1.0;
        if (st == TSR_OK)
            st = tsr_train_expert_load_report(net, grid, metrics, &expert_load);
        if (st == TSR_OK)
            st = tsr_train_prediction_report(&prediction, &trainer, grid,
                                             tsr_plan_total_bytes(&plan), expert_load, metrics);
        tsr_trainer_release(&trainer);
    }
    tsr_dp_destroy(dp);
    if (metrics != NULL)
        fclose(metrics);
    tsr_plan_release(&plan);
    tsr_net_destroy(net);
    return st;
}

static tsr_status start_communication(const tsr_config *cfg, tsr_comm **world, tsr_grid **grid)
{
    tsr_comm_options options;
    tsr_comm_options_from_config(cfg, &options);
    tsr_status st = tsr_comm_create_world(MPI_COMM_WORLD, &options, world);
    if (st == TSR_OK)
        st = tsr_grid_create(cfg, *world, grid);
    return st;
}

static int run_training(const tsr_config *cfg, tsr_dataset *dataset, tsr_rank_info *info,
                        const model_choice *model, tsr_startup_watch *watch)
{
    tsr_startup_watch_enter(watch, TSR_STARTUP_BINDING, NULL);
    tsr_binding_report binding;
    tsr_status st = tsr_bind_apply(info, cfg->bind, &binding);
    if (st != TSR_OK) {
        fprintf(stderr, "tessera train: error on rank %d: %s\n", info->rank, tsr_last_error());
        return 1;
    }
    int provided = 0;
    /* MPI_THREAD_MULTIPLE lets Open MPI offer its one-sided component over
     * TCP too, which the watchdog's arrival window needs across nodes
     * without RDMA; tessera itself calls MPI from one thread */
    tsr_startup_watch_enter(watch, TSR_STARTUP_MPI_INIT, NULL);
    int init = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    tsr_startup_watch_enter(watch, TSR_STARTUP_MPI_SETUP, NULL);
    if (init != MPI_SUCCESS) {
        fprintf(stderr, "tessera train: error: MPI_Init failed on rank %d\n", info->rank);
        return 1;
    }
    int rank = 0, world_size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    tsr_log_configure(rank, world_size, (tsr_log_level)cfg->log_level);
    tsr_checkpoint_watch_install(cfg->distributed_timeout_minutes * 60.0, provided);
    tsr_rank_info_resolve_node(info, MPI_COMM_WORLD);
    char line[TSR_BIND_REPORT_MAX];
    tsr_bind_format_report(info, &binding, line, sizeof line);
    tsr_log(TSR_LOG_DEBUG, "%s", line);
    tsr_comm *world = NULL;
    tsr_grid *grid = NULL;
    st = start_communication(cfg, &world, &grid);
    tsr_startup_watch_stop(watch); /* from here on, the collectives' watchdog */
    if (st == TSR_OK) {
        tsr_log_once(TSR_LOG_INFO,
                     "layout: world %d = tp %d x cp %d x pp %d x dp %d; %d thread(s) per rank; "
                     "dataset %s",
                     world_size, tsr_grid_tp_size(grid), tsr_grid_cp_size(grid),
                     tsr_grid_pp_size(grid), tsr_grid_dp_size(grid), binding.threads,
                     dataset->name);
        /* what decides how idle threads wait (launcher/main.c sets both
         * unless the user did), since it moves tokens/s by up to 2.5x */
        const char *env[] = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT",
                             "GOTO_THREAD_TIMEOUT"};
        char line[256] = "idle threads:";
        size_t used = strlen(line);
        for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
            const char *v = getenv(env[i]);
            if (v != NULL && used < sizeof line)
                used += (size_t)snprintf(line + used, sizeof line - used, " %s=%s", env[i], v);
        }
        tsr_log_once(TSR_LOG_INFO, "%s%s", line,
                     strcmp(line, "idle threads:") == 0 ? " the libraries' defaults" : "");
        if (cfg->recompute_granularity == TSR_RECOMPUTE_SELECTIVE)
            tsr_log_once(TSR_LOG_INFO,
                         "--recompute-granularity selective: nothing more to recompute; core "
                         "attention keeps no per-score activations (its probabilities are "
                         "recomputed tile by tile in backward, dropout masks come from the "
                         "counter-based RNG), so memory is that of no recomputation");
        st = train(cfg, dataset, grid, model, provided);
    }
    /* a failure every rank shares (a bad --load, say) is printed once, by
     * rank 0; other ranks speak only when rank 0 had nothing to say */
    int failed = st != TSR_OK, any_failed = 0, rank0_failed = failed;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Bcast(&rank0_failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (failed && (rank == 0 || !rank0_failed))
        fprintf(stderr, "tessera train: error on rank %d: %s\n", rank, tsr_last_error());
    tsr_grid_destroy(grid);
    tsr_comm_destroy(world);
    MPI_Finalize();
    if (!any_failed)
        return 0;
    /* like configuration errors, a bad --load is the user's input: exit 2 */
    return tsr_status_exit_code(st == TSR_OK ? TSR_ERR_COMM : st);
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
        st = tsr_train_check_supported(&cfg, info.world_size);
    /* the timeout is known from here; the steps below may wait on a file system */
    tsr_startup_watch *watch = NULL;
    if (st == TSR_OK)
        watch = tsr_startup_watch_create(cfg.distributed_timeout_minutes * 60.0, info.rank);
    if (st == TSR_OK)
        st = tsr_train_preflight(&cfg);
    /* from here on, so that a signal during start-up or --load is not lost:
     * the run stops, saving, after its first iteration */
    if (st == TSR_OK && cfg.exit_signal_handler && tsr_exit_signal_install() != 0)
        st = tsr_error_set(TSR_ERR_INTERNAL, "cannot install the --exit-signal-handler");
    tsr_dataset *dataset = NULL;
    if (st == TSR_OK) {
        tsr_startup_watch_enter(watch, TSR_STARTUP_OPENING_DATASET, cfg.data_path);
        st = tsr_dataset_open(&cfg, &dataset);
    }
    model_choice model = {0};
    if (st == TSR_OK) {
        tsr_startup_watch_enter(watch, TSR_STARTUP_PREPARING_MODEL, cfg.model_plugin);
        st = prepare_model(&cfg, dataset, info.world_size, info.local_size, &model);
    }
    if (st != TSR_OK) {
        tsr_startup_watch_destroy(watch);
        tsr_spec_arena_destroy(model.arena);
        tsr_dataset_close(dataset);
        return tsr_report_error_once(info.rank, "train", st);
    }
    int rc = run_training(&cfg, dataset, &info, &model, watch);
    tsr_startup_watch_destroy(watch);
    tsr_spec_arena_destroy(model.arena);
    tsr_dataset_close(dataset);
    return rc;
}

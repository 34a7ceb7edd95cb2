/*
 * trainer.c - the training loop (see trainer.h).
 *
 * Data order: the global batch of iteration i holds samples
 * [consumed, consumed + global_batch); data-parallel rank r takes the
 * contiguous slice r of it, cut into micro batches. Sample indices are
 * therefore layout-independent, and so are dropout masks keyed by them.
 *
 * The optimizer arithmetic (owned-range norm, AdamW over spans) lives in
 * optimizer.c; this file sequences it with the hooks (see trainer.h).
 */
#include "trainer.h"

#include <math.h>
#include <signal.h>
#include <string.h>

#include "exit_signal.h"
#include "lr_schedule.h"
#include "metrics.h"
#include "tessera/kernels.h"
#include "tessera/log.h"
#include "tessera/timer.h"

static bool shards_state(const tsr_config *cfg, int dp_size)
{
    return cfg->use_distributed_optimizer && dp_size > 1;
}

static bool uses_16_bits(const tsr_config *cfg)
{
    return cfg->bf16 || cfg->fp16;
}

/* The arena's alignment already leaves the model's buffer followed by
 * slack up to the next 16 floats; the padding only has to add the rest. */
_Static_assert(TSR_ARENA_ALIGN == TSR_SHARD_ALIGN_FLOATS * sizeof(float),
               "shard padding assumes arena blocks end on a shard-alignment boundary");

static size_t with_slack(size_t count)
{
    return (count + TSR_SHARD_ALIGN_FLOATS - 1) / TSR_SHARD_ALIGN_FLOATS * TSR_SHARD_ALIGN_FLOATS;
}

void tsr_trainer_plan_sharded_experts(const tsr_config *cfg, size_t param_count,
                                      size_t expert_count, int dp_size, int edp_size,
                                      tsr_memory_plan *plan)
{
    size_t rows = (size_t)cfg->micro_batch_size * (size_t)cfg->seq_length;
    size_t state = param_count;
    if (shards_state(cfg, dp_size)) {
        size_t padded = tsr_shard_padded_count(param_count, dp_size);
        state = tsr_shard_state_count(param_count, expert_count, dp_size, edp_size);
        if (padded > with_slack(param_count)) {
            if (!uses_16_bits(cfg))
                tsr_plan_add_floats(plan, TSR_MEM_PARAMS, padded - with_slack(param_count));
            tsr_plan_add_floats(plan, TSR_MEM_GRADS, padded - with_slack(param_count));
        }
    }
    tsr_plan_add_floats(plan, TSR_MEM_OPTIMIZER, state); /* Adam m */
    tsr_plan_add_floats(plan, TSR_MEM_OPTIMIZER, state); /* Adam v */
    if (uses_16_bits(cfg))
        tsr_plan_add_floats(plan, TSR_MEM_OPTIMIZER, state); /* the fp32 master */
    tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH, (rows + 1) * sizeof(int32_t));
    tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH, rows * sizeof(int32_t));
    tsr_plan_add_floats(plan, TSR_MEM_SCRATCH, rows);
    int attention_rows = (cfg->reset_attention_mask ? 1 : 0) + (cfg->prefix_lm ? 2 : 0);
    for (int i = 0; i < attention_rows; i++) /* doc_start, prefix_lo, prefix_hi */
        tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH, rows * sizeof(int32_t));
}

void tsr_trainer_plan_sharded(const tsr_config *cfg, size_t param_count, int dp_size,
                              tsr_memory_plan *plan)
{
    tsr_trainer_plan_sharded_experts(cfg, param_count, 0, dp_size, dp_size, plan);
}

void tsr_trainer_plan(const tsr_config *cfg, size_t param_count, tsr_memory_plan *plan)
{
    tsr_trainer_plan_sharded(cfg, param_count, 1, plan);
}

/* The padding must extend the model's own buffer: takes it from the same
 * arena and checks that it landed right after (after the slack). */
static tsr_status take_padding(tsr_memory_plan *plan, tsr_mem_category category,
                               const float *buffer, size_t count, size_t padded)
{
    if (padded <= with_slack(count))
        return TSR_OK;
    float *tail = NULL;
    tsr_status st = tsr_plan_take_floats(plan, category, padded - with_slack(count), &tail);
    if (st == TSR_OK && tail != buffer + with_slack(count))
        st = tsr_error_set(TSR_ERR_INTERNAL,
                           "the distributed optimizer's padding of the %s is not contiguous "
                           "with the model's buffer (the model must carve its %s last)",
                           tsr_mem_category_name(category), tsr_mem_category_name(category));
    return st;
}

static tsr_status take_optimizer_state(tsr_trainer *tr, tsr_memory_plan *plan)
{
    const tsr_config *cfg = tr->cfg;
    size_t n = tr->model.param_count;
    const tsr_param_shard *shard = &tr->hooks.shard;
    tr->padded_count = n;
    tr->state_count = n;
    if (shards_state(cfg, tr->hooks.dp_size)) {
        tr->padded_count = tsr_shard_padded_count(n, tr->hooks.dp_size);
        tr->state_count = tsr_shard_state_count(n, tr->model.expert_count, tr->hooks.dp_size,
                                                 tr->hooks.expert_dp_size);
    }
    if (tsr_shard_state_floats(shard, n) != tr->state_count || shard->sharded_state !=
                                                                   shards_state(cfg, tr->hooks.dp_size))
        return tsr_error_set(TSR_ERR_INTERNAL,
                             "the data-parallel shard (%zu floats of optimizer state) does not "
                             "match the memory plan (%zu)",
                             tsr_shard_state_floats(shard, n), tr->state_count);
    tsr_status st = TSR_OK;
    if (tr->padded_count > n) {
        if (!uses_16_bits(cfg))
            st = take_padding(plan, TSR_MEM_PARAMS, tr->model.params, n, tr->padded_count);
        if (st == TSR_OK)
            st = take_padding(plan, TSR_MEM_GRADS, tr->model.grads, n, tr->padded_count);
    }
    if (st == TSR_OK)
        st = tsr_plan_take_floats(plan, TSR_MEM_OPTIMIZER, tr->state_count, &tr->adam_m);
    if (st == TSR_OK)
        st = tsr_plan_take_floats(plan, TSR_MEM_OPTIMIZER, tr->state_count, &tr->adam_v);
    if (st == TSR_OK && uses_16_bits(cfg))
        st = tsr_plan_take_floats(plan, TSR_MEM_OPTIMIZER, tr->state_count, &tr->master);
    return st;
}

tsr_status tsr_trainer_init(tsr_trainer *tr, const tsr_config *cfg, const tsr_dataset *dataset,
                            tsr_model model, const tsr_trainer_hooks *hooks,
                            double flops_per_sample, tsr_memory_plan *plan)
{
    memset(tr, 0, sizeof *tr);
    tr->cfg = cfg;
    tr->dataset = dataset;
    tr->model = model;
    if (hooks != NULL)
        tr->hooks = *hooks;
    if (tr->hooks.dp_size < 1)
        tr->hooks.dp_size = 1;
    tr->flops_per_sample = flops_per_sample;
    size_t rows = (size_t)cfg->micro_batch_size * (size_t)cfg->seq_length;
    tsr_status st = take_optimizer_state(tr, plan);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, (rows + 1) * sizeof(int32_t),
                                 (void **)&tr->tokens);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, rows * sizeof(int32_t),
                                 (void **)&tr->targets);
    if (st == TSR_OK)
        st = tsr_plan_take_floats(plan, TSR_MEM_SCRATCH, rows, &tr->mask);
    size_t row_bytes = rows * sizeof(int32_t);
    if (st == TSR_OK && cfg->reset_attention_mask)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, row_bytes, (void **)&tr->doc_start);
    if (st == TSR_OK && cfg->prefix_lm)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, row_bytes, (void **)&tr->prefix_lo);
    if (st == TSR_OK && cfg->prefix_lm)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, row_bytes, (void **)&tr->prefix_hi);
    if (st == TSR_OK)
        st = tsr_precision_init(&tr->precision, cfg, &tr->model, tr->padded_count, plan);
    if (st == TSR_OK) /* the carved initial values (model.h fp32_view) */
        tsr_trainer_adopt_weights(tr, tsr_trainer_weight_image(tr));
    return st;
}

void tsr_trainer_plan_precision(const tsr_config *cfg, const tsr_model *model, int dp_size,
                                tsr_memory_plan *plan)
{
    size_t padded = shards_state(cfg, dp_size) ? tsr_shard_padded_count(model->param_count, dp_size)
                                               : model->param_count;
    tsr_precision_plan(cfg, model, padded, plan);
}

void tsr_trainer_release(tsr_trainer *tr)
{
    tsr_precision_release(&tr->precision);
}

/* Micro batch `first` of the split into the trainer's buffers, with the
 * attention rows the flags ask for. */
static tsr_status load_microbatch(tsr_trainer *tr, tsr_split split, int64_t first,
                                  int64_t iteration, tsr_microbatch *mb)
{
    int mbs = tr->cfg->micro_batch_size;
    tsr_status st = tsr_dataset_batch(tr->dataset, split, first, mbs, tr->tokens, tr->targets,
                                      tr->mask);
    if (st == TSR_OK)
        st = tsr_dataset_attention_rows(tr->dataset, split, first, mbs, tr->tokens, tr->mask,
                                        tr->doc_start, tr->prefix_lo, tr->prefix_hi);
    memset(mb, 0, sizeof *mb);
    mb->tokens = tr->tokens;
    mb->targets = tr->targets;
    mb->mask = tr->mask;
    mb->first_sample = first;
    mb->iteration = iteration;
    mb->doc_start = tr->doc_start;
    mb->prefix_lo = tr->prefix_lo;
    mb->prefix_hi = tr->prefix_hi;
    return st;
}

static int micro_batches_per_rank(const tsr_trainer *tr, int global_batch)
{
    return global_batch / (tr->cfg->micro_batch_size * tr->hooks.dp_size);
}

static int global_batch_size(const tsr_trainer *tr)
{
    const tsr_config *cfg = tr->cfg;
    return cfg->global_batch_size > 0 ? cfg->global_batch_size
                                      : cfg->micro_batch_size * tr->hooks.dp_size;
}

static tsr_status sum_scalars(tsr_trainer *tr, double *values, int count)
{
    if (tr->hooks.sum_scalars == NULL)
        return TSR_OK;
    return tr->hooks.sum_scalars(tr->hooks.ctx, values, count);
}

/* A hook that may be absent (one rank): absent means nothing to do. */
#define CALL_HOOK(tr, hook) ((tr)->hooks.hook != NULL ? (tr)->hooks.hook((tr)->hooks.ctx) : TSR_OK)

/* The parameters are final for the forward passes to come (after the
 * parameter all-gather): their bf16 copies follow them. */
static tsr_status params_synced(tsr_trainer *tr)
{
    tsr_status st = CALL_HOOK(tr, finish_param_sync);
    if (st == TSR_OK)
        tsr_precision_refresh(&tr->precision);
    return st;
}

/* Forward and backward of this rank's micro batches, then the gradient
 * reduction; returns the mean loss over the whole global batch (all
 * data-parallel ranks). */
static tsr_status accumulate_gradients(tsr_trainer *tr, int global_batch, double *loss)
{
    const tsr_config *cfg = tr->cfg;
    int mbs = cfg->micro_batch_size;
    int count = micro_batches_per_rank(tr, global_batch);
    /* fp16: the loss gradient is scaled up by the loss scale (precision.h) */
    float scale = (float)(tsr_precision_loss_scale(&tr->precision) /
                          (double)(count * tr->hooks.dp_size));
    memset(tr->model.grads, 0, tr->padded_count * sizeof(float));
    double local = 0.0;
    if (tr->model.train_iteration != NULL) { /* a pipeline runs its own schedule */
        tsr_microbatch_source src = {tr->dataset,
                                     tr->consumed_samples +
                                         (int64_t)tr->hooks.dp_rank * count * (int64_t)mbs,
                                     mbs, tr->iteration};
        tsr_status st = params_synced(tr);
        if (st == TSR_OK)
            st = tr->model.train_iteration(tr->model.self, &src, count, scale, &local);
        if (st != TSR_OK)
            return st;
        count = 0; /* nothing left for the micro-batch loop */
    }
    for (int m = 0; m < count; m++) {
        int64_t first = tr->consumed_samples +
                        ((int64_t)tr->hooks.dp_rank * count + m) * (int64_t)mbs;
        tsr_microbatch mb;
        tsr_status st = load_microbatch(tr, TSR_SPLIT_TRAIN, first, tr->iteration, &mb);
        /* the previous step's parameter all-gather overlapped the above */
        if (st == TSR_OK && m == 0)
            st = params_synced(tr);
        if (st != TSR_OK)
            return st;
        if (m == count - 1 && cfg->overlap_grad_reduce && tr->hooks.grads_ready != NULL) {
            mb.grads_ready = tr->hooks.grads_ready;
            mb.grads_ready_ctx = tr->hooks.ctx;
        }
        double mb_loss = 0.0;
        st = tr->model.train_microbatch(tr->model.self, &mb, scale, &mb_loss);
        if (st != TSR_OK)
            return st;
        local += mb_loss;
    }
    if (tr->model.finish_grads != NULL) {
        tsr_status st = tr->model.finish_grads(tr->model.self);
        if (st != TSR_OK)
            return st;
    }
    tsr_status st = tsr_precision_take_status(&tr->precision);
    if (st == TSR_OK)
        st = CALL_HOOK(tr, finish_grad_sync);
    if (st == TSR_OK)
        st = sum_scalars(tr, &local, 1);
    *loss = local / (double)(micro_batches_per_rank(tr, global_batch) * tr->hooks.dp_size);
    return st;
}

/* Global gradient norm, every element counted once: each rank sums the
 * gradients it owns (its data-parallel share) within the blocks the model
 * marks as its to write (one tensor-parallel replica), and the world sum
 * adds the shares up. */
static tsr_status gradient_norm(tsr_trainer *tr, double *norm)
{
    double sq = tsr_optimizer_grad_sumsq(&tr->model, &tr->hooks.shard);
    if (tr->hooks.sum_world != NULL) {
        tsr_status st = tr->hooks.sum_world(tr->hooks.ctx, &sq, 1);
        if (st != TSR_OK)
            return st;
    }
    *norm = sqrt(sq);
    return TSR_OK;
}

/* The LR schedule's step for the current iteration: the weight updates
 * so far plus this one. An fp16 iteration skipped for overflow leaves the
 * weights, Adam's step and the schedule where they were, so that a run
 * whose first iterations only search for a loss scale warms up from the
 * first update on, as Megatron's does. A NaN iteration still counts:
 * Megatron's fp32 and bf16 steps never skip, so its schedule steps at
 * every iteration there. */
static int64_t schedule_step(const tsr_trainer *tr)
{
    return tr->iteration - tr->overflow_iterations_total;
}

static tsr_status adamw_step(tsr_trainer *tr, double lr, float clip_coeff)
{
    const tsr_config *cfg = tr->cfg;
    tsr_adamw_args args = {(float)lr,
                           (float)cfg->adam_beta1,
                           (float)cfg->adam_beta2,
                           (float)cfg->adam_eps,
                           (float)cfg->weight_decay,
                           tr->adam_step,
                           clip_coeff};
    tsr_optimizer_adamw(&tr->model, &tr->hooks.shard, tr->master, tr->adam_m, tr->adam_v, &args);
    if (tr->master != NULL)
        tsr_trainer_store_master(tr);
    return CALL_HOOK(tr, start_param_sync);
}

tsr_status tsr_trainer_evaluate(tsr_trainer *tr, FILE *metrics)
{
    const tsr_config *cfg = tr->cfg;
    int mbs = cfg->micro_batch_size;
    double sums[3] = {0.0, 0.0, 0.0}; /* loss, tokens, correct */
    tsr_status st = params_synced(tr);
    if (st != TSR_OK)
        return st;
    /* as in Megatron, each evaluation iteration is one global batch of the
     * validation split, cut among data-parallel ranks like a training
     * batch: the evaluated samples are the same in every layout */
    int global_batch = global_batch_size(tr);
    int per_rank = micro_batches_per_rank(tr, global_batch);
    for (int64_t e = 0; e < cfg->eval_iters * per_rank; e++) {
        int64_t i = e / per_rank, m = e % per_rank;
        int64_t first = i * global_batch + ((int64_t)tr->hooks.dp_rank * per_rank + m) * mbs;
        tsr_microbatch mb;
        st = load_microbatch(tr, TSR_SPLIT_VALID, first, 0, &mb);
        if (st != TSR_OK)
            return st;
        tsr_eval_counts counts;
        st = tr->model.eval_microbatch(tr->model.self, &mb, &counts);
        if (st != TSR_OK)
            return st;
        sums[0] += counts.loss_sum;
        sums[1] += counts.tokens;
        sums[2] += counts.correct;
    }
    st = tsr_precision_take_status(&tr->precision);
    if (st == TSR_OK)
        st = sum_scalars(tr, sums, 3);
    if (st != TSR_OK)
        return st;
    tsr_eval_metrics m;
    m.iteration = tr->iteration;
    m.tokens = sums[1];
    m.loss = sums[1] > 0.0 ? sums[0] / sums[1] : 0.0;
    m.perplexity = exp(m.loss < 50.0 ? m.loss : 50.0);
    m.answer_accuracy = tr->dataset->has_answers && sums[1] > 0.0 ? sums[2] / sums[1] : -1.0;
    char line[512];
    tsr_metrics_format_eval(&m, line, sizeof line);
    tsr_log_once(TSR_LOG_INFO, "%s", line);
    if (tsr_log_rank() == 0)
        tsr_metrics_write_eval_json(metrics, &m);
    return TSR_OK;
}

typedef struct interval_stats {
    int iterations, counted;
    double loss_sum, seconds, aux_sum;
    int64_t skipped, nans;
    double last_norm;
} interval_stats;

static void report(tsr_trainer *tr, interval_stats *s, double lr, int global_batch, FILE *metrics)
{
    const tsr_config *cfg = tr->cfg;
    tsr_train_metrics m;
    double per_iter = s->iterations > 0 ? s->seconds / s->iterations : 0.0;
    m.iteration = tr->iteration;
    m.train_iters = cfg->train_iters;
    m.consumed_samples = tr->consumed_samples;
    m.ms_per_iteration = per_iter * 1e3;
    m.learning_rate = lr;
    m.global_batch_size = global_batch;
    m.lm_loss = s->counted > 0 ? s->loss_sum / s->counted : NAN;
    m.loss_scale = tsr_precision_loss_scale(&tr->precision);
    m.grad_norm = s->last_norm;
    m.skipped_iterations = s->skipped;
    m.nan_iterations = s->nans;
    m.tokens_per_second = per_iter > 0 ? (double)global_batch * cfg->seq_length / per_iter : 0;
    m.tflops_per_second =
        per_iter > 0 ? tr->flops_per_sample * global_batch / per_iter / 1e12 : 0.0;
    m.moe_aux_loss = tr->model.take_aux_loss != NULL && s->iterations > 0
                         ? s->aux_sum / s->iterations
                         : -1.0;
    char line[1024];
    tsr_metrics_format_line(&m, line, sizeof line);
    tsr_log_once(TSR_LOG_INFO, "%s", line);
    if (tsr_log_rank() == 0)
        tsr_metrics_write_json(metrics, &m);
    memset(s, 0, sizeof *s);
}

tsr_status tsr_save_failure_apply(const tsr_config *cfg, tsr_status st, const char *then)
{
    if (st == TSR_OK || cfg->save_failure != TSR_SAVE_FAILURE_CONTINUE ||
        (st != TSR_ERR_IO && st != TSR_ERR_OUT_OF_MEMORY))
        return st;
    tsr_log_once(TSR_LOG_WARN,
                 "a checkpoint was not saved: %s; %s (--save-failure continue), the previous "
                 "checkpoint stands",
                 tsr_last_error(), then);
    return TSR_OK;
}

/* Writes a checkpoint of the current state, once no parameter all-gather
 * is in flight (the saved weights are the updated ones). */
static tsr_status save(tsr_trainer *tr)
{
    tsr_status st = CALL_HOOK(tr, finish_param_sync);
    if (st != TSR_OK)
        return st;
    return tsr_save_failure_apply(tr->cfg, tr->hooks.save(tr->hooks.save_ctx, tr),
                                  "training continues");
}

/* Why the run stops before --train-iters, or NULL to go on. Every rank
 * gets the same answer: the interval is arithmetic, and the clock and the
 * signals are summed over the job (one small all-reduce per iteration, only
 * when those flags are given). */
static const char *early_stop(tsr_trainer *tr, uint64_t start_ns, tsr_status *st)
{
    const tsr_config *cfg = tr->cfg;
    *st = TSR_OK;
    if (tr->iteration >= cfg->train_iters)
        return NULL;
    if (cfg->exit_interval > 0 && tr->iteration % cfg->exit_interval == 0)
        return "--exit-interval";
    if (cfg->exit_duration_mins <= 0.0 && !cfg->exit_signal_handler)
        return NULL;
    double minutes = (double)(tsr_time_ns() - start_ns) * 1e-9 / 60.0;
    double votes[3] = {cfg->exit_duration_mins > 0.0 && minutes >= cfg->exit_duration_mins,
                       tsr_exit_signal_received() == SIGTERM,
                       tsr_exit_signal_received() == SIGUSR1};
    if (tr->hooks.sum_world != NULL)
        *st = tr->hooks.sum_world(tr->hooks.ctx, votes, 3);
    if (*st != TSR_OK)
        return NULL;
    if (votes[1] > 0.0)
        return "SIGTERM received (--exit-signal-handler)";
    if (votes[2] > 0.0)
        return "SIGUSR1 received (--exit-signal-handler)";
    if (votes[0] > 0.0)
        return "--exit-duration-in-mins reached";
    return NULL;
}

tsr_status tsr_trainer_run(tsr_trainer *tr, FILE *metrics)
{
    const tsr_config *cfg = tr->cfg;
    int global_batch = global_batch_size(tr);
    int nan_in_a_row = 0;
    interval_stats stats;
    memset(&stats, 0, sizeof stats);
    double lr = 0.0;
    uint64_t start_ns = tsr_time_ns();
    int64_t first_iteration = tr->iteration;
    if (cfg->exit_signal_handler && tsr_exit_signal_install() != 0)
        return tsr_error_set(TSR_ERR_INTERNAL, "cannot install the --exit-signal-handler");
    if (cfg->skip_train) {
        tsr_status st = tsr_trainer_evaluate(tr, metrics);
        return st != TSR_OK ? st : CALL_HOOK(tr, finish_param_sync);
    }
    /* --train-iters 0 --save DIR writes the initial state (iteration 0:
     * the initialised weights, zero moments, no sample consumed), so that
     * the initial weights can be had as a file; a --load of it trains
     * exactly like a run from scratch */
    if (tr->hooks.save != NULL && cfg->train_iters == 0 && tr->iteration == 0) {
        tsr_status st = save(tr);
        if (st != TSR_OK)
            return st;
    }
    while (tr->iteration < cfg->train_iters) {
        uint64_t t0 = tsr_time_ns();
        tr->iteration++;
        double loss = 0.0;
        tsr_status st = accumulate_gradients(tr, global_batch, &loss);
        if (st != TSR_OK)
            return st;
        if (tr->model.take_aux_loss != NULL) {
            /* every stage's and replica's micro batches, per micro batch */
            double aux = tr->model.take_aux_loss(tr->model.self);
            if (tr->hooks.sum_world != NULL &&
                (st = tr->hooks.sum_world(tr->hooks.ctx, &aux, 1)) != TSR_OK)
                return st;
            stats.aux_sum += aux / ((double)global_batch / cfg->micro_batch_size);
        }
        double norm = 0.0;
        st = gradient_norm(tr, &norm);
        if (st != TSR_OK)
            return st;
        lr = tsr_lr_at(cfg, schedule_step(tr));
        double loss_scale = tsr_precision_loss_scale(&tr->precision);
        bool overflow = tr->precision.scales_loss && !isfinite(norm);
        norm /= loss_scale;
        if (overflow) { /* fp16: skipped, and the scale adapts; not a NaN */
            stats.skipped++;
            tr->overflow_iterations_total++;
            tsr_precision_scaler_update(&tr->precision, true);
        } else if (!isfinite(loss) || !isfinite(norm)) {
            stats.skipped++;
            stats.nans++;
            tr->nan_iterations_total++;
            if (++nan_in_a_row >= cfg->max_nan_iters_in_a_row)
                return tsr_error_set(TSR_ERR_NUMERIC,
                                     "loss or gradient norm was NaN/Inf in %d iterations in a "
                                     "row (last at iteration %lld); lower --lr, raise "
                                     "--lr-warmup-iters or check the data",
                                     nan_in_a_row, (long long)tr->iteration);
        } else {
            nan_in_a_row = 0;
            float clip = 1.0f;
            if (cfg->clip_grad > 0.0 && norm > cfg->clip_grad)
                clip = (float)(cfg->clip_grad / (norm + 1e-6));
            tr->adam_step++;
            st = adamw_step(tr, lr, (float)(clip / loss_scale)); /* unscales fp16's gradients */
            tsr_precision_scaler_update(&tr->precision, false);
            if (st != TSR_OK)
                return st;
            stats.loss_sum += loss;
            stats.counted++;
        }
        tr->last_loss = loss;
        stats.last_norm = norm;
        tr->consumed_samples += global_batch;
        stats.iterations++;
        double seconds = (double)(tsr_time_ns() - t0) * 1e-9;
        stats.seconds += seconds;
        if (tr->iteration > first_iteration + 1) {
            tr->timed_iterations++;
            tr->timed_seconds += seconds;
        }
        if (tr->iteration % cfg->log_interval == 0 || tr->iteration == cfg->train_iters)
            report(tr, &stats, lr, global_batch, metrics);
        if (cfg->eval_interval > 0 && (tr->iteration % cfg->eval_interval == 0 ||
                                       tr->iteration == cfg->train_iters)) {
            st = tsr_trainer_evaluate(tr, metrics);
            if (st != TSR_OK)
                return st;
        }
        const char *stop = early_stop(tr, start_ns, &st);
        if (st != TSR_OK)
            return st;
        bool save_now = cfg->save_interval > 0 && tr->iteration % cfg->save_interval == 0;
        if (tr->hooks.save != NULL &&
            (save_now || stop != NULL || tr->iteration == cfg->train_iters)) {
            st = save(tr);
            if (st != TSR_OK)
                return st;
        }
        if (stop != NULL) {
            tsr_log_once(TSR_LOG_INFO,
                         "stopping at iteration %lld of %lld: %s; %s", (long long)tr->iteration,
                         (long long)cfg->train_iters, stop,
                         tr->hooks.save == NULL ? "no --save, so nothing was saved"
                                                : "resume with --load");
            break;
        }
    }
    /* nothing may be in flight when the caller tears the groups down */
    return CALL_HOOK(tr, finish_param_sync);
}

/*
 * train_checkpoint.c - saving and loading for `tessera train`
 * (train_checkpoint.h).
 */
#include "train_checkpoint.h"

#include <stdio.h>
#include <string.h>

#include "collectives/comm.h"
#include "tessera/log.h"
#include "tessera/timer.h"

static tsr_checkpoint_content checkpoint_content(const tsr_trainer *tr)
{
    /* under 16 bits the weights pass through the trainer's image of them
     * (the master is sharded like the moments; tsr_trainer_master_image) */
    tsr_checkpoint_content c = {tr->model.tensors, tr->model.tensor_count,
                                tsr_trainer_weight_image(tr),
                                tr->adam_m,        tr->adam_v,           tr->hooks.shard,
                                tr->model.frozen};
    return c;
}

tsr_status tsr_train_save_checkpoint(void *ctx, const tsr_trainer *tr)
{
    train_run *run = ctx;
    tsr_checkpoint_state state = {tr->iteration,
                                  tr->consumed_samples,
                                  tr->adam_step,
                                  tr->nan_iterations_total,
                                  run->cfg->seed,
                                  TSR_CHECKPOINT_FORMAT_VERSION,
                                  false,
                                  false,
                                  "",
                                  0.0,
                                  0,
                                  0,
                                  tr->overflow_iterations_total};
    snprintf(state.lora_base, sizeof state.lora_base, "%s", run->lora_base);
    if (tr->precision.scales_loss) {
        state.loss_scale = tr->precision.scaler.scale;
        state.loss_scale_growth = tr->precision.scaler.growth_tracker;
        state.loss_scale_hysteresis = tr->precision.scaler.hysteresis_tracker;
    }
    tsr_trainer_master_image(tr);
    tsr_checkpoint_content content = checkpoint_content(tr);
    if (run->async != NULL) {
        double held = 0.0;
        tsr_status previous =
            tsr_checkpoint_async_start(run->async, run->cfg->save, run->cfg, &state, &content,
                                       &held);
        tsr_log_once(TSR_LOG_INFO,
                     "checkpoint of iteration %lld staged in %.3f s, written in the background "
                     "to %s",
                     (long long)tr->iteration, held, run->cfg->save);
        return previous; /* the status of the save it waited for */
    }
    uint64_t t0 = tsr_time_ns();
    tsr_log_once(TSR_LOG_INFO, "saving checkpoint at iteration %lld to %s",
                 (long long)tr->iteration, run->cfg->save);
    tsr_status st = tsr_checkpoint_save(run->cfg->save, run->cfg, &state, &content,
                                        tsr_comm_mpi_handle(tsr_grid_world(run->grid)));
    if (st == TSR_OK)
        tsr_log_once(TSR_LOG_INFO, "saved checkpoint at iteration %lld in %.3f s",
                     (long long)tr->iteration, (double)(tsr_time_ns() - t0) * 1e-9);
    return st;
}

tsr_train_load_source tsr_train_load_source_of(const tsr_config *cfg)
{
    if (cfg->load != NULL &&
        (cfg->pretrained_checkpoint == NULL || tsr_checkpoint_exists(cfg->load)))
        return (tsr_train_load_source){cfg->load, "--load", cfg->finetune};
    if (cfg->pretrained_checkpoint != NULL)
        return (tsr_train_load_source){cfg->pretrained_checkpoint, "--pretrained-checkpoint",
                                       true};
    return (tsr_train_load_source){NULL, NULL, false};
}

tsr_status tsr_train_load_checkpoint(train_run *run, tsr_trainer *tr)
{
    const tsr_config *cfg = run->cfg;
    tsr_train_load_source source = tsr_train_load_source_of(cfg);
    const char *dir = source.dir;
    bool finetune = source.finetune;
    tsr_checkpoint_state state;
    tsr_checkpoint_content content = checkpoint_content(tr);
    bool fresh_moments = finetune || cfg->no_load_optim;
    if (fresh_moments) /* weights only: what a weights-only file (tessera convert) holds */
        content.adam_m = content.adam_v = NULL;
    tsr_status st = tsr_checkpoint_load(source.flag, dir, cfg, &state, &content,
                                        tsr_comm_mpi_handle(tsr_grid_world(run->grid)));
    if (st != TSR_OK)
        return st;
    tsr_trainer_adopt_weights(tr, content.params);
    /* the base a LoRA run adapts: the one its checkpoint names, or the
     * weights it starts from */
    snprintf(run->lora_base, sizeof run->lora_base, "%s", state.adapters ? state.lora_base : dir);
    if (fresh_moments) {
        memset(tr->adam_m, 0, tr->state_count * sizeof *tr->adam_m);
        memset(tr->adam_v, 0, tr->state_count * sizeof *tr->adam_v);
        state.adam_step = 0;
    }
    if (finetune) {
        tsr_log_once(TSR_LOG_INFO,
                     "fine-tuning from the weights of iteration %lld in %s: iteration, "
                     "optimizer state and data position start fresh",
                     (long long)state.iteration, dir);
        state.iteration = state.consumed_samples = state.nan_iterations = 0;
        state.overflow_iterations = 0;
    } else {
        tsr_log_once(TSR_LOG_INFO,
                     "loaded checkpoint of iteration %lld from %s (%lld samples consumed)%s",
                     (long long)state.iteration, dir, (long long)state.consumed_samples,
                     cfg->no_load_optim ? "; optimizer state starts fresh (--no-load-optim)" : "");
    }
    tr->iteration = state.iteration;
    tr->consumed_samples = state.consumed_samples;
    tr->adam_step = state.adam_step;
    tr->nan_iterations_total = state.nan_iterations;
    /* kept under --no-load-optim too: like the iteration, it is where the
     * LR schedule stands, not optimizer state */
    tr->overflow_iterations_total = state.overflow_iterations;
    /* fp16's dynamic scale goes on from where it was (a fine-tuning start,
     * a constant --loss-scale or a file without it: from the flags) */
    if (tr->precision.scales_loss && tr->precision.scaler.dynamic && !finetune &&
        state.loss_scale > 0.0) {
        tr->precision.scaler.scale = state.loss_scale;
        tr->precision.scaler.growth_tracker = state.loss_scale_growth;
        tr->precision.scaler.hysteresis_tracker = state.loss_scale_hysteresis;
    }
    /* streams are functions of the seed: nothing to restore, only to say */
    if (state.seed != cfg->seed && !finetune && !cfg->no_load_rng)
        tsr_log_once(TSR_LOG_WARN,
                     "checkpoint was trained with --seed %lld, this run uses %lld: data order "
                     "and dropout continue with the new seed",
                     (long long)state.seed, (long long)cfg->seed);
    return TSR_OK;
}

tsr_status tsr_train_async_begin(train_run *run, const tsr_trainer *tr, int mpi_thread_level,
                                 bool data_reads_hdf5)
{
    tsr_status st = tsr_checkpoint_async_supported(mpi_thread_level, data_reads_hdf5);
    if (st == TSR_OK)
        st = tsr_checkpoint_async_create(tsr_comm_mpi_handle(tsr_grid_world(run->grid)),
                                         tr->model.param_count, tr->state_count,
                                         tr->model.frozen_count, &run->async);
    return st;
}

tsr_status tsr_train_async_end(train_run *run)
{
    tsr_status st = tsr_checkpoint_async_wait(run->async);
    tsr_checkpoint_async_destroy(run->async);
    run->async = NULL;
    return tsr_save_failure_apply(run->cfg, st, "the run ends");
}

/*
 * precision.c - the 16-bit state of a training run (see precision.h).
 */
#include "precision.h"

#include <string.h>

#include "tessera/log.h"

#define MIN_OPERAND_FLOATS ((size_t)1 << 16)

/* Megatron's defaults for what the flags leave unset (config.h) */
#define DEFAULT_INITIAL_SCALE 4294967296.0 /* 2^32 */
#define DEFAULT_MIN_SCALE 1.0
#define DEFAULT_WINDOW 1000
#define DEFAULT_HYSTERESIS 2

static bool uses_16_bits(const tsr_config *cfg)
{
    return cfg->bf16 || cfg->fp16;
}

static tsr_matmul16_format format_of(const tsr_config *cfg)
{
    return cfg->fp16 ? TSR_MATMUL16_FP16 : TSR_MATMUL16_BF16;
}

static tsr_matmul16_engine engine_of(const tsr_config *cfg)
{
    return tsr_matmul16_engine_for(format_of(cfg), NULL, 0);
}

static size_t operand_floats(const tsr_config *cfg, const tsr_model *model)
{
    size_t floats = model->largest_operand;
    if (floats == 0)
        floats = (size_t)cfg->micro_batch_size * (size_t)cfg->seq_length *
                 (size_t)cfg->hidden_size * 4;
    return floats > MIN_OPERAND_FLOATS ? floats : MIN_OPERAND_FLOATS;
}

static size_t copy_bytes(const tsr_config *cfg, const tsr_model *model, size_t padded_count)
{
    return (padded_count + model->frozen_count) * tsr_matmul16_element_bytes(format_of(cfg));
}

void tsr_precision_plan(const tsr_config *cfg, const tsr_model *model, size_t padded_count,
                        tsr_memory_plan *plan)
{
    if (!uses_16_bits(cfg))
        return;
    tsr_plan_add_bytes(plan, TSR_MEM_PARAMS, copy_bytes(cfg, model, padded_count));
    tsr_plan_add_bytes(plan, TSR_MEM_SCRATCH,
                       tsr_matmul16_workspace_bytes(format_of(cfg), engine_of(cfg),
                                                    operand_floats(cfg, model)));
}

static tsr_loss_scaler scaler_of(const tsr_config *cfg)
{
    tsr_loss_scaler s = {0};
    s.dynamic = cfg->loss_scale <= 0.0;
    s.scale = !s.dynamic                       ? cfg->loss_scale
              : cfg->initial_loss_scale > 0.0 ? cfg->initial_loss_scale
                                              : DEFAULT_INITIAL_SCALE;
    s.min_scale = cfg->min_loss_scale > 0.0 ? cfg->min_loss_scale : DEFAULT_MIN_SCALE;
    s.window = cfg->loss_scale_window > 0 ? cfg->loss_scale_window : DEFAULT_WINDOW;
    s.hysteresis = cfg->hysteresis > 0 ? cfg->hysteresis : DEFAULT_HYSTERESIS;
    s.hysteresis_tracker = s.hysteresis;
    return s;
}

tsr_status tsr_precision_init(tsr_precision *p, const tsr_config *cfg, const tsr_model *model,
                              size_t padded_count, tsr_memory_plan *plan)
{
    memset(p, 0, sizeof *p);
    p->scaler.scale = 1.0;
    if (!uses_16_bits(cfg))
        return TSR_OK;
    tsr_matmul16_format format = format_of(cfg);
    char why[256];
    tsr_matmul16_engine engine = tsr_matmul16_engine_for(format, why, sizeof why);
    size_t operands = operand_floats(cfg, model);
    size_t workspace_bytes = tsr_matmul16_workspace_bytes(format, engine, operands);
    void *workspace = NULL;
    p->element_bytes = tsr_matmul16_element_bytes(format);
    p->padded_count = padded_count;
    p->model = *model;
    tsr_status st = tsr_plan_take_bytes(plan, TSR_MEM_PARAMS,
                                        copy_bytes(cfg, model, padded_count), &p->weight_copies);
    if (st == TSR_OK)
        st = tsr_plan_take_bytes(plan, TSR_MEM_SCRATCH, workspace_bytes, &workspace);
    if (st == TSR_OK)
        st = tsr_matmul16_create(format, engine, workspace, operands, &p->matmul);
    if (st == TSR_OK)
        st = tsr_matmul16_map(p->matmul, model->params, p->weight_copies, model->param_count,
                              false);
    if (st == TSR_OK && model->frozen_count > 0)
        st = tsr_matmul16_map(p->matmul, model->frozen,
                              (char *)p->weight_copies + padded_count * p->element_bytes,
                              model->frozen_count, true);
    if (st != TSR_OK) {
        tsr_precision_release(p);
        return st;
    }
    p->stale = true;
    if (cfg->fp16) {
        p->scales_loss = true;
        p->scaler = scaler_of(cfg);
    }
    tsr_log_once(TSR_LOG_INFO,
                 "%s: linear products through %s, fp32 accumulation; 16-bit weights %.1f MiB, "
                 "their fp32 master in the optimizer state; operand workspace %.1f MiB%s",
                 tsr_matmul16_format_name(format), tsr_matmul16_impl(p->matmul),
                 (double)copy_bytes(cfg, model, padded_count) / 1048576.0,
                 (double)workspace_bytes / 1048576.0,
                 !cfg->fp16 ? ""
                 : p->scaler.dynamic ? "; dynamic loss scaling"
                                     : "; constant loss scale");
    /* the same numbers as oneDNN's, but slower than fp32: say so */
    if (cfg->bf16 && engine == TSR_MATMUL16_SGEMM)
        tsr_log_once(TSR_LOG_WARN,
                     "bf16: %s; the products run as sgemm over bf16-rounded operands (the same "
                     "sums as a bf16 GEMM, slower than fp32): bf16 here is for its numerics, "
                     "not for speed",
                     why);
    return TSR_OK;
}

void tsr_precision_store(tsr_precision *p, size_t offset, const float *values, size_t n)
{
    if (p->matmul == NULL || n == 0)
        return;
    tsr_matmul16_round(p->matmul, (char *)p->weight_copies + offset * p->element_bytes, values, n);
    p->stale = true;
}

void tsr_precision_refresh(tsr_precision *p)
{
    if (p->matmul == NULL)
        return;
    const tsr_model *m = &p->model;
    for (size_t s = 0; s < m->span_count && p->stale; s++) {
        const tsr_param_span *span = &m->spans[s];
        if (span->no_fp32_read && m->fp32_view)
            continue; /* no memory behind these: the products read the copy */
        tsr_matmul16_widen(p->matmul, m->params + span->offset,
                           (const char *)p->weight_copies + span->offset * p->element_bytes,
                           span->count);
    }
    if (p->stale)
        tsr_matmul16_refresh(p->matmul); /* the frozen weights */
    p->stale = false;
    tsr_matmul16_activate(p->matmul);
}

tsr_status tsr_precision_take_status(tsr_precision *p)
{
    return p->matmul != NULL ? tsr_matmul16_take_status(p->matmul) : TSR_OK;
}

double tsr_precision_loss_scale(const tsr_precision *p)
{
    return p->scales_loss ? p->scaler.scale : 1.0;
}

void tsr_precision_scaler_update(tsr_precision *p, bool overflow)
{
    tsr_loss_scaler *s = &p->scaler;
    if (!p->scales_loss || !s->dynamic)
        return;
    if (overflow) {
        s->growth_tracker = 0;
        if (--s->hysteresis_tracker <= 0) {
            s->scale *= 0.5;
            if (s->scale < s->min_scale)
                s->scale = s->min_scale;
        }
        return;
    }
    if (++s->growth_tracker == s->window) {
        s->growth_tracker = 0;
        s->hysteresis_tracker = s->hysteresis;
        s->scale *= 2.0;
    }
}

void tsr_precision_report(const tsr_precision *p, double seconds)
{
    if (p->matmul == NULL || seconds <= 0.0)
        return;
    tsr_matmul16_times t = tsr_matmul16_times_of(p->matmul);
    double rest = seconds - t.product_s - t.rounding_s - t.refresh_s;
    tsr_log_once(TSR_LOG_INFO,
                 "%s time of %.2f s training (rank 0): products %.2f s (%.0f%%, %.1f GFLOP/s), "
                 "operand rounding %.2f s (%.0f%%), weight copies %.2f s (%.0f%%), the rest "
                 "(attention, norms, activations, loss, optimizer, communication) %.2f s (%.0f%%)",
                 p->scales_loss ? "fp16" : "bf16", seconds, t.product_s, 100.0 * t.product_s / seconds,
                 t.product_s > 0.0 ? t.flops / t.product_s * 1e-9 : 0.0, t.rounding_s,
                 100.0 * t.rounding_s / seconds, t.refresh_s, 100.0 * t.refresh_s / seconds, rest,
                 100.0 * rest / seconds);
}

void tsr_precision_release(tsr_precision *p)
{
    tsr_matmul16_destroy(p->matmul);
    p->matmul = NULL;
    p->weight_copies = NULL;
}

/*
 * lora.c - the low-rank adapters of the parallel linears (see lora.h for
 * the tensor-parallel layout and why it needs so little communication).
 *
 * xa = drop(x) A^T is kept already multiplied by the scale, so that the
 * output term is xa B^T and B's gradient dy^T xa with no further scaling.
 */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tessera/kernels.h"

bool tsr_lora_enabled(const tsr_lora_config *cfg, tsr_lora_linear linear)
{
    return cfg->rank > 0 && (cfg->targets & (1u << linear)) != 0;
}

static bool is_row_parallel(tsr_lora_linear linear)
{
    return linear == TSR_LORA_LINEAR_PROJ || linear == TSR_LORA_LINEAR_FC2;
}

void tsr_lora_declare_params(tsr_module_decl *decl, const tsr_lora_config *cfg,
                             tsr_lora_linear linear, const char *prefix, int base, int64_t rows,
                             int64_t cols, tsr_param_split rows_split)
{
    bool on = tsr_lora_enabled(cfg, linear), row = is_row_parallel(linear);
    int64_t r = on ? cfg->rank : 1;
    char name[48];
    snprintf(name, sizeof name, "%s.lora_A.weight", prefix);
    int a =
        tsr_decl_param(decl, on, name, r, cols, row ? TSR_PARAM_SPLIT_COLS : TSR_PARAM_SPLIT_NONE,
                       TSR_INIT_NORMAL, (float)(1.0 / sqrt(3.0 * (double)cols)), TSR_PARAM_DECAY);
    snprintf(name, sizeof name, "%s.lora_B.weight", prefix);
    int b = tsr_decl_param(decl, on, name, rows, r, row ? TSR_PARAM_SPLIT_NONE : rows_split,
                           TSR_INIT_CONSTANT, 0.0f, TSR_PARAM_DECAY);
    if (on) {
        tsr_decl_adapter(decl, a, base, TSR_ADAPTER_DOWN, cfg->scale);
        tsr_decl_adapter(decl, b, base, TSR_ADAPTER_UP, cfg->scale);
    }
}

void tsr_lora_declare_buffers(tsr_module_decl *decl, const tsr_lora_config *cfg,
                              tsr_lora_linear linear, int64_t in_local)
{
    static const char *const names[] = {"qkv", "proj", "fc1", "fc2"};
    bool on = tsr_lora_enabled(cfg, linear);
    int64_t r = on ? cfg->rank : 1;
    char name[32];
    snprintf(name, sizeof name, "lora_%s_xa", names[linear]);
    tsr_decl_activation(decl,
                        tsr_decl_buffer(decl, on, name, TSR_ROWS_TOKENS, r, TSR_BUFFER_SAVED));
    snprintf(name, sizeof name, "lora_%s_x", names[linear]);
    tsr_decl_buffer(decl, on && cfg->dropout > 0.0, name, TSR_ROWS_TOKENS, in_local,
                    TSR_BUFFER_SCRATCH);
    snprintf(name, sizeof name, "lora_%s_dxa", names[linear]);
    tsr_decl_buffer(decl, on, name, TSR_ROWS_TOKENS, r, TSR_BUFFER_SCRATCH);
}

static void scale(float *x, int64_t n, float s)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
}

/* The adapter's input: x itself, or x under this site's dropout mask
 * (written into the site's scratch). The mask covers the whole sequence;
 * a row-parallel input is this rank's columns of the layer's. */
static const float *dropped_input(const tsr_module_run *run, const tsr_lora_site *site,
                                  const float *x, bool train)
{
    if (!train || site->cfg->dropout <= 0.0)
        return x;
    const tsr_module_info *info = run->info;
    tsr_dropout dr;
    tsr_module_dropout_keyed(run, "lora", (int)site->linear, site->cfg->dropout, false, &dr);
    if (is_row_parallel(site->linear)) {
        dr.c_offset = (int64_t)info->tp_rank * site->in;
        dr.c_global = site->in * info->tp_size;
    }
    float *xd = run->buffers[site->x_drop];
    tsr_dropout_forward(xd, x, info->micro_batch, info->seq, site->in, &dr);
    return xd;
}

tsr_status tsr_lora_forward(const tsr_module_run *run, const tsr_lora_site *site, const float *x,
                            float *out)
{
    if (!tsr_lora_enabled(site->cfg, site->linear))
        return TSR_OK;
    int64_t nt = tsr_module_rows(run, TSR_ROWS_TOKENS), r = site->cfg->rank;
    float *xa = run->buffers[site->xa];
    const float *xd = dropped_input(run, site, x, run->train);
    tsr_linear_forward(xa, xd, run->params[site->a], NULL, nt, site->in, r);
    if (is_row_parallel(site->linear)) {
        /* the partial products of this rank's input columns, summed */
        tsr_status st = tsr_module_tp_sum(run, xa, nt * r);
        if (st != TSR_OK)
            return st;
    }
    scale(xa, nt * r, site->cfg->scale);
    /* a row-parallel output is summed over tp after this: rank 0 adds the
     * term, as it adds the bias */
    if (!is_row_parallel(site->linear) || run->info->tp_rank == 0)
        tsr_linear_forward_add(out, xa, run->params[site->b], nt, r, site->out);
    return TSR_OK;
}

tsr_status tsr_lora_backward(const tsr_module_run *run, const tsr_lora_site *site, const float *x,
                             const float *dy, float *dx)
{
    if (!tsr_lora_enabled(site->cfg, site->linear))
        return TSR_OK;
    const tsr_module_info *info = run->info;
    int64_t nt = tsr_module_rows(run, TSR_ROWS_TOKENS), r = site->cfg->rank;
    const float *a = run->params[site->a], *b = run->params[site->b];
    float *d_xa = run->buffers[site->d_xa];
    memset(d_xa, 0, (size_t)(nt * r) * sizeof *d_xa);
    /* dB += dy^T xa (xa holds the scale); d(x A^T) = scale * dy B */
    tsr_linear_backward(d_xa, run->grads[site->b], NULL, dy, run->buffers[site->xa], b, nt, r,
                        site->out);
    scale(d_xa, nt * r, site->cfg->scale);
    bool dropout = site->cfg->dropout > 0.0;
    if (dropout) {
        float *d_xd = run->buffers[site->x_drop];
        memset(d_xd, 0, (size_t)(nt * site->in) * sizeof *d_xd);
        tsr_linear_backward(d_xd, NULL, NULL, d_xa, NULL, a, nt, site->in, r);
        tsr_dropout dr;
        tsr_module_dropout_keyed(run, "lora", (int)site->linear, site->cfg->dropout, false, &dr);
        if (is_row_parallel(site->linear)) {
            dr.c_offset = (int64_t)info->tp_rank * site->in;
            dr.c_global = site->in * info->tp_size;
        }
        tsr_dropout_backward(dx, d_xd, info->micro_batch, info->seq, site->in, &dr);
    } else {
        tsr_linear_backward(dx, NULL, NULL, d_xa, NULL, a, nt, site->in, r);
    }
    if (!is_row_parallel(site->linear)) {
        /* this rank's output rows gave a partial d(x A^T); A is whole */
        tsr_status st = tsr_module_tp_sum(run, d_xa, nt * r);
        if (st != TSR_OK)
            return st;
    }
    /* dA += d(x A^T)^T drop(x), the mask drawn again */
    const float *xd = dropped_input(run, site, x, true);
    tsr_linear_backward(NULL, run->grads[site->a], NULL, d_xa, xd, a, nt, site->in, r);
    return TSR_OK;
}

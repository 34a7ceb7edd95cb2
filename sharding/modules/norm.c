/*
 * norm.c - LayerNorm or RMSNorm over the rows of its input (the residual
 * stream's local rows): no communication. Under sequence parallelism each
 * rank normalises only its rows, so the weight gradients are partial sums
 * (TSR_PARAM_SP_PARTIAL: the builder sums them over tp once per
 * iteration). Megatron-Core names: weight, bias.
 */
#include "tessera/kernels.h"
#include "tessera/modules.h"

enum { WEIGHT, BIAS };
enum { MEAN, RSTD };

static bool layernorm(const tsr_module_info *info)
{
    return ((const tsr_norm_config *)info->config)->type == TSR_NORM_LAYERNORM;
}

static tsr_status norm_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    if (info->config == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_norm_config");
    int64_t c = info->in_cols;
    unsigned partial = info->in_rows == TSR_ROWS_LOCAL ? TSR_PARAM_SP_PARTIAL : 0;
    bool ln = layernorm(info);
    tsr_decl_param(decl, true, "weight", c, 1, TSR_PARAM_SPLIT_NONE, TSR_INIT_CONSTANT, 1.0f,
                   partial);
    tsr_decl_param(decl, ln, "bias", c, 1, TSR_PARAM_SPLIT_NONE, TSR_INIT_CONSTANT, 0.0f,
                   partial);
    tsr_decl_buffer(decl, ln, "mean", info->in_rows, 1, TSR_BUFFER_SAVED);
    tsr_decl_buffer(decl, true, "rstd", info->in_rows, 1, TSR_BUFFER_SAVED);
    decl->keeps_input = true;
    decl->decodes = true; /* row-wise */
    return TSR_OK;
}

/* in (N, C) -> out (N, C), mean and rstd (N) saved */
static tsr_status norm_forward(const tsr_module_run *run, const float *in, float *out)
{
    const tsr_module_info *info = run->info;
    const tsr_norm_config *cfg = info->config;
    int64_t n = tsr_module_rows(run, info->in_rows), c = info->in_cols;
    if (layernorm(info))
        tsr_layernorm_forward(out, run->buffers[MEAN], run->buffers[RSTD], in,
                              run->params[WEIGHT], run->params[BIAS], n, c, cfg->eps);
    else
        tsr_rmsnorm_forward(out, run->buffers[RSTD], in, run->params[WEIGHT], n, c, cfg->eps);
    return TSR_OK;
}

static tsr_status norm_backward(const tsr_module_run *run, const float *in, const float *out,
                                const float *dout, float *din)
{
    (void)out;
    const tsr_module_info *info = run->info;
    int64_t n = tsr_module_rows(run, info->in_rows), c = info->in_cols;
    if (layernorm(info))
        tsr_layernorm_backward(din, run->grads[WEIGHT], run->grads[BIAS], dout, in,
                               run->params[WEIGHT], run->buffers[MEAN], run->buffers[RSTD], n,
                               c);
    else
        tsr_rmsnorm_backward(din, run->grads[WEIGHT], dout, in, run->params[WEIGHT],
                             run->buffers[RSTD], n, c);
    return TSR_OK;
}

const tsr_module_kind tsr_module_norm = {"norm", norm_declare, norm_forward, norm_backward, NULL};

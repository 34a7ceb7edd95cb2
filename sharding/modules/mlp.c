/*
 * mlp.c - the transformer MLP over this rank's columns: column-parallel
 * linear_fc1 (its input gathered under SP; under SwiGLU the gate and up
 * halves are each split, so a rank holds matching gate and up columns),
 * GELU (tanh form) or SwiGLU, row-parallel linear_fc2 (input_is_parallel;
 * output summed over tp into the local rows). Local rows (C) -> local
 * rows (C). nt = B*T rows, F = ffn / tp local columns.
 */
#include <string.h>

#include "lora.h"
#include "parallel_linear.h"
#include "tessera/kernels.h"
#include "tessera/modules.h"

enum { FC1_W, FC1_B, FC2_W, FC2_B, FC1_LORA_A, FC1_LORA_B, FC2_LORA_A, FC2_LORA_B };
enum {
    IN_FULL, FC1, ACT, OUT_FULL, D_ACT, D_FC1, D_IN_FULL, D_IN_LOCAL,
    FC1_XA, FC1_XD, FC1_DXA, FC2_XA, FC2_XD, FC2_DXA /* adapters (lora.h) */
};

static tsr_status mlp_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const tsr_mlp_config *cfg = info->config;
    if (cfg == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_mlp_config");
    if (info->in_rows != TSR_ROWS_LOCAL || info->in_cols != info->hidden)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "reads the residual stream (local rows x %lld "
                                                  "columns) but is given %lld columns",
                             (long long)info->hidden, (long long)info->in_cols);
    int tp = info->tp_size;
    if (cfg->ffn <= 0 || cfg->ffn % tp != 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "--ffn-hidden-size %lld must be positive and "
                                                  "divisible by --tensor-model-parallel-size %d",
                             (long long)cfg->ffn, tp);
    int64_t c = info->hidden, f = cfg->ffn / tp, fc1_out = cfg->swiglu ? 2 * cfg->ffn : cfg->ffn;
    tsr_param_split fc1_split = cfg->swiglu ? TSR_PARAM_SPLIT_GATE_UP : TSR_PARAM_SPLIT_ROWS;
    bool sp = info->sequence_parallel;
    tsr_decl_param(decl, true, "linear_fc1.weight", fc1_out, c, fc1_split, TSR_INIT_NORMAL,
                   cfg->init_std, TSR_PARAM_DECAY | TSR_PARAM_NO_FP32_READ);
    tsr_decl_param(decl, cfg->bias, "linear_fc1.bias", fc1_out, 1, fc1_split, TSR_INIT_CONSTANT,
                   0.0f, 0);
    tsr_decl_param(decl, true, "linear_fc2.weight", c, cfg->ffn, TSR_PARAM_SPLIT_COLS,
                   TSR_INIT_NORMAL, cfg->out_init_std, TSR_PARAM_DECAY | TSR_PARAM_NO_FP32_READ);
    tsr_decl_param(decl, cfg->bias, "linear_fc2.bias", c, 1, TSR_PARAM_SPLIT_NONE,
                   TSR_INIT_CONSTANT, 0.0f, 0);
    tsr_lora_declare_params(decl, &cfg->lora, TSR_LORA_LINEAR_FC1, "linear_fc1", FC1_W, fc1_out,
                            c, fc1_split);
    tsr_lora_declare_params(decl, &cfg->lora, TSR_LORA_LINEAR_FC2, "linear_fc2", FC2_W, c,
                            cfg->ffn, TSR_PARAM_SPLIT_NONE);
    tsr_buffer_life S = TSR_BUFFER_SAVED, X = TSR_BUFFER_SCRATCH;
    tsr_buffer_rows R = TSR_ROWS_TOKENS;
    tsr_decl_activation(decl, tsr_decl_buffer(decl, sp, "in_full", R, c, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "fc1", R, fc1_out / tp, S));
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "act", R, f, S));
    tsr_decl_buffer(decl, sp, "out_full", R, c, X);
    tsr_decl_buffer(decl, true, "d_act", R, f, X);
    tsr_decl_buffer(decl, true, "d_fc1", R, fc1_out / tp, X);
    tsr_decl_buffer(decl, tp > 1 || sp, "d_in_full", R, c, X);
    tsr_decl_buffer(decl, sp, "d_in_local", TSR_ROWS_LOCAL, c, X);
    tsr_lora_declare_buffers(decl, &cfg->lora, TSR_LORA_LINEAR_FC1, c);
    tsr_lora_declare_buffers(decl, &cfg->lora, TSR_LORA_LINEAR_FC2, f);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = c;
    decl->keeps_input = !sp;
    decl->decodes = true; /* row-wise */
    return TSR_OK;
}

static tsr_lora_site fc1_adapter(const tsr_mlp_config *cfg, int64_t c, int64_t fc1)
{
    return (tsr_lora_site){&cfg->lora, TSR_LORA_LINEAR_FC1, FC1_LORA_A, FC1_LORA_B, FC1_XA,
                           FC1_XD,     FC1_DXA,             c,          fc1};
}

static tsr_lora_site fc2_adapter(const tsr_mlp_config *cfg, int64_t f, int64_t c)
{
    return (tsr_lora_site){&cfg->lora, TSR_LORA_LINEAR_FC2, FC2_LORA_A, FC2_LORA_B, FC2_XA,
                           FC2_XD,     FC2_DXA,             f,          c};
}

static tsr_status mlp_forward(const tsr_module_run *run, const float *in, float *out)
{
    const tsr_mlp_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    int64_t c = run->info->hidden, nt = tsr_module_rows(run, TSR_ROWS_TOKENS);
    int64_t f = cfg->ffn / run->info->tp_size, fc1 = cfg->swiglu ? 2 * f : f;
    const float *x = NULL;
    tsr_status st = tsr_column_input_forward(run, in, buf[IN_FULL], c, &x);
    if (st != TSR_OK)
        return st;
    tsr_linear_forward(buf[FC1], x, w[FC1_W], w[FC1_B], nt, c, fc1);
    tsr_lora_site a1 = fc1_adapter(cfg, c, fc1), a2 = fc2_adapter(cfg, f, c);
    if ((st = tsr_lora_forward(run, &a1, x, buf[FC1])) != TSR_OK)
        return st;
    if (cfg->swiglu)
        tsr_swiglu_forward(buf[ACT], buf[FC1], nt, f);
    else
        tsr_gelu_forward(buf[ACT], buf[FC1], nt * f);
    float *target = tsr_row_output_target(run, out, buf[OUT_FULL]);
    tsr_linear_forward(target, buf[ACT], w[FC2_W], tsr_row_parallel_bias(run, w[FC2_B]), nt, f,
                       c);
    if ((st = tsr_lora_forward(run, &a2, buf[ACT], target)) != TSR_OK)
        return st;
    return tsr_row_output_forward(run, out, target, c);
}

static tsr_status mlp_backward(const tsr_module_run *run, const float *in, const float *out,
                               const float *dout, float *din)
{
    (void)out;
    const tsr_mlp_config *cfg = run->info->config;
    float *const *buf = run->buffers;
    float *const *w = run->params;
    float *const *g = run->grads;
    int64_t c = run->info->hidden, nt = tsr_module_rows(run, TSR_ROWS_TOKENS);
    int64_t f = cfg->ffn / run->info->tp_size, fc1 = cfg->swiglu ? 2 * f : f;
    const float *d_full = NULL;
    tsr_status st = tsr_row_output_backward(run, dout, buf[OUT_FULL], c, &d_full);
    if (st != TSR_OK)
        return st;
    memset(buf[D_ACT], 0, (size_t)(nt * f) * sizeof(float));
    tsr_linear_backward(buf[D_ACT], g[FC2_W], g[FC2_B], d_full, buf[ACT], w[FC2_W], nt, f, c);
    tsr_lora_site a1 = fc1_adapter(cfg, c, fc1), a2 = fc2_adapter(cfg, f, c);
    if ((st = tsr_lora_backward(run, &a2, buf[ACT], d_full, buf[D_ACT])) != TSR_OK)
        return st;
    memset(buf[D_FC1], 0, (size_t)(nt * fc1) * sizeof(float));
    if (cfg->swiglu)
        tsr_swiglu_backward(buf[D_FC1], buf[D_ACT], buf[FC1], nt, f);
    else
        tsr_gelu_backward(buf[D_FC1], buf[D_ACT], buf[FC1], nt * f);
    const float *x = run->info->sequence_parallel ? buf[IN_FULL] : in;
    float *d_in = tsr_column_input_grad_target(run, din, buf[D_IN_FULL], c);
    tsr_linear_backward(d_in, g[FC1_W], g[FC1_B], buf[D_FC1], x, w[FC1_W], nt, c, fc1);
    if ((st = tsr_lora_backward(run, &a1, x, buf[D_FC1], d_in)) != TSR_OK)
        return st;
    return tsr_column_input_backward(run, din, buf[D_IN_FULL], buf[D_IN_LOCAL], c);
}

const tsr_module_kind tsr_module_mlp = {"mlp", mlp_declare, mlp_forward, mlp_backward, NULL};

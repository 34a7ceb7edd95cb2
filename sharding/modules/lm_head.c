/*
 * lm_head.c - the vocab-parallel output layer fused with the
 * cross-entropy: local rows (C) -> per-row loss.
 *
 * The head runs the steps of runtime/kernels/lm_head_steps.h, in their
 * order (the GPU head runs the same), with the CPU kernels as the steps
 * (tsr_head_cpu_ops) and the tensor-parallel group as the reduction over
 * the vocabulary shards. Logits exist only for TSR_LM_HEAD_CHUNK_ROWS rows at a time:
 * each chunk's row max, then sum-exp and target logit, are reduced over
 * tp, the loss follows, and in training the logits are turned into their
 * gradient in place and folded straight into the weight gradient and the
 * input gradient (kept until backward). Neither the whole logits
 * nor the probabilities are ever stored, and they are never gathered.
 * Padded vocabulary rows get -inf logits, so the loss does not depend on
 * how much padding a layout needs. Tied: the weight is the embedding's
 * table (TSR_PARAM_TIED_EMBEDDING).
 */
#include <string.h>

#include "kernels/lm_head_steps.h"
#include "parallel_linear.h"
#include "tessera/kernels.h"
#include "tessera/modules.h"

enum { WEIGHT };
enum { IN_FULL, D_IN_FULL, SCRATCH, D_IN_LOCAL };

/* The head's chunks for `rows` rows (B*T, or B in generation): logits of
 * TSR_LM_HEAD_CHUNK_ROWS rows at a time, sized for a core's caches. */
static tsr_status head_plan(const tsr_module_info *info, int64_t rows, tsr_head_plan *plan)
{
    tsr_head_shape shape = {rows, info->hidden, info->local_vocab, info->vocab_start,
                            info->vocab};
    int64_t budget = TSR_LM_HEAD_CHUNK_ROWS * info->local_vocab * (int64_t)sizeof(float);
    return tsr_head_plan_make(plan, &shape, budget);
}

static tsr_status head_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const tsr_lm_head_config *cfg = info->config;
    if (cfg == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_lm_head_config");
    if (info->in_rows != TSR_ROWS_LOCAL || info->in_cols != info->hidden)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "reads the residual stream (local rows x %lld "
                                                  "columns) but is given %lld columns",
                             (long long)info->hidden, (long long)info->in_cols);
    tsr_head_plan plan;
    tsr_status st = head_plan(info, info->micro_batch * info->seq, &plan);
    if (st != TSR_OK)
        return st;
    int64_t c = info->hidden;
    bool sp = info->sequence_parallel;
    tsr_decl_param(decl, true, "weight", info->padded_vocab, c, TSR_PARAM_SPLIT_VOCAB,
                   TSR_INIT_NORMAL, cfg->init_std,
                   TSR_PARAM_DECAY |
                       (cfg->tied ? TSR_PARAM_TIED_EMBEDDING : TSR_PARAM_NO_FP32_READ));
    tsr_buffer_life S = TSR_BUFFER_SAVED, X = TSR_BUFFER_SCRATCH;
    tsr_decl_activation(decl, tsr_decl_buffer(decl, sp, "in_full", TSR_ROWS_TOKENS, c, S));
    tsr_decl_buffer(decl, true, "d_in_full", TSR_ROWS_TOKENS, c, S);
    /* one chunk's logits and row statistics (lm_head_steps.h) */
    tsr_decl_buffer(decl, true, "chunk", TSR_ROWS_FIXED,
                    plan.scratch_bytes / (int64_t)sizeof(float), X);
    tsr_decl_buffer(decl, sp, "d_in_local", TSR_ROWS_LOCAL, c, X);
    decl->out_rows = TSR_ROWS_FIXED;
    decl->out_cols = 1;
    decl->keeps_input = !sp;
    decl->decodes = true; /* row-wise */
    return TSR_OK;
}

/* the tensor-parallel group as the reduction over the vocabulary shards */
static tsr_status tp_reduce(void *ctx, float *x, int64_t count, tsr_head_reduce_op op)
{
    const tsr_module_run *run = ctx;
    return op == TSR_HEAD_REDUCE_MAX ? tsr_module_tp_max(run, x, count)
                                     : tsr_module_tp_sum(run, x, count);
}

/* the CPU's steps on this instance's weight, its gradient and tp */
static tsr_head_cpu cpu_steps(const tsr_module_run *run, const tsr_head_plan *plan)
{
    tsr_head_cpu steps = {plan, run->params[WEIGHT], run->grads[WEIGHT], tp_reduce,
                          (void *)run};
    return steps;
}

static tsr_status head_forward(const tsr_module_run *run, const float *in, float *out)
{
    (void)out;
    const tsr_module_info *info = run->info;
    const tsr_step_io *step = run->io;
    int64_t n = tsr_module_rows(run, TSR_ROWS_TOKENS);
    tsr_head_plan plan;
    tsr_status st = head_plan(info, n, &plan);
    const float *x = NULL;
    if (st == TSR_OK)
        st = tsr_column_input_forward(run, in, run->buffers[IN_FULL], info->hidden, &x);
    if (st != TSR_OK)
        return st;
    if (run->train)
        memset(run->buffers[D_IN_FULL], 0, (size_t)(n * info->hidden) * sizeof(float));
    tsr_head_io io = {x, step->targets, step->row_weight, step->row_loss, step->row_correct,
                      run->buffers[D_IN_FULL], run->buffers[SCRATCH]};
    tsr_head_cpu steps = cpu_steps(run, &plan);
    return tsr_head_run(&plan, &io, run->train, &tsr_head_cpu_ops, &steps);
}

/* The input gradient was made in forward; summed over tp here. */
static tsr_status head_backward(const tsr_module_run *run, const float *in, const float *out,
                                const float *dout, float *din)
{
    (void)in;
    (void)out;
    (void)dout;
    const tsr_module_info *info = run->info;
    float *partial = run->buffers[D_IN_FULL];
    if (info->tp_size <= 1 && !info->sequence_parallel) {
        tsr_accumulate(din, partial, tsr_module_rows(run, TSR_ROWS_TOKENS) * info->hidden);
        return TSR_OK;
    }
    return tsr_column_input_backward(run, din, partial, run->buffers[D_IN_LOCAL], info->hidden);
}

static tsr_status head_logits_only(const tsr_module_run *run, const float *in, float *logits,
                                   int64_t *count)
{
    const tsr_module_info *info = run->info;
    int64_t n = tsr_module_rows(run, TSR_ROWS_TOKENS);
    int64_t v = info->local_vocab;
    tsr_head_plan plan;
    tsr_status st = head_plan(info, n, &plan);
    const float *x = NULL;
    if (st == TSR_OK)
        st = tsr_column_input_forward(run, in, run->buffers[IN_FULL], info->hidden, &x);
    if (st != TSR_OK)
        return st;
    int64_t real = plan.first_pad;
    *count = real;
    float *chunk = run->buffers[SCRATCH];
    tsr_head_cpu steps = cpu_steps(run, &plan);
    for (int64_t c = 0; c < plan.chunks && st == TSR_OK; c++) {
        int64_t r0 = tsr_head_chunk_start(&plan, c), rows = tsr_head_chunk_rows(&plan, c);
        st = tsr_head_cpu_ops.logits(&steps, chunk, x + r0 * info->hidden, rows);
        for (int64_t r = 0; r < rows; r++)
            memcpy(logits + (r0 + r) * real, chunk + r * v, (size_t)real * sizeof *logits);
    }
    return st;
}

const tsr_module_kind tsr_module_lm_head = {"lm_head", head_declare, head_forward, head_backward,
                                            head_logits_only};

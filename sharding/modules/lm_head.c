/*
 * lm_head.c - the vocab-parallel output layer fused with the
 * cross-entropy: local rows (C) -> per-row loss.
 *
 * Logits exist only for TSR_LM_HEAD_CHUNK_ROWS rows at a time: each chunk's row max,
 * then sum-exp and target logit, are reduced over the vocabulary shards
 * (tp), the loss follows, and in training the logits are turned into
 * their gradient in place and folded straight into the weight gradient
 * and the input gradient (kept until backward). Neither the whole logits
 * nor the probabilities are ever stored, and they are never gathered.
 * Padded vocabulary rows get -inf logits, so the loss does not depend on
 * how much padding a layout needs. Tied: the weight is the embedding's
 * table (TSR_PARAM_TIED_EMBEDDING).
 */
#include <math.h>
#include <string.h>

#include "parallel_linear.h"
#include "tessera/kernels.h"
#include "tessera/modules.h"

enum { WEIGHT };
enum { IN_FULL, D_IN_FULL, LOGITS, ROW_MAX, SUMEXP, TARGET, PACK, D_IN_LOCAL };

static int64_t chunk_rows(const tsr_module_info *info)
{
    int64_t rows = info->micro_batch * info->seq;
    return rows < TSR_LM_HEAD_CHUNK_ROWS ? rows : TSR_LM_HEAD_CHUNK_ROWS;
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
    int64_t c = info->hidden, chunk = chunk_rows(info);
    bool sp = info->sequence_parallel;
    tsr_decl_param(decl, true, "weight", info->padded_vocab, c, TSR_PARAM_SPLIT_VOCAB,
                   TSR_INIT_NORMAL, cfg->init_std,
                   TSR_PARAM_DECAY |
                       (cfg->tied ? TSR_PARAM_TIED_EMBEDDING : TSR_PARAM_NO_FP32_READ));
    tsr_buffer_life S = TSR_BUFFER_SAVED, X = TSR_BUFFER_SCRATCH;
    tsr_decl_activation(decl, tsr_decl_buffer(decl, sp, "in_full", TSR_ROWS_TOKENS, c, S));
    tsr_decl_buffer(decl, true, "d_in_full", TSR_ROWS_TOKENS, c, S);
    tsr_decl_buffer(decl, true, "logits", TSR_ROWS_FIXED, chunk * info->local_vocab, X);
    tsr_decl_buffer(decl, true, "row_max", TSR_ROWS_TOKENS, 1, X);
    tsr_decl_buffer(decl, true, "sumexp", TSR_ROWS_TOKENS, 1, X);
    tsr_decl_buffer(decl, true, "target_logit", TSR_ROWS_TOKENS, 1, X);
    tsr_decl_buffer(decl, true, "pack", TSR_ROWS_FIXED, 2 * chunk, X);
    tsr_decl_buffer(decl, sp, "d_in_local", TSR_ROWS_LOCAL, c, X);
    decl->out_rows = TSR_ROWS_FIXED;
    decl->out_cols = 1;
    decl->keeps_input = !sp;
    decl->decodes = true; /* row-wise */
    return TSR_OK;
}

/* Logits of rows [r0, r0+rows) of x for this rank's vocabulary rows. */
static void head_logits(const tsr_module_run *run, const float *x, int64_t r0, int64_t rows)
{
    const tsr_module_info *info = run->info;
    int64_t v = info->local_vocab;
    float *logits = run->buffers[LOGITS];
    tsr_linear_forward(logits, x + r0 * info->hidden, run->params[WEIGHT], NULL, rows,
                       info->hidden, v);
    int64_t first_pad = info->vocab - info->vocab_start; /* local index of the first pad */
    if (first_pad < 0)
        first_pad = 0;
    for (int64_t r = 0; first_pad < v && r < rows; r++)
        for (int64_t j = first_pad; j < v; j++)
            logits[r * v + j] = -INFINITY;
}

static tsr_status head_chunk(const tsr_module_run *run, const float *x, int64_t r0, int64_t rows)
{
    const tsr_module_info *info = run->info;
    const tsr_step_io *io = run->io;
    float *const *buf = run->buffers;
    int64_t v = info->local_vocab;
    head_logits(run, x, r0, rows);
    float *row_max = buf[ROW_MAX] + r0, *sumexp = buf[SUMEXP] + r0, *target = buf[TARGET] + r0;
    tsr_ce_row_max(row_max, buf[LOGITS], rows, v);
    tsr_status st = tsr_module_tp_max(run, row_max, rows);
    if (st != TSR_OK)
        return st;
    float *pack = buf[PACK]; /* sum-exp and target logit, one reduction */
    tsr_ce_sumexp_target(pack, pack + rows, buf[LOGITS], row_max, io->targets + r0, rows, v,
                         info->vocab_start);
    if ((st = tsr_module_tp_sum(run, pack, 2 * rows)) != TSR_OK)
        return st;
    memcpy(sumexp, pack, (size_t)rows * sizeof *pack);
    memcpy(target, pack + rows, (size_t)rows * sizeof *pack);
    tsr_ce_loss(io->row_loss + r0, sumexp, row_max, target, rows);
    /* the target is the argmax when its logit is the row's maximum; both
     * are already reduced over the vocabulary shards */
    for (int64_t r = 0; r < rows; r++)
        io->row_correct[r0 + r] = target[r] >= row_max[r] ? 1.0f : 0.0f;
    if (!run->train)
        return TSR_OK;
    tsr_ce_logits_to_grad(buf[LOGITS], row_max, sumexp, io->targets + r0, io->row_weight + r0,
                          rows, v, info->vocab_start);
    tsr_linear_backward(buf[D_IN_FULL] + r0 * info->hidden, run->grads[WEIGHT], NULL,
                        buf[LOGITS], x + r0 * info->hidden, run->params[WEIGHT], rows,
                        info->hidden, v);
    return TSR_OK;
}

static tsr_status head_forward(const tsr_module_run *run, const float *in, float *out)
{
    (void)out;
    const tsr_module_info *info = run->info;
    int64_t n = tsr_module_rows(run, TSR_ROWS_TOKENS), chunk = chunk_rows(info);
    const float *x = NULL;
    tsr_status st = tsr_column_input_forward(run, in, run->buffers[IN_FULL], info->hidden, &x);
    if (st != TSR_OK)
        return st;
    if (run->train)
        memset(run->buffers[D_IN_FULL], 0, (size_t)(n * info->hidden) * sizeof(float));
    for (int64_t r0 = 0; r0 < n && st == TSR_OK; r0 += chunk)
        st = head_chunk(run, x, r0, n - r0 < chunk ? n - r0 : chunk);
    return st;
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
    int64_t n = tsr_module_rows(run, TSR_ROWS_TOKENS), chunk = chunk_rows(info);
    int64_t v = info->local_vocab, real = info->vocab - info->vocab_start;
    real = real < 0 ? 0 : real > v ? v : real;
    *count = real;
    const float *x = NULL;
    tsr_status st = tsr_column_input_forward(run, in, run->buffers[IN_FULL], info->hidden, &x);
    if (st != TSR_OK)
        return st;
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t rows = n - r0 < chunk ? n - r0 : chunk;
        head_logits(run, x, r0, rows);
        for (int64_t r = 0; r < rows; r++)
            memcpy(logits + (r0 + r) * real, run->buffers[LOGITS] + r * v,
                   (size_t)real * sizeof *logits);
    }
    return TSR_OK;
}

const tsr_module_kind tsr_module_lm_head = {"lm_head", head_declare, head_forward, head_backward,
                                            head_logits_only};

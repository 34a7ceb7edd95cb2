/*
 * embedding.c - vocab-parallel token embedding (+ learned positions,
 * hidden dropout): tokens -> the residual stream's local rows.
 *
 * Each tp rank looks up its vocabulary rows (other tokens get zeros); the
 * sum over ranks is the embedding: an all-reduce, or under sequence
 * parallelism a reduce-scatter straight into this rank's rows. Positions
 * are added to the local rows (their gradient is SP-partial). Names:
 * word_embeddings.weight, position_embeddings.weight.
 */
#include <string.h>

#include "parallel_linear.h"
#include "tessera/kernels.h"
#include "tessera/modules.h"

enum { WORD, POSITION };
enum { FULL, DROP_GRAD };

enum { SITE_EMBEDDING = 0 };

static tsr_status embedding_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const tsr_embedding_config *cfg = info->config;
    if (cfg == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_embedding_config");
    if (cfg->learned_positions && cfg->max_positions < info->seq)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%lld learned positions cannot cover --seq-length %lld; raise "
                             "--max-position-embeddings",
                             (long long)cfg->max_positions, (long long)info->seq);
    int64_t c = info->hidden;
    tsr_decl_param(decl, true, "word_embeddings.weight", info->padded_vocab, c,
                   TSR_PARAM_SPLIT_VOCAB, TSR_INIT_NORMAL, cfg->init_std,
                   TSR_PARAM_DECAY | TSR_PARAM_NO_FP32_READ);
    tsr_decl_param(decl, cfg->learned_positions, "position_embeddings.weight", cfg->max_positions,
                   c, TSR_PARAM_SPLIT_NONE, TSR_INIT_NORMAL, cfg->init_std,
                   TSR_PARAM_DECAY | TSR_PARAM_SP_PARTIAL);
    tsr_decl_buffer(decl, info->sequence_parallel, "full", TSR_ROWS_TOKENS, c,
                    TSR_BUFFER_SCRATCH);
    tsr_decl_buffer(decl, cfg->dropout > 0.0, "dropout_grad", TSR_ROWS_LOCAL, c,
                    TSR_BUFFER_SCRATCH);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = c;
    decl->decodes = true; /* a step's rows are at the step's position */
    return TSR_OK;
}

static int64_t seq_offset(const tsr_module_info *info)
{
    return info->sequence_parallel ? (int64_t)info->tp_rank * info->local_seq : 0;
}

/* Where each position's document starts, when positions restart (NULL: not). */
static const int32_t *doc_starts(const tsr_module_run *run)
{
    const tsr_embedding_config *cfg = run->info->config;
    return cfg->reset_positions ? run->io->doc_start : NULL;
}

/* tokens (B, T) -> out (B, T_local, C) */
static tsr_status embedding_forward(const tsr_module_run *run, const float *in, float *out)
{
    (void)in;
    const tsr_module_info *info = run->info;
    const tsr_embedding_config *cfg = info->config;
    int64_t c = info->hidden, nt = tsr_module_rows(run, TSR_ROWS_TOKENS);
    float *full = tsr_row_output_target(run, out, run->buffers[FULL]);
    tsr_embedding_forward(full, run->io->tokens, run->params[WORD], nt, c, info->vocab_start,
                          info->local_vocab);
    tsr_status st = tsr_row_output_forward(run, out, full, c);
    if (st != TSR_OK)
        return st;
    if (run->params[POSITION] != NULL && run->io->decode_position >= 0)
        /* generation: every row is its sample's token at the step's position */
        tsr_position_add_forward(out, run->params[POSITION], nt, 1, c, run->io->decode_position);
    else if (run->params[POSITION] != NULL)
        tsr_position_add_forward_docs(out, run->params[POSITION], doc_starts(run), info->micro_batch,
                                      info->local_seq, c, seq_offset(info), info->seq);
    if (run->train && cfg->dropout > 0.0) {
        tsr_dropout dr;
        tsr_module_dropout(run, SITE_EMBEDDING, cfg->dropout, true, &dr);
        tsr_dropout_forward(out, out, info->micro_batch, info->local_seq, c, &dr);
    }
    return TSR_OK;
}

static tsr_status embedding_backward(const tsr_module_run *run, const float *in,
                                     const float *out, const float *dout, float *din)
{
    (void)in;
    (void)out;
    (void)din;
    const tsr_module_info *info = run->info;
    const tsr_embedding_config *cfg = info->config;
    int64_t c = info->hidden;
    const float *d = dout;
    if (cfg->dropout > 0.0) {
        tsr_dropout dr;
        tsr_module_dropout(run, SITE_EMBEDDING, cfg->dropout, true, &dr);
        memset(run->buffers[DROP_GRAD], 0,
               (size_t)(tsr_module_rows(run, TSR_ROWS_LOCAL) * c) * sizeof(float));
        tsr_dropout_backward(run->buffers[DROP_GRAD], dout, info->micro_batch, info->local_seq, c,
                             &dr);
        d = run->buffers[DROP_GRAD];
    }
    if (run->grads[POSITION] != NULL)
        tsr_position_add_backward_docs(run->grads[POSITION], d, doc_starts(run), info->micro_batch,
                                       info->local_seq, c, seq_offset(info), info->seq);
    /* the lookup read every token: its gradient needs them all */
    tsr_status st = tsr_row_output_backward(run, d, run->buffers[FULL], c, &d);
    if (st != TSR_OK)
        return st;
    tsr_embedding_backward(run->grads[WORD], d, run->io->tokens,
                           tsr_module_rows(run, TSR_ROWS_TOKENS), c, info->vocab_start,
                           info->local_vocab);
    return TSR_OK;
}

const tsr_module_kind tsr_module_embedding = {"embedding", embedding_declare, embedding_forward,
                                              embedding_backward, NULL};

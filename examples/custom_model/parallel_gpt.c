/*
 * parallel_gpt.c - a tessera model plugin: the parallel-block transformer
 * of GPT-J and PaLM, with a learned per-channel gate on the branches.
 *
 *     n = norm(x)
 *     y = x + gate ⊙ dropout(attention(n) + mlp(n))        gate: (hidden)
 *
 * Attention and MLP read the same normalised input, so a layer has one
 * norm instead of two. The block is a module kind of this file
 * (gated_parallel): a composite whose children are the built-in norm,
 * attention and MLP (modules.h), so tensor and sequence parallelism, and
 * all their communication, come with the children; the block itself only
 * adds rows of the residual stream. Its gate is replicated over tensor
 * parallelism but multiplies this rank's residual rows: under sequence
 * parallelism each rank sees only its rows, so the gate gradient is
 * partial per rank (TSR_PARAM_SP_PARTIAL: summed over tp once per
 * iteration).
 *
 * Build it against an installed tessera (README.md) and run
 *     tessera train --model-plugin ./libparallel_gpt.so --model parallel_gpt
 */
#include <math.h>
#include <string.h>

#include "tessera/kernels.h"
#include "tessera/modules.h"
#include "tessera/spec.h"

typedef struct gated_parallel_config {
    double dropout;  /* hidden dropout on the branch sum */
    int site;        /* its dropout site within the layer */
    float gate_init; /* every gate element starts here */
} gated_parallel_config;

enum { CHILD_NORM, CHILD_ATTENTION, CHILD_MLP, CHILD_COUNT };
enum { PARAM_GATE };
enum { BUF_NORM_OUT, BUF_BRANCH_SUM, BUF_WORK, BUF_DNORM };

#define TRY(call)                                                                           \
    do {                                                                                    \
        tsr_status try_status = (call);                                                     \
        if (try_status != TSR_OK)                                                           \
            return try_status;                                                              \
    } while (0)

/* Every child maps local rows of width hidden to the same. Saved for
 * backward: the norm output (the branches' input, when they read it) and
 * attention + mlp before dropout (the gate's gradient); the children save
 * what they need of their own outputs. Scratch: one work buffer (the mlp
 * output, then d branch-sum) and d norm-out. */
static tsr_status gated_parallel_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const gated_parallel_config *cfg = info->config;
    if (info->child_count != CHILD_COUNT)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "gated_parallel needs 3 children [norm, attention, mlp], got %d",
                             info->child_count);
    for (int i = 0; i < CHILD_COUNT; i++)
        if (info->children[i].out_rows != TSR_ROWS_LOCAL ||
            info->children[i].out_cols != info->hidden)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "child %d must return the residual stream (local rows x "
                                 "hidden %lld)",
                                 i, (long long)info->hidden);
    int64_t c = info->hidden;
    bool branches_read_input = info->children[CHILD_ATTENTION].keeps_input ||
                               info->children[CHILD_MLP].keeps_input;
    tsr_decl_param(decl, true, "gate", c, 1, TSR_PARAM_SPLIT_NONE, TSR_INIT_CONSTANT,
                   cfg->gate_init, TSR_PARAM_SP_PARTIAL);
    tsr_decl_buffer(decl, true, "norm_out", TSR_ROWS_LOCAL, c,
                    branches_read_input ? TSR_BUFFER_SAVED : TSR_BUFFER_SCRATCH);
    tsr_decl_buffer(decl, true, "branch_sum", TSR_ROWS_LOCAL, c, TSR_BUFFER_SAVED);
    tsr_decl_buffer(decl, true, "work", TSR_ROWS_LOCAL, c, TSR_BUFFER_SCRATCH);
    tsr_decl_buffer(decl, true, "dnorm", TSR_ROWS_LOCAL, c, TSR_BUFFER_SCRATCH);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = c;
    decl->keeps_input = info->children[CHILD_NORM].keeps_input; /* the residual needs no x */
    return TSR_OK;
}

/* out = dropout(x) with probability p over this rank's residual rows; out
 * may be x. Forward drops only in training; backward (training only)
 * always recomputes the mask. */
static void branch_dropout(const tsr_module_run *run, double p, float *out, const float *x)
{
    const gated_parallel_config *cfg = run->info->config;
    int64_t rows = tsr_module_rows(run, TSR_ROWS_LOCAL), batch = run->info->micro_batch;
    tsr_dropout dropout;
    tsr_module_dropout(run, cfg->site, p, true, &dropout);
    tsr_dropout_forward(out, x, batch, rows / batch, run->info->hidden, &dropout);
}

/* in, out: (rows, hidden), this rank's rows of the residual stream */
static tsr_status gated_parallel_forward(const tsr_module_run *run, const float *in, float *out)
{
    const gated_parallel_config *cfg = run->info->config;
    float *normed = run->buffers[BUF_NORM_OUT], *sum = run->buffers[BUF_BRANCH_SUM];
    float *work = run->buffers[BUF_WORK];
    const float *gate = run->params[PARAM_GATE];
    int64_t rows = tsr_module_rows(run, TSR_ROWS_LOCAL), c = run->info->hidden;
    TRY(tsr_module_child_forward(run, CHILD_NORM, in, normed));
    TRY(tsr_module_child_forward(run, CHILD_ATTENTION, normed, sum));
    TRY(tsr_module_child_forward(run, CHILD_MLP, normed, work));
    tsr_accumulate(sum, work, rows * c); /* attention + mlp, kept for the gate */
    branch_dropout(run, run->train ? cfg->dropout : 0.0, work, sum);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < c; j++)
            out[r * c + j] = in[r * c + j] + gate[j] * work[r * c + j];
    return TSR_OK;
}

/* dgate[j] += sum over rows of dout[r, j] * branch[r, j], in double, a
 * block of columns at a time so that rows are read in order */
static void gate_gradient(float *dgate, const float *dout, const float *branch, int64_t rows,
                          int64_t c)
{
    enum { BLOCK = 64 };
    for (int64_t j0 = 0; j0 < c; j0 += BLOCK) {
        int64_t width = c - j0 < BLOCK ? c - j0 : BLOCK;
        double sum[BLOCK] = {0};
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < width; j++)
                sum[j] += (double)dout[r * c + j0 + j] * (double)branch[r * c + j0 + j];
        for (int64_t j = 0; j < width; j++)
            dgate[j0 + j] += (float)sum[j];
    }
}

static tsr_status gated_parallel_backward(const tsr_module_run *run, const float *in,
                                          const float *out, const float *dout, float *din)
{
    (void)out;
    const tsr_module_info *info = run->info;
    const gated_parallel_config *cfg = info->config;
    bool normed_kept = info->children[CHILD_ATTENTION].keeps_input ||
                       info->children[CHILD_MLP].keeps_input;
    float *normed = normed_kept ? run->buffers[BUF_NORM_OUT] : NULL;
    float *work = run->buffers[BUF_WORK], *dnorm = run->buffers[BUF_DNORM];
    float *dgate = run->grads[PARAM_GATE];
    const float *gate = run->params[PARAM_GATE];
    int64_t rows = tsr_module_rows(run, TSR_ROWS_LOCAL), c = info->hidden;
    if (dgate != NULL) { /* NULL when the gate is frozen */
        branch_dropout(run, cfg->dropout, work, run->buffers[BUF_BRANCH_SUM]);
        gate_gradient(dgate, dout, work, rows, c);
    }
    /* d branch-sum = dropout(gate ⊙ dout): the mask is its own transpose */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < c; j++)
            work[r * c + j] = gate[j] * dout[r * c + j];
    branch_dropout(run, cfg->dropout, work, work);
    /* both branches accumulate into d norm-out, then the norm into din */
    memset(dnorm, 0, (size_t)(rows * c) * sizeof(float));
    TRY(tsr_module_child_backward(run, CHILD_MLP, normed, NULL, work, dnorm));
    TRY(tsr_module_child_backward(run, CHILD_ATTENTION, normed, NULL, work, dnorm));
    tsr_accumulate(din, dout, rows * c); /* the residual path */
    return tsr_module_child_backward(run, CHILD_NORM, in, normed, dnorm, din);
}

static const tsr_module_kind gated_parallel = {
    .name = "gated_parallel",
    .declare = gated_parallel_declare,
    .forward = gated_parallel_forward,
    .backward = gated_parallel_backward,
};

/* Megatron's count (as models/gpt_spec.c): a parallel block has the same
 * GEMMs as a sequential one */
static double parallel_gpt_flops(const tsr_config *cfg, int64_t padded_vocab)
{
    double h = cfg->hidden_size, s = cfg->seq_length, layers = cfg->num_layers;
    double attention = 1.0 + (double)tsr_config_num_query_groups(cfg) /
                                 cfg->num_attention_heads + s / h;
    double mlp = tsr_config_ffn_hidden_size(cfg) / h * (cfg->swiglu ? 1.5 : 1.0);
    double logits = (double)padded_vocab / (2.0 * layers * h);
    return 12.0 * s * layers * h * h * (attention + mlp + logits);
}

/* embedding, num_layers x gated_parallel[norm, attention, mlp], final
 * norm, head: shaped by the same flags as --model gpt */
static tsr_status parallel_gpt_build(const tsr_config *cfg, tsr_spec_arena *arena,
                                     tsr_model_spec *out)
{
    if (cfg->num_experts > 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--model parallel_gpt is a dense model: drop --num-experts");
    bool bias = !cfg->disable_bias_linear;
    float std = (float)cfg->init_method_std;
    float out_std = std / sqrtf(2.0f * (float)cfg->num_layers); /* scaled output init */
    tsr_embedding_config embedding = {
        .learned_positions = cfg->position_embedding_type == TSR_POS_LEARNED_ABSOLUTE,
        .max_positions = cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings
                                                          : cfg->seq_length,
        .init_std = std,
        .dropout = cfg->hidden_dropout,
        .reset_positions = cfg->reset_position_ids};
    tsr_norm_config norm = {cfg->normalization, (float)cfg->norm_epsilon};
    tsr_attention_config attention = {
        .heads = cfg->num_attention_heads,
        .query_groups = tsr_config_num_query_groups(cfg),
        .head_dim = cfg->hidden_size / cfg->num_attention_heads,
        .bias = bias,
        .rotary = cfg->position_embedding_type == TSR_POS_ROPE,
        .rotary_base = (float)cfg->rotary_base,
        .dropout = cfg->attention_dropout,
        .init_std = std,
        .out_init_std = out_std,
        .reset_positions = cfg->reset_position_ids};
    tsr_mlp_config mlp = {.ffn = tsr_config_ffn_hidden_size(cfg),
                          .swiglu = cfg->swiglu,
                          .bias = bias,
                          .init_std = std,
                          .out_init_std = out_std};
    gated_parallel_config gate = {cfg->hidden_dropout, 1, 1.0f};
    tsr_lm_head_config head = {!cfg->untie_embeddings_and_output_weights, std};

    /* one block spec serves every layer: a spec is a declaration, the
     * builder makes an instance (and names) per layer */
    tsr_spec *block = tsr_spec_new(arena, &gated_parallel, NULL, &gate, sizeof gate);
    const tsr_spec *children[CHILD_COUNT] = {
        tsr_spec_new(arena, &tsr_module_norm, "input_layernorm", &norm, sizeof norm),
        tsr_spec_new(arena, &tsr_module_attention, "self_attention", &attention,
                     sizeof attention),
        tsr_spec_new(arena, &tsr_module_mlp, "mlp", &mlp, sizeof mlp)};
    out->embedding = tsr_spec_new(arena, &tsr_module_embedding, "embedding", &embedding,
                                  sizeof embedding);
    out->final_norm = tsr_spec_new(arena, &tsr_module_norm, "decoder.final_layernorm", &norm,
                                   sizeof norm);
    out->head = tsr_spec_new(arena, &tsr_module_lm_head, "output_layer", &head, sizeof head);
    out->layers = tsr_spec_layer_array(arena, cfg->num_layers);
    if (block == NULL || children[0] == NULL || children[1] == NULL || children[2] == NULL ||
        out->embedding == NULL || out->final_norm == NULL || out->head == NULL ||
        out->layers == NULL)
        return TSR_ERR_OUT_OF_MEMORY; /* the arena set the message */
    for (int i = 0; i < CHILD_COUNT; i++)
        TRY(tsr_spec_add_child(block, children[i]));
    out->layer_prefix = "decoder.layers";
    out->num_layers = cfg->num_layers;
    out->flops_per_sample = parallel_gpt_flops;
    for (int64_t l = 0; l < cfg->num_layers; l++)
        out->layers[l] = block;
    return TSR_OK;
}

TSR_PLUGIN_EXPORT tsr_status tsr_plugin_register(void)
{
    return tsr_model_register("parallel_gpt",
                              "GPT-J/PaLM parallel blocks: x + gate * (attention(n) + mlp(n)), "
                              "n = norm(x), a learned per-channel gate (examples/custom_model)",
                              parallel_gpt_build);
}

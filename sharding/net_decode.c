/*
 * net_decode.c - generation: the model run one token per sample at a
 * time, each module's saved buffers keeping what later positions need
 * (attention's keys and values: the cache), so a step costs the same
 * GEMMs whatever the length already processed.
 */
#include <string.h>

#include "net_internal.h"

tsr_status tsr_net_decode_check(const tsr_net *net)
{
    if (net->d.pp > 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "generation runs the whole model on each tensor-parallel rank: "
                             "start it without --pipeline-model-parallel-size");
    if (net->d.sp)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "generation steps one token per sample; drop --sequence-parallel");
    if (net->cfg.recompute_granularity == TSR_RECOMPUTE_FULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "generation keeps each layer's keys and values in its saved "
                             "buffers, which full recomputation shares between layers: drop "
                             "--recompute-granularity full");
    if (net->d.slots < 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "the model has no activation slot to decode in");
    for (int i = 0; i < net->node_count; i++) {
        const tsr_module_node *node = &net->nodes[i];
        if (!node->decl.decodes)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "module %s (%s) cannot run one token at a time (its "
                                 "declaration does not set decodes), so this model cannot "
                                 "generate",
                                 node->spec->name != NULL ? node->spec->name : "(unnamed)",
                                 node->spec->kind->name);
    }
    return TSR_OK;
}

tsr_status tsr_net_decode_logits(tsr_net *net, const int32_t *tokens, int64_t position,
                                 float *slice, float *full)
{
    int64_t count = 0, b = net->d.micro_batch, v = net->d.vocab;
    TRY(tsr_net_decode_step(net, tokens, position, slice, &count));
    memset(full, 0, (size_t)(b * v) * sizeof *full);
    for (int64_t s = 0; s < b; s++)
        memcpy(full + s * v + net->d.vocab_start, slice + s * count, (size_t)count * sizeof *full);
    if (net->d.tp > 1) /* each id is one rank's: the sum is the gather */
        TRY(tsr_tp_allreduce_sum(TSR_HERE, &net->tp, full, b * v));
    return TSR_OK;
}

tsr_status tsr_net_decode_step(tsr_net *net, const int32_t *tokens, int64_t position, float *logits,
                               int64_t *count)
{
    if (position < 0 || position >= net->d.seq)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "generation position %lld is outside the model's %lld positions",
                             (long long)position, (long long)net->d.seq);
    if (net->held != TSR_NET_HELD_FP32) /* its key/value cache would be held in 16 bits */
        return tsr_error_set(TSR_ERR_INVALID_ARG, "generation runs in fp32: build the model "
                                                  "without --bf16 or --fp16");
    net->decode_rows = net->d.micro_batch;
    net->decode_position = position;
    tsr_status st = tsr_net_logits(net, tokens, logits, count);
    net->decode_rows = 0;
    net->decode_position = 0;
    return st;
}

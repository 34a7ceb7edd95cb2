/*
 * layout_estimate.c - see layout_estimate.h.
 */
#include "layout_estimate.h"

#include <string.h>

#include "sharding/net.h"
#include "time_inputs.h"
#include "train/trainer.h"

/* The fp32 plan's bytes as the precision holds them (layout_estimate.h). */
static void convert_plan(tsr_memory_plan *plan, tsr_layout_precision precision)
{
    if (precision.element_bytes == (int)sizeof(float) && precision.grad_bytes == (int)sizeof(float))
        return;
    double element = precision.element_bytes / (double)sizeof(float);
    plan->bytes[TSR_MEM_PARAMS] = (size_t)((double)plan->bytes[TSR_MEM_PARAMS] * element);
    plan->bytes[TSR_MEM_GRADS] =
        (size_t)((double)plan->bytes[TSR_MEM_GRADS] * precision.grad_bytes / (double)sizeof(float));
    plan->bytes[TSR_MEM_OPTIMIZER] = plan->bytes[TSR_MEM_OPTIMIZER] / 2 * 3; /* + master */
    plan->bytes[TSR_MEM_ACTIVATIONS] = (size_t)((double)plan->bytes[TSR_MEM_ACTIVATIONS] * element);
    plan->bytes[TSR_MEM_SCRATCH] = (size_t)((double)plan->bytes[TSR_MEM_SCRATCH] * element);
}

/* A context-parallel rank holds T / cp of every sequence: its stage is
 * the model at that length (the position table still the whole
 * sequence's), over world / cp ranks of the same data-parallel size. */
static tsr_config chunk_config(const tsr_config *cfg, int cp, tsr_layout_precision precision)
{
    tsr_config chunk = *cfg;
    if (precision.element_bytes != (int)sizeof(float)) {
        /* convert_plan turns the fp32 plan into the precision's: a net
         * already holding 16-bit activations would be halved twice */
        chunk.bf16 = chunk.fp16 = false;
        chunk.fp32_residual_connection = false;
    }
    if (cp > 1) {
        if (chunk.max_position_embeddings <= 0)
            chunk.max_position_embeddings = cfg->seq_length;
        chunk.seq_length = cfg->seq_length / cp;
        chunk.context_parallel_size = 1;
    }
    return chunk;
}

tsr_status tsr_layout_estimate_of(const tsr_config *full, const tsr_model_spec *spec,
                                  int64_t vocab, int full_world, const tsr_machine *machine,
                                  int threads, tsr_layout_precision precision,
                                  tsr_layout_estimate *out)
{
    memset(out, 0, sizeof *out);
    int cp = full->context_parallel_size > 1 ? full->context_parallel_size : 1;
    tsr_config chunk = chunk_config(full, cp, precision);
    const tsr_config *cfg = &chunk;
    int world = full_world / cp;
    int dp = tsr_config_data_parallel_size(cfg, world);
    for (int p = 0; p < cfg->pipeline_model_parallel_size; p++) {
        tsr_net_dims dims = tsr_net_dims_from_config(cfg, vocab, 0);
        /* experts over ep of the dp x cp ranks */
        tsr_net_dims_set_experts(&dims, 0, dp * cp);
        tsr_status st =
            tsr_net_dims_set_pipeline(&dims, cfg, p, tsr_config_microbatches_per_rank(cfg, world));
        tsr_net *net = NULL;
        if (st == TSR_OK)
            st = tsr_net_build(spec, cfg, &dims, &net);
        if (st != TSR_OK)
            return st;
        if (p == 0)
            out->bubble = tsr_time_pipeline_bubble(&dims);
        tsr_memory_plan plan = {0};
        tsr_net_plan(net, &plan);
        tsr_model model = tsr_net_as_model(net);
        /* the distributed optimizer shards over dp x cp, as the gradients are reduced */
        tsr_trainer_plan_sharded_experts(cfg, model.param_count, model.expert_count, dp * cp,
                                         dp * cp / dims.ep, &plan);
        tsr_time_inputs in;
        int per_node = machine != NULL && machine->devices_per_node < full_world
                           ? machine->devices_per_node
                           : full_world;
        tsr_time_inputs_of(cfg, net, world, per_node, threads, out->bubble, &in);
        tsr_time_inputs_set_context_parallel(
            &in, full, cp,
            spec->flops_per_sample != NULL
                ? spec->flops_per_sample(full, dims.padded_vocab) *
                      tsr_config_global_batch_size(full, full_world)
                : 0.0);
        /* the ring's two chunks of K and V in flight */
        tsr_plan_add_bytes(&plan, TSR_MEM_SCRATCH, (size_t)(2.0 * in.cp_elements * sizeof(float)));
        if (machine != NULL) { /* the slowest stage sets the pace */
            tsr_time_inputs_set_precision(&in, precision.element_bytes, precision.grad_bytes);
            tsr_time_prediction t;
            tsr_time_predict(machine, &in, &t);
            if (t.total > out->time.total) {
                out->time = t;
                out->inputs = in;
                out->tflops = in.flops_per_iteration / full_world / t.total / 1e12;
            }
        }
        tsr_net_destroy(net);
        convert_plan(&plan, precision);
        size_t total = tsr_plan_total_bytes(&plan);
        if (p == 0)
            out->stage0_total = total;
        if (total > out->total) {
            out->total = total;
            out->largest_stage = p;
            memcpy(out->bytes, plan.bytes, sizeof out->bytes);
        }
    }
    return TSR_OK;
}

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

tsr_status tsr_layout_estimate_of(const tsr_config *cfg, const tsr_model_spec *spec, int64_t vocab,
                                  int world, const tsr_machine *machine, int threads,
                                  tsr_layout_precision precision, tsr_layout_estimate *out)
{
    memset(out, 0, sizeof *out);
    int dp = tsr_config_data_parallel_size(cfg, world);
    for (int p = 0; p < cfg->pipeline_model_parallel_size; p++) {
        tsr_net_dims dims = tsr_net_dims_from_config(cfg, vocab, 0);
        tsr_net_dims_set_experts(&dims, 0, dp);
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
        tsr_trainer_plan_sharded_experts(cfg, model.param_count, model.expert_count, dp,
                                         dp / dims.ep, &plan);
        if (machine != NULL) { /* the slowest stage sets the pace */
            tsr_time_inputs in;
            int per_node = world < machine->devices_per_node ? world : machine->devices_per_node;
            tsr_time_inputs_of(cfg, net, world, per_node, threads, out->bubble, &in);
            tsr_time_inputs_set_precision(&in, precision.element_bytes, precision.grad_bytes);
            tsr_time_prediction t;
            tsr_time_predict(machine, &in, &t);
            if (t.total > out->time.total) {
                out->time = t;
                out->inputs = in;
                out->tflops = in.flops_per_iteration / world / t.total / 1e12;
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

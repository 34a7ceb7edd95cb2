/*
 * time_model.c - see time_model.h.
 */
#include "time_model.h"

double tsr_time_ring(double bytes, int ranks, double bandwidth, double latency)
{
    if (ranks <= 1)
        return 0.0;
    double steps = 2.0 * (ranks - 1);
    return steps / ranks * bytes / bandwidth + steps * latency;
}

/* The link of a group of `size` ranks `stride` apart. */
static void link_of(const tsr_machine *m, int size, int stride, double *bw, double *lat)
{
    bool spans = (int64_t)size * stride > m->devices_per_node;
    *bw = spans ? m->inter_bandwidth : m->intra_bandwidth;
    *lat = spans ? m->inter_latency : m->intra_latency;
}

/* Share of the calibrated rate a device gets on a machine of CPU ranks:
 * its threads against the calibration's, and the node's cores against the
 * threads asked of it (a GPU's rate is its own). */
static double rate_share(const tsr_machine *m, const tsr_time_inputs *in)
{
    if (m->cores_per_node <= 0)
        return 1.0;
    double threads = in->threads > 0 ? in->threads : 1;
    double share = threads / (m->threads_per_device > 0 ? m->threads_per_device : 1);
    double asked = threads * (in->ranks_per_node > 0 ? in->ranks_per_node : 1);
    if (m->cores_per_node > 0 && asked > m->cores_per_node)
        share *= m->cores_per_node / asked;
    return share;
}

/* The dp term: the reduction of the gradients (all-reduce, or under the
 * distributed optimizer reduce-scatter + parameter all-gather), less what
 * the overlap flags hide behind one micro batch's backward (2/3 of its
 * work) or forward (1/3). The last bucket becomes ready when backward
 * ends, so it is never hidden. */
static void data_parallel(const tsr_machine *m, const tsr_time_inputs *in, double per_micro,
                          tsr_time_prediction *out)
{
    double bw, lat;
    link_of(m, in->dp, in->tp, &bw, &lat);
    double grad = in->grad_bytes > 0 ? in->grad_bytes : 4;
    double element = in->element_bytes > 0 ? in->element_bytes : 4;
    double elements = in->params_per_device;
    double bucket =
        in->bucket_elements > 0 && in->bucket_elements < elements ? in->bucket_elements : elements;
    double reduce = tsr_time_ring(elements * grad, in->dp, bw, lat);
    double last = tsr_time_ring(bucket * grad, in->dp, bw, lat);
    double gather = 0.0;
    if (in->distributed_optimizer) { /* each half a ring all-reduce */
        reduce /= 2.0;
        last /= 2.0;
        gather = tsr_time_ring(elements * element, in->dp, bw, lat) / 2.0;
    }
    double exposed_reduce = reduce;
    if (in->overlap_grad_reduce) {
        double hidden =
            reduce - last < 2.0 / 3.0 * per_micro ? reduce - last : 2.0 / 3.0 * per_micro;
        exposed_reduce = reduce - hidden;
    }
    double exposed_gather = gather;
    if (in->distributed_optimizer && in->overlap_param_gather)
        exposed_gather = gather > per_micro / 3.0 ? gather - per_micro / 3.0 : 0.0;
    out->dp = exposed_reduce + exposed_gather;
    out->dp_hidden = reduce + gather - out->dp;
}

void tsr_time_predict(const tsr_machine *m, const tsr_time_inputs *in, tsr_time_prediction *out)
{
    double share = rate_share(m, in);
    int devices = in->tp * in->pp * in->dp;
    double mb = in->microbatches;
    double flops = in->flops_per_iteration * (in->recompute ? 4.0 / 3.0 : 1.0) / devices;
    out->compute = flops / (m->gemm_flops * share);
    double passes = in->recompute ? 4.0 : 3.0;
    out->elementwise =
        passes * (in->activation_bytes + in->score_bytes) * mb / (m->memory_bandwidth * share);

    double bw, lat;
    double element = in->element_bytes > 0 ? in->element_bytes : 4;
    double stream = (double)(in->micro_batch * in->seq * in->hidden) * element;
    link_of(m, in->tp, 1, &bw, &lat);
    double per_layer = in->recompute ? 6.0 : 4.0;
    out->tp =
        per_layer * (double)in->layers_per_stage * mb * tsr_time_ring(stream, in->tp, bw, lat);

    link_of(m, in->pp, in->tp * in->dp, &bw, &lat);
    double boundary = in->sp ? stream / in->tp : stream;
    out->pp = in->pp > 1 ? 2.0 * mb * (boundary / bw + lat) : 0.0;

    /* ep folds into dp: its ranks are tp apart */
    link_of(m, in->ep, in->tp, &bw, &lat);
    double rows = (double)(in->micro_batch * in->seq * in->topk * in->hidden) * element;
    if (in->sp)
        rows /= in->tp;
    out->ep = in->ep > 1 ? 4.0 * (double)in->moe_layers_per_stage * mb *
                               (rows * (in->ep - 1) / in->ep / bw + (in->ep - 1) * lat)
                         : 0.0;

    double stage = out->compute + out->elementwise + out->tp + out->pp + out->ep;
    data_parallel(m, in, stage / (mb > 0 ? mb : 1), out);
    double idle = in->bubble > 0.0 && in->bubble < 1.0 ? in->bubble : 0.0;
    out->bubble = stage / (1.0 - idle) - stage;
    out->total = stage + out->bubble + out->dp;
}

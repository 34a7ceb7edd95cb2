/*
 * time_model.c - see time_model.h.
 */
#include "time_model.h"

#include <math.h>
#include <stddef.h>

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

/* The node's cores against the threads its ranks ask for: oversubscribed
 * ranks share them evenly (a GPU's rate is its own). */
static double core_share(const tsr_machine *m, const tsr_time_inputs *in)
{
    if (m->cores_per_node <= 0)
        return 1.0;
    double threads = in->threads > 0 ? in->threads : 1;
    double asked = threads * (in->ranks_per_node > 0 ? in->ranks_per_node : 1);
    return asked > m->cores_per_node ? m->cores_per_node / asked : 1.0;
}

/* A device's bandwidth share: its threads against the calibration's. */
static double thread_share(const tsr_machine *m, const tsr_time_inputs *in)
{
    if (m->cores_per_node <= 0)
        return 1.0;
    double threads = in->threads > 0 ? in->threads : 1;
    return threads / (m->threads_per_device > 0 ? m->threads_per_device : 1);
}

double tsr_time_gemm_rate(const tsr_machine *m, int threads)
{
    if (m->cores_per_node <= 0)
        return m->gemm_flops;
    double t = threads > 0 ? threads : 1;
    int n = m->gemm_points;
    if (n == 0)
        return m->gemm_flops * t / (m->threads_per_device > 0 ? m->threads_per_device : 1);
    /* linear between measured thread counts, proportional beyond them */
    if (t <= m->gemm_threads[0])
        return m->gemm_rates[0] * t / m->gemm_threads[0];
    for (int i = 1; i < n; i++)
        if (t <= m->gemm_threads[i]) {
            double f = (t - m->gemm_threads[i - 1]) / (m->gemm_threads[i] - m->gemm_threads[i - 1]);
            return m->gemm_rates[i - 1] + f * (m->gemm_rates[i] - m->gemm_rates[i - 1]);
        }
    return m->gemm_rates[n - 1] * t / m->gemm_threads[n - 1];
}

/* values[] at x among n ascending points: linear in log x between them,
 * the end values beyond them (the measured curves and the GEMM grid). */
static double log_linear(const double *points, const double *values, int n, double x)
{
    if (x <= points[0])
        return values[0];
    for (int i = 1; i < n; i++)
        if (x <= points[i]) {
            double f = log(x / points[i - 1]) / log(points[i] / points[i - 1]);
            return values[i - 1] + f * (values[i] - values[i - 1]);
        }
    return values[n - 1];
}

/* The grid's rate at (rows, width): bilinear in log rows and log width
 * (each row of rates at the width, then those at the rows). */
static double grid_rate(const tsr_gemm_grid *g, double rows, double width)
{
    double at_width[TSR_MACHINE_MAX_POINTS];
    for (int i = 0; i < g->rows_points; i++)
        at_width[i] = log_linear(g->width, g->flops[i], g->width_points, width);
    return log_linear(g->rows, at_width, g->rows_points, rows);
}

double tsr_time_gemm_shape_rate(const tsr_machine *m, int threads, double rows, double k, double n)
{
    double rate = tsr_time_gemm_rate(m, threads);
    const tsr_gemm_grid *g = &m->gemm_grid;
    if (g->rows_points <= 0 || g->width_points <= 0)
        return rate;
    /* the shape's efficiency is taken to be the same at every thread count */
    return rate * grid_rate(g, rows, sqrt(k * n)) / tsr_time_gemm_rate(m, g->threads);
}

/* Seconds per FLOP of the stage's mix (time_model.h). A product's input
 * gradient (rows x n -> k) has its forward's rows and width; its weight
 * gradient (n x rows -> k) is a product of n rows. */
static double seconds_per_flop(const tsr_machine *m, const tsr_time_inputs *in)
{
    double base = tsr_time_gemm_rate(m, in->threads);
    if (m->gemm_grid.rows_points <= 0 || in->gemms <= 0)
        return 1.0 / base;
    double forwards = in->recompute ? 3.0 : 2.0; /* forward (twice) and input gradient */
    double flops = (forwards + 1.0) * in->other_flops, seconds = flops / base;
    for (int i = 0; i < in->gemms && i < TSR_TIME_MAX_GEMMS; i++) {
        const tsr_time_gemm *g = &in->gemm[i];
        double f = 2.0 * g->rows * g->k * g->n * g->count;
        flops += (forwards + 1.0) * f;
        seconds += forwards * f / tsr_time_gemm_shape_rate(m, in->threads, g->rows, g->k, g->n);
        seconds += f / tsr_time_gemm_shape_rate(m, in->threads, g->n, g->k, g->rows);
    }
    return flops > 0.0 ? seconds / flops : 1.0 / base;
}

/* Bus bandwidth of a curve at `bytes`: linear in log size between the
 * measured sizes, the end points beyond them. */
static double curve_busbw(const tsr_link_curve *c, double bytes)
{
    return log_linear(c->bytes, c->busbw, c->points, bytes);
}

/* A ring all-reduce of `bytes` over a group of `size` ranks `stride`
 * apart: on a measured curve when the group stays in a node (the largest
 * group measured not above it; what was measured holds the latency too),
 * else from the link's bandwidth and latency. */
static double ring_on(const tsr_machine *m, double bytes, int size, int stride)
{
    if (size <= 1)
        return 0.0;
    double bw, lat;
    link_of(m, size, stride, &bw, &lat);
    bool spans = (int64_t)size * stride > m->devices_per_node;
    const tsr_link_curve *curve = NULL;
    for (int i = 0; i < m->curves && !spans; i++)
        if (m->intra_curves[i].ranks <= size)
            curve = &m->intra_curves[i];
    if (curve == NULL)
        return tsr_time_ring(bytes, size, bw, lat);
    double below = bytes < curve->bytes[0] ? 2.0 * (size - 1) * lat : 0.0;
    return 2.0 * (size - 1) / size * bytes / curve_busbw(curve, bytes) + below;
}

/* The dp term: the reduction of the gradients (all-reduce, or under the
 * distributed optimizer reduce-scatter + parameter all-gather), less what
 * the overlap flags hide behind one micro batch's backward (2/3 of its
 * work) or forward (1/3). The last bucket becomes ready when backward
 * ends, so it is never hidden. */
static void data_parallel(const tsr_machine *m, const tsr_time_inputs *in, double per_micro,
                          tsr_time_prediction *out)
{
    double grad = in->grad_bytes > 0 ? in->grad_bytes : 4;
    double element = in->element_bytes > 0 ? in->element_bytes : 4;
    double elements = in->params_per_device;
    double bucket =
        in->bucket_elements > 0 && in->bucket_elements < elements ? in->bucket_elements : elements;
    int group = in->dp * (in->cp > 1 ? in->cp : 1);
    double reduce = ring_on(m, elements * grad, group, in->tp);
    double last = ring_on(m, bucket * grad, group, in->tp);
    double gather = 0.0;
    if (in->distributed_optimizer) { /* each half a ring all-reduce */
        reduce /= 2.0;
        last /= 2.0;
        gather = ring_on(m, elements * element, group, in->tp) / 2.0;
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

/* Seconds of one micro batch's routed products on a device (forward,
 * again under recomputation, input and weight gradients) at an even
 * routing: what an uneven one adds to in proportion. */
static double routed_seconds(const tsr_machine *m, const tsr_time_inputs *in)
{
    double forwards = in->recompute ? 3.0 : 2.0, seconds = 0.0;
    for (int i = 0; i < in->gemms && i < TSR_TIME_MAX_GEMMS; i++) {
        const tsr_time_gemm *g = &in->gemm[i];
        if (!g->routed)
            continue;
        double f = 2.0 * g->rows * g->k * g->n * g->count;
        seconds += forwards * f / tsr_time_gemm_shape_rate(m, in->threads, g->rows, g->k, g->n);
        seconds += f / tsr_time_gemm_shape_rate(m, in->threads, g->n, g->k, g->rows);
    }
    return seconds;
}

/* The exposed time of context parallelism's ring (time_model.h) over
 * the stage's layers and micro batches; attention runs at the rate by
 * threads, as its FLOPs in the compute term. */
static double context_parallel(const tsr_machine *m, const tsr_time_inputs *in, double cores)
{
    if (in->cp <= 1 || in->layers_per_stage <= 0)
        return 0.0;
    double bw, lat, element = in->element_bytes > 0 ? in->element_bytes : 4;
    link_of(m, in->cp, in->tp, &bw, &lat);
    double passes = in->recompute ? 2.0 : 1.0; /* the forward's ring runs again */
    double steps = (2.0 + passes) * (in->cp - 1);
    double ring = steps * (in->cp_elements * element / bw + lat);
    double layers = (double)in->layers_per_stage;
    double attention = (2.0 + passes) * in->other_flops / layers /
                       (tsr_time_gemm_rate(m, in->threads) * cores);
    return ring > attention ? (ring - attention) * layers * in->microbatches : 0.0;
}

void tsr_time_predict(const tsr_machine *m, const tsr_time_inputs *in, tsr_time_prediction *out)
{
    double cores = core_share(m, in);
    int devices = in->tp * (in->cp > 1 ? in->cp : 1) * in->pp * in->dp;
    double mb = in->microbatches;
    double flops = in->flops_per_iteration * (in->recompute ? 4.0 / 3.0 : 1.0) / devices;
    out->compute = flops * seconds_per_flop(m, in) / cores;
    double uneven = in->expert_load > 0.0 ? in->expert_load - 1.0 : 0.0;
    out->compute += uneven * routed_seconds(m, in) * (double)in->microbatches / cores;
    double share = thread_share(m, in) * cores;
    double passes = in->recompute ? 4.0 : 3.0;
    out->elementwise =
        passes * (in->activation_bytes + in->score_bytes) * mb / (m->memory_bandwidth * share);

    double bw, lat;
    double element = in->element_bytes > 0 ? in->element_bytes : 4;
    double stream = (double)(in->micro_batch * in->seq * in->hidden) * element;
    double per_layer = in->recompute ? 6.0 : 4.0;
    out->tp = per_layer * (double)in->layers_per_stage * mb * ring_on(m, stream, in->tp, 1);

    out->cp = context_parallel(m, in, cores);

    link_of(m, in->pp, in->tp * (in->cp > 1 ? in->cp : 1) * in->dp, &bw, &lat);
    double boundary = in->sp ? stream / in->tp : stream;
    out->pp = in->pp > 1 ? 2.0 * mb * (boundary / bw + lat) : 0.0;

    /* ep folds into cp x dp: its ranks are tp apart */
    link_of(m, in->ep, in->tp, &bw, &lat);
    double rows = (double)(in->micro_batch * in->seq * in->topk * in->hidden) * element;
    if (in->sp)
        rows /= in->tp;
    out->ep = in->ep > 1 ? 4.0 * (double)in->moe_layers_per_stage * mb *
                               (rows * (in->ep - 1) / in->ep / bw + (in->ep - 1) * lat) *
                               (1.0 + uneven)
                         : 0.0;

    double stage = out->compute + out->elementwise + out->tp + out->cp + out->pp + out->ep;
    data_parallel(m, in, stage / (mb > 0 ? mb : 1), out);
    double idle = in->bubble > 0.0 && in->bubble < 1.0 ? in->bubble : 0.0;
    out->bubble = stage / (1.0 - idle) - stage;
    out->total = stage + out->bubble + out->dp;
}

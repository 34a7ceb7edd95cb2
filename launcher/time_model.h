/*
 * time_model.h - the iteration time of a layout on a machine, from first
 * principles (tessera plan --cluster, tessera train --cluster). Pure
 * arithmetic: tests check it against numbers worked out by hand.
 *
 * Per device and iteration, with m micro batches per data-parallel rank
 * (docs/planner.md):
 *   compute      FLOPs of the iteration (Megatron's formula, x 4/3 under
 *                full recomputation) / devices / the GEMM rate
 *   elementwise  3 x what a micro batch's forward saves (written in
 *                forward, read and their gradients written in backward;
 *                4 x when the forward runs again under recomputation)
 *                x m / memory bandwidth
 *   tp           per layer and micro batch 4 ring all-reduces of the
 *                residual stream (B T C elements; under SP all-gathers
 *                and reduce-scatters moving the same bytes), 6 recomputed
 *   pp           per micro batch an activation and its gradient to the
 *                next stage (/ tp under SP)
 *   cp           per layer and micro batch the ring of context
 *                parallelism: a rank's chunk of K and V passes every other
 *                rank of the group (cp - 1 steps) in forward, and again
 *                with dK and dV in backward, 3 (cp - 1) steps of
 *                cp_elements, each overlapping the attention of the block
 *                it brought: exposed is what exceeds the layer's attention
 *                time (4 (cp - 1) steps under recomputation, whose
 *                forward runs twice)
 *   ep           per MoE layer and micro batch 4 all-to-alls of the rows'
 *                k copies ((ep-1)/ep of them leave the rank)
 * The routing is taken as even unless expert_load says how it was: then
 * the busiest rank's routed products and all-to-alls take expert_load x
 * their time at an even routing (the exchanges wait for that rank).
 *   dp           a ring all-reduce of the device's gradients, or under
 *                the distributed optimizer a reduce-scatter of them and an
 *                all-gather of the parameters; what overlaps is hidden:
 *                --overlap-grad-reduce hides the reduction behind the last
 *                micro batch's backward (all but the last bucket's),
 *                --overlap-param-gather the all-gather behind the first
 *                micro batch's forward
 * A ring collective over g ranks moving S bytes takes 2(g-1)/g S / bw +
 * 2(g-1) latency on the link its group spans (tp fastest, then cp, dp,
 * pp in the default rank order: a group spans nodes when its size times
 * its stride exceeds the devices of a node; gradients are reduced over
 * dp x cp ranks, as Megatron's data-parallel group with context
 * parallelism); a reduce-scatter or an
 * all-gather half of it. The stage's work is stretched by the pipeline's
 * idle share (the schedule simulation's bubble); dp follows. On a machine
 * of CPU ranks (cores_per_node > 0) a device's rate scales with its
 * threads against the calibration's, and by cores / threads asked when
 * the node's ranks ask for more threads than it has cores; a calibrated
 * file's measured GEMM rates by threads and all-reduce bus bandwidths by
 * size and group size are used where they apply.
 *
 * Compute by shape: the stage's FLOPs above take the rate of the stage's
 * own mix of matrix products (gemm[], from the model's layers: each
 * product's forward and input gradient at the rate of its rows x k -> n
 * shape, its weight gradient, n x rows -> k, at that one's; other_flops,
 * the attention scores, at the rate by threads), each weighted by its
 * FLOPs. A shape's rate is the machine's gemm_by_shape grid at (rows,
 * sqrt(k n)), linear in log rows and log width between the measured
 * points and the edge's beyond, as a share of the median shape's rate at
 * the grid's threads, times the rate by threads. Without a grid (the GPU
 * presets, older files) or products, every FLOP is at the rate by threads.
 */
#ifndef TSR_LAUNCHER_TIME_MODEL_H
#define TSR_LAUNCHER_TIME_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "machine.h"

#define TSR_TIME_MAX_GEMMS 16

/* A matrix product of a stage's micro batch forward: rows x k -> n,
 * `count` times (layers, local experts, the head's chunks). */
typedef struct tsr_time_gemm {
    double rows, k, n, count;
    bool routed; /* an expert's: its rows follow the router (expert_load) */
} tsr_time_gemm;

typedef struct tsr_time_inputs {
    int tp, pp, dp, ep;
    int cp; /* context parallelism (0 or 1: none); micro_batch x seq is then a rank's chunk */
    bool sp, recompute;
    int threads;                /* per device */
    int ranks_per_node;         /* devices (ranks) placed on one node */
    double flops_per_iteration; /* the whole model, forward + backward, no recomputation */
    int microbatches;           /* per data-parallel rank and iteration */
    int64_t micro_batch, seq, hidden, topk;
    int64_t layers_per_stage, moe_layers_per_stage;
    double params_per_device; /* trainable elements of the largest stage */
    double activation_bytes;  /* what one micro batch's forward saves, nothing recomputed */
    /* what an attention that writes its T x T scores (not tessera's tiled
     * one) adds to that per micro batch; 0 here */
    double score_bytes;
    double bubble;     /* idle share of the pipeline schedule, 0..1 */
    int element_bytes; /* of an activation and what tp/pp/ep move (0: 4, fp32) */
    int grad_bytes;    /* of a reduced gradient (0: 4) */
    bool distributed_optimizer, overlap_grad_reduce, overlap_param_gather;
    double bucket_elements; /* --ddp-bucket-size (0: one bucket) */
    /* the stage's products and the other forward FLOPs of a micro batch:
     * the mix whose rates price compute (0 products: the rate by threads) */
    int gemms;
    tsr_time_gemm gemm[TSR_TIME_MAX_GEMMS];
    double other_flops;
    /* the busiest rank's expert rows in an exchange over an even
     * routing's share (0: even, as a prediction before the run takes it;
     * below 1 when a capacity dropped assignments): its routed products
     * and its all-to-alls take that share of their even time */
    double expert_load;
    /* context parallelism: the elements of a rank's chunk of one layer's
     * K and V (B T/cp x 2 x query groups x head dim / tp), what each ring
     * step moves */
    double cp_elements;
} tsr_time_inputs;

typedef struct tsr_time_prediction {
    double compute, elementwise, tp, cp, pp, ep, dp; /* seconds (cp, dp: exposed) */
    double bubble;                               /* seconds idle in the pipeline */
    double dp_hidden;                            /* seconds of dp behind backward/forward */
    double total;
} tsr_time_prediction;

void tsr_time_predict(const tsr_machine *m, const tsr_time_inputs *in, tsr_time_prediction *out);

/* A device's GEMM rate with `threads` (a CPU machine's measured rate by
 * threads, or its calibrated rate scaled; a GPU's own). */
double tsr_time_gemm_rate(const tsr_machine *m, int threads);

/* A device's rate on a rows x k -> n product with `threads`: the rate by
 * threads times the shape's share of it on the machine's gemm_by_shape
 * grid (the rate by threads without a grid). */
double tsr_time_gemm_shape_rate(const tsr_machine *m, int threads, double rows, double k, double n);

/* Seconds of a ring all-reduce of `bytes` over `ranks` on a link. */
double tsr_time_ring(double bytes, int ranks, double bandwidth, double latency);

#endif /* TSR_LAUNCHER_TIME_MODEL_H */

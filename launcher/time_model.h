/*
 * time_model.h - the iteration time of a layout on a machine, from first
 * principles (tessera plan --cluster, tessera train --cluster). Pure
 * arithmetic: tests check it against numbers worked out by hand.
 *
 * Per device and iteration, with m micro batches per data-parallel rank
 * (docs/planner.md):
 *   compute      FLOPs of the iteration (Megatron's formula, x 4/3 under
 *                full recomputation) / devices / the GEMM rate
 *   elementwise  3 x the saved activations of a micro batch (written in
 *                forward, read and their gradients written in backward)
 *                x m / memory bandwidth
 *   tp           per layer and micro batch 4 ring all-reduces of the
 *                residual stream (B T C floats; under SP all-gathers and
 *                reduce-scatters moving the same bytes), 6 recomputed
 *   pp           per micro batch an activation and its gradient to the
 *                next stage (/ tp under SP)
 *   ep           per MoE layer and micro batch 4 all-to-alls of the rows'
 *                k copies ((ep-1)/ep of them leave the rank)
 *   dp           one ring all-reduce (or reduce-scatter + all-gather) of
 *                the device's gradients, after backward
 * A ring collective over g ranks moving S bytes takes 2(g-1)/g S / bw +
 * 2(g-1) latency on the link its group spans (tp fastest, then dp, then
 * pp in the default rank order: a group spans nodes when its size times
 * its stride exceeds the devices of a node). The stage's work is
 * stretched by the pipeline's idle share (the schedule simulation's
 * bubble); dp follows. On a machine of CPU ranks (cores_per_node > 0) a
 * device's rate scales with its threads against the calibration's, and
 * by cores / threads asked when the node's ranks ask for more threads
 * than it has cores.
 */
#ifndef TSR_LAUNCHER_TIME_MODEL_H
#define TSR_LAUNCHER_TIME_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "machine.h"

typedef struct tsr_time_inputs {
    int tp, pp, dp, ep;
    bool sp, recompute;
    int threads;        /* per device */
    int ranks_per_node; /* devices (ranks) placed on one node */
    double flops_per_iteration; /* the whole model, forward + backward, no recomputation */
    int microbatches;           /* per data-parallel rank and iteration */
    int64_t micro_batch, seq, hidden, topk;
    int64_t layers_per_stage, moe_layers_per_stage;
    double params_per_device; /* trainable floats of the largest stage */
    double activation_bytes;  /* saved activations of one micro batch, largest stage */
    double bubble;            /* idle share of the pipeline schedule, 0..1 */
} tsr_time_inputs;

typedef struct tsr_time_prediction {
    double compute, elementwise, tp, pp, ep, dp; /* seconds */
    double bubble;                               /* seconds idle in the pipeline */
    double total;
} tsr_time_prediction;

void tsr_time_predict(const tsr_machine *m, const tsr_time_inputs *in, tsr_time_prediction *out);

/* Seconds of a ring all-reduce of `bytes` over `ranks` on a link. */
double tsr_time_ring(double bytes, int ranks, double bandwidth, double latency);

#endif /* TSR_LAUNCHER_TIME_MODEL_H */

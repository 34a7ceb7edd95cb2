/*
 * layout_estimate.h - one layout of a model, planned and (on a machine)
 * timed as `tessera plan` lists it: every pipeline stage declared as its
 * first tensor-parallel rank declares it (tsr_net_build) and planned as
 * training plans before it allocates; the largest stage's memory is the
 * device's, the slowest stage's time the iteration's (time_model.h).
 */
#ifndef TSR_LAUNCHER_LAYOUT_ESTIMATE_H
#define TSR_LAUNCHER_LAYOUT_ESTIMATE_H

#include "arena.h"
#include "machine.h"
#include "registry.h"
#include "tessera/config.h"
#include "time_model.h"

typedef struct tsr_layout_estimate {
    size_t bytes[TSR_MEM_CATEGORY_COUNT]; /* of the largest stage, in the precision */
    size_t total, stage0_total;
    int largest_stage;
    double bubble;            /* idle share of the step, from the schedule's simulation */
    tsr_time_prediction time; /* of the slowest stage (with a machine) */
    tsr_time_inputs inputs;   /* of that stage */
    double tflops;            /* per device: Megatron's model FLOPs (no recomputation) / time */
} tsr_layout_estimate;

/* How the layout runs its numbers: bytes of an activation (and of what
 * tp, pp and ep move) and of a gradient. fp32 is what this build trains
 * with; 16-bit is Megatron's mixed precision on a GPU (--bf16: fp32
 * gradients, {2, 4}; --fp16: {2, 2}), where the plan's fp32 bytes become
 * 16-bit weights, activations and scratch, gradients of grad_bytes, and
 * an fp32 master copy beside Adam's two moments (sharded alike). */
typedef struct tsr_layout_precision {
    int element_bytes, grad_bytes;
} tsr_layout_precision;

#define TSR_LAYOUT_FP32 ((tsr_layout_precision){4, 4})
#define TSR_LAYOUT_BF16 ((tsr_layout_precision){2, 4})
#define TSR_LAYOUT_FP16 ((tsr_layout_precision){2, 2})

/* Plans cfg's layout over `world` devices (cfg checked by the caller) and,
 * when machine is not NULL, predicts its iteration time with `threads`
 * per device in `precision`. A model that does not take the layout: the
 * builder's error. */
tsr_status tsr_layout_estimate_of(const tsr_config *cfg, const tsr_model_spec *spec, int64_t vocab,
                                  int world, const tsr_machine *machine, int threads,
                                  tsr_layout_precision precision, tsr_layout_estimate *out);

#endif /* TSR_LAUNCHER_LAYOUT_ESTIMATE_H */

/*
 * time_inputs.h - the time model's inputs (time_model.h) read off a
 * declared and planned stage of a model, as `tessera plan` and `tessera
 * train` have it: FLOPs, micro batches, layers, the stage's trainable
 * floats and saved activations, and the pipeline schedule's idle share.
 */
#ifndef TSR_LAUNCHER_TIME_INPUTS_H
#define TSR_LAUNCHER_TIME_INPUTS_H

#include "arena.h"
#include "sharding/net.h"
#include "tessera/config.h"
#include "time_model.h"

/* The idle share of the slowest rank when the schedule training runs for
 * dims is simulated with a backward twice a forward (0 without a
 * pipeline; -1 if it cannot be simulated). */
double tsr_time_pipeline_bubble(const tsr_net_dims *dims);

/* in from cfg (the layout over `world` ranks, ranks_per_node of them on a
 * node, `threads` each), a stage's net, and the pipeline's bubble
 * (tsr_time_pipeline_bubble, the same for every stage); in this build's
 * precision (fp32). */
void tsr_time_inputs_of(const tsr_config *cfg, const tsr_net *net, int world, int ranks_per_node,
                        int threads, double bubble, tsr_time_inputs *in);
/* A context-parallel layout (cp > 1) from in, read off its stage planned
 * as a rank holds it (cfg's sequence cut to seq / cp, cp 1): the whole
 * model's FLOPs flops_per_iteration at the full sequence, the attention
 * scores' FLOPs a rank's share of the full sequence's (Megatron's chunks
 * balance the causal work: cp times those of a seq / cp sequence), and
 * the ring's K and V chunk. */
void tsr_time_inputs_set_context_parallel(tsr_time_inputs *in, const tsr_config *cfg, int cp,
                                          double flops_per_iteration);
/* The same layout run with activations and messages of element_bytes and
 * gradients reduced in grad_bytes (2 and 4: Megatron's --bf16; 2 and 2:
 * --fp16 without fp32 gradient reduction). */
void tsr_time_inputs_set_precision(tsr_time_inputs *in, int element_bytes, int grad_bytes);

#endif /* TSR_LAUNCHER_TIME_INPUTS_H */

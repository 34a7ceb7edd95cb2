/*
 * pipeline_sim.h - runs every pipeline rank's action list together, in
 * simulated time, to prove a schedule correct and to measure its bubble.
 *
 * What a run checks (and reports as TSR_ERR_INVALID_ARG with a message
 * naming the rank and action, if it fails):
 *   - every operation talks to the right neighbour for its tensor (the
 *     next virtual stage for activations, the previous one for
 *     gradients), and names a microbatch and chunk that exist;
 *   - between each ordered (sender, receiver) pair, activations and
 *     gradients together, the k-th send (in list order, and in operation
 *     order inside an exchange) and the k-th receive name the same tensor,
 *     and there are as many sends as receives - so an executor that
 *     matches messages in call order without tags (tsr_comm_batch_p2p())
 *     pairs every send with exactly one receive;
 *   - each (microbatch, chunk) is forwarded once and backwarded once on
 *     each rank, the forward after its activation arrived, the backward
 *     after its forward and after its gradient arrived, each send after
 *     the compute that made its tensor;
 *   - nobody deadlocks: ranks execute their lists in order; an exchange
 *     is posted whole and completes when every operation in it has met its
 *     partner (RENDEZVOUS: sends wait for the receive to be posted, as
 *     NCCL and large MPI messages do; EAGER: sends complete at once).
 *
 * Time: a FORWARD costs options->forward_cost, a BACKWARD
 * options->backward_cost, communication nothing. An exchange posted at t
 * completes at the latest post time among its operations and their
 * partners (only receives wait in EAGER mode). The result per rank: time
 * computing (busy), time blocked in exchanges (wait), when it finished,
 * idle = makespan - busy (its bubble: waits plus waiting for the slowest
 * rank to end the step), and the peak number of (microbatch, chunk) pairs
 * between forward and backward. Outcomes do not depend on the order in
 * which the simulator visits ranks.
 *
 * Not a hot path: a run allocates its tables. Called by the pipeline
 * tests, the bubble benchmark and the schedule drawing tool; the layout
 * planner can use it to predict a layout's bubble.
 */
#ifndef TSR_SHARDING_PIPELINE_SIM_H
#define TSR_SHARDING_PIPELINE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "sharding/pipeline_schedule.h"
#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tsr_pp_send_mode {
    TSR_PP_SEND_RENDEZVOUS = 0, /* a send completes when its receive is posted */
    TSR_PP_SEND_EAGER           /* a send completes when posted */
} tsr_pp_send_mode;

typedef struct tsr_pp_sim_options {
    int64_t forward_cost;  /* time of one FORWARD of one chunk, >= 0 */
    int64_t backward_cost; /* time of one BACKWARD of one chunk, >= 0 */
    tsr_pp_send_mode send_mode;
} tsr_pp_sim_options;

typedef struct tsr_pp_sim_rank_stats {
    int64_t busy;       /* in FORWARD / BACKWARD */
    int64_t wait;       /* blocked in exchanges */
    int64_t finish;     /* end of the rank's last action */
    int64_t idle;       /* makespan - busy */
    int peak_in_flight; /* most (microbatch, chunk) forwarded, not yet backwarded */
} tsr_pp_sim_rank_stats;

/* Runs ranks 0..pp_size-1, rank r executing actions[r][0 .. counts[r]-1],
 * for m microbatches and v chunks per rank. stats has pp_size entries.
 * start_times, if not NULL, holds per rank an array of counts[r] entries
 * that receive each action's start time (an exchange's: when posted). */
tsr_status tsr_pp_sim_run(int pp_size, int num_microbatches, int num_chunks,
                          const tsr_pp_action *const *actions, const size_t *counts,
                          const tsr_pp_sim_options *options, tsr_pp_sim_rank_stats *stats,
                          int64_t *makespan, int64_t *const *start_times);

/* Builds every rank's list for spec (spec->pp_rank is ignored) and runs
 * them. stats has spec->pp_size entries. */
tsr_status tsr_pp_sim_schedule(const tsr_pp_schedule_spec *spec,
                               const tsr_pp_sim_options *options, tsr_pp_sim_rank_stats *stats,
                               int64_t *makespan);

#ifdef __cplusplus
}
#endif

#endif /* TSR_SHARDING_PIPELINE_SIM_H */

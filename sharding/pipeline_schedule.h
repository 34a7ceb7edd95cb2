/*
 * pipeline_schedule.h - pipeline-parallel schedules as pure functions:
 * (schedule, pp size, pp rank, microbatches, virtual stages) -> the ordered
 * list of actions that one pipeline rank executes in one training step.
 *
 * Vocabulary (Megatron's). p pipeline ranks, v model chunks per rank
 * (virtual stages; v = 1 without interleaving), m microbatches. Chunk c of
 * rank r is virtual stage s = c*p + r; the model runs through s = 0 ..
 * p*v-1, so activations flow r -> r+1 inside a chunk and from rank p-1,
 * chunk c to rank 0, chunk c+1 (a ring); gradients flow the other way. The
 * embedding lives on s = 0, the head and loss on s = p*v-1.
 *
 * An action is either compute - FORWARD or BACKWARD of (microbatch,
 * chunk) - or one EXCHANGE: a batch of 1..4 point-to-point operations that
 * are posted together and waited for together (Megatron's
 * send_forward_recv_backward, send_forward_backward_recv_forward_backward,
 * ...). Every operation names the tensor by the (microbatch, chunk) of the
 * LOCAL chunk it belongs to:
 *   SEND_ACTIVATION (m, c)  output of FORWARD (m, c), to the next stage
 *   RECV_ACTIVATION (m, c)  input of FORWARD (m, c), from the previous one
 *   SEND_GRAD (m, c)        input gradient made by BACKWARD (m, c)
 *   RECV_GRAD (m, c)        output gradient BACKWARD (m, c) consumes
 * and the peer pipeline rank. Tensor shapes are fixed by the config, so no
 * size travels. Invariants (checked by the simulation in pipeline_sim.h
 * and its tests): between any two ranks, the sends of one (in list order,
 * and in operation order inside an exchange) and the receives of the
 * other come in the same order, activations and gradients alike - so an
 * executor turns each EXCHANGE into one tsr_comm_batch_p2p() call with
 * the operations in the order listed, and no tags are needed even for
 * p = 2, where the next and the previous stage are the same rank; no rank
 * deadlocks even when a send completes only once its receive is posted;
 * each microbatch is forwarded and backwarded exactly once per chunk.
 *
 * Schedules:
 *   GPIPE        all forwards, then all backwards (peak in flight m*v).
 *   1F1B         Megatron's non-interleaved schedule: p-r-1 warm-up
 *                forwards, then one forward / one backward, then the
 *                cool-down backwards (peak in flight min(p-r, m) <= p).
 *   INTERLEAVED  Megatron's interleaved 1F1B over v chunks; needs m to be
 *                a multiple of p, as Megatron does.
 * The generators follow Megatron-Core's schedules.py loop for loop, so a
 * tessera stage talks to its neighbours in the order Megatron's would.
 *
 * Nothing here allocates: tsr_pp_schedule_count() says how many actions a
 * rank needs, tsr_pp_schedule_build() writes them into the caller's array.
 * Called by the trainer's pipeline executor (one list per step), by the
 * memory planner (peak in flight) and by the simulation and benchmarks.
 */
#ifndef TSR_SHARDING_PIPELINE_SCHEDULE_H
#define TSR_SHARDING_PIPELINE_SCHEDULE_H

#include <stddef.h>

#include "tessera/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tsr_pp_schedule_kind {
    TSR_PP_SCHEDULE_GPIPE = 0,
    TSR_PP_SCHEDULE_1F1B,
    TSR_PP_SCHEDULE_INTERLEAVED,
    TSR_PP_SCHEDULE_COUNT
} tsr_pp_schedule_kind;

typedef enum tsr_pp_action_kind {
    TSR_PP_FORWARD = 0,
    TSR_PP_BACKWARD,
    TSR_PP_EXCHANGE
} tsr_pp_action_kind;

typedef enum tsr_pp_p2p_kind {
    TSR_PP_SEND_ACTIVATION = 0,
    TSR_PP_RECV_ACTIVATION,
    TSR_PP_SEND_GRAD,
    TSR_PP_RECV_GRAD
} tsr_pp_p2p_kind;

/* One point-to-point operation of an exchange. */
typedef struct tsr_pp_p2p {
    tsr_pp_p2p_kind kind;
    int peer;       /* pipeline rank sent to or received from */
    int microbatch; /* of the local chunk's forward/backward (see above) */
    int chunk;
} tsr_pp_p2p;

/* An exchange holds at most one operation of each kind. */
#define TSR_PP_MAX_EXCHANGE_OPS 4

typedef struct tsr_pp_action {
    tsr_pp_action_kind kind;
    int microbatch; /* FORWARD / BACKWARD; -1 for EXCHANGE */
    int chunk;      /* FORWARD / BACKWARD; -1 for EXCHANGE */
    int num_ops;    /* EXCHANGE: 1..TSR_PP_MAX_EXCHANGE_OPS; 0 otherwise */
    tsr_pp_p2p ops[TSR_PP_MAX_EXCHANGE_OPS];
} tsr_pp_action;

typedef struct tsr_pp_schedule_spec {
    tsr_pp_schedule_kind kind;
    int pp_size;          /* p >= 1 */
    int pp_rank;          /* 0 <= r < p */
    int num_microbatches; /* m >= 1 */
    int num_chunks;       /* v >= 1: model chunks (virtual stages) per rank */
} tsr_pp_schedule_spec;

/* "gpipe", "1f1b", "interleaved"; "unknown" for anything else. */
const char *tsr_pp_schedule_kind_name(tsr_pp_schedule_kind kind);

/* Checks a spec; on failure the message names the offending value and
 * what would be accepted. 1F1B takes v = 1 only (with v > 1 it is the
 * interleaved schedule); virtual stages need p >= 2; INTERLEAVED, and
 * GPIPE with v > 1, need m to be a multiple of p. */
tsr_status tsr_pp_schedule_validate(const tsr_pp_schedule_spec *spec);

/* Number of actions rank spec->pp_rank executes. */
tsr_status tsr_pp_schedule_count(const tsr_pp_schedule_spec *spec, size_t *count);

/* Writes the rank's actions, in execution order, into actions[0 ..
 * *count-1]. Fails with TSR_ERR_INVALID_ARG (and writes nothing past
 * capacity) if capacity is smaller than tsr_pp_schedule_count(). */
tsr_status tsr_pp_schedule_build(const tsr_pp_schedule_spec *spec, tsr_pp_action *actions,
                                 size_t capacity, size_t *count);

/* The most (microbatch, chunk) pairs that rank spec->pp_rank holds
 * between their forward and their backward - what the memory planner
 * reserves activations for. GPIPE m*v; 1F1B min(p-r, m); INTERLEAVED
 * m*v when m == p (Megatron then runs every forward first), else
 * min(2(p-r-1) + (v-1)p + 1, m*v). */
tsr_status tsr_pp_schedule_max_in_flight(const tsr_pp_schedule_spec *spec, int *max_in_flight);

/* The textbook bubble fraction (idle time / step time, every rank) when
 * a chunk's backward costs a fixed multiple of its forward and
 * communication is free: (p-1)/(v*m+p-1). With v = 1 that is GPipe's and
 * 1F1B's (p-1)/(m+p-1); for INTERLEAVED it is Narayanan et al. 2021's
 * bubble time / ideal time = (p-1)/(v*m) expressed as a share of the step
 * (GPIPE over v chunks runs the same order and fills and drains alike).
 * Returns -1 for an invalid spec; pp_rank is ignored. */
double tsr_pp_schedule_bubble_theory(const tsr_pp_schedule_spec *spec);

/* Writes a short description of an action ("F 3.0", "B 3.0",
 * "{send_act 3.0 >1, recv_grad 1.0 <1}") into buf, always
 * NUL-terminated; returns the length it wanted, as snprintf does. */
int tsr_pp_action_format(const tsr_pp_action *action, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* TSR_SHARDING_PIPELINE_SCHEDULE_H */

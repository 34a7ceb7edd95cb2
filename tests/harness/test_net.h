/*
 * test_net.h - the GPT spec (models/gpt_spec.c) built into this rank's
 * model for tests, as launcher/cmd_train.c builds it.
 */
#ifndef TSR_TESTS_TEST_NET_H
#define TSR_TESTS_TEST_NET_H

#include "sharding/net.h"

typedef struct tsr_test_net {
    tsr_spec_arena *arena;
    tsr_model_spec spec;
    tsr_net *net;
} tsr_test_net;

/* Declares the model for the tp/pp/ep rank of grid (NULL: one rank), with the
 * pipeline cut for `microbatches` per iteration (0: no pipeline). */
tsr_status tsr_test_net_build(tsr_test_net *t, const tsr_config *cfg, int64_t vocab,
                              tsr_grid *grid, int microbatches);
void tsr_test_net_free(tsr_test_net *t);
/* Plans, allocates and carves a one-rank model built above (release the
 * plan with tsr_plan_release). */
tsr_status tsr_test_net_carve(tsr_test_net *t, tsr_memory_plan *plan);
/* The same for this rank of grid (NULL: one rank). */
tsr_status tsr_test_net_carve_on(tsr_test_net *t, tsr_grid *grid, tsr_memory_plan *plan);

/* The local parameter of that name, or NULL. */
const tsr_net_param *tsr_test_net_find(const tsr_net *net, const char *name);
/* v summed over the ranks of comm (the layout tests' error sums). */
double tsr_test_sum_over(tsr_comm *comm, double v);

#endif /* TSR_TESTS_TEST_NET_H */

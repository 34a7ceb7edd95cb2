/*
 * optimizer_case.c - the shared optimizer test model (optimizer_case.h).
 */
#include "optimizer_case.h"

#include <string.h>

void oc_make(optimizer_case *c, float *params, float *grads)
{
    memset(c, 0, sizeof *c);
    /* name, shape, block, offset, writer, frozen */
    c->tensors[0] = (tsr_tensor_desc){"a", 30, 10, 0, 30, 0, 10, 0, true, false, false, 0};
    c->tensors[1] = (tsr_tensor_desc){"b", 20, 10, 0, 20, 0, 10, 300, false, false, false, 0};
    c->tensors[2] = (tsr_tensor_desc){"frozen", 50, 1, 0, 50, 0, 1, 0, true, true, false, 0};
    c->tensors[3] = (tsr_tensor_desc){"c", 50, 10, 0, 50, 0, 10, 500, true, false, false, 0};
    c->spans[0] = (tsr_param_span){0, 300, true, false};
    c->spans[1] = (tsr_param_span){300, 200, false, false};
    c->spans[2] = (tsr_param_span){500, 200, true, false};
    c->spans[3] = (tsr_param_span){700, 300, false, false};
    c->ranges[0] = (tsr_shard_range){100, 400, 0};
    c->ranges[1] = (tsr_shard_range){600, 250, 400};
    c->model.params = params;
    c->model.grads = grads;
    c->model.param_count = OC_PARAMS;
    c->model.spans = c->spans;
    c->model.span_count = 4;
    c->model.tensors = c->tensors;
    c->model.tensor_count = 4;
    c->sharded = (tsr_param_shard){c->ranges, 2, true};
    c->owned = (tsr_param_shard){c->ranges, 2, false};
}

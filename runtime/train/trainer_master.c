/*
 * trainer_master.c - the fp32 master weights of --bf16 / --fp16 training
 * and the 16-bit weights rounded from them (see trainer.h).
 *
 * The master is indexed as Adam's moments are: by the ranges this rank
 * updates (its shard under the distributed optimizer, everything
 * otherwise), so sharding the state shards the master too. The 16-bit
 * weights are whole on every rank: each rounds what it updated, and the
 * distributed optimizer's all-gather brings the rest.
 */
#include <string.h>

#include "trainer.h"

/* The ranges of the flat buffer this rank updates, with where their
 * master and moments start: the owned ranges under a sharded state, else
 * everything (*all). */
static size_t updated_ranges(const tsr_trainer *tr, tsr_shard_range *all,
                             const tsr_shard_range **ranges)
{
    const tsr_param_shard *shard = &tr->hooks.shard;
    if (shard->ranges != NULL && shard->sharded_state) {
        *ranges = shard->ranges;
        return shard->range_count;
    }
    *all = (tsr_shard_range){0, tr->model.param_count, 0};
    *ranges = all;
    return 1;
}

/* Elements of r that are the model's weights (a padded shard's tail lies
 * beyond them: its master is zero, and no image holds it). */
static size_t weights_in(const tsr_trainer *tr, const tsr_shard_range *r)
{
    size_t n = tr->model.param_count;
    if (r->offset >= n)
        return 0;
    return r->offset + r->count > n ? n - r->offset : r->count;
}

void tsr_trainer_adopt_weights(tsr_trainer *tr, const float *image)
{
    if (tr->master == NULL)
        return;
    tsr_shard_range all;
    const tsr_shard_range *ranges = NULL;
    size_t count = updated_ranges(tr, &all, &ranges);
    for (size_t i = 0; i < count; i++) {
        const tsr_shard_range *r = &ranges[i];
        size_t held = weights_in(tr, r);
        memcpy(tr->master + r->state_offset, image + r->offset, held * sizeof(float));
        memset(tr->master + r->state_offset + held, 0, (r->count - held) * sizeof(float));
    }
    /* every rank holds all of image: no gather needed */
    tsr_precision_store(&tr->precision, 0, image, tr->model.param_count);
    tr->precision.stale = true;
}

float *tsr_trainer_weight_image(const tsr_trainer *tr)
{
    if (tr->master == NULL)
        return tr->model.params;
    return tr->model.fp32_view ? tr->model.grads : tr->model.params;
}

void tsr_trainer_master_image(const tsr_trainer *tr)
{
    if (tr->master == NULL)
        return;
    float *image = tsr_trainer_weight_image(tr);
    tsr_shard_range all;
    const tsr_shard_range *ranges = NULL;
    size_t count = updated_ranges(tr, &all, &ranges);
    for (size_t i = 0; i < count; i++) {
        const tsr_shard_range *r = &ranges[i];
        memcpy(image + r->offset, tr->master + r->state_offset, weights_in(tr, r) * sizeof(float));
    }
}

void tsr_trainer_store_master(tsr_trainer *tr)
{
    tsr_shard_range all;
    const tsr_shard_range *ranges = NULL;
    size_t count = updated_ranges(tr, &all, &ranges);
    for (size_t i = 0; i < count; i++)
        tsr_precision_store(&tr->precision, ranges[i].offset, tr->master + ranges[i].state_offset,
                            ranges[i].count);
}

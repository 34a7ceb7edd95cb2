/*
 * lr_schedule.c - warmup then decay (see lr_schedule.h). Follows Megatron's
 * OptimizerParamScheduler: warmup is lr * step / warmup_steps; the decay
 * ratio runs over the steps after warmup.
 */
#include "lr_schedule.h"

#include <math.h>

double tsr_lr_at(const tsr_config *cfg, int64_t step)
{
    int64_t warmup = cfg->lr_warmup_iters;
    int64_t decay_iters = cfg->lr_decay_iters > 0 ? cfg->lr_decay_iters : cfg->train_iters;
    if (warmup > 0 && step <= warmup)
        return cfg->lr * (double)step / (double)warmup;
    if (cfg->lr_decay_style == TSR_LR_CONSTANT)
        return cfg->lr;
    if (step > decay_iters)
        return cfg->min_lr;
    double span = (double)(decay_iters - warmup);
    double ratio = span > 0 ? (double)(step - warmup) / span : 1.0;
    double coeff = cfg->lr_decay_style == TSR_LR_LINEAR
                       ? 1.0 - ratio
                       : 0.5 * (cos(3.14159265358979323846 * ratio) + 1.0);
    return cfg->min_lr + coeff * (cfg->lr - cfg->min_lr);
}

/*
 * train_supported.c - layouts and features this build can run
 * (train_supported.h).
 */
#include "train_supported.h"

#include "sharding/grid.h"

tsr_status tsr_train_check_supported(const tsr_config *cfg, int world)
{
    if (cfg->device == TSR_DEVICE_CUDA)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--device cuda: training on GPUs is not built yet (its kernels "
                             "exist but no module calls them, and none has run on a GPU: see "
                             "docs/gpu.md); drop --device cuda to train on the CPU");
    if (cfg->context_parallel_size > 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "this build trains with tensor, sequence, pipeline, expert and "
                             "data parallelism; context parallelism is not available yet: "
                             "drop --context-parallel-size");
    if (cfg->num_layers_per_virtual_pipeline_stage > 0) {
        int m = tsr_config_microbatches_per_rank(cfg, world);
        if (m % cfg->pipeline_model_parallel_size != 0)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "the interleaved schedule (--num-layers-per-virtual-pipeline-"
                                 "stage) needs the micro batches per iteration (%d = "
                                 "--global-batch-size / (--micro-batch-size x data-parallel "
                                 "size)) to be a multiple of --pipeline-model-parallel-size %d",
                                 m, cfg->pipeline_model_parallel_size);
    }
    /* the grid's own checks (rank order; sizes against the world), made
     * here so that they fail before MPI starts, with exit code 2 */
    tsr_grid_layout layout;
    tsr_status st = tsr_grid_layout_compute(
        world, cfg->tensor_model_parallel_size,
        cfg->context_parallel_size, cfg->expert_model_parallel_size,
        cfg->pipeline_model_parallel_size, 1, cfg->rank_order, &layout);
    if (st != TSR_OK)
        return st;
    tsr_grid_layout_free(&layout);
    return TSR_OK;
}

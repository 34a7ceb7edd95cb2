/*
 * optimizer_cuda.cu - the optimizer step's pieces with the device's
 * kernels (optimizer_cuda.h). A walk's callback cannot return a status,
 * so the first failure is kept and every later piece skipped.
 */
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch_geometry.h"
#include "train/optimizer_cuda.h"

namespace {

struct sumsq_walk {
    const float *grads;
    void *workspace;
    double *partials;
    size_t next;
    void *stream;
    tsr_status st;
};

void sumsq_piece(void *ctx, size_t range, size_t offset, size_t count)
{
    (void)range;
    sumsq_walk *w = static_cast<sumsq_walk *>(ctx);
    if (w->st != TSR_OK)
        return;
    w->st = tsr_cuda_sum_squares(w->partials + w->next++, w->grads + offset, (int64_t)count,
                                 w->workspace, tsr_cuda_optimizer_workspace_bytes(), w->stream);
}

struct adamw_walk {
    const tsr_model *model;
    float *master, *m, *v;
    const tsr_adamw_args *a;
    void *stream;
    tsr_status st;
};

void adamw_piece(void *ctx, size_t offset, size_t state, size_t count, bool decay)
{
    adamw_walk *w = static_cast<adamw_walk *>(ctx);
    if (w->st != TSR_OK)
        return;
    const tsr_adamw_args *a = w->a;
    float *weights = w->master != NULL ? w->master + state : w->model->params + offset;
    w->st = tsr_cuda_adamw_update(weights, w->model->grads + offset, w->m + state, w->v + state,
                                  (int64_t)count, a->lr, a->beta1, a->beta2, a->eps,
                                  decay ? a->weight_decay : 0.0f, a->step, a->grad_scale,
                                  w->stream);
}

tsr_status check_cuda(cudaError_t err, const char *what)
{
    if (err == cudaSuccess)
        return TSR_OK;
    return tsr_error_set(TSR_ERR_INTERNAL, "CUDA optimizer: %s failed: %s (%s)", what,
                         cudaGetErrorName(err), cudaGetErrorString(err));
}

} /* namespace */

extern "C" size_t tsr_cuda_optimizer_workspace_bytes(void)
{
    return (size_t)TSR_CUDA_SUMSQ_PARTIALS_MAX * sizeof(double);
}

extern "C" tsr_status tsr_cuda_optimizer_grad_sumsq(const tsr_model *model,
                                                    const tsr_param_shard *shard,
                                                    void *workspace, double *partials,
                                                    double *host_partials, double *sumsq,
                                                    void *stream)
{
    if (model == NULL || sumsq == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "CUDA optimizer: the model or sumsq is NULL");
    *sumsq = 0.0;
    size_t pieces = tsr_optimizer_norm_piece_count(model, shard);
    if (pieces == 0)
        return TSR_OK;
    if (workspace == NULL || partials == NULL || host_partials == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA optimizer: the sum of squares needs a workspace, %zu device "
                             "partials and as many host ones",
                             pieces);
    sumsq_walk w = {model->grads, workspace, partials, 0, stream, TSR_OK};
    tsr_optimizer_norm_pieces(model, shard, sumsq_piece, &w);
    if (w.st != TSR_OK)
        return w.st;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    tsr_status st = check_cuda(cudaMemcpyAsync(host_partials, partials, pieces * sizeof(double),
                                               cudaMemcpyDeviceToHost, s),
                               "copying the partial sums of squares");
    if (st == TSR_OK)
        st = check_cuda(cudaStreamSynchronize(s), "waiting for the sums of squares");
    if (st == TSR_OK)
        *sumsq = tsr_optimizer_combine_sumsq(model, shard, host_partials);
    return st;
}

extern "C" tsr_status tsr_cuda_optimizer_adamw(const tsr_model *model, const tsr_param_shard *shard,
                                               float *master, float *m, float *v,
                                               const tsr_adamw_args *args, void *stream)
{
    if (model == NULL || args == NULL || m == NULL || v == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA optimizer: the model, arguments or moments are NULL");
    adamw_walk w = {model, master, m, v, args, stream, TSR_OK};
    tsr_optimizer_adamw_pieces(model, shard, adamw_piece, &w);
    return w.st;
}

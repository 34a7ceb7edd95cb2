/*
 * attention_cuda_forward.cu - the forward pass of the CUDA flash attention
 * (attention_cuda.h) and the query of the device limits its plan needs.
 *
 * One block per (query block, query head, sample): its Br queries, scaled
 * by 1/sqrt(D) as they are loaded (as the CPU kernel does, so that forward
 * and backward compute bitwise the same scores), stay in shared memory
 * while the key blocks 0 .. the diagonal's stream through it, K and V a
 * Bc-row tile at a time. Each thread keeps, for its rows, the running max
 * m, the running sum l and its columns of the unnormalised output O in
 * registers (the online softmax); the tile's probabilities go through
 * shared memory for the P V product. lse = m + log(l) is saved for the
 * backward. Blocks are issued last query block first: with a causal mask
 * those have the most key blocks, and starting them first shortens the
 * tail of the grid.
 */
#include "kernels/cuda/attention_cuda_tile.cuh"

namespace tsr_attn {

template <int D, int BR, int BC>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(float *__restrict__ out, float *__restrict__ lse, const float *__restrict__ q,
                   const float *__restrict__ k, const float *__restrict__ v, int t, int hq,
                   int group, float scale)
{
    constexpr int RM = BR / kSide, RN = BC / kSide, DC = D / kSide, LD = D + 1, LDP = BC + 16;
    extern __shared__ float smem[];
    float *sq = smem, *sk = sq + BR * LD, *sv = sk + BC * LD, *sp = sv + BC * LD;
    const int ty = threadIdx.x / kSide, tx = threadIdx.x % kSide;
    const int qb = (int)gridDim.x - 1 - (int)blockIdx.x;
    const int h = blockIdx.y, bi = blockIdx.z, g = h / group;
    const int q0 = qb * BR;
    const int64_t qstride = (int64_t)hq * D, kstride = (int64_t)(hq / group) * D;
    const float *qh = q + head_origin<D>(bi, t, qstride, h);
    const float *kh = k + head_origin<D>(bi, t, kstride, g);
    const float *vh = v + head_origin<D>(bi, t, kstride, g);

    load_rows<BR, D>(sq, qh, qstride, q0, t, scale);
    float m[RM], l[RM], o[RM][DC];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    zero_tile(o);
    const int kblocks = (int)tsr_cuda_attention_key_blocks(q0, BR, BC, t);
    for (int kb = 0; kb < kblocks; kb++) {
        const int k0 = kb * BC;
        __syncthreads(); /* the last tile's readers of sk, sv and sp are done */
        load_key_block<BC, D>(sk, sv, kh, vh, kstride, k0, t);
        __syncthreads();
        float s[RM][RN];
        tile_abt<D, RM, RN>(s, sq, sk, ty, tx);
#pragma unroll
        for (int i = 0; i < RM; i++) {
            const int row = q0 + ty + kSide * i;
            float mx = -INFINITY;
#pragma unroll
            for (int j = 0; j < RN; j++) {
                if (!tsr_cuda_attention_visible(row, k0 + tx + kSide * j, t))
                    s[i][j] = -INFINITY;
                mx = fmaxf(mx, s[i][j]);
            }
            const float m_new = fmaxf(m[i], row_max(mx));
            float alpha = 1.0f, sum = 0.0f;
            if (m_new == -INFINITY) {
                /* no key seen yet (a padded row): nothing to add, and
                 * exp(-inf - -inf) would be NaN */
#pragma unroll
                for (int j = 0; j < RN; j++)
                    s[i][j] = 0.0f;
            } else {
                alpha = expf(m[i] - m_new);
#pragma unroll
                for (int j = 0; j < RN; j++) {
                    s[i][j] = expf(s[i][j] - m_new); /* a masked -inf gives 0 */
                    sum += s[i][j];
                }
            }
            l[i] = l[i] * alpha + row_sum(sum);
            m[i] = m_new;
#pragma unroll
            for (int j = 0; j < DC; j++)
                o[i][j] *= alpha;
#pragma unroll
            for (int j = 0; j < RN; j++)
                sp[(ty + kSide * i) * LDP + tx + kSide * j] = s[i][j];
        }
        __syncthreads(); /* the whole P tile is written */
        tile_px<D, RM, BC, LDP, 1>(o, sp, sv, ty, tx);
    }
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int row = q0 + ty + kSide * i;
        if (row >= t)
            continue;
        /* a query that sees no key: out 0, lse -inf (never under causal) */
        const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        float *dst = out + ((int64_t)bi * t + row) * qstride + (int64_t)h * D;
#pragma unroll
        for (int j = 0; j < DC; j++)
            dst[tx + kSide * j] = o[i][j] * inv;
        if (tx == 0)
            lse[((int64_t)bi * hq + h) * t + row] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
    }
}

struct forward_launch {
    const tsr_cuda_attention_plan *plan;
    float *out, *lse;
    const float *q, *k, *v;
    cudaStream_t stream;

    template <int D, int BR, int BC>
    tsr_status run() const
    {
        return launch_tiles(&plan->forward, stream, "the attention forward launch",
                            forward_kernel<D, BR, BC>, out, lse, q, k, v, (int)plan->t,
                            (int)plan->hq, (int)(plan->hq / plan->hkv), plan->scale);
    }
};

} /* namespace tsr_attn */

extern "C" tsr_status tsr_cuda_attention_limits_query(tsr_cuda_attention_limits *limits)
{
    int dev = 0, smem = 0, threads = 0;
    tsr_status st = tsr_attn::check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    if (st == TSR_OK)
        st = tsr_attn::check_cuda(
            cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
            "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
    if (st == TSR_OK)
        st = tsr_attn::check_cuda(
            cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerBlock, dev),
            "cudaDeviceGetAttribute(MaxThreadsPerBlock)");
    if (st != TSR_OK)
        return st;
    limits->smem_per_block = smem;
    limits->max_threads_per_block = threads;
    return TSR_OK;
}

extern "C" tsr_status tsr_cuda_attention_forward(const tsr_cuda_attention_plan *plan, float *out,
                                                 float *lse, const float *q, const float *k,
                                                 const float *v, const tsr_attn_mask *mask,
                                                 const tsr_dropout *dropout, void *stream)
{
    if (plan == NULL || out == NULL || lse == NULL || q == NULL || k == NULL || v == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA attention forward: plan, out, lse, q, k and v must all be "
                             "given");
    tsr_status st = tsr_attn::check_pattern(mask, dropout, "forward");
    if (st != TSR_OK)
        return st;
    tsr_attn::forward_launch launch = {plan, out, lse, q, k, v, (cudaStream_t)stream};
    return tsr_attn::dispatch(launch, plan->d, plan->forward.br, plan->forward.bc);
}

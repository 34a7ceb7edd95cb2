/*
 * attention_cuda_backward.cu - the backward pass of the CUDA flash
 * attention (attention_cuda.h), in three launches on the caller's stream:
 *
 *  1. rowdot: Di = rowsum(dO * O) per query row, into the workspace
 *     (one warp per row).
 *  2. dkv: one block per (key block, key/value head, sample). Its K and V
 *     tiles stay in shared memory; for every query head of the group and
 *     every query block from the diagonal's on it recomputes
 *     P = exp(S - lse), dP = dO V^T and dS = P (dP - Di), and accumulates
 *     dV += P^T dO and dK += dS^T (Q / sqrt(D)) in registers.
 *  3. dq: one block per (query block, query head, sample), key blocks
 *     0 .. the diagonal's: the same P and dS (the same code on the same
 *     operands, hence the same bits), dQ += dS K.
 *
 * Why two passes over the tiles rather than one with atomics: a single
 * pass would add each block's share of dQ (or of dK, dV) into global
 * memory from many blocks at once, in whatever order they run, and fp32
 * addition is not associative, so results would change from run to run.
 * Here every gradient element has exactly one writer, which sums its
 * terms in a fixed order (query heads, then query blocks, then rows, for
 * dK and dV; key blocks, then columns, for dQ) and adds the total once to
 * the caller's buffer (+=, the CPU kernel's accumulate contract). The
 * price is computing S and dP twice, about 40% more backward FLOPs.
 */
#include "kernels/cuda/attention_cuda_tile.cuh"

namespace tsr_attn {

/* di[(b, h, i)] = sum_d dout[b, i, h, d] * out[b, i, h, d]. Rows of the
 * (B, T, Hq, D) tensors are consecutive; a warp's lanes take columns
 * lane, lane + 32, ... and a fixed shuffle tree adds the 32 partial sums. */
__global__ void __launch_bounds__(32 * TSR_CUDA_ATTN_ROWDOT_ROWS)
    rowdot_kernel(float *__restrict__ di, const float *__restrict__ dout,
                  const float *__restrict__ out, int64_t rows, int t, int hq, int d)
{
    const int64_t row = (int64_t)blockIdx.x * TSR_CUDA_ATTN_ROWDOT_ROWS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows)
        return; /* a whole warp leaves together: the shuffles below stay full */
    const float *a = dout + row * d, *b = out + row * d;
    float acc = 0.0f;
    for (int c = lane; c < d; c += 32)
        acc = fmaf(a[c], b[c], acc);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0) {
        const int64_t bt = row / hq; /* row = (b * T + i) * Hq + h */
        const int h = (int)(row % hq), i = (int)(bt % t);
        di[(bt / t * hq + h) * t + i] = acc;
    }
}

/* Loads lse and Di of query rows [q0, q0 + BR) of head h; padded rows get
 * lse +inf and Di 0, so that they add nothing. */
template <int BR>
__device__ __forceinline__ void load_row_stats(float *slse, float *sdi, const float *lse,
                                               const float *di, int64_t head_row0, int q0, int t)
{
    for (int r = threadIdx.x; r < BR; r += kThreads) {
        const bool in = q0 + r < t;
        slse[r] = in ? lse[head_row0 + q0 + r] : INFINITY;
        sdi[r] = in ? di[head_row0 + q0 + r] : 0.0f;
    }
}

/* From the tiles S = Qs K^T (in s) and dP = dO V^T (in dp): s becomes P
 * and dp becomes dS = P (dP - Di), both 0 where the query does not see
 * the key (a query with lse -inf sees nothing: no gradient). */
template <int RM, int RN>
__device__ __forceinline__ void probs_and_dscores(float (&s)[RM][RN], float (&dp)[RM][RN],
                                                  const float *slse, const float *sdi, int q0,
                                                  int k0, int t, int ty, int tx)
{
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int r = ty + kSide * i;
        const float L = slse[r], Di = sdi[r];
#pragma unroll
        for (int j = 0; j < RN; j++) {
            const bool seen =
                tsr_cuda_attention_visible(q0 + r, k0 + tx + kSide * j, t) && L != -INFINITY;
            const float p = seen ? expf(s[i][j] - L) : 0.0f;
            s[i][j] = p;
            dp[i][j] = seen ? p * (dp[i][j] - Di) : 0.0f;
        }
    }
}

template <int RM, int RN, int LDP>
__device__ __forceinline__ void store_tile(float *dst, const float (&x)[RM][RN], int ty, int tx)
{
#pragma unroll
    for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < RN; j++)
            dst[(ty + kSide * i) * LDP + tx + kSide * j] = x[i][j];
}

/* dst[row][tx + 16 j] += acc[i][j] * mul for rows ty + 16 i below `rows`.
 * mul is applied with __fmul_rn so that it is never fused into the add:
 * the sum is then exactly the caller's value plus this pass's result. */
template <int N, int D>
__device__ __forceinline__ void add_rows(float *dst, int64_t stride,
                                         const float (&acc)[N][D / kSide], int r0, int t,
                                         float mul, int ty, int tx)
{
#pragma unroll
    for (int i = 0; i < N; i++) {
        const int row = r0 + ty + kSide * i;
        if (row >= t)
            continue;
        float *p = dst + (int64_t)row * stride;
#pragma unroll
        for (int j = 0; j < D / kSide; j++)
            p[tx + kSide * j] += __fmul_rn(acc[i][j], mul);
    }
}

struct bwd_args {
    float *dq, *dk, *dv;
    const float *dout, *q, *k, *v, *lse, *di;
    int t, hq, group;
    float scale;
};

/* The shared memory of both backward kernels, as
 * tsr_cuda_attention_smem_bytes counts it: K, V, Q and dO tiles (ld D + 1),
 * P or dS (ld BC + 16), then lse and Di of the query rows. */
template <int D, int BR, int BC> struct bwd_smem {
    float *sk, *sv, *sq, *sdo, *sp, *slse, *sdi;

    __device__ explicit bwd_smem(float *smem)
    {
        constexpr int LD = D + 1, LDP = BC + 16;
        sk = smem;
        sv = sk + BC * LD;
        sq = sv + BC * LD;
        sdo = sq + BR * LD;
        sp = sdo + BR * LD;
        slse = sp + BR * LDP;
        sdi = slse + BR;
    }
};

template <int D, int BR, int BC>
__global__ void __launch_bounds__(kThreads) dkv_kernel(bwd_args a)
{
    constexpr int RM = BR / kSide, RN = BC / kSide, DC = D / kSide, LDP = BC + 16;
    extern __shared__ float smem[];
    const bwd_smem<D, BR, BC> sm(smem);
    const int ty = threadIdx.x / kSide, tx = threadIdx.x % kSide;
    const int k0 = blockIdx.x * BC, g = blockIdx.y, bi = blockIdx.z, t = a.t;
    const int64_t qstride = (int64_t)a.hq * D, kstride = (int64_t)(a.hq / a.group) * D;
    const int64_t kv0 = head_origin<D>(bi, t, kstride, g);
    load_key_block<BC, D>(sm.sk, sm.sv, a.k + kv0, a.v + kv0, kstride, k0, t);

    float dk[RN][DC], dv[RN][DC];
    zero_tile(dk);
    zero_tile(dv);
    const int qblocks = (t + BR - 1) / BR;
    const int qb0 = (int)tsr_cuda_attention_first_query_block(k0, BR);
    for (int hh = 0; hh < a.group; hh++) {
        const int h = g * a.group + hh;
        const int64_t q_head = head_origin<D>(bi, t, qstride, h);
        const int64_t stat0 = ((int64_t)bi * a.hq + h) * t;
        for (int qb = qb0; qb < qblocks; qb++) {
            const int q0 = qb * BR;
            __syncthreads(); /* the last tile's readers of sq, sdo, sp, slse, sdi are done */
            load_rows<BR, D>(sm.sq, a.q + q_head, qstride, q0, t, a.scale);
            load_rows<BR, D>(sm.sdo, a.dout + q_head, qstride, q0, t, 1.0f);
            load_row_stats<BR>(sm.slse, sm.sdi, a.lse, a.di, stat0, q0, t);
            __syncthreads();
            float s[RM][RN], dp[RM][RN];
            tile_abt<D, RM, RN>(s, sm.sq, sm.sk, ty, tx);
            tile_abt<D, RM, RN>(dp, sm.sdo, sm.sv, ty, tx);
            probs_and_dscores<RM, RN>(s, dp, sm.slse, sm.sdi, q0, k0, t, ty, tx);
            store_tile<RM, RN, LDP>(sm.sp, s, ty, tx);
            __syncthreads(); /* P is whole */
            if (a.dv != nullptr) /* dV += P^T dO: rows of P^T are P's columns */
                tile_px<D, RN, BR, 1, LDP>(dv, sm.sp, sm.sdo, ty, tx);
            __syncthreads(); /* every reader of P is done before dS replaces it */
            store_tile<RM, RN, LDP>(sm.sp, dp, ty, tx);
            __syncthreads(); /* dS is whole */
            if (a.dk != nullptr) /* dK += dS^T (Q / sqrt(D)) */
                tile_px<D, RN, BR, 1, LDP>(dk, sm.sp, sm.sq, ty, tx);
        }
    }
    if (a.dk != nullptr)
        add_rows<RN, D>(a.dk + kv0, kstride, dk, k0, t, 1.0f, ty, tx);
    if (a.dv != nullptr)
        add_rows<RN, D>(a.dv + kv0, kstride, dv, k0, t, 1.0f, ty, tx);
}

template <int D, int BR, int BC>
__global__ void __launch_bounds__(kThreads) dq_kernel(bwd_args a)
{
    constexpr int RM = BR / kSide, RN = BC / kSide, DC = D / kSide, LDP = BC + 16;
    extern __shared__ float smem[];
    const bwd_smem<D, BR, BC> sm(smem);
    const int ty = threadIdx.x / kSide, tx = threadIdx.x % kSide;
    const int q0 = ((int)gridDim.x - 1 - (int)blockIdx.x) * BR; /* longest rows first */
    const int h = blockIdx.y, bi = blockIdx.z, g = h / a.group, t = a.t;
    const int64_t qstride = (int64_t)a.hq * D, kstride = (int64_t)(a.hq / a.group) * D;
    const int64_t q_head = head_origin<D>(bi, t, qstride, h);
    const int64_t kv0 = head_origin<D>(bi, t, kstride, g);
    load_rows<BR, D>(sm.sq, a.q + q_head, qstride, q0, t, a.scale);
    load_rows<BR, D>(sm.sdo, a.dout + q_head, qstride, q0, t, 1.0f);
    load_row_stats<BR>(sm.slse, sm.sdi, a.lse, a.di, ((int64_t)bi * a.hq + h) * t, q0, t);

    float dq[RM][DC];
    zero_tile(dq);
    const int kblocks = (int)tsr_cuda_attention_key_blocks(q0, BR, BC, t);
    for (int kb = 0; kb < kblocks; kb++) {
        const int k0 = kb * BC;
        __syncthreads(); /* the last tile's readers of sk, sv and sp are done */
        load_key_block<BC, D>(sm.sk, sm.sv, a.k + kv0, a.v + kv0, kstride, k0, t);
        __syncthreads();
        float s[RM][RN], dp[RM][RN];
        tile_abt<D, RM, RN>(s, sm.sq, sm.sk, ty, tx);
        tile_abt<D, RM, RN>(dp, sm.sdo, sm.sv, ty, tx);
        probs_and_dscores<RM, RN>(s, dp, sm.slse, sm.sdi, q0, k0, t, ty, tx);
        store_tile<RM, RN, LDP>(sm.sp, dp, ty, tx);
        __syncthreads(); /* dS is whole */
        tile_px<D, RM, BC, LDP, 1>(dq, sm.sp, sm.sk, ty, tx); /* dQ += dS K */
    }
    /* S was computed from Q / sqrt(D): dQ = dS K / sqrt(D) */
    add_rows<RM, D>(a.dq + q_head, qstride, dq, q0, t, a.scale, ty, tx);
}

struct backward_launch {
    const tsr_cuda_attention_plan *plan;
    bwd_args args;
    cudaStream_t stream;

    template <int D, int BR, int BC>
    tsr_status run() const
    {
        tsr_status st = TSR_OK;
        if (args.dk != nullptr || args.dv != nullptr)
            st = launch_tiles(&plan->dkv, stream, "the attention dK/dV launch",
                              dkv_kernel<D, BR, BC>, args);
        if (st == TSR_OK && args.dq != nullptr)
            st = launch_tiles(&plan->dq, stream, "the attention dQ launch", dq_kernel<D, BR, BC>,
                              args);
        return st;
    }
};

} /* namespace tsr_attn */

extern "C" tsr_status tsr_cuda_attention_backward(const tsr_cuda_attention_plan *plan, float *dq,
                                                  float *dk, float *dv, const float *dout,
                                                  const float *q, const float *k, const float *v,
                                                  const float *out, const float *lse,
                                                  const tsr_attn_mask *mask,
                                                  const tsr_dropout *dropout, void *workspace,
                                                  void *stream)
{
    if (plan == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "CUDA attention backward: plan is NULL");
    tsr_status st = tsr_attn::check_pattern(mask, dropout, "backward");
    if (st != TSR_OK || (dq == NULL && dk == NULL && dv == NULL))
        return st;
    if (dout == NULL || q == NULL || k == NULL || v == NULL || out == NULL || lse == NULL ||
        workspace == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "CUDA attention backward: dout, q, k, v, out, lse and the workspace "
                             "(%lld bytes, tsr_cuda_attention_plan) must all be given",
                             (long long)plan->workspace_bytes);
    cudaStream_t s = (cudaStream_t)stream;
    float *di = (float *)workspace;
    const tsr_cuda_attention_launch *r = &plan->rowdot;
    tsr_attn::rowdot_kernel<<<(unsigned)r->grid[0], (unsigned)r->threads, 0, s>>>(
        di, dout, out, plan->b * plan->t * plan->hq, (int)plan->t, (int)plan->hq, (int)plan->d);
    st = tsr_attn::check_cuda(cudaGetLastError(), "the attention Di launch");
    if (st != TSR_OK)
        return st;
    tsr_attn::bwd_args args = {dq, dk, dv, dout, q, k, v, lse, di, (int)plan->t, (int)plan->hq,
                               (int)(plan->hq / plan->hkv), plan->scale};
    tsr_attn::backward_launch launch = {plan, args, s};
    return tsr_attn::dispatch(launch, plan->d, plan->dkv.br, plan->dkv.bc);
}

/*
 * net_held.c - saved activations held in 16 bits between a unit's forward
 * and its backward (--bf16, --fp16), as Megatron holds its activations.
 *
 * A unit's saved block is laid out with the buffers its modules marked as
 * activations first and everything that must stay fp32 after them
 * (net_memory.c). A held unit runs its forward and backward on one fp32
 * staging block; after a training forward the activations are rounded
 * into the micro batch's slot (2 bytes each) and the rest copied, and
 * before backward both come back. Modules never see 16-bit memory.
 *
 * A recomputed unit's block is never stored, but after its forward its
 * activations are rounded in place, so that its backward reads the same
 * values a held unit's backward would: recomputation does not change the
 * numbers.
 *
 * The residual stream between layers is kept the same way (net_internal.h),
 * but rounded in the forward itself, before the next layer reads it: the
 * stream then is what Megatron's bf16 hidden states are, and every layout
 * computes from the same rounded values.
 */
#include <string.h>

#include "net_internal.h"
#include "tessera/kernels.h"

static size_t aligned(size_t floats)
{
    return (floats + 15) / 16 * 16;
}

bool tsr_net_unit_held(const tsr_net *net, const tsr_net_unit *u)
{
    return net->held != TSR_NET_HELD_FP32 && u->local && !u->recomputed &&
           u->activation_floats > 0;
}

/* floats that n 16-bit values take, two to a float */
static size_t halves_floats(size_t n)
{
    return aligned((n + 1) / 2);
}

size_t tsr_net_held_floats(const tsr_net_unit *u)
{
    return halves_floats(u->activation_floats) + (u->saved_floats - u->activation_floats);
}

/* n floats into n 16-bit values of the held precision, and back */
static void pack(const tsr_net *net, uint16_t *half, const float *x, size_t n)
{
    if (net->held == TSR_NET_HELD_BF16)
        tsr_bf16_from_floats(half, x, (int64_t)n);
    else
        tsr_fp16_from_floats(half, x, (int64_t)n);
}

static void widen(const tsr_net *net, float *x, const uint16_t *half, size_t n)
{
    if (net->held == TSR_NET_HELD_BF16)
        tsr_floats_from_bf16(x, half, (int64_t)n);
    else
        tsr_floats_from_fp16(x, half, (int64_t)n);
}

void tsr_net_hold_saved(const tsr_net *net, const tsr_net_unit *u, float *slot_block)
{
    size_t n = u->activation_floats;
    pack(net, (uint16_t *)slot_block, net->staging, n);
    size_t rest = u->saved_floats - n;
    memcpy(slot_block + halves_floats(n), net->staging + n, rest * sizeof(float));
}

void tsr_net_restore_saved(const tsr_net *net, const tsr_net_unit *u, const float *slot_block)
{
    size_t n = u->activation_floats;
    widen(net, net->staging, (const uint16_t *)slot_block, n);
    size_t rest = u->saved_floats - n;
    memcpy(net->staging + n, slot_block + halves_floats(n), rest * sizeof(float));
}

void tsr_net_round_held(const tsr_net *net, float *x, size_t n)
{
    if (net->held == TSR_NET_HELD_BF16)
        tsr_bf16_round_floats(x, x, (int64_t)n);
    else if (net->held == TSR_NET_HELD_FP16)
        tsr_fp16_round_floats(x, x, (int64_t)n);
}

bool tsr_net_stream_held(const tsr_net *net)
{
    return net->held != TSR_NET_HELD_FP32 && !net->cfg.fp32_residual_connection;
}

size_t tsr_net_stream_store_floats(const tsr_net *net, size_t n)
{
    return tsr_net_stream_held(net) ? halves_floats(n) : aligned(n);
}

float *tsr_net_stream_target(const tsr_net *net, float *store, int k)
{
    return tsr_net_stream_held(net) ? net->stream_work[k] : store;
}

void tsr_net_keep_stream(const tsr_net *net, float *x, float *store, size_t n)
{
    if (!tsr_net_stream_held(net))
        return;
    pack(net, (uint16_t *)store, x, n);
    widen(net, x, (const uint16_t *)store, n); /* x rounded: what backward will read */
}

const float *tsr_net_stream_view(const tsr_net *net, const float *store, int k, size_t n)
{
    if (!tsr_net_stream_held(net))
        return store;
    widen(net, net->stream_work[k], (const uint16_t *)store, n);
    return net->stream_work[k];
}

tsr_comm_dtype tsr_net_stream_dtype(const tsr_net *net)
{
    /* moved, never summed: the 16-bit type only sets the bytes */
    return tsr_net_stream_held(net) ? TSR_COMM_BF16 : TSR_COMM_FP32;
}

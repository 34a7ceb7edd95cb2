/*
 * activation.c - GELU (tanh approximation) and SwiGLU, forward and backward.
 *
 * GELU is torch.nn.functional.gelu(approximate='tanh'):
 *   0.5 x (1 + tanh(k (x + 0.044715 x^3))),  k = sqrt(2/pi).
 * It is evaluated through the identity 0.5 (1 + tanh(u)) = 1 / (1 + e^-2u),
 * which is the same function without tanh's cancellation near -1 and lets
 * the loop vectorise with the shared exp (simd.h). SwiGLU is
 * silu(gate) * up with silu(g) = g / (1 + e^-g). Called by the MLP blocks.
 */
#include "simd.h"
#include "tessera/kernels.h"

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_C 0.044715f

/* sigmoid(2u) = 0.5 (1 + tanh(u)) for the TSR_VL inner values of x */
static inline tsr_vf gelu_half_one_plus_tanh(tsr_vf x)
{
    tsr_vf u = GELU_K * (x + GELU_C * x * x * x);
    return 1.0f / (1.0f + tsr_expf_v(-2.0f * u));
}

static inline float gelu_half_one_plus_tanh_1(float x)
{
    float u = GELU_K * (x + GELU_C * x * x * x);
    return 1.0f / (1.0f + tsr_expf(-2.0f * u));
}

void tsr_gelu_forward(float *out, const float *inp, int64_t n)
{
    int64_t nv = n / TSR_VL;
#pragma omp parallel for schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t b = 0; b < nv; b++) {
        tsr_vf x = TSR_VF_LOAD(inp + b * TSR_VL);
        TSR_VF_STORE(out + b * TSR_VL, x * gelu_half_one_plus_tanh(x));
    }
    for (int64_t i = nv * TSR_VL; i < n; i++)
        out[i] = inp[i] * gelu_half_one_plus_tanh_1(inp[i]);
}

/* d/dx [x s(x)] with s = 0.5 (1 + tanh u): s + x * 0.5 (1 - tanh^2 u) du/dx,
 * and 0.5 (1 - tanh^2 u) = 2 s (1 - s). */
void tsr_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n)
{
    if (dinp == NULL)
        return;
    int64_t nv = n / TSR_VL;
#pragma omp parallel for schedule(static) if (n >= TSR_PARALLEL_MIN)
    for (int64_t b = 0; b < nv; b++) {
        tsr_vf x = TSR_VF_LOAD(inp + b * TSR_VL);
        tsr_vf s = gelu_half_one_plus_tanh(x);
        tsr_vf du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        tsr_vf g = s + x * 2.0f * s * (1.0f - s) * du;
        tsr_vf d = TSR_VF_LOAD(dinp + b * TSR_VL);
        TSR_VF_STORE(dinp + b * TSR_VL, d + TSR_VF_LOAD(dout + b * TSR_VL) * g);
    }
    for (int64_t i = nv * TSR_VL; i < n; i++) {
        float x = inp[i];
        float s = gelu_half_one_plus_tanh_1(x);
        float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        dinp[i] += dout[i] * (s + x * 2.0f * s * (1.0f - s) * du);
    }
}

static inline float sigmoid_1(float x)
{
    return 1.0f / (1.0f + tsr_expf(-x));
}

void tsr_swiglu_forward(float *out, const float *inp, int64_t n, int64_t f)
{
    int64_t fv = f / TSR_VL;
#pragma omp parallel for schedule(static) if (n * f >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *gate = inp + i * 2 * f, *up = gate + f;
        float *y = out + i * f;
        for (int64_t b = 0; b < fv; b++) {
            tsr_vf g = TSR_VF_LOAD(gate + b * TSR_VL), u = TSR_VF_LOAD(up + b * TSR_VL);
            tsr_vf s = 1.0f / (1.0f + tsr_expf_v(-g));
            TSR_VF_STORE(y + b * TSR_VL, g * s * u);
        }
        for (int64_t j = fv * TSR_VL; j < f; j++)
            y[j] = gate[j] * sigmoid_1(gate[j]) * up[j];
    }
}

/* d gate = dout * up * s (1 + g (1 - s)); d up = dout * g s */
void tsr_swiglu_backward(float *dinp, const float *dout, const float *inp, int64_t n, int64_t f)
{
    if (dinp == NULL)
        return;
    int64_t fv = f / TSR_VL;
#pragma omp parallel for schedule(static) if (n * f >= TSR_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *gate = inp + i * 2 * f, *up = gate + f, *dy = dout + i * f;
        float *dgate = dinp + i * 2 * f, *dup = dgate + f;
        for (int64_t b = 0; b < fv; b++) {
            tsr_vf g = TSR_VF_LOAD(gate + b * TSR_VL), u = TSR_VF_LOAD(up + b * TSR_VL);
            tsr_vf d = TSR_VF_LOAD(dy + b * TSR_VL);
            tsr_vf s = 1.0f / (1.0f + tsr_expf_v(-g));
            TSR_VF_STORE(dgate + b * TSR_VL,
                          TSR_VF_LOAD(dgate + b * TSR_VL) + d * u * s * (1.0f + g * (1.0f - s)));
            TSR_VF_STORE(dup + b * TSR_VL, TSR_VF_LOAD(dup + b * TSR_VL) + d * g * s);
        }
        for (int64_t j = fv * TSR_VL; j < f; j++) {
            float g = gate[j], s = sigmoid_1(g);
            dgate[j] += dy[j] * up[j] * s * (1.0f + g * (1.0f - s));
            dup[j] += dy[j] * g * s;
        }
    }
}

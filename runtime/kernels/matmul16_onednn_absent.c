/*
 * matmul16_onednn_absent.c - matmul16_onednn.h where CMake found no
 * oneDNN: --bf16 is refused with the reason (fp16 products need no
 * oneDNN and still work).
 */
#include <stdio.h>

#include "kernels/matmul16_onednn.h"

static const char *const absent =
    "this tessera was built without oneDNN, which --bf16's matrix products need: install "
    "libdnnl-dev (scripts/install-deps.sh does) and rebuild";

bool tsr_onednn_bf16_supported(char *why, size_t why_size)
{
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "%s", absent);
    return false;
}

tsr_status tsr_onednn_create(tsr_onednn **out, char *impl, size_t impl_size)
{
    (void)impl;
    (void)impl_size;
    *out = NULL;
    return tsr_error_set(TSR_ERR_UNSUPPORTED, "%s", absent);
}

void tsr_onednn_destroy(tsr_onednn *e)
{
    (void)e;
}

tsr_status tsr_onednn_product(tsr_onednn *e, tsr_operand_layout layout, bool accumulate,
                              int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                              const uint16_t *b, int64_t ldb, float *c, int64_t ldc)
{
    (void)e, (void)layout, (void)accumulate, (void)m, (void)n, (void)k, (void)a, (void)lda;
    (void)b, (void)ldb, (void)c, (void)ldc;
    return tsr_error_set(TSR_ERR_UNSUPPORTED, "%s", absent);
}

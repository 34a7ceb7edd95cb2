/*
 * cuda_check.c - the helpers of cuda_check.h: device buffers on the tests'
 * stream, the comparisons against the CPU kernels, and the main of the
 * element-wise GPU tests.
 */
#include "cuda_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_device.h"

const int64_t cc_row_counts[CC_SHAPES] = {1, 7, 129, 600};
const int64_t cc_col_counts[CC_SHAPES] = {1, 33, 769, 1000};

static cudaStream_t stream;

cudaStream_t cc_stream(void)
{
    return stream;
}

void *cc_dev_from(const void *host, size_t bytes)
{
    void *d = NULL;
    CU_ASSERT_EQUAL_FATAL(cudaMalloc(&d, bytes > 0 ? bytes : 1), cudaSuccess);
    if (bytes > 0 && host != NULL)
        CU_ASSERT_EQUAL_FATAL(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    return d;
}

void cc_to_host(void *host, const void *dev, size_t bytes)
{
    CU_ASSERT_EQUAL_FATAL(cudaStreamSynchronize(stream), cudaSuccess);
    CU_ASSERT_EQUAL_FATAL(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
}

float *cc_dev_floats(const float *host, int64_t n)
{
    return cc_dev_from(host, (size_t)n * sizeof(float));
}

void cc_floats_to_host(float *host, const float *dev, int64_t n)
{
    cc_to_host(host, dev, (size_t)n * sizeof(float));
}

void cc_expect_close(const char *what, int64_t rows, int64_t cols, const float *gpu,
                     const float *cpu, int64_t n, double rtol, double floor)
{
    double worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double scale = fabs((double)cpu[i]) > floor ? fabs((double)cpu[i]) : floor;
        double diff = fabs((double)gpu[i] - (double)cpu[i]);
        double e = scale > 0.0 ? diff / scale : (diff == 0.0 ? 0.0 : INFINITY);
        if (!(e <= worst)) { /* NaN counts as the worst */
            worst = e;
            at = i;
        }
    }
    if (!(worst <= rtol))
        printf("\n  %s (%lld x %lld): error %.3g > %.1g at %lld: gpu %.9g cpu %.9g\n", what,
               (long long)rows, (long long)cols, worst, rtol, (long long)at, gpu[at], cpu[at]);
    CU_ASSERT_TRUE(worst <= rtol);
}

void cc_expect_bits(const char *what, int64_t rows, int64_t cols, const void *gpu,
                    const void *cpu, size_t bytes)
{
    int same = memcmp(gpu, cpu, bytes) == 0;
    if (!same)
        printf("\n  %s (%lld x %lld): not bitwise the CPU's\n", what, (long long)rows,
               (long long)cols);
    CU_ASSERT_TRUE(same);
}

void cc_expect_refused(tsr_status st, tsr_status want, const char *kernel)
{
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(tsr_last_error(), kernel));
}

void cc_free(void *const *dev, int ndev, void *const *host, int nhost)
{
    for (int i = 0; i < ndev; i++)
        cudaFree(dev[i]);
    for (int i = 0; i < nhost; i++)
        free(host[i]);
}

void cc_test_device_clean(void)
{
    CU_ASSERT_EQUAL(cudaDeviceSynchronize(), cudaSuccess);
    CU_ASSERT_EQUAL(cudaGetLastError(), cudaSuccess);
}

int cc_main(const char *suite, const tsr_test_case *cases, size_t count)
{
    int gpus = 0;
    if (tsr_cuda_device_count(&gpus) != TSR_OK) {
        fprintf(stderr, "cannot count CUDA devices: %s\n", tsr_last_error());
        return 1;
    }
    if (gpus == 0) {
        printf("skipped: no CUDA device visible (cudaGetDeviceCount reports none)\n");
        return 77;
    }
    if (cudaStreamCreate(&stream) != cudaSuccess) {
        fprintf(stderr, "cannot create a CUDA stream\n");
        return 1;
    }
    const tsr_test_suite suites[] = {{suite, cases, count}};
    int rc = tsr_test_main(suites, 1);
    cudaStreamDestroy(stream);
    return rc;
}

/*
 * cuda_check.h - what the GPU tests of the element-wise CUDA kernels
 * (test_kernels_cuda.c, test_kernels_cuda_train.c) share: the row and
 * column counts they sweep, device buffers on the tests' stream, the
 * comparisons against the CPU kernels, and a main that skips (77) where no
 * CUDA device is visible.
 *
 * Comparisons: cc_expect_close checks
 *     max_i |gpu_i - cpu_i| / max(|cpu_i|, floor) <= rtol
 * (a NaN counts as the worst error), cc_expect_bits that the bytes are
 * equal; both print the first case that fails, named by what and its
 * (rows x cols).
 */
#ifndef TSR_TEST_CUDA_CHECK_H
#define TSR_TEST_CUDA_CHECK_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "tessera/status.h"

#define CC_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* the sizes the row kernels are swept over; 600: more rows than
 * resident blocks */
#define CC_SHAPES 4
extern const int64_t cc_row_counts[CC_SHAPES];
extern const int64_t cc_col_counts[CC_SHAPES];

/* the stream every kernel under test runs on (made by cc_main) */
cudaStream_t cc_stream(void);

/* a device copy of host (NULL: uninitialised); fails the test on error */
void *cc_dev_from(const void *host, size_t bytes);
float *cc_dev_floats(const float *host, int64_t n);

/* waits for the stream, then copies back */
void cc_to_host(void *host, const void *dev, size_t bytes);
void cc_floats_to_host(float *host, const float *dev, int64_t n);

void cc_expect_close(const char *what, int64_t rows, int64_t cols, const float *gpu,
                     const float *cpu, int64_t n, double rtol, double floor);
void cc_expect_bits(const char *what, int64_t rows, int64_t cols, const void *gpu,
                    const void *cpu, size_t bytes);

/* a failed call returns the status and names the kernel */
void cc_expect_refused(tsr_status st, tsr_status want, const char *kernel);

/* cudaFree of every dev[i], free of every host[i] */
void cc_free(void *const *dev, int ndev, void *const *host, int nhost);

/* the last case of a suite: no fault surfaced asynchronously */
void cc_test_device_clean(void);

/* 77 without a CUDA device; else the suite on a stream of its own */
int cc_main(const char *suite, const tsr_test_case *cases, size_t count);

#endif /* TSR_TEST_CUDA_CHECK_H */

/*
 * sgemm_peak.c - this machine's fp32 matrix-multiply peak as OpenBLAS
 * reaches it: the denominator of the training benchmark's MFU.
 *
 *   sgemm_peak [THREADS]   prints "sgemm_peak_gflops <value>"
 *
 * Best of several square sizes, each timed over enough repetitions to run
 * for about half a second, after a warm-up call.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "tessera/timer.h"

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    if (threads > 0)
        openblas_set_num_threads(threads);
    static const int sizes[] = {1024, 2048, 3072};
    double best = 0.0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b);
        float *c = malloc((size_t)n * n * sizeof *c);
        if (a == NULL || b == NULL || c == NULL)
            return 1;
        for (size_t i = 0; i < (size_t)n * n; i++) {
            a[i] = (float)((i * 7) % 13) * 0.01f;
            b[i] = (float)((i * 5) % 11) * 0.01f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        int reps = 0;
        double t0 = tsr_time_s(), elapsed = 0.0;
        while (elapsed < 0.5) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                        c, n);
            reps++;
            elapsed = tsr_time_s() - t0;
        }
        double gflops = 2.0 * n * (double)n * n * reps / elapsed / 1e9;
        if (gflops > best)
            best = gflops;
        free(a);
        free(b);
        free(c);
    }
    printf("sgemm_peak_gflops %.1f\n", best);
    return 0;
}

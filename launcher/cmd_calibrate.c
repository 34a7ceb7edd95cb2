/*
 * cmd_calibrate.c - `tessera calibrate`: measures this machine into the
 * cluster file the time model reads (machine.h; --cluster local).
 *
 *   tessera calibrate [--out FILE]            (one process: compute only)
 *   mpirun -np N tessera calibrate [--out FILE]   (and the links)
 *
 * GEMM rate: tsr_linear_forward on the shapes of a GPT-2-small layer's
 * linears (2048 rows; 768 -> 2304, 768 -> 768, 768 -> 3072, 3072 -> 768),
 * each repeated for at least 0.2 s, with 1, 2, 4, ... and this process's
 * OpenMP threads; the median shape's rate at each count is kept, the one
 * at this process's threads is the machine's; and, at this process's
 * threads, rows x width -> width products over a grid of 16-4096 rows and
 * 64-2048 widths (gemm_by_shape, the rates the time model prices each
 * layer's products by; about 4 s). Memory bandwidth: a triad
 * over three 64 MiB arrays. Links, under mpirun: bus bandwidth of a 16
 * MiB all-reduce of tessera's communicator (the one training reduces
 * with; 2 (p-1)/p x bytes / time) and the latency of an 8-byte one (its
 * time / 2 (p-1)), with every rank measuring at once; and the bus
 * bandwidth of 64 KiB to 16 MiB all-reduces over groups of 2, 4, ...
 * ranks and all of them (the curves the time model prefers). The ranks
 * share one node here, so the inter-node figures are the same numbers.
 * Alone, the links are taken as a quarter of the memory bandwidth and 2 us
 * (what shared-memory MPI gets on one node), and the file says so in its
 * name.
 */
#include <cblas.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectives/comm.h"
#include "commands.h"
#include "machine.h"
#include "rank_env.h"
#include "tessera/kernels.h"
#include "tessera/log.h"
#include "tessera/timer.h"

static double seconds_since(uint64_t t0)
{
    return (double)(tsr_time_ns() - t0) * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* FLOP/s of out = in W^T for rows x k -> n, repeated for `seconds`. */
static double gemm_rate(int64_t rows, int64_t k, int64_t n, double seconds)
{
    float *in = calloc((size_t)(rows * k), sizeof *in), *w = calloc((size_t)(n * k), sizeof *w);
    float *out = calloc((size_t)(rows * n), sizeof *out);
    double rate = 0.0;
    if (in != NULL && w != NULL && out != NULL) {
        for (int64_t i = 0; i < rows * k; i++)
            in[i] = (float)(i % 7) * 0.01f;
        for (int64_t i = 0; i < n * k; i++)
            w[i] = (float)(i % 5) * 0.01f;
        tsr_linear_forward(out, in, w, NULL, rows, k, n); /* warm */
        int reps = 0;
        uint64_t t0 = tsr_time_ns();
        do {
            tsr_linear_forward(out, in, w, NULL, rows, k, n);
            reps++;
        } while (seconds_since(t0) < seconds);
        rate = 2.0 * (double)rows * (double)k * (double)n * reps / seconds_since(t0);
    }
    free(in);
    free(w);
    free(out);
    return rate;
}

/* Bytes/s of a[i] = b[i] + s c[i] over 64 MiB arrays. */
static double triad_bandwidth(void)
{
    int64_t n = 16 << 20;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    float *c = malloc((size_t)n * sizeof *c);
    double bw = 0.0;
    if (a != NULL && b != NULL && c != NULL) {
#pragma omp parallel for
        for (int64_t i = 0; i < n; i++) {
            a[i] = 0.0f;
            b[i] = 1.0f;
            c[i] = 2.0f;
        }
        int reps = 0;
        uint64_t t0 = tsr_time_ns();
        do {
#pragma omp parallel for
            for (int64_t i = 0; i < n; i++)
                a[i] = b[i] + 0.5f * c[i];
            reps++;
        } while (seconds_since(t0) < 0.3);
        bw = 3.0 * (double)n * sizeof(float) * reps / seconds_since(t0);
    }
    free(a);
    free(b);
    free(c);
    return bw;
}

/* Seconds per all-reduce of `count` floats over comm, every rank at
 * once (the slowest rank's). */
static double allreduce_seconds(tsr_comm *comm, size_t count, int reps)
{
    float *x = calloc(count, sizeof *x);
    if (x == NULL)
        return 0.0;
    tsr_comm_allreduce(x, x, count, TSR_COMM_FP32, TSR_COMM_SUM, comm, NULL);
    tsr_comm_barrier(comm, NULL);
    uint64_t t0 = tsr_time_ns();
    for (int r = 0; r < reps; r++)
        tsr_comm_allreduce(x, x, count, TSR_COMM_FP32, TSR_COMM_SUM, comm, NULL);
    double t = seconds_since(t0) / reps;
    tsr_comm_allreduce(&t, &t, 1, TSR_COMM_FP64, TSR_COMM_MAX, comm, NULL);
    free(x);
    return t;
}

/* The median rate of the four shapes with this many threads. */
static double median_gemm_rate(int threads, int rank)
{
    static const int64_t shapes[][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    double rates[4];
    for (int i = 0; i < 4; i++) {
        rates[i] = gemm_rate(2048, shapes[i][0], shapes[i][1], 0.2);
        if (rank == 0)
            printf("GEMM 2048 x %lld -> %lld, %d thread(s): %.1f GFLOP/s\n",
                   (long long)shapes[i][0], (long long)shapes[i][1], threads, rates[i] / 1e9);
    }
    qsort(rates, 4, sizeof rates[0], by_value);
    return 0.5 * (rates[1] + rates[2]);
}

/* The rates of rows x width -> width products with this process's
 * threads (gemm_by_shape): from an expert's few rows to a long micro
 * batch's, from a tensor-parallel split of a small model's width to a
 * large model's. Each shape's best of three sweeps of the grid, 0.03 s a
 * shape and sweep (about 5 s in all): a process that takes a core for a
 * while slows one sweep, not every one. */
static void measure_shapes(tsr_gemm_grid *g, int threads, int rank)
{
    static const double rows[] = {16, 64, 256, 1024, 4096};
    static const double width[] = {64, 128, 256, 512, 1024, 2048};
    g->threads = threads;
    g->rows_points = (int)(sizeof rows / sizeof rows[0]);
    g->width_points = (int)(sizeof width / sizeof width[0]);
    memcpy(g->rows, rows, sizeof rows);
    memcpy(g->width, width, sizeof width);
    memset(g->flops, 0, sizeof g->flops);
    for (int sweep = 0; sweep < 3; sweep++)
        for (int i = 0; i < g->rows_points; i++)
            for (int j = 0; j < g->width_points; j++) {
                int64_t r = (int64_t)rows[i], w = (int64_t)width[j];
                double rate = gemm_rate(r, w, w, 0.03);
                g->flops[i][j] = rate > g->flops[i][j] ? rate : g->flops[i][j];
            }
    for (int i = 0; i < g->rows_points; i++) {
        if (rank == 0) {
            printf("GEMM %4.0f x w -> w, %d thread(s), GFLOP/s by w", rows[i], threads);
            for (int j = 0; j < g->width_points; j++)
                printf(" %.0f: %.1f", width[j], g->flops[i][j] / 1e9);
            printf("\n");
        }
    }
}

/* The all-reduce's bus bandwidth by size over the first `ranks` ranks of
 * comm (the others wait). */
static tsr_status measure_curve(tsr_comm *comm, int ranks, tsr_link_curve *out)
{
    static const double sizes[] = {65536, 262144, 1048576, 4194304, 16777216};
    int rank = tsr_comm_rank(comm);
    tsr_comm *group = NULL;
    tsr_status st =
        tsr_comm_split(comm, rank < ranks ? 0 : TSR_COMM_NO_COLOR, rank, "calibrate", &group);
    if (st != TSR_OK)
        return st;
    out->ranks = ranks;
    out->points = (int)(sizeof sizes / sizeof sizes[0]);
    for (int k = 0; k < out->points; k++) {
        out->bytes[k] = sizes[k];
        double t = 0.0;
        if (group != NULL) {
            int reps = sizes[k] < 1048576 ? 50 : 10;
            t = allreduce_seconds(group, (size_t)(sizes[k] / sizeof(float)), reps);
        }
        /* rank 0 is in every group: its figures are the file's */
        out->busbw[k] = t > 0.0 ? 2.0 * (ranks - 1) / ranks * sizes[k] / t : 0.0;
    }
    tsr_comm_destroy(group);
    return tsr_comm_barrier(comm, NULL);
}

/* first, 2 first, 4 first, ... up to n, and n itself (at most max). */
static int doublings_to(int first, int n, int *out, int max)
{
    int count = 0;
    for (int v = first; v <= n && count < max; v *= 2)
        out[count++] = v;
    if (count > 0 && count < max && out[count - 1] != n && n > first)
        out[count++] = n;
    return count;
}

static tsr_status measure(tsr_machine *m, tsr_comm *comm, int rank, int world)
{
    int threads = omp_get_max_threads();
    m->gemm_points = doublings_to(1, threads, m->gemm_threads, TSR_MACHINE_MAX_POINTS);
    for (int i = 0; i < m->gemm_points; i++)
        m->gemm_rates[i] = median_gemm_rate(m->gemm_threads[i], rank);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    m->gemm_flops = m->gemm_rates[m->gemm_points - 1];
    measure_shapes(&m->gemm_grid, threads, rank);
    m->memory_bandwidth = triad_bandwidth();
    if (world <= 1) {
        m->intra_bandwidth = m->memory_bandwidth / 4.0;
        m->intra_latency = 2e-6;
    } else {
        double big = allreduce_seconds(comm, 4 << 20, 10);
        double small = allreduce_seconds(comm, 2, 200);
        m->intra_bandwidth = 2.0 * (world - 1) / world * (16.0 * 1048576.0) / big;
        m->intra_latency = small / (2.0 * (world - 1));
        /* groups of 2, 4, ... ranks and the whole world */
        int groups[TSR_MACHINE_MAX_CURVES];
        m->curves = doublings_to(2, world, groups, TSR_MACHINE_MAX_CURVES);
        for (int i = 0; i < m->curves; i++) {
            tsr_status st = measure_curve(comm, groups[i], &m->intra_curves[i]);
            if (st != TSR_OK)
                return st;
        }
    }
    m->inter_bandwidth = m->intra_bandwidth;
    m->inter_latency = m->intra_latency;
    return TSR_OK;
}

int tsr_cmd_calibrate(int argc, char **argv)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    const char *out = "tessera-cluster.json";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (info.rank == 0)
                puts("usage: [mpirun -np N] tessera calibrate [--out FILE]\n\n"
                     "measures this machine's GEMM rate, memory bandwidth and (under mpirun)\n"
                     "MPI all-reduce bandwidth and latency into FILE (default\n"
                     "tessera-cluster.json, what --cluster local reads)");
            return 0;
        }
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
            continue;
        }
        return tsr_report_error_once(info.rank, "calibrate",
                                     tsr_error_set(TSR_ERR_INVALID_ARG,
                                                   "unknown argument '%s'; the only flag is "
                                                   "--out FILE",
                                                   argv[i]));
    }
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "tessera calibrate: error: MPI_Init failed\n");
        return 1;
    }
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    tsr_machine m;
    memset(&m, 0, sizeof m);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    m.threads_per_device = omp_get_max_threads();
    m.cores_per_node = cores > 0 ? (int)cores : 1;
    m.devices_per_node =
        m.cores_per_node / m.threads_per_device > 0 ? m.cores_per_node / m.threads_per_device : 1;
    snprintf(m.name, sizeof m.name, "local, %d rank(s)%s", world,
             world > 1 ? "" : ", links assumed");
    tsr_config defaults;
    tsr_config_defaults(&defaults);
    tsr_comm_options options;
    tsr_comm_options_from_config(&defaults, &options);
    tsr_comm *comm = NULL;
    tsr_status st = tsr_comm_create_world(MPI_COMM_WORLD, &options, &comm);
    if (st == TSR_OK)
        st = measure(&m, comm, rank, world);
    if (st == TSR_OK && rank == 0) {
        st = tsr_machine_save(&m, out);
        if (st == TSR_OK)
            printf("GEMM %.1f GFLOP/s (median), memory %.1f GB/s, links %.2f GB/s and %.1f us "
                   "(%s), %d thread(s) per device, %d cores: %s\n",
                   m.gemm_flops / 1e9, m.memory_bandwidth / 1e9, m.intra_bandwidth / 1e9,
                   m.intra_latency * 1e6, world > 1 ? "measured" : "assumed", m.threads_per_device,
                   m.cores_per_node, out);
    }
    int code = tsr_report_mpi_outcome(rank, "calibrate", st);
    tsr_comm_destroy(comm);
    MPI_Finalize();
    return code;
}

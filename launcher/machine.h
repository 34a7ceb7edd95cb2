/*
 * machine.h - what the time model knows of a cluster (tessera plan
 * --cluster, tessera train --cluster, tessera calibrate): per device the
 * sustained GEMM rate and memory bandwidth, and the links inside a node
 * and between nodes.
 *
 * A machine is a preset (dgx-a100, dgx-h100: datasheet figures, sources
 * in docs/planner.md) or a JSON file, as `tessera calibrate` writes for
 * this machine ("local" is the file tessera-cluster.json in the working
 * directory):
 *   {"name": "...", "devices_per_node": 8, "cores_per_node": 0,
 *    "threads_per_device": 1, "gemm_flops": 1.7e14, "memory_bandwidth":
 *    1.6e12, "intra_node_bandwidth": 2.3e11, "intra_node_latency": 5e-6,
 *    "inter_node_bandwidth": 2.5e10, "inter_node_latency": 1e-5}
 * Rates in FLOP/s and bytes/s (bus bandwidth of a ring collective, per
 * device), latencies in seconds. cores_per_node > 0 says devices share
 * the node's cores (CPU ranks): more threads than cores slow every rank.
 * A calibrated file also holds what was measured by thread count and by
 * size, which the time model prefers to the single figures:
 *   "gemm_by_threads": [{"threads": 1, "flops": 1.1e11}, ...]
 *   "allreduce_busbw": [{"ranks": 2, "bytes": [65536, ...],
 *                        "busbw": [4.1e9, ...]}, ...]   (intra-node)
 *   "gemm_by_shape": {"threads": 1, "rows": [16, 64, ...], "width": [64, 128, ...],
 *                     "flops": [[r(16, 64), r(16, 128), ...], [r(64, 64), ...], ...]}
 * gemm_by_shape: the rate of a rows x width -> width product (one row of
 * "flops" per entry of "rows", one rate per entry of "width"), measured
 * with "threads" threads; rows and width ascending, 1-8 entries each. A
 * file without it prices every product at the rate by threads.
 */
#ifndef TSR_LAUNCHER_MACHINE_H
#define TSR_LAUNCHER_MACHINE_H

#include "tessera/status.h"

#define TSR_MACHINE_MAX_POINTS 8
#define TSR_MACHINE_MAX_CURVES 4

/* GEMM rates by shape (gemm_by_shape); rows_points 0: none. */
typedef struct tsr_gemm_grid {
    int threads; /* the rates were measured with */
    int rows_points, width_points;
    double rows[TSR_MACHINE_MAX_POINTS], width[TSR_MACHINE_MAX_POINTS]; /* ascending */
    double flops[TSR_MACHINE_MAX_POINTS][TSR_MACHINE_MAX_POINTS];       /* [rows][width] */
} tsr_gemm_grid;

/* An all-reduce's measured bus bandwidth by message size over a group. */
typedef struct tsr_link_curve {
    int ranks;
    int points;
    double bytes[TSR_MACHINE_MAX_POINTS]; /* ascending */
    double busbw[TSR_MACHINE_MAX_POINTS];
} tsr_link_curve;

typedef struct tsr_machine {
    char name[64];
    int devices_per_node;
    int cores_per_node;     /* 0: devices do not share cores (GPUs) */
    int threads_per_device; /* of the calibration */
    double gemm_flops;      /* sustained on training GEMM shapes */
    double memory_bandwidth;
    double intra_bandwidth, intra_latency;
    double inter_bandwidth, inter_latency;
    /* measured GEMM rate (the median shape) by threads, ascending */
    int gemm_points;
    int gemm_threads[TSR_MACHINE_MAX_POINTS];
    double gemm_rates[TSR_MACHINE_MAX_POINTS];
    /* measured GEMM rate by shape at one thread count (calibrated files) */
    tsr_gemm_grid gemm_grid;
    /* intra-node all-reduce curves, by ascending group size */
    int curves;
    tsr_link_curve intra_curves[TSR_MACHINE_MAX_CURVES];
} tsr_machine;

/* A preset by name, "local" (./tessera-cluster.json), or a JSON file.
 * TSR_ERR_INVALID_ARG / TSR_ERR_IO with a message naming what is wrong. */
tsr_status tsr_machine_load(const char *name_or_path, tsr_machine *out);
/* Writes m as JSON (what tsr_machine_load reads). */
tsr_status tsr_machine_save(const tsr_machine *m, const char *path);
/* The presets' names, comma-separated, for messages. */
const char *tsr_machine_presets(void);

#endif /* TSR_LAUNCHER_MACHINE_H */

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
 */
#ifndef TSR_LAUNCHER_MACHINE_H
#define TSR_LAUNCHER_MACHINE_H

#include "tessera/status.h"

typedef struct tsr_machine {
    char name[64];
    int devices_per_node;
    int cores_per_node;     /* 0: devices do not share cores (GPUs) */
    int threads_per_device; /* of the calibration */
    double gemm_flops;      /* sustained on training GEMM shapes */
    double memory_bandwidth;
    double intra_bandwidth, intra_latency;
    double inter_bandwidth, inter_latency;
} tsr_machine;

/* A preset by name, "local" (./tessera-cluster.json), or a JSON file.
 * TSR_ERR_INVALID_ARG / TSR_ERR_IO with a message naming what is wrong. */
tsr_status tsr_machine_load(const char *name_or_path, tsr_machine *out);
/* Writes m as JSON (what tsr_machine_load reads). */
tsr_status tsr_machine_save(const tsr_machine *m, const char *path);
/* The presets' names, comma-separated, for messages. */
const char *tsr_machine_presets(void);

#endif /* TSR_LAUNCHER_MACHINE_H */

/*
 * machine.c - cluster presets and the JSON machine files (machine.h).
 */
#include "machine.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The DGX A100's sustained GEMM rate and element-wise memory bandwidth
 * are fitted on two rows of Table 1 of Narayanan et al. (SC21), 1.7B and
 * 145.6B parameters (tests/launcher/test_sc21.c fits them again and checks
 * these digits); the DGX H100 takes the same shares of its datasheet peak
 * (989 TFLOP/s dense bf16) and HBM (3.35 TB/s). The links are datasheet
 * figures, at the bus bandwidth NCCL's all-reduce reaches on them
 * (docs/planner.md gives the sources). */
#define A100_GEMM_FLOPS 211.8e12
#define A100_MEMORY_BANDWIDTH 1.042e12
static const tsr_machine presets[] = {
    {"dgx-a100", 8, 0, 1, A100_GEMM_FLOPS, A100_MEMORY_BANDWIDTH, 230e9, 10e-6, 23e9, 20e-6},
    {"dgx-h100", 8, 0, 1, A100_GEMM_FLOPS / 312e12 * 989e12,
     A100_MEMORY_BANDWIDTH / 2.039e12 * 3.35e12, 360e9, 8e-6, 46e9, 15e-6},
};

const char *tsr_machine_presets(void)
{
    return "dgx-a100, dgx-h100, local (./tessera-cluster.json, from tessera calibrate)";
}

static bool positive(json_t *root, const char *key, double *out)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out) && *out > 0.0;
}

static tsr_status from_json(const char *path, json_t *root, tsr_machine *m)
{
    static const char *const rates[] = {"gemm_flops",           "memory_bandwidth",
                                        "intra_node_bandwidth", "intra_node_latency",
                                        "inter_node_bandwidth", "inter_node_latency"};
    double *fields[] = {&m->gemm_flops,    &m->memory_bandwidth, &m->intra_bandwidth,
                        &m->intra_latency, &m->inter_bandwidth,  &m->inter_latency};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
        if (!positive(root, rates[i], fields[i]))
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "%s: \"%s\" is missing or not a positive number; write the "
                                 "file with 'tessera calibrate' or see docs/planner.md",
                                 path, rates[i]);
    double devices = 0.0, threads = 1.0, cores = 0.0;
    if (!positive(root, "devices_per_node", &devices) || devices != floor(devices) || devices > 1e6)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: \"devices_per_node\" must be a whole number of devices", path);
    json_t *c = json_object_get(root, "cores_per_node");
    if (c != NULL && (!json_is_integer(c) || json_integer_value(c) < 0))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: \"cores_per_node\" must be a whole number (0: devices do not "
                             "share cores)",
                             path);
    cores = c != NULL ? (double)json_integer_value(c) : 0.0;
    if (json_object_get(root, "threads_per_device") != NULL &&
        (!positive(root, "threads_per_device", &threads) || threads != floor(threads)))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: \"threads_per_device\" must be a whole number", path);
    json_t *name = json_object_get(root, "name");
    snprintf(m->name, sizeof m->name, "%s", json_is_string(name) ? json_string_value(name) : path);
    m->devices_per_node = (int)devices;
    m->cores_per_node = (int)cores;
    m->threads_per_device = (int)threads;
    return TSR_OK;
}

tsr_status tsr_machine_load(const char *name_or_path, tsr_machine *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(name_or_path, presets[i].name) == 0) {
            *out = presets[i];
            return TSR_OK;
        }
    const char *path = strcmp(name_or_path, "local") == 0 ? "tessera-cluster.json" : name_or_path;
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL) {
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--cluster %s: no such preset or file; give one of %s, or a "
                                 "file 'tessera calibrate' wrote",
                                 name_or_path, tsr_machine_presets());
        fclose(f);
        return tsr_error_set(TSR_ERR_INVALID_ARG, "--cluster %s: not JSON (line %d: %s)", path,
                             err.line, err.text);
    }
    tsr_status st = json_is_object(root) ? from_json(path, root, out)
                                         : tsr_error_set(TSR_ERR_INVALID_ARG,
                                                         "--cluster %s: not a JSON object", path);
    json_decref(root);
    return st;
}

tsr_status tsr_machine_save(const tsr_machine *m, const char *path)
{
    json_t *root = json_pack(
        "{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "name", m->name, "devices_per_node",
        m->devices_per_node, "cores_per_node", m->cores_per_node, "threads_per_device",
        m->threads_per_device, "gemm_flops", m->gemm_flops, "memory_bandwidth", m->memory_bandwidth,
        "intra_node_bandwidth", m->intra_bandwidth, "intra_node_latency", m->intra_latency,
        "inter_node_bandwidth", m->inter_bandwidth, "inter_node_latency", m->inter_latency);
    if (root == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (rc != 0)
        return tsr_error_set(TSR_ERR_IO, "cannot write %s; check the directory and its space",
                             path);
    return TSR_OK;
}

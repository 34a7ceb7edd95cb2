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
    {.name = "dgx-a100",
     .devices_per_node = 8,
     .threads_per_device = 1,
     .gemm_flops = A100_GEMM_FLOPS,
     .memory_bandwidth = A100_MEMORY_BANDWIDTH,
     .intra_bandwidth = 230e9,
     .intra_latency = 10e-6,
     .inter_bandwidth = 23e9,
     .inter_latency = 20e-6},
    {.name = "dgx-h100",
     .devices_per_node = 8,
     .threads_per_device = 1,
     .gemm_flops = A100_GEMM_FLOPS / 312e12 * 989e12,
     .memory_bandwidth = A100_MEMORY_BANDWIDTH / 2.039e12 * 3.35e12,
     .intra_bandwidth = 360e9,
     .intra_latency = 8e-6,
     .inter_bandwidth = 46e9,
     .inter_latency = 15e-6},
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

/* A whole number from 1 to a million at key. */
static bool positive_whole(json_t *root, const char *key, double *out)
{
    return positive(root, key, out) && *out == floor(*out) && *out <= 1e6;
}

/* "gemm_by_threads" (optional): whole ascending thread counts, positive rates. */
static tsr_status gemm_from_json(const char *path, json_t *root, tsr_machine *m)
{
    json_t *list = json_object_get(root, "gemm_by_threads");
    if (list == NULL)
        return TSR_OK;
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n > TSR_MACHINE_MAX_POINTS)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i);
        double threads = 0.0, flops = 0.0;
        if (!json_is_object(e) || !positive_whole(e, "threads", &threads) ||
            !positive(e, "flops", &flops) || (i > 0 && threads <= m->gemm_threads[i - 1]))
            goto bad;
        m->gemm_threads[i] = (int)threads;
        m->gemm_rates[i] = flops;
    }
    m->gemm_points = (int)n;
    return TSR_OK;
bad:
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "%s: \"gemm_by_threads\" must be a list of at most %d {\"threads\": "
                         "N, \"flops\": F} by ascending whole N and positive F; write the "
                         "file with 'tessera calibrate'",
                         path, TSR_MACHINE_MAX_POINTS);
}

/* A list of 1 to TSR_MACHINE_MAX_POINTS ascending whole sizes into out:
 * their count, or 0 when it is not one. */
static int ascending_sizes(json_t *list, double *out)
{
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n == 0 || n > TSR_MACHINE_MAX_POINTS)
        return 0;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(list, i);
        out[i] = json_is_number(v) ? json_number_value(v) : 0.0;
        if (!(out[i] >= 1.0 && out[i] <= 1e9) || out[i] != floor(out[i]) ||
            (i > 0 && out[i] <= out[i - 1]))
            return 0;
    }
    return (int)n;
}

/* "gemm_by_shape" (optional): a rows x width grid of positive rates. */
static tsr_status grid_from_json(const char *path, json_t *root, tsr_machine *m)
{
    json_t *obj = json_object_get(root, "gemm_by_shape");
    if (obj == NULL)
        return TSR_OK;
    tsr_gemm_grid *g = &m->gemm_grid;
    double threads = 0.0;
    json_t *flops = json_object_get(obj, "flops");
    if (!json_is_object(obj) || !positive_whole(obj, "threads", &threads))
        goto bad;
    g->rows_points = ascending_sizes(json_object_get(obj, "rows"), g->rows);
    g->width_points = ascending_sizes(json_object_get(obj, "width"), g->width);
    if (g->rows_points == 0 || g->width_points == 0 || !json_is_array(flops) ||
        json_array_size(flops) != (size_t)g->rows_points)
        goto bad;
    for (int i = 0; i < g->rows_points; i++) {
        json_t *row = json_array_get(flops, (size_t)i);
        if (!json_is_array(row) || json_array_size(row) != (size_t)g->width_points)
            goto bad;
        for (int j = 0; j < g->width_points; j++) {
            json_t *v = json_array_get(row, (size_t)j);
            g->flops[i][j] = json_is_number(v) ? json_number_value(v) : 0.0;
            if (!isfinite(g->flops[i][j]) || !(g->flops[i][j] > 0.0))
                goto bad;
        }
    }
    g->threads = (int)threads;
    return TSR_OK;
bad:
    memset(g, 0, sizeof *g);
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "%s: \"gemm_by_shape\" must be {\"threads\": N, \"rows\": [...], "
                         "\"width\": [...], \"flops\": [[...], ...]} with 1-%d ascending whole "
                         "rows and widths and one list of as many positive rates as widths per "
                         "rows entry; write the file with 'tessera calibrate'",
                         path, TSR_MACHINE_MAX_POINTS);
}

/* "allreduce_busbw" (optional): per group size, sizes ascending. */
static tsr_status curves_from_json(const char *path, json_t *root, tsr_machine *m)
{
    json_t *list = json_object_get(root, "allreduce_busbw");
    if (list == NULL)
        return TSR_OK;
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n > TSR_MACHINE_MAX_CURVES)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i), *bytes = json_object_get(e, "bytes");
        json_t *busbw = json_object_get(e, "busbw");
        tsr_link_curve *c = &m->intra_curves[i];
        double ranks = 0.0;
        size_t points = json_array_size(bytes);
        if (!json_is_object(e) || !positive_whole(e, "ranks", &ranks) || ranks < 2 ||
            (i > 0 && ranks <= m->intra_curves[i - 1].ranks) || !json_is_array(bytes) ||
            !json_is_array(busbw) || points == 0 || points > TSR_MACHINE_MAX_POINTS ||
            json_array_size(busbw) != points)
            goto bad;
        c->ranks = (int)ranks;
        c->points = (int)points;
        for (size_t k = 0; k < points; k++) {
            json_t *b = json_array_get(bytes, k), *w = json_array_get(busbw, k);
            if (!json_is_number(b) || !json_is_number(w) || !(json_number_value(b) > 0.0) ||
                !(json_number_value(w) > 0.0) || !isfinite(json_number_value(w)) ||
                (k > 0 && json_number_value(b) <= c->bytes[k - 1]))
                goto bad;
            c->bytes[k] = json_number_value(b);
            c->busbw[k] = json_number_value(w);
        }
    }
    m->curves = (int)n;
    return TSR_OK;
bad:
    return tsr_error_set(TSR_ERR_INVALID_ARG,
                         "%s: \"allreduce_busbw\" must be a list of at most %d {\"ranks\": "
                         "N >= 2, \"bytes\": [...], \"busbw\": [...]} by ascending N, with "
                         "1-%d ascending positive sizes and as many positive bandwidths; write "
                         "the file with 'tessera calibrate'",
                         path, TSR_MACHINE_MAX_CURVES, TSR_MACHINE_MAX_POINTS);
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
    if (!positive_whole(root, "devices_per_node", &devices))
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
        !positive_whole(root, "threads_per_device", &threads))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s: \"threads_per_device\" must be a whole number", path);
    json_t *name = json_object_get(root, "name");
    snprintf(m->name, sizeof m->name, "%s", json_is_string(name) ? json_string_value(name) : path);
    m->devices_per_node = (int)devices;
    m->cores_per_node = (int)cores;
    m->threads_per_device = (int)threads;
    tsr_status st = gemm_from_json(path, root, m);
    if (st == TSR_OK)
        st = grid_from_json(path, root, m);
    return st == TSR_OK ? curves_from_json(path, root, m) : st;
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

/* g as "gemm_by_shape" holds it; NULL when out of memory. */
static json_t *grid_to_json(const tsr_gemm_grid *g)
{
    json_t *rows = json_array(), *width = json_array(), *flops = json_array();
    for (int i = 0; i < g->rows_points && rows != NULL && flops != NULL; i++) {
        json_t *line = json_array();
        for (int j = 0; j < g->width_points && line != NULL; j++)
            json_array_append_new(line, json_real(g->flops[i][j]));
        json_array_append_new(rows, json_integer((json_int_t)g->rows[i]));
        json_array_append_new(flops, line);
    }
    for (int j = 0; j < g->width_points && width != NULL; j++)
        json_array_append_new(width, json_integer((json_int_t)g->width[j]));
    if (rows == NULL || width == NULL || flops == NULL) {
        json_decref(rows);
        json_decref(width);
        json_decref(flops);
        return NULL;
    }
    return json_pack("{s:i, s:o, s:o, s:o}", "threads", g->threads, "rows", rows, "width", width,
                     "flops", flops);
}

tsr_status tsr_machine_save(const tsr_machine *m, const char *path)
{
    json_t *root = json_pack(
        "{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "name", m->name, "devices_per_node",
        m->devices_per_node, "cores_per_node", m->cores_per_node, "threads_per_device",
        m->threads_per_device, "gemm_flops", m->gemm_flops, "memory_bandwidth", m->memory_bandwidth,
        "intra_node_bandwidth", m->intra_bandwidth, "intra_node_latency", m->intra_latency,
        "inter_node_bandwidth", m->inter_bandwidth, "inter_node_latency", m->inter_latency);
    json_t *gemm = json_array(), *curves = json_array();
    for (int i = 0; i < m->gemm_points && gemm != NULL; i++)
        json_array_append_new(gemm, json_pack("{s:i, s:f}", "threads", m->gemm_threads[i], "flops",
                                              m->gemm_rates[i]));
    for (int i = 0; i < m->curves && curves != NULL; i++) {
        const tsr_link_curve *c = &m->intra_curves[i];
        json_t *bytes = json_array(), *busbw = json_array();
        for (int k = 0; k < c->points && bytes != NULL && busbw != NULL; k++) {
            json_array_append_new(bytes, json_real(c->bytes[k]));
            json_array_append_new(busbw, json_real(c->busbw[k]));
        }
        json_array_append_new(curves, json_pack("{s:i, s:o, s:o}", "ranks", c->ranks, "bytes",
                                                bytes, "busbw", busbw));
    }
    bool has_grid = m->gemm_grid.rows_points > 0;
    json_t *grid = has_grid ? grid_to_json(&m->gemm_grid) : NULL;
    if (root == NULL || gemm == NULL || curves == NULL || (has_grid && grid == NULL)) {
        json_decref(root);
        json_decref(gemm);
        json_decref(curves);
        json_decref(grid);
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
    }
    if (m->gemm_points > 0)
        json_object_set(root, "gemm_by_threads", gemm);
    if (m->curves > 0)
        json_object_set(root, "allreduce_busbw", curves);
    if (grid != NULL)
        json_object_set(root, "gemm_by_shape", grid);
    json_decref(gemm);
    json_decref(curves);
    json_decref(grid);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (rc != 0)
        return tsr_error_set(TSR_ERR_IO, "cannot write %s; check the directory and its space",
                             path);
    return TSR_OK;
}

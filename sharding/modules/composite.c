/*
 * composite.c - the two generic composites: `sequence` (children one
 * after another) and `residual` (x + dropout(children(x))), with the
 * buffers between their children declared from the children's own
 * declarations: an edge is saved when the next child's backward reads its
 * input, scratch otherwise; edge gradients are scratch.
 *
 * Both run backward in place (din == dout) when asked: the residual keeps
 * the skip gradient in the buffer and lets its first child add to it; a
 * sequence of in-place children passes the one buffer down.
 */
#include <string.h>

#include "tessera/kernels.h"
#include "tessera/modules.h"

/* Buffer slots: edge i (output of child i, i < k-1; the residual's last
 * child too), grad i (gradient of edge i), then one copy buffer. */
#define EDGE(i) (i)
#define GRAD(i) (TSR_MODULE_MAX_CHILDREN + (i))
#define COPY (2 * TSR_MODULE_MAX_CHILDREN)

static int64_t rows(const tsr_module_run *run, tsr_buffer_rows kind)
{
    return tsr_module_rows(run, kind);
}

static void zero(const tsr_module_run *run, float *x, int i)
{
    const tsr_child_summary *c = &run->info->children[i];
    memset(x, 0, (size_t)(rows(run, c->out_rows) * c->out_cols) * sizeof *x);
}

/* edges 0..last-1 (and `last` itself when it is the branch output) */
static void declare_edges(const tsr_module_info *info, tsr_module_decl *decl, int edges)
{
    for (int i = 0; i < TSR_MODULE_MAX_CHILDREN; i++) {
        const tsr_child_summary *c = &info->children[i];
        bool on = i < edges;
        bool kept = on && i + 1 < info->child_count && info->children[i + 1].keeps_input;
        int edge = tsr_decl_buffer(decl, on, "edge", c->out_rows, c->out_cols,
                                   kept ? TSR_BUFFER_SAVED : TSR_BUFFER_SCRATCH);
        if (kept) /* the next child's input, as Megatron holds it */
            tsr_decl_activation(decl, edge);
    }
    for (int i = 0; i < TSR_MODULE_MAX_CHILDREN; i++) {
        const tsr_child_summary *c = &info->children[i];
        tsr_decl_buffer(decl, i < edges, "edge_grad", c->out_rows, c->out_cols,
                        TSR_BUFFER_SCRATCH);
    }
}

static const float *kept_edge(const tsr_module_run *run, int i)
{
    bool kept = i + 1 < run->info->child_count && run->info->children[i + 1].keeps_input;
    return kept ? run->buffers[EDGE(i)] : NULL;
}

/* ------------------------------------------------------------ sequence */

static tsr_status sequence_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    int k = info->child_count;
    if (k == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "a sequence needs at least one child");
    declare_edges(info, decl, k - 1);
    decl->out_rows = info->children[k - 1].out_rows;
    decl->out_cols = info->children[k - 1].out_cols;
    decl->keeps_input = info->children[0].keeps_input;
    bool in_place = true;
    for (int i = 0; i < k; i++)
        in_place = in_place && info->children[i].in_place_grad;
    decl->in_place_grad = in_place;
    decl->decodes = true; /* as its children (the builder asks each) */
    return TSR_OK;
}

static tsr_status sequence_forward(const tsr_module_run *run, const float *in, float *out)
{
    int k = run->info->child_count;
    const float *h = in;
    for (int i = 0; i < k; i++) {
        float *o = i == k - 1 ? out : run->buffers[EDGE(i)];
        tsr_status st = tsr_module_child_forward(run, i, h, o);
        if (st != TSR_OK)
            return st;
        h = o;
    }
    return TSR_OK;
}

static tsr_status sequence_backward(const tsr_module_run *run, const float *in, const float *out,
                                    const float *dout, float *din)
{
    int k = run->info->child_count;
    tsr_status st = TSR_OK;
    if (din == dout) { /* every child is in place (the declaration says so) */
        for (int i = k - 1; i >= 0 && st == TSR_OK; i--)
            st = tsr_module_child_backward(run, i, i > 0 ? kept_edge(run, i - 1) : in,
                                           i == k - 1 ? out : kept_edge(run, i), din, din);
        return st;
    }
    const float *g = dout;
    for (int i = k - 1; i >= 1 && st == TSR_OK; i--) {
        float *target = run->buffers[GRAD(i - 1)];
        zero(run, target, i - 1);
        st = tsr_module_child_backward(run, i, kept_edge(run, i - 1),
                                       i == k - 1 ? out : kept_edge(run, i), g, target);
        g = target;
    }
    if (st != TSR_OK)
        return st;
    return tsr_module_child_backward(run, 0, in, k == 1 ? out : kept_edge(run, 0), g, din);
}

const tsr_module_kind tsr_module_sequence = {"sequence", sequence_declare, sequence_forward,
                                             sequence_backward, NULL};

/* ------------------------------------------------------------ residual */

static tsr_status residual_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    const tsr_residual_config *cfg = info->config;
    int k = info->child_count;
    if (cfg == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "needs a tsr_residual_config");
    if (k == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "a residual needs at least one child");
    const tsr_child_summary *last = &info->children[k - 1];
    if (last->out_rows != info->in_rows || last->out_cols != info->in_cols)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "its branch returns %lld columns but its input has %lld: the sum "
                             "x + branch(x) needs equal shapes",
                             (long long)last->out_cols, (long long)info->in_cols);
    declare_edges(info, decl, k);
    /* one child, no dropout, asked in place: the child must not read its
     * gradient from the buffer it adds to */
    tsr_decl_buffer(decl, k == 1 && cfg->dropout <= 0.0,
                    "dout_copy", info->in_rows, info->in_cols, TSR_BUFFER_SCRATCH);
    decl->keeps_input = info->children[0].keeps_input;
    decl->in_place_grad = true;
    decl->decodes = true; /* as its children (the builder asks each) */
    return TSR_OK;
}

static bool residual_dropout(const tsr_module_run *run, double *p)
{
    const tsr_residual_config *cfg = run->info->config;
    *p = cfg->dropout;
    return cfg->dropout > 0.0;
}

/* out = in + dropout(branch(in)) */
static tsr_status residual_forward(const tsr_module_run *run, const float *in, float *out)
{
    const tsr_module_info *info = run->info;
    const tsr_residual_config *cfg = info->config;
    int k = info->child_count;
    const float *h = in;
    for (int i = 0; i < k; i++) {
        tsr_status st = tsr_module_child_forward(run, i, h, run->buffers[EDGE(i)]);
        if (st != TSR_OK)
            return st;
        h = run->buffers[EDGE(i)];
    }
    float *branch = run->buffers[EDGE(k - 1)];
    int64_t n = rows(run, info->in_rows);
    double p;
    if (run->train && residual_dropout(run, &p)) {
        tsr_dropout dr;
        tsr_module_dropout(run, cfg->site, p, info->in_rows == TSR_ROWS_LOCAL, &dr);
        tsr_dropout_forward(branch, branch, info->micro_batch,
                            info->in_rows == TSR_ROWS_LOCAL ? info->local_seq : info->seq,
                            info->in_cols, &dr);
    }
    tsr_add_forward(out, in, branch, n * info->in_cols);
    return TSR_OK;
}

static tsr_status residual_backward(const tsr_module_run *run, const float *in, const float *out,
                                    const float *dout, float *din)
{
    (void)out;
    const tsr_module_info *info = run->info;
    const tsr_residual_config *cfg = info->config;
    int k = info->child_count;
    int64_t n = rows(run, info->in_rows);
    const float *g = dout;
    double p;
    if (residual_dropout(run, &p)) {
        tsr_dropout dr;
        bool local = info->in_rows == TSR_ROWS_LOCAL;
        tsr_module_dropout(run, cfg->site, p, local, &dr);
        float *target = run->buffers[GRAD(k - 1)];
        zero(run, target, k - 1);
        tsr_dropout_backward(target, dout, info->micro_batch, local ? info->local_seq : info->seq,
                             info->in_cols, &dr);
        g = target;
    } else if (k == 1 && din == dout) {
        memcpy(run->buffers[COPY], dout, (size_t)(n * info->in_cols) * sizeof(float));
        g = run->buffers[COPY];
    }
    if (din != dout) /* the skip path */
        tsr_accumulate(din, dout, n * info->in_cols);
    tsr_status st = TSR_OK;
    for (int i = k - 1; i >= 1 && st == TSR_OK; i--) {
        float *target = run->buffers[GRAD(i - 1)];
        zero(run, target, i - 1);
        st = tsr_module_child_backward(run, i, kept_edge(run, i - 1), NULL, g, target);
        g = target;
    }
    if (st != TSR_OK)
        return st;
    return tsr_module_child_backward(run, 0, in, k == 1 ? NULL : kept_edge(run, 0), g, din);
}

const tsr_module_kind tsr_module_residual = {"residual", residual_declare, residual_forward,
                                             residual_backward, NULL};

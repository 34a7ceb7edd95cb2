/*
 * net_adapters.c - what the builder knows about low-rank adapters: folding
 * them into their weights (tessera convert --merge-lora) and counting what
 * an adapter run trains.
 */
#include <string.h>

#include "net_internal.h"

/* The local blocks match in every layout: a column-parallel weight's rows
 * are its up half's rows (down whole), a row-parallel weight's columns its
 * down half's columns (up whole), so W += scale * up @ down block by
 * block. */
static void merge_one(tsr_net *net, const tsr_net_param *w, const tsr_net_param *down,
                      const tsr_net_param *up)
{
    float *wv = tsr_net_param_values(net, w);
    const float *dv = tsr_net_param_values(net, down);
    float *uv = tsr_net_param_values(net, up);
    int64_t rows = w->local_rows, cols = w->local_cols, rank = down->local_rows;
    float scale = up->adapter_scale;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t k = 0; k < rank; k++) {
            float u = scale * uv[i * rank + k];
            const float *d = dv + k * cols;
            float *row = wv + i * cols;
            for (int64_t j = 0; j < cols; j++)
                row[j] += u * d[j];
        }
    memset(uv, 0, (size_t)(up->local_rows * up->local_cols) * sizeof *uv);
}

int64_t tsr_net_merge_adapters(tsr_net *net)
{
    int64_t merged = 0;
    for (size_t i = 0; i < net->param_count_entries; i++) {
        const tsr_net_param *up = &net->table[i];
        if (!up->local || up->adapter_role != TSR_ADAPTER_UP)
            continue;
        const tsr_net_param *down = NULL;
        for (size_t j = 0; j < net->param_count_entries; j++)
            if (net->table[j].adapter_role == TSR_ADAPTER_DOWN &&
                net->table[j].adapts == up->adapts)
                down = &net->table[j];
        if (down == NULL)
            continue;
        merge_one(net, &net->table[up->adapts], down, up);
        merged++;
    }
    return merged;
}

void tsr_net_trainable_count(const tsr_net *net, int64_t *trainable, int64_t *frozen)
{
    *trainable = *frozen = 0;
    for (size_t i = 0; i < net->param_count_entries; i++) {
        const tsr_net_param *p = &net->table[i];
        if (p->tied_copy)
            continue;
        *(p->frozen ? frozen : trainable) += p->rows * p->cols;
    }
}

/*
 * net_queries.c - what the built model tells its callers (net.h,
 * net_internal.h): its units, parameters, dims, parameter and gradient
 * memory, global size and FLOPs.
 */
#include "net_internal.h"

int tsr_net_unit_embedding(const tsr_net *net)
{
    (void)net;
    return 0;
}

int tsr_net_unit_layer(const tsr_net *net, int64_t layer)
{
    (void)net;
    return (int)(1 + layer);
}

int tsr_net_unit_final_norm(const tsr_net *net)
{
    return (int)net->d.layers + 1;
}

int tsr_net_unit_head(const tsr_net *net)
{
    return (int)net->d.layers + 2;
}

const tsr_net_dims *tsr_net_get_dims(const tsr_net *net)
{
    return &net->d;
}

const tsr_net_param *tsr_net_params(const tsr_net *net, size_t *count)
{
    *count = net->param_count_entries;
    return net->table;
}

float *tsr_net_param_data(tsr_net *net)
{
    return net->params;
}

float *tsr_net_param_values(tsr_net *net, const tsr_net_param *p)
{
    if (!p->local)
        return NULL;
    return (p->frozen ? net->frozen : net->params) + p->offset;
}

float *tsr_net_grad_data(tsr_net *net)
{
    return net->grads;
}

int64_t tsr_net_global_param_count(const tsr_net *net)
{
    int64_t n = 0;
    for (size_t i = 0; i < net->param_count_entries; i++)
        if (!net->table[i].tied_copy)
            n += net->table[i].rows * net->table[i].cols;
    return n;
}

const tsr_model_spec *tsr_net_spec(const tsr_net *net)
{
    return net->spec;
}

double tsr_net_flops_per_sample(const tsr_net *net)
{
    if (net->spec->flops_per_sample == NULL)
        return 0.0;
    return net->spec->flops_per_sample(&net->cfg, net->d.padded_vocab);
}

size_t tsr_net_forward_saved_floats(const tsr_net *net)
{
    size_t floats = net->slot_floats;
    for (int u = 0; u < net->unit_count; u++)
        if (net->units[u].local && net->units[u].recomputed)
            floats += net->units[u].saved_floats;
    return floats;
}

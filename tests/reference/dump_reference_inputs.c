/*
 * dump_reference_inputs.c - writes what the PyTorch reference needs to
 * rebuild a tessera run: the initial weights (by name, at global shape),
 * the config, and the micro batches of every step, into one HDF5 file.
 *
 *   dump_reference_inputs gpt2|llama OUT.h5
 *
 * make_fixtures.py runs it, then computes the expected values in PyTorch.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

#include "arena.h"
#include "data/dataset.h"
#include "test_net.h"
#include "reference_configs.h"

static herr_t write_floats(hid_t file, const char *name, const float *data, int rank,
                           const hsize_t *dims)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t set = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                           H5P_DEFAULT);
    herr_t err = H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(set);
    H5Sclose(space);
    return err;
}

static herr_t write_ints(hid_t file, const char *name, const int32_t *data, int rank,
                         const hsize_t *dims)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t set = H5Dcreate2(file, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                           H5P_DEFAULT);
    herr_t err = H5Dwrite(set, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(set);
    H5Sclose(space);
    return err;
}

static void write_attr_double(hid_t obj, const char *name, double v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(attr);
    H5Sclose(space);
}

static void write_config(hid_t file, const tsr_config *cfg, const tsr_net_dims *d)
{
    hid_t group = H5Gcreate2(file, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    write_attr_double(group, "num_layers", (double)d->layers);
    write_attr_double(group, "hidden_size", (double)d->hidden);
    write_attr_double(group, "num_attention_heads", (double)cfg->num_attention_heads);
    write_attr_double(group, "num_query_groups", (double)tsr_config_num_query_groups(cfg));
    write_attr_double(group, "ffn_hidden_size", (double)tsr_config_ffn_hidden_size(cfg));
    write_attr_double(group, "vocab_size", (double)d->vocab);
    write_attr_double(group, "padded_vocab_size", (double)d->padded_vocab);
    write_attr_double(group, "seq_length", (double)d->seq);
    write_attr_double(group, "micro_batch_size", (double)cfg->micro_batch_size);
    write_attr_double(group, "global_batch_size", (double)cfg->global_batch_size);
    write_attr_double(group, "layernorm", cfg->normalization == TSR_NORM_LAYERNORM);
    write_attr_double(group, "rope", cfg->position_embedding_type == TSR_POS_ROPE);
    write_attr_double(group, "rotary_base", cfg->rotary_base);
    write_attr_double(group, "swiglu", cfg->swiglu);
    write_attr_double(group, "bias", !cfg->disable_bias_linear);
    write_attr_double(group, "untied", cfg->untie_embeddings_and_output_weights);
    write_attr_double(group, "norm_epsilon", cfg->norm_epsilon);
    write_attr_double(group, "train_iters", (double)cfg->train_iters);
    write_attr_double(group, "lr", cfg->lr);
    write_attr_double(group, "min_lr", cfg->min_lr);
    write_attr_double(group, "lr_warmup_iters", (double)cfg->lr_warmup_iters);
    write_attr_double(group, "weight_decay", cfg->weight_decay);
    write_attr_double(group, "adam_beta1", cfg->adam_beta1);
    write_attr_double(group, "adam_beta2", cfg->adam_beta2);
    write_attr_double(group, "adam_eps", cfg->adam_eps);
    write_attr_double(group, "clip_grad", cfg->clip_grad);
    unsigned targets = 0;
    tsr_config_lora_targets(cfg, &targets);
    write_attr_double(group, "lora_rank", cfg->lora_rank);
    write_attr_double(group, "lora_scale", tsr_config_lora_scale(cfg));
    write_attr_double(group, "lora_targets", targets); /* TSR_LORA_* bits */
    write_attr_double(group, "moe_experts", cfg->num_experts);
    write_attr_double(group, "moe_topk", cfg->moe_router_topk);
    write_attr_double(group, "moe_ffn", tsr_config_moe_ffn_hidden_size(cfg));
    write_attr_double(group, "moe_pre_softmax", cfg->moe_router_pre_softmax);
    write_attr_double(group, "moe_aux_coeff", cfg->moe_aux_loss_coeff);
    write_attr_double(group, "moe_z_coeff", cfg->moe_z_loss_coeff);
    write_attr_double(group, "moe_capacity", cfg->moe_expert_capacity_factor);
    write_attr_double(group, "moe_drop_position", cfg->moe_token_drop_policy == 1);
    write_attr_double(group, "moe_seq_aux",
                      cfg->moe_router_load_balancing_type == TSR_MOE_SEQ_AUX_LOSS);
    H5Gclose(group);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s gpt2|llama|gpt2_lora|llama_lora OUT.h5\n", argv[0]);
        return 2;
    }
    tsr_config cfg;
    tsr_dataset *ds = NULL;
    if (tsr_reference_config(argv[1], &cfg) != TSR_OK || tsr_dataset_open(&cfg, &ds) != TSR_OK) {
        fprintf(stderr, "%s\n", tsr_last_error());
        return 2;
    }
    tsr_test_net model;
    tsr_memory_plan plan = {0};
    if (tsr_test_net_build(&model, &cfg, ds->vocab_size, NULL, 0) != TSR_OK) {
        fprintf(stderr, "%s\n", tsr_last_error());
        return 1;
    }
    tsr_net *gpt = model.net;
    tsr_net_dims dims = *tsr_net_get_dims(gpt);
    tsr_net_plan(gpt, &plan);
    if (tsr_plan_allocate(&plan) != TSR_OK || tsr_net_carve(gpt, NULL, &plan) != TSR_OK) {
        fprintf(stderr, "%s\n", tsr_last_error());
        return 1;
    }
    hid_t file = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        fprintf(stderr, "cannot create %s\n", argv[2]);
        return 1;
    }
    write_config(file, &cfg, &dims);
    hid_t weights = H5Gcreate2(file, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    size_t count = 0;
    const tsr_net_param *table = tsr_net_params(gpt, &count);
    for (size_t i = 0; i < count; i++) {
        hsize_t shape[2] = {(hsize_t)table[i].rows, (hsize_t)table[i].cols};
        write_floats(weights, table[i].name, tsr_net_param_values(gpt, &table[i]),
                     table[i].cols == 1 ? 1 : 2, shape);
    }
    H5Gclose(weights);

    int mbs = cfg.micro_batch_size, per_step = cfg.global_batch_size / mbs;
    int64_t rows = (int64_t)mbs * cfg.seq_length;
    int64_t total = (int64_t)TSR_REFERENCE_STEPS * per_step * rows;
    int32_t *tokens = malloc((size_t)(total + 1) * sizeof *tokens);
    int32_t *targets = malloc((size_t)total * sizeof *targets);
    float *mask = malloc((size_t)total * sizeof *mask);
    for (int64_t m = 0; m < (int64_t)TSR_REFERENCE_STEPS * per_step; m++)
        tsr_dataset_batch(ds, TSR_SPLIT_TRAIN, m * mbs, mbs, tokens + m * rows,
                          targets + m * rows, mask + m * rows);
    hsize_t shape[4] = {TSR_REFERENCE_STEPS, (hsize_t)per_step, (hsize_t)mbs,
                        (hsize_t)cfg.seq_length};
    write_ints(file, "tokens", tokens, 4, shape);
    write_ints(file, "targets", targets, 4, shape);
    write_floats(file, "mask", mask, 4, shape);
    free(tokens);
    free(targets);
    free(mask);
    H5Fclose(file);
    tsr_plan_release(&plan);
    tsr_dataset_close(ds);
    return 0;
}

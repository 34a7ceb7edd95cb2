/*
 * bad_plugins.c - broken model plugins for plugin_bad_input.sh, one per
 * TSR_BAD_PLUGIN_* definition (tests/plugin/CMakeLists.txt builds each):
 *   NOSYM    exports no tsr_plugin_register
 *   FAILS    its registration function returns an error
 *   EMPTY    its registration function registers nothing
 *   BADSPEC  registers "bad_split", whose layer declares a weight of 3
 *            output rows split over tensor parallelism: the builder must
 *            refuse it under --tensor-model-parallel-size 2; and
 *            "bad_activation", whose layer marks a scratch buffer as an
 *            activation (tsr_decl_activation); and "bad_duplicate", whose
 *            layer declares two parameters of one name
 */
#include "tessera/modules.h"
#include "tessera/spec.h"

#define EXPORT TSR_PLUGIN_EXPORT

#if defined(TSR_BAD_PLUGIN_NOSYM)

EXPORT int tsr_plugin_version(void) { return 1; }

#elif defined(TSR_BAD_PLUGIN_FAILS)

EXPORT tsr_status tsr_plugin_register(void)
{
    return tsr_error_set(TSR_ERR_INVALID_ARG, "this plugin refuses to register (test)");
}

#elif defined(TSR_BAD_PLUGIN_EMPTY)

EXPORT tsr_status tsr_plugin_register(void) { return TSR_OK; }

#elif defined(TSR_BAD_PLUGIN_BADSPEC)

static tsr_status odd_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    tsr_decl_param(decl, true, "weight", 3, info->hidden, TSR_PARAM_SPLIT_ROWS, TSR_INIT_NORMAL,
                   0.02f, TSR_PARAM_DECAY);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = info->hidden;
    decl->keeps_input = true;
    return TSR_OK;
}

static tsr_status scratch_activation_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    tsr_decl_activation(decl, tsr_decl_buffer(decl, true, "work", TSR_ROWS_LOCAL, info->hidden,
                                              TSR_BUFFER_SCRATCH));
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = info->hidden;
    return TSR_OK;
}

static tsr_status duplicate_declare(const tsr_module_info *info, tsr_module_decl *decl)
{
    for (int i = 0; i < 2; i++)
        tsr_decl_param(decl, true, "weight", info->hidden, info->hidden, TSR_PARAM_SPLIT_NONE,
                       TSR_INIT_NORMAL, 0.02f, TSR_PARAM_DECAY);
    decl->out_rows = TSR_ROWS_LOCAL;
    decl->out_cols = info->hidden;
    decl->keeps_input = true;
    return TSR_OK;
}

static tsr_status odd_forward(const tsr_module_run *run, const float *in, float *out)
{
    (void)run, (void)in, (void)out;
    return tsr_error_set(TSR_ERR_INTERNAL, "odd_linear must never run (test)");
}

static tsr_status odd_backward(const tsr_module_run *run, const float *in, const float *out,
                               const float *dout, float *din)
{
    (void)run, (void)in, (void)out, (void)dout, (void)din;
    return tsr_error_set(TSR_ERR_INTERNAL, "odd_linear must never run (test)");
}

static const tsr_module_kind odd_linear = {
    .name = "odd_linear", .declare = odd_declare, .forward = odd_forward, .backward = odd_backward};
static const tsr_module_kind scratch_activation = {.name = "scratch_activation",
                                                   .declare = scratch_activation_declare,
                                                   .forward = odd_forward,
                                                   .backward = odd_backward};
static const tsr_module_kind duplicate = {.name = "duplicate",
                                          .declare = duplicate_declare,
                                          .forward = odd_forward,
                                          .backward = odd_backward};

static tsr_status build_with_layer(const tsr_config *cfg, tsr_spec_arena *arena,
                                   const tsr_module_kind *kind, tsr_model_spec *out)
{
    tsr_embedding_config embedding = {true, cfg->seq_length, 0.02f, 0.0, false};
    tsr_norm_config norm = {TSR_NORM_LAYERNORM, 1e-5f};
    tsr_lm_head_config head = {true, 0.02f};
    const tsr_spec *layer = tsr_spec_new(arena, kind, kind->name, NULL, 0);
    out->embedding = tsr_spec_new(arena, &tsr_module_embedding, "embedding", &embedding,
                                  sizeof embedding);
    out->final_norm = tsr_spec_new(arena, &tsr_module_norm, "decoder.final_layernorm", &norm,
                                   sizeof norm);
    out->head = tsr_spec_new(arena, &tsr_module_lm_head, "output_layer", &head, sizeof head);
    out->layers = tsr_spec_layer_array(arena, cfg->num_layers);
    if (layer == NULL || out->embedding == NULL || out->final_norm == NULL ||
        out->head == NULL || out->layers == NULL)
        return TSR_ERR_OUT_OF_MEMORY;
    out->layer_prefix = "decoder.layers";
    out->num_layers = cfg->num_layers;
    for (int64_t l = 0; l < cfg->num_layers; l++)
        out->layers[l] = layer;
    return TSR_OK;
}

static tsr_status bad_split_build(const tsr_config *cfg, tsr_spec_arena *arena,
                                  tsr_model_spec *out)
{
    return build_with_layer(cfg, arena, &odd_linear, out);
}

static tsr_status bad_activation_build(const tsr_config *cfg, tsr_spec_arena *arena,
                                       tsr_model_spec *out)
{
    return build_with_layer(cfg, arena, &scratch_activation, out);
}

static tsr_status bad_duplicate_build(const tsr_config *cfg, tsr_spec_arena *arena,
                                      tsr_model_spec *out)
{
    return build_with_layer(cfg, arena, &duplicate, out);
}

EXPORT tsr_status tsr_plugin_register(void)
{
    tsr_status st = tsr_model_register("bad_split", "a weight of 3 rows split over tp (test)",
                                       bad_split_build);
    if (st == TSR_OK)
        st = tsr_model_register("bad_activation", "a scratch buffer marked an activation (test)",
                                bad_activation_build);
    if (st != TSR_OK)
        return st;
    return tsr_model_register("bad_duplicate", "two parameters of one name (test)",
                              bad_duplicate_build);
}

#else
#error "define one TSR_BAD_PLUGIN_* (tests/plugin/CMakeLists.txt)"
#endif

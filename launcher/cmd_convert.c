/*
 * cmd_convert.c - `tessera convert`: Hugging Face models in and out.
 *
 *   tessera convert --load HF_DIR --save CKPT_DIR
 *       a directory with config.json and model.safetensors (or sharded
 *       model-0000x-of-0000y.safetensors with model.safetensors.index.json)
 *       of a GPT-2 or LLaMA-family model -> a weights-only tessera
 *       checkpoint of iteration 0, to fine-tune with --finetune
 *       --pretrained-checkpoint CKPT_DIR and the model flags printed;
 *   tessera convert --load CKPT_DIR [--ckpt-step N] --save HF_DIR
 *       a tessera checkpoint -> model.safetensors (F32) + config.json that
 *       transformers loads as GPT2LMHeadModel / LlamaForCausalLM;
 *   tessera convert --merge-lora --load LORA_CKPT [--ckpt-step N] --save CKPT
 *       a LoRA run's checkpoint -> a weights-only tessera checkpoint of the
 *       same iteration with every adapter folded into its weight
 *       (W + alpha/r B A), no adapters left: a plain model again, for
 *       training, evaluation or export.
 *
 * The direction follows what --load holds. The model is built as one rank
 * builds it for training (the GPT spec, sharding/), so the tensors
 * converted are exactly those training declares, and the file goes
 * through the checkpoint code training uses. Runs as one process (MPI as
 * a singleton, for the checkpoint's MPI-IO). Bad input exits 2 before
 * anything is written; an existing output is never overwritten.
 */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arena.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/hf_config.h"
#include "checkpoint/hf_files.h"
#include "checkpoint/hf_layout.h"
#include "commands.h"
#include "flags.h"
#include "model_select.h"
#include "rank_env.h"
#include "sharding/net.h"

typedef struct convert_args {
    const char *load;
    const char *save;
    int64_t ckpt_step;
    bool merge_lora;
} convert_args;

#define OFF(f) offsetof(convert_args, f)
static const tsr_flag convert_flags[] = {
    {"--load", TSR_FLAG_STRING, OFF(load), 0, 0, NULL, "DIR",
     "what to convert: a Hugging Face model directory (config.json) or a tessera checkpoint "
     "directory"},
    {"--save", TSR_FLAG_STRING, OFF(save), 0, 0, NULL, "DIR",
     "where to write the other format (created; must not hold one already)"},
    {"--ckpt-step", TSR_FLAG_INT64, OFF(ckpt_step), -1, 9007199254740992.0, NULL, "N",
     "of a tessera checkpoint: convert iteration N instead of the latest"},
    {"--merge-lora", TSR_FLAG_BOOL, OFF(merge_lora), 0, 0, NULL, NULL,
     "of a LoRA run's checkpoint: write a tessera checkpoint with the adapters folded into "
     "the weights"},
};
#undef OFF

static const tsr_flag_table convert_table = {"convert", convert_flags,
                                             sizeof convert_flags / sizeof convert_flags[0]};

static bool exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

static tsr_status make_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "--save %s cannot be created: %s", dir,
                             strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tsr_error_set(TSR_ERR_INVALID_ARG, "--save %s is not a directory", dir);
    return TSR_OK;
}

/* The model as one rank holds it, its tensors as global views. */
typedef struct built {
    tsr_spec_arena *arena;
    tsr_model_spec spec;
    tsr_net *net;
    tsr_memory_plan plan;
    tsr_model model;
    tsr_hf_tensor *views;
    size_t view_count;
} built;

static void built_free(built *b)
{
    free(b->views);
    tsr_plan_release(&b->plan);
    tsr_net_destroy(b->net);
    tsr_spec_arena_destroy(b->arena);
    memset(b, 0, sizeof *b);
}

/* cfg: the model; its sequence is cut to what building needs (the
 * activations of one short micro batch; no step ever runs). */
static tsr_status build(const tsr_config *cfg, built *b)
{
    memset(b, 0, sizeof *b);
    tsr_config small = *cfg;
    small.micro_batch_size = 1;
    small.global_batch_size = 1;
    small.seq_length = cfg->seq_length < 64 ? cfg->seq_length : 64;
    const tsr_model_entry *entry = NULL;
    tsr_status st = tsr_model_select(&small, &entry);
    if (st == TSR_OK)
        st = tsr_spec_arena_create(&b->arena);
    if (st == TSR_OK)
        st = entry->build(&small, b->arena, &b->spec);
    tsr_net_dims dims = tsr_net_dims_from_config(&small, small.vocab_size, 0);
    if (st == TSR_OK)
        st = tsr_net_build(&b->spec, &small, &dims, &b->net);
    if (st == TSR_OK) {
        tsr_net_plan(b->net, &b->plan);
        st = tsr_plan_allocate(&b->plan);
    }
    if (st == TSR_OK)
        st = tsr_net_carve(b->net, NULL, &b->plan);
    if (st != TSR_OK)
        return st;
    b->model = tsr_net_as_model(b->net);
    b->views = calloc(b->model.tensor_count + 1, sizeof *b->views);
    if (b->views == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    tsr_hf_tensors_of(&b->model, b->views, &b->view_count);
    return TSR_OK;
}

static tsr_checkpoint_content weights_of(const built *b)
{
    tsr_checkpoint_content c = {0};
    c.tensors = b->model.tensors;
    c.tensor_count = b->model.tensor_count;
    c.params = b->model.params;
    c.frozen = b->model.frozen;
    return c; /* adam_m NULL: weights only */
}

/* v with the fewest digits that read back as v (1e-05, not 1.0000000000000001e-05). */
static const char *exact(double v, char *buf, size_t len)
{
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

static void print_flags(const tsr_config *cfg, const char *dir)
{
    char eps[32], base[32];
    printf("fine-tune with: tessera train --finetune --pretrained-checkpoint %s --num-layers %d "
           "--hidden-size %d --num-attention-heads %d",
           dir, cfg->num_layers, cfg->hidden_size, cfg->num_attention_heads);
    if (cfg->group_query_attention)
        printf(" --group-query-attention --num-query-groups %d", cfg->num_query_groups);
    printf(" --ffn-hidden-size %d --vocab-size %d --norm-epsilon %s", cfg->ffn_hidden_size,
           cfg->vocab_size, exact(cfg->norm_epsilon, eps, sizeof eps));
    if (cfg->position_embedding_type == TSR_POS_ROPE)
        printf(" --normalization RMSNorm --position-embedding-type rope --rotary-base %s "
               "--swiglu --disable-bias-linear",
               exact(cfg->rotary_base, base, sizeof base));
    else
        printf(" --max-position-embeddings %d", cfg->max_position_embeddings);
    if (cfg->untie_embeddings_and_output_weights)
        printf(" --untie-embeddings-and-output-weights");
    printf(" --seq-length T --data-path ...\n");
}

static tsr_status import_hf(const convert_args *a)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", a->load);
    tsr_hf_family family;
    tsr_status st = tsr_hf_config_read(path, &cfg, &family);
    if (st == TSR_OK && a->ckpt_step >= 0)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--ckpt-step applies to a tessera checkpoint; "
                           "--load %s is a Hugging Face model",
                           a->load);
    if (st == TSR_OK && tsr_checkpoint_exists(a->save))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--save %s already holds a tessera checkpoint; give an empty or new "
                           "directory",
                           a->save);
    cfg.seq_length = cfg.max_position_embeddings;
    cfg.data_path = "huggingface"; /* the checkpoint's data_path: no synthetic task */
    tsr_hf_files files = {0};
    if (st == TSR_OK)
        st = tsr_hf_files_open(a->load, &files);
    if (st == TSR_OK)
        st = tsr_hf_check(&cfg, family, files.files, files.count);
    built b = {0};
    if (st == TSR_OK)
        st = build(&cfg, &b);
    if (st == TSR_OK)
        st = tsr_hf_import(&cfg, family, files.files, files.count, b.views, b.view_count);
    tsr_hf_files_close(&files);
    if (st == TSR_OK)
        st = make_dir(a->save);
    if (st == TSR_OK) {
        tsr_checkpoint_state state = {0};
        state.seed = cfg.seed;
        tsr_checkpoint_content content = weights_of(&b);
        st = tsr_checkpoint_save(a->save, &cfg, &state, &content, MPI_COMM_SELF);
    }
    if (st == TSR_OK) {
        tsr_checkpoint_path(a->save, 0, path, sizeof path);
        printf("wrote %s: the weights of %s's %s model (%.3f M parameters), iteration 0, no "
               "optimizer state\n",
               path, a->load, tsr_hf_family_name(family),
               (double)tsr_net_global_param_count(b.net) / 1e6);
        print_flags(&cfg, a->save);
    }
    built_free(&b);
    return st;
}

/* The model of the checkpoint --load (--ckpt-step) names, from its file. */
static tsr_status read_checkpoint_model(const convert_args *a, int64_t *iteration, char *path,
                                        size_t len, tsr_config *cfg)
{
    tsr_status st = tsr_checkpoint_resolve("--load", a->load, a->ckpt_step, iteration);
    tsr_checkpoint_path(a->load, *iteration, path, len);
    tsr_config_defaults(cfg);
    return st == TSR_OK ? tsr_checkpoint_read_model(path, cfg) : st;
}

/* The checkpoint's model built and its weights loaded into b (cfg from
 * read_checkpoint_model; st: the status so far, returned if not OK). */
static tsr_status load_checkpoint_model(const convert_args *a, int64_t iteration, tsr_status st,
                                        tsr_config *cfg, built *b, tsr_checkpoint_state *state)
{
    if (cfg->max_position_embeddings > 0 && cfg->seq_length > cfg->max_position_embeddings)
        cfg->seq_length = cfg->max_position_embeddings;
    cfg->ckpt_step = iteration;
    if (st == TSR_OK)
        st = build(cfg, b);
    tsr_checkpoint_content content = weights_of(b);
    if (st == TSR_OK)
        st = tsr_checkpoint_load("--load", a->load, cfg, state, &content, MPI_COMM_SELF);
    return st;
}

static tsr_status export_hf(const convert_args *a)
{
    int64_t iteration = 0;
    char path[4096];
    tsr_config cfg;
    tsr_status st = read_checkpoint_model(a, &iteration, path, sizeof path, &cfg);
    if (st == TSR_OK && cfg.lora_rank > 0)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "%s holds LoRA adapters (rank %d): fold them into the weights first "
                           "(tessera convert --merge-lora --load %s --save MERGED), then export "
                           "MERGED",
                           path, cfg.lora_rank, a->load);
    tsr_hf_family family;
    if (st == TSR_OK)
        st = tsr_hf_family_of(&cfg, &family);
    if (st == TSR_OK && (exists(a->save, "model.safetensors") || exists(a->save, "config.json")))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--save %s already holds a Hugging Face model; give an empty or new "
                           "directory",
                           a->save);
    built b = {0};
    tsr_checkpoint_state state;
    st = load_checkpoint_model(a, iteration, st, &cfg, &b, &state);
    if (st == TSR_OK)
        st = make_dir(a->save);
    char out[4096];
    snprintf(out, sizeof out, "%s/model.safetensors", a->save);
    if (st == TSR_OK)
        st = tsr_hf_export(&cfg, family, b.views, b.view_count, out);
    snprintf(out, sizeof out, "%s/config.json", a->save);
    if (st == TSR_OK)
        st = tsr_hf_config_write(out, &cfg, cfg.vocab_size, family);
    if (st == TSR_OK)
        printf("wrote %s/model.safetensors and config.json: iteration %lld of %s as a Hugging "
               "Face %s model (%.3f M parameters, F32)\n",
               a->save, (long long)iteration, a->load, tsr_hf_family_name(family),
               (double)tsr_net_global_param_count(b.net) / 1e6);
    built_free(&b);
    return st;
}

/* The model's tensors but the adapters: what a merged checkpoint holds. */
static size_t base_tensors(const built *b, tsr_tensor_desc *out)
{
    size_t n = 0;
    for (size_t i = 0; i < b->model.tensor_count; i++)
        if (!b->model.tensors[i].adapter)
            out[n++] = b->model.tensors[i];
    return n;
}

static tsr_status merge_lora(const convert_args *a)
{
    int64_t iteration = 0;
    char path[4096];
    tsr_config cfg;
    tsr_status st = read_checkpoint_model(a, &iteration, path, sizeof path, &cfg);
    if (st == TSR_OK && cfg.lora_rank <= 0)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--merge-lora: %s holds no LoRA adapters (it is a plain model); "
                           "convert it without --merge-lora",
                           path);
    if (st == TSR_OK && tsr_checkpoint_exists(a->save))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--save %s already holds a tessera checkpoint; give an empty or new "
                           "directory",
                           a->save);
    built b = {0};
    tsr_checkpoint_state state = {0};
    st = load_checkpoint_model(a, iteration, st, &cfg, &b, &state);
    tsr_checkpoint_content content = weights_of(&b);
    tsr_tensor_desc *kept = st == TSR_OK ? calloc(b.model.tensor_count + 1, sizeof *kept) : NULL;
    if (st == TSR_OK && kept == NULL)
        st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t merged = 0;
    if (st == TSR_OK) {
        merged = tsr_net_merge_adapters(b.net);
        content.tensors = kept;
        content.tensor_count = base_tensors(&b, kept);
        st = make_dir(a->save);
    }
    tsr_config plain = cfg;
    plain.lora_rank = 0;
    plain.lora_alpha = plain.lora_dropout = 0.0;
    plain.lora_target = NULL;
    if (st == TSR_OK)
        st = tsr_checkpoint_save(a->save, &plain, &state, &content, MPI_COMM_SELF);
    if (st == TSR_OK) {
        int64_t adapters = 0, base = 0;
        tsr_net_trainable_count(b.net, &adapters, &base);
        tsr_checkpoint_path(a->save, iteration, path, sizeof path);
        printf("wrote %s: iteration %lld of %s with its %lld LoRA adapters (rank %d, scale %g) "
               "folded into the weights; weights only, a plain model (%.3f M parameters)\n",
               path, (long long)iteration, a->load, (long long)merged, cfg.lora_rank,
               tsr_config_lora_scale(&cfg), (double)base / 1e6);
    }
    free(kept);
    built_free(&b);
    return st;
}

static void print_help(void)
{
    convert_args defaults = {NULL, NULL, -1, false};
    puts("usage: tessera convert --load HF_DIR --save CKPT_DIR\n"
         "       tessera convert --load CKPT_DIR [--ckpt-step N] --save HF_DIR\n"
         "       tessera convert --merge-lora --load LORA_CKPT_DIR [--ckpt-step N] --save "
         "CKPT_DIR\n\n"
         "converts between a Hugging Face GPT-2 or LLaMA-family model (config.json +\n"
         "safetensors) and a tessera checkpoint; the direction follows what --load holds.\n"
         "--merge-lora folds a LoRA run's adapters into its weights (a tessera checkpoint)\n\n"
         "flags:");
    tsr_flags_print_help(&convert_table, &defaults, stdout);
}

int tsr_cmd_convert(int argc, char **argv)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    if (tsr_args_want_help(argc, argv)) {
        if (info.rank == 0)
            print_help();
        return 0;
    }
    convert_args args = {NULL, NULL, -1, false};
    tsr_status st = tsr_flags_parse(&convert_table, &args, argc, argv, NULL);
    if (st == TSR_OK && (args.load == NULL || args.save == NULL))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "give --load DIR and --save DIR (see 'tessera convert --help')");
    if (st == TSR_OK && info.world_size > 1)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "tessera convert runs as one process; start it without mpirun/srun");
    bool from_hf = st == TSR_OK && exists(args.load, "config.json");
    if (st == TSR_OK && !from_hf && !tsr_checkpoint_exists(args.load))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--load %s holds neither a Hugging Face model (config.json) nor a "
                           "tessera checkpoint (latest_checkpointed_iteration.txt)",
                           args.load);
    if (st == TSR_OK && from_hf && args.merge_lora)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--merge-lora folds the adapters of a tessera LoRA checkpoint; "
                           "--load %s is a Hugging Face model",
                           args.load);
    if (st != TSR_OK)
        return tsr_report_error_once(info.rank, "convert", st);
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "tessera convert: error: MPI_Init failed\n");
        return 1;
    }
    st = from_hf ? import_hf(&args) : args.merge_lora ? merge_lora(&args) : export_hf(&args);
    MPI_Finalize();
    if (st != TSR_OK) {
        fprintf(stderr, "tessera convert: error: %s\n", tsr_last_error());
        return tsr_status_exit_code(st);
    }
    return 0;
}

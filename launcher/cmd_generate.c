/*
 * cmd_generate.c - `tessera generate`: text from a checkpoint.
 *
 *   tessera generate --load CKPT (--prompt TEXT | --prompt-file FILE | --held-out N)
 *                    [--max-new-tokens N] [--greedy | --temperature T --top-k K --top-p P]
 *                    [--seed S] [--tokenizer-type ...] [--tensor-model-parallel-size TP]
 *
 * The model is read from the checkpoint (its shape, architecture and LoRA
 * adapters) and built as training builds it, for a batch of prompts and
 * a context of the longest prompt plus --max-new-tokens. Every sequence
 * advances one position per step (tsr_net_decode_logits): a prompt's own
 * tokens are fed until it ends, then each sampled token is fed back, so
 * prompts of different lengths share the batch and each step costs the
 * same GEMMs whatever was already processed (the keys and values of
 * earlier positions stay in attention's saved buffers). A sequence stops
 * at the end-of-document token or after --max-new-tokens. Under mpirun
 * with --tensor-model-parallel-size every rank holds its shard, the
 * logits are gathered, and every rank draws the same token from the
 * counter-based RNG; rank 0 prints.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "checkpoint/checkpoint.h"
#include "collectives/comm.h"
#include "commands.h"
#include "flags.h"
#include "generate/sampling.h"
#include "generate_text.h"
#include "model_select.h"
#include "rank_env.h"
#include "sharding/grid.h"
#include "sharding/net.h"
#include "tessera/log.h"
#include "tessera/rng.h"
#include "tessera/timer.h"

typedef struct generate_args {
    const char *load;
    int64_t ckpt_step;
    const char *prompt, *prompt_file;
    int64_t held_out;
    const char *data_path;
    int64_t max_new;
    bool greedy;
    double temperature, top_p;
    int64_t top_k, seed, eos, batch;
    int tokenizer;
    const char *vocab_file, *merge_file;
    int tp;
} generate_args;

static const char *const tokenizer_choices[] = {"auto", "arithmetic", "byte", "gpt2", NULL};

#define TRY(call)                                                                                  \
    do {                                                                                           \
        tsr_status try_ = (call);                                                                  \
        if (try_ != TSR_OK)                                                                        \
            return try_;                                                                           \
    } while (0)

#define OFF(f) offsetof(generate_args, f)
static const tsr_flag generate_flags[] = {
    {"--load", TSR_FLAG_STRING, OFF(load), 0, 0, NULL, "DIR", "the checkpoint directory"},
    {"--ckpt-step", TSR_FLAG_INT64, OFF(ckpt_step), 0, 9007199254740992.0, NULL, "N",
     "load iteration N instead of the latest"},
    {"--prompt", TSR_FLAG_STRING, OFF(prompt), 0, 0, NULL, "TEXT", "one prompt"},
    {"--prompt-file", TSR_FLAG_STRING, OFF(prompt_file), 0, 0, NULL, "FILE",
     "prompts, one a line, generated in batches"},
    {"--held-out", TSR_FLAG_INT64, OFF(held_out), 1, 1e6, NULL, "N",
     "prompts: the questions of the first N validation problems of the model's synthetic "
     "task; prints each answer and how many are right"},
    {"--data-path", TSR_FLAG_STRING, OFF(data_path), 0, 0, NULL, "PATH",
     "the task of --held-out (default: the one the checkpoint trained on)"},
    {"--max-new-tokens", TSR_FLAG_INT64, OFF(max_new), 1, 1e6, NULL, "N",
     "tokens to generate at most per prompt"},
    {"--greedy", TSR_FLAG_BOOL, OFF(greedy), 0, 0, NULL, NULL,
     "always the most likely token (as --top-k 1)"},
    {"--temperature", TSR_FLAG_DOUBLE, OFF(temperature), 0.0, 1e3, NULL, "T",
     "divides the logits before the softmax (0: greedy)"},
    {"--top-k", TSR_FLAG_INT64, OFF(top_k), 0, 1e9, NULL, "K",
     "sample among the K most likely tokens (0: all)"},
    {"--top-p", TSR_FLAG_DOUBLE, OFF(top_p), 1e-9, 1.0, NULL, "P",
     "sample among the fewest most likely tokens whose probability reaches P (1: all)"},
    {"--seed", TSR_FLAG_INT64, OFF(seed), 0, 9007199254740992.0, NULL, "N",
     "seed of the sampling (the same seed draws the same tokens)"},
    {"--eos-token", TSR_FLAG_INT64, OFF(eos), -1, 1e9, NULL, "ID",
     "stop a sequence at this token (default: the tokenizer's end of document; -1: never)"},
    {"--batch-size", TSR_FLAG_INT64, OFF(batch), 1, 4096, NULL, "N", "prompts generated together"},
    {"--tokenizer-type", TSR_FLAG_CHOICE, OFF(tokenizer), 0, 0, tokenizer_choices, "TYPE",
     "the model's tokenizer: auto (the synthetic tasks' characters for a model trained on "
     "them), arithmetic, byte or gpt2"},
    {"--vocab-file", TSR_FLAG_STRING, OFF(vocab_file), 0, 0, NULL, "FILE",
     "GPT-2 vocab.json (--tokenizer-type gpt2)"},
    {"--merge-file", TSR_FLAG_STRING, OFF(merge_file), 0, 0, NULL, "FILE",
     "GPT-2 merges.txt (--tokenizer-type gpt2)"},
    {"--tensor-model-parallel-size", TSR_FLAG_INT, OFF(tp), 1, 4096, NULL, "TP",
     "shard the model over TP ranks (start TP ranks with mpirun)"},
};
#undef OFF

static const tsr_flag_table generate_table = {"generate", generate_flags,
                                              sizeof generate_flags / sizeof generate_flags[0]};

static generate_args defaults(void)
{
    generate_args a;
    memset(&a, 0, sizeof a);
    a.ckpt_step = -1;
    a.max_new = 32;
    a.temperature = 1.0;
    a.top_p = 1.0;
    a.seed = 1234;
    a.eos = -2; /* the tokenizer's */
    a.batch = 16;
    a.tp = 1;
    return a;
}

/* What the run needs, found before MPI starts. */
typedef struct plan {
    tsr_config cfg;
    tsr_gen_text text;
    tsr_gen_prompts prompts;
    int64_t context, batch, eos;
} plan;

static tsr_status prepare(const generate_args *a, int world_size, plan *p)
{
    int sources = (a->prompt != NULL) + (a->prompt_file != NULL) + (a->held_out > 0);
    if (a->load == NULL || sources != 1)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "give --load DIR and one of --prompt TEXT, --prompt-file FILE or "
                             "--held-out N (see 'tessera generate --help')");
    if (world_size != a->tp)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%d ranks for --tensor-model-parallel-size %d: generation shards the "
                             "model only; start exactly %d rank(s)",
                             world_size, a->tp, a->tp);
    int64_t iteration = 0;
    TRY(tsr_checkpoint_resolve("--load", a->load, a->ckpt_step, &iteration));
    char path[4096];
    tsr_checkpoint_path(a->load, iteration, path, sizeof path);
    tsr_config_defaults(&p->cfg);
    TRY(tsr_checkpoint_read_model(path, &p->cfg));
    tsr_config *cfg = &p->cfg;
    if (cfg->prefix_lm)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "%s was trained with --prefix-lm, attending both ways over each "
                             "prompt; generation here attends causally, one token at a time, "
                             "and would not compute that model",
                             path);
    cfg->ckpt_step = iteration;
    cfg->load = a->load;
    cfg->tensor_model_parallel_size = a->tp;
    if (a->data_path != NULL)
        cfg->data_path = a->data_path;
    TRY(tsr_gen_text_open((tsr_gen_tokenizer)a->tokenizer, cfg->data_path, cfg->vocab_size,
                          a->vocab_file, a->merge_file, &p->text));
    if (a->held_out > 0)
        TRY(tsr_gen_prompts_held_out(cfg, a->held_out, &p->prompts));
    else
        TRY(tsr_gen_prompts_read(&p->text, a->prompt, a->prompt_file, cfg->vocab_size,
                                 &p->prompts));
    int64_t longest = 0;
    for (int64_t i = 0; i < p->prompts.count; i++)
        longest = p->prompts.items[i].len > longest ? p->prompts.items[i].len : longest;
    p->context = longest + a->max_new;
    /* the attention pattern's sizes must fit the context (its checks) */
    if (cfg->window_size > p->context)
        p->context = cfg->window_size;
    if (cfg->sparse_attention != TSR_SPARSE_NONE && cfg->sparse_block > 0) {
        int64_t unit = cfg->sparse_stride > cfg->sparse_block ? cfg->sparse_stride
                                                              : cfg->sparse_block;
        p->context = (p->context + unit - 1) / unit * unit;
    }
    if (cfg->max_position_embeddings > 0 && p->context > cfg->max_position_embeddings)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "the longest prompt (%lld tokens) and --max-new-tokens %lld need "
                             "%lld positions; the model has %d: shorten either",
                             (long long)longest, (long long)a->max_new, (long long)p->context,
                             cfg->max_position_embeddings);
    p->batch = a->batch < p->prompts.count ? a->batch : p->prompts.count;
    p->eos = a->eos == -2 ? p->text.eod : a->eos;
    if (a->eos == -2 && p->eos >= cfg->vocab_size)
        p->eos = -1; /* the tokenizer's end id has no row in this model: never drawn */
    if (p->eos >= cfg->vocab_size)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--eos-token %lld is outside the model's vocabulary of %d",
                             (long long)p->eos, cfg->vocab_size);
    cfg->seq_length = (int)p->context;
    cfg->micro_batch_size = (int)p->batch;
    cfg->global_batch_size = (int)p->batch;
    cfg->train_iters = 0;
    cfg->hidden_dropout = cfg->attention_dropout = cfg->lora_dropout = 0.0;
    return tsr_config_validate(cfg, world_size);
}

/* The model on this rank, its weights loaded. */
typedef struct model {
    tsr_spec_arena *arena;
    tsr_model_spec spec;
    tsr_net *net;
    tsr_memory_plan plan;
} model;

static void model_free(model *m)
{
    tsr_plan_release(&m->plan);
    tsr_net_destroy(m->net);
    tsr_spec_arena_destroy(m->arena);
}

static tsr_status model_load(const tsr_config *cfg, tsr_grid *grid, model *m)
{
    memset(m, 0, sizeof *m);
    const tsr_model_entry *entry = NULL;
    TRY(tsr_model_select(cfg, &entry));
    TRY(tsr_spec_arena_create(&m->arena));
    TRY(entry->build(cfg, m->arena, &m->spec));
    tsr_net_dims dims = tsr_net_dims_from_config(cfg, cfg->vocab_size, tsr_grid_tp_rank(grid));
    TRY(tsr_net_build(&m->spec, cfg, &dims, &m->net));
    TRY(tsr_net_decode_check(m->net));
    tsr_net_plan(m->net, &m->plan);
    TRY(tsr_plan_allocate(&m->plan));
    TRY(tsr_net_carve(m->net, grid, &m->plan));
    tsr_model mm = tsr_net_as_model(m->net);
    tsr_checkpoint_content content = {0};
    content.tensors = mm.tensors;
    content.tensor_count = mm.tensor_count;
    content.params = mm.params;
    content.frozen = mm.frozen;
    tsr_checkpoint_state state;
    return tsr_checkpoint_load("--load", cfg->load, cfg, &state, &content,
                               tsr_comm_mpi_handle(tsr_grid_world(grid)));
}

/* One batch: seq (batch, context) holds each prompt, then what is drawn;
 * made[s] counts the tokens generated for s. */
typedef struct batch {
    int32_t *seq, *column;
    int64_t *made;
    bool *done;
    float *slice, *full, *probs;
    int32_t *order;
} batch;

static tsr_status generate_batch(const plan *p, const generate_args *a, model *m, int64_t first,
                                 int64_t count, batch *b, int64_t *steps)
{
    const tsr_gen_prompt *prompts = p->prompts.items + first;
    int64_t n = p->batch, t = p->context, v = p->cfg.vocab_size;
    tsr_sampling sampling = {a->greedy, a->temperature, a->top_k, a->top_p,
                             tsr_rng_key((uint64_t)a->seed, "generate")};
    for (int64_t s = 0; s < n; s++) {
        /* a partial batch repeats its first prompt; those rows are not printed */
        const tsr_gen_prompt *g = &prompts[s < count ? s : 0];
        memcpy(b->seq + s * t, g->ids, (size_t)g->len * sizeof *b->seq);
        b->made[s] = 0;
        b->done[s] = s >= count;
    }
    for (int64_t pos = 0; pos + 1 < t; pos++) {
        bool all_done = true;
        for (int64_t s = 0; s < n; s++) {
            b->column[s] = b->seq[s * t + pos];
            all_done = all_done && b->done[s];
        }
        if (all_done)
            break;
        TRY(tsr_net_decode_logits(m->net, b->column, pos, b->slice, b->full));
        (*steps)++;
        for (int64_t s = 0; s < n; s++) {
            const tsr_gen_prompt *g = &prompts[s < count ? s : 0];
            if (pos + 1 < g->len)
                continue; /* the prompt goes on */
            int32_t next = p->eos >= 0 ? (int32_t)p->eos : 0;
            if (!b->done[s]) {
                /* the sample index keys the draw: a prompt draws the same
                 * tokens whichever batch it is in */
                int64_t index = first + s;
                next =
                    tsr_sample_token(b->full + s * v, v, &sampling, index, pos, b->probs, b->order);
                b->made[s]++;
                if (next == p->eos || b->made[s] >= a->max_new)
                    b->done[s] = true;
            }
            b->seq[s * t + pos + 1] = next;
        }
    }
    return TSR_OK;
}

/* Rank 0: each prompt and what followed it; *right counts the held-out
 * problems answered exactly. */
static tsr_status print_batch(const plan *p, int64_t first, int64_t count, const batch *b,
                              int64_t *right)
{
    int64_t t = p->context;
    for (int64_t s = 0; s < count; s++) {
        const tsr_gen_prompt *g = &p->prompts.items[first + s];
        const int32_t *made = b->seq + s * t + g->len;
        int64_t n = b->made[s];
        int64_t shown = n > 0 && made[n - 1] == p->eos ? n - 1 : n;
        char *text = NULL;
        TRY(tsr_gen_text_decode(&p->text, made, shown, &text));
        if (g->expected == NULL) {
            printf("%s%s\n", g->text, text);
        } else {
            bool ok =
                n == g->expected_len && memcmp(made, g->expected, (size_t)n * sizeof *made) == 0;
            char *want = NULL;
            tsr_status st = tsr_gen_text_decode(&p->text, g->expected, g->expected_len - 1, &want);
            if (st == TSR_OK && ok)
                printf("%s%-8s right\n", g->text, text);
            else if (st == TSR_OK)
                printf("%s%-8s wrong, expected %s\n", g->text, text, want);
            free(want);
            *right += ok;
            if (st != TSR_OK) {
                free(text);
                return st;
            }
        }
        free(text);
    }
    fflush(stdout);
    return TSR_OK;
}

/* Every rank learns whether any failed, so that none goes on into a
 * collective the others have left (rank 0's printing can fail alone). */
static tsr_status agree(tsr_status st)
{
    int failed = st != TSR_OK, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any && st == TSR_OK)
        return tsr_error_set(TSR_ERR_COMM, "another rank failed");
    return st;
}

static tsr_status run(const plan *p, const generate_args *a, tsr_grid *grid, int rank)
{
    model m;
    tsr_status st = model_load(&p->cfg, grid, &m);
    int64_t n = p->batch, t = p->context, v = p->cfg.vocab_size;
    batch b = {0};
    if (st == TSR_OK) {
        b.seq = calloc((size_t)(n * t), sizeof *b.seq);
        b.column = calloc((size_t)n, sizeof *b.column);
        b.made = calloc((size_t)n, sizeof *b.made);
        b.done = calloc((size_t)n, sizeof *b.done);
        b.slice = calloc((size_t)(n * v), sizeof *b.slice);
        b.full = calloc((size_t)(n * v), sizeof *b.full);
        b.probs = calloc((size_t)v, sizeof *b.probs);
        b.order = calloc((size_t)v, sizeof *b.order);
        if (!b.seq || !b.column || !b.made || !b.done || !b.slice || !b.full || !b.probs ||
            !b.order)
            st = tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "out of memory for the batch");
    }
    st = agree(st);
    if (st == TSR_OK && rank == 0)
        fprintf(stderr,
                "tessera generate: %lld prompt(s) in batches of %lld, context %lld, %s, up to "
                "%lld new tokens, stopping at token %lld\n",
                (long long)p->prompts.count, (long long)n, (long long)t,
                a->greedy || a->top_k == 1 || a->temperature <= 0.0 ? "greedy" : "sampled",
                (long long)a->max_new, (long long)p->eos);
    int64_t right = 0, steps = 0, made = 0;
    uint64_t t0 = tsr_time_ns();
    for (int64_t first = 0; st == TSR_OK && first < p->prompts.count; first += n) {
        int64_t count = p->prompts.count - first < n ? p->prompts.count - first : n;
        st = generate_batch(p, a, &m, first, count, &b, &steps);
        for (int64_t s = 0; s < count; s++)
            made += b.made[s];
        if (st == TSR_OK && rank == 0)
            st = print_batch(p, first, count, &b, &right);
        st = agree(st);
    }
    double seconds = (double)(tsr_time_ns() - t0) * 1e-9;
    if (st == TSR_OK && a->held_out > 0 && rank == 0)
        printf("%lld of %lld held-out problems answered right\n", (long long)right,
               (long long)p->prompts.count);
    if (st == TSR_OK && rank == 0)
        fprintf(stderr,
                "tessera generate: %lld tokens generated in %lld steps of %lld sequences: %.3f "
                "s, %.2f ms a step\n",
                (long long)made, (long long)steps, (long long)n, seconds,
                steps > 0 ? 1e3 * seconds / (double)steps : 0.0);
    free(b.seq);
    free(b.column);
    free(b.made);
    free(b.done);
    free(b.slice);
    free(b.full);
    free(b.probs);
    free(b.order);
    model_free(&m);
    return st;
}

static void print_help(void)
{
    generate_args d = defaults();
    puts("usage: tessera generate --load CKPT_DIR (--prompt TEXT | --prompt-file FILE | "
         "--held-out N) [flags]\n\n"
         "continues each prompt with the checkpoint's model, one token at a time over a\n"
         "key/value cache; greedy or sampled (temperature, top-k, top-p) from --seed\n\n"
         "flags:");
    tsr_flags_print_help(&generate_table, &d, stdout);
}

int tsr_cmd_generate(int argc, char **argv)
{
    tsr_rank_info info = tsr_rank_info_from_env();
    if (tsr_args_want_help(argc, argv)) {
        if (info.rank == 0)
            print_help();
        return 0;
    }
    generate_args args = defaults();
    plan p;
    memset(&p, 0, sizeof p);
    tsr_status st = tsr_flags_parse(&generate_table, &args, argc, argv, NULL);
    if (st == TSR_OK)
        st = prepare(&args, info.world_size, &p);
    if (st != TSR_OK) {
        tsr_gen_prompts_free(&p.prompts);
        tsr_gen_text_close(&p.text);
        return tsr_report_error_once(info.rank, "generate", st);
    }
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "tessera generate: error: MPI_Init failed\n");
        return 1;
    }
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    /* stdout is the generated text; what the run says goes to stderr */
    tsr_log_configure(rank, world, TSR_LOG_WARN);
    tsr_comm_options options;
    tsr_comm_options_from_config(&p.cfg, &options);
    tsr_comm *comm = NULL;
    tsr_grid *grid = NULL;
    st = tsr_comm_create_world(MPI_COMM_WORLD, &options, &comm);
    if (st == TSR_OK)
        st = tsr_grid_create(&p.cfg, comm, &grid);
    if (st == TSR_OK)
        st = run(&p, &args, grid, rank);
    int code = tsr_report_mpi_outcome(rank, "generate", st);
    tsr_grid_destroy(grid);
    tsr_comm_destroy(comm);
    MPI_Finalize();
    tsr_gen_prompts_free(&p.prompts);
    tsr_gen_text_close(&p.text);
    return code;
}

/*
 * checkpoint_metadata.c - root attributes of a checkpoint file: format
 * version, training position, configuration. The model-shape attributes
 * are checked on load; the others document the run that wrote the file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "tessera/log.h"

static void attr_i64(hid_t obj, const char *name, int64_t v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT64, &v);
    H5Aclose(attr);
    H5Sclose(space);
}

static void attr_f64(hid_t obj, const char *name, double v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(attr);
    H5Sclose(space);
}

static void attr_str(hid_t obj, const char *name, const char *v)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(v) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, v);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

int tsr_checkpoint_read_string(hid_t obj, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, len);
    herr_t err = attr < 0 ? -1 : H5Aread(attr, type, buf);
    H5Tclose(type);
    if (attr >= 0)
        H5Aclose(attr);
    if (err < 0)
        buf[0] = '\0';
    buf[len - 1] = '\0';
    return err < 0 ? -1 : 0;
}

/* The attributes that must agree between the file and the loading run. */
typedef struct shape_attr {
    const char *name;
    int64_t value;
} shape_attr;

static int model_shape(const tsr_config *cfg, shape_attr out[12])
{
    int n = 0;
    out[n++] = (shape_attr){"num_layers", cfg->num_layers};
    out[n++] = (shape_attr){"hidden_size", cfg->hidden_size};
    out[n++] = (shape_attr){"num_attention_heads", cfg->num_attention_heads};
    out[n++] = (shape_attr){"num_query_groups", tsr_config_num_query_groups(cfg)};
    out[n++] = (shape_attr){"ffn_hidden_size", tsr_config_ffn_hidden_size(cfg)};
    out[n++] = (shape_attr){"normalization_rmsnorm", cfg->normalization == TSR_NORM_RMSNORM};
    out[n++] = (shape_attr){"position_embedding_rope",
                            cfg->position_embedding_type == TSR_POS_ROPE};
    out[n++] = (shape_attr){"swiglu", cfg->swiglu};
    out[n++] = (shape_attr){"disable_bias_linear", cfg->disable_bias_linear};
    out[n++] = (shape_attr){"untie_embeddings_and_output_weights",
                            cfg->untie_embeddings_and_output_weights};
    return n;
}

void tsr_checkpoint_write_metadata(hid_t file, const tsr_config *cfg,
                                   const tsr_checkpoint_state *state)
{
    attr_i64(file, "format_version", TSR_CHECKPOINT_FORMAT_VERSION);
    attr_i64(file, "iteration", state->iteration);
    attr_i64(file, "consumed_samples", state->consumed_samples);
    attr_i64(file, "adam_step", state->adam_step);
    attr_i64(file, "nan_iterations", state->nan_iterations);
    attr_i64(file, "seed", state->seed);
    if (state->weights_only)
        attr_i64(file, "weights_only", 1);
    if (state->loss_scale > 0.0) {
        attr_f64(file, "loss_scale", state->loss_scale);
        attr_i64(file, "loss_scale_growth", state->loss_scale_growth);
        attr_i64(file, "loss_scale_hysteresis", state->loss_scale_hysteresis);
    }
    /* apart from the scale: an fp32 or bf16 run resuming an fp16 one must
     * keep its schedule's step, and write it on */
    if (state->overflow_iterations > 0)
        attr_i64(file, "overflow_iterations", state->overflow_iterations);
    shape_attr shape[12];
    int n = model_shape(cfg, shape);
    for (int i = 0; i < n; i++)
        attr_i64(file, shape[i].name, shape[i].value);
    attr_i64(file, "seq_length", cfg->seq_length);
    attr_i64(file, "micro_batch_size", cfg->micro_batch_size);
    attr_i64(file, "global_batch_size", cfg->global_batch_size);
    attr_i64(file, "train_iters", cfg->train_iters);
    attr_i64(file, "lr_warmup_iters", cfg->lr_warmup_iters);
    attr_i64(file, "lr_decay_iters", cfg->lr_decay_iters);
    attr_i64(file, "lr_decay_style", cfg->lr_decay_style);
    attr_f64(file, "lr", cfg->lr);
    attr_f64(file, "min_lr", cfg->min_lr);
    attr_f64(file, "weight_decay", cfg->weight_decay);
    attr_f64(file, "adam_beta1", cfg->adam_beta1);
    attr_f64(file, "adam_beta2", cfg->adam_beta2);
    attr_f64(file, "adam_eps", cfg->adam_eps);
    attr_f64(file, "clip_grad", cfg->clip_grad);
    attr_f64(file, "norm_epsilon", cfg->norm_epsilon);
    attr_f64(file, "rotary_base", cfg->rotary_base);
    attr_i64(file, "tensor_model_parallel_size", cfg->tensor_model_parallel_size);
    attr_i64(file, "pipeline_model_parallel_size", cfg->pipeline_model_parallel_size);
    attr_str(file, "data_path", cfg->data_path);
    /* the attention it trained with (informative for training, which
     * takes it from the flags; what generation takes) */
    if (cfg->attention_pattern != NULL)
        attr_str(file, "attention_pattern", cfg->attention_pattern);
    attr_i64(file, "window_size", cfg->window_size);
    attr_i64(file, "sparse_attention", cfg->sparse_attention);
    attr_i64(file, "sparse_block", cfg->sparse_block);
    attr_i64(file, "sparse_stride", cfg->sparse_stride);
    attr_i64(file, "prefix_lm", cfg->prefix_lm);
    if (cfg->lora_rank > 0) {
        /* an adapter run: what it adapts, and which weights it started from */
        unsigned targets = 0;
        char words[32] = "";
        tsr_config_lora_targets(cfg, &targets);
        tsr_config_lora_target_text(targets, words, sizeof words);
        attr_i64(file, "lora_rank", cfg->lora_rank);
        attr_f64(file, "lora_alpha", tsr_config_lora_scale(cfg) * cfg->lora_rank);
        attr_f64(file, "lora_dropout", cfg->lora_dropout);
        attr_str(file, "lora_target", words);
        const char *base = state->lora_base[0] != '\0'           ? state->lora_base
                           : cfg->pretrained_checkpoint != NULL ? cfg->pretrained_checkpoint
                           : cfg->load != NULL                  ? cfg->load
                                                                : "";
        attr_str(file, "lora_base", base);
    }
}

typedef enum { ATTR_READ, ATTR_ABSENT, ATTR_DAMAGED } attr_result;

/* ATTR_DAMAGED: HDF5 failed on it (a metadata checksum, a malformed
 * message), which is not the same as a file without the attribute. */
static attr_result read_i64(hid_t file, const char *name, int64_t *v)
{
    htri_t exists = H5Aexists(file, name);
    if (exists == 0)
        return ATTR_ABSENT;
    if (exists < 0)
        return ATTR_DAMAGED;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    herr_t err = attr < 0 ? -1 : H5Aread(attr, H5T_NATIVE_INT64, v);
    if (attr >= 0)
        H5Aclose(attr);
    return err < 0 ? ATTR_DAMAGED : ATTR_READ;
}

bool tsr_checkpoint_file_weights_only(hid_t file)
{
    int64_t v = 0;
    return read_i64(file, "weights_only", &v) == ATTR_READ && v == 1;
}

static tsr_status attr_error(attr_result r, const char *path, const char *name)
{
    if (r == ATTR_DAMAGED)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s is damaged: HDF5 cannot read its attribute %s as an "
                             "integer (a metadata checksum or format check failed, or the "
                             "attribute has another type); load an earlier checkpoint",
                             path, name);
    return tsr_error_set(TSR_ERR_FORMAT, "%s lacks the attribute %s", path, name);
}

/* The epsilon and rotary base do not change a tensor's shape, so a run
 * may load weights trained with others; that is almost always a forgotten
 * flag (a converted LLaMA's rope_theta, say), hence the warning. */
static void warn_numerics(hid_t file, const char *path, const tsr_config *cfg)
{
    struct {
        const char *name, *flag;
        double value;
        bool used;
    } f[] = {{"norm_epsilon", "--norm-epsilon", cfg->norm_epsilon, true},
             {"rotary_base", "--rotary-base", cfg->rotary_base,
              cfg->position_embedding_type == TSR_POS_ROPE}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        double saved = 0.0;
        if (!f[i].used || H5Aexists(file, f[i].name) <= 0)
            continue;
        hid_t attr = H5Aopen(file, f[i].name, H5P_DEFAULT);
        herr_t err = attr < 0 ? -1 : H5Aread(attr, H5T_NATIVE_DOUBLE, &saved);
        if (attr >= 0)
            H5Aclose(attr);
        if (err >= 0 && saved != f[i].value)
            tsr_log_once(TSR_LOG_WARN,
                         "checkpoint %s was trained with %s %.9g, this run uses %.9g: give %s "
                         "%.9g to compute the function it learned",
                         path, f[i].name, saved, f[i].value, f[i].flag, saved);
    }
}

/* The adapters of a LoRA checkpoint must be the run's: the same linears
 * (others would be dropped or left at their initialisation) and alpha
 * (another would rescale what they learned). */
static tsr_status check_lora(hid_t file, const char *path, const tsr_config *cfg)
{
    double alpha = 0.0, want = tsr_config_lora_scale(cfg) * cfg->lora_rank;
    if (H5Aexists(file, "lora_alpha") > 0) {
        hid_t attr = H5Aopen(file, "lora_alpha", H5P_DEFAULT);
        if (attr >= 0) {
            H5Aread(attr, H5T_NATIVE_DOUBLE, &alpha);
            H5Aclose(attr);
        }
    }
    if (alpha != want)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s holds LoRA adapters trained with --lora-alpha %g; "
                             "this run has %g: give --lora-alpha %g",
                             path, alpha, want, alpha);
    char saved[32] = "", mine[32] = "";
    unsigned bits = 0;
    tsr_config_lora_targets(cfg, &bits);
    tsr_config_lora_target_text(bits, mine, sizeof mine);
    tsr_checkpoint_read_string(file, "lora_target", saved, sizeof saved);
    if (strcmp(saved, mine) != 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s holds LoRA adapters on %s; this run adapts %s: give "
                             "--lora-target %s",
                             path, saved, mine, saved);
    return TSR_OK;
}

tsr_status tsr_checkpoint_read_metadata(hid_t file, const char *path, const tsr_config *cfg,
                                        tsr_checkpoint_state *state)
{
    int64_t version = 0;
    attr_result r = read_i64(file, "format_version", &version);
    if (r == ATTR_DAMAGED)
        return attr_error(r, path, "format_version");
    if (r == ATTR_ABSENT)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s is an HDF5 file but not a tessera checkpoint (no "
                             "format_version attribute)",
                             path);
    if (version < 1 || version > TSR_CHECKPOINT_FORMAT_VERSION)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "%s has checkpoint format version %lld; this tessera reads "
                             "versions 1 to %d",
                             path, (long long)version, TSR_CHECKPOINT_FORMAT_VERSION);
    state->format_version = version;
    state->weights_only = tsr_checkpoint_file_weights_only(file);
    struct {
        const char *name;
        int64_t *dst;
    } position[] = {{"iteration", &state->iteration},
                    {"consumed_samples", &state->consumed_samples},
                    {"adam_step", &state->adam_step},
                    {"nan_iterations", &state->nan_iterations},
                    {"seed", &state->seed}};
    for (size_t i = 0; i < sizeof position / sizeof position[0]; i++) {
        if ((r = read_i64(file, position[i].name, position[i].dst)) != ATTR_READ)
            return attr_error(r, path, position[i].name);
        int64_t v = *position[i].dst;
        if (position[i].dst != &state->seed && (v < 0 || v > TSR_CHECKPOINT_COUNTER_MAX))
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "checkpoint %s is damaged: its %s is %lld, outside 0 .. %lld; "
                                 "load an earlier checkpoint",
                                 path, position[i].name, (long long)v,
                                 (long long)TSR_CHECKPOINT_COUNTER_MAX);
    }
    state->loss_scale = 0.0; /* optional: fp16 runs write it */
    if (H5Aexists(file, "loss_scale") > 0) {
        hid_t attr = H5Aopen(file, "loss_scale", H5P_DEFAULT);
        herr_t err = attr < 0 ? -1 : H5Aread(attr, H5T_NATIVE_DOUBLE, &state->loss_scale);
        if (attr >= 0)
            H5Aclose(attr);
        if (err < 0 || !(state->loss_scale > 0.0))
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "checkpoint %s is damaged: its loss_scale cannot be read as a "
                                 "positive number; load an earlier checkpoint",
                                 path);
        if ((r = read_i64(file, "loss_scale_growth", &state->loss_scale_growth)) != ATTR_READ)
            return attr_error(r, path, "loss_scale_growth");
        if ((r = read_i64(file, "loss_scale_hysteresis", &state->loss_scale_hysteresis)) !=
            ATTR_READ)
            return attr_error(r, path, "loss_scale_hysteresis");
    }
    state->overflow_iterations = 0; /* optional: written once an fp16 iteration overflowed */
    if ((r = read_i64(file, "overflow_iterations", &state->overflow_iterations)) == ATTR_DAMAGED)
        return attr_error(r, path, "overflow_iterations");
    if (state->overflow_iterations < 0 || state->overflow_iterations > TSR_CHECKPOINT_COUNTER_MAX)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s is damaged: its overflow_iterations is %lld, outside "
                             "0 .. %lld; load an earlier checkpoint",
                             path, (long long)state->overflow_iterations,
                             (long long)TSR_CHECKPOINT_COUNTER_MAX);
    if (state->adam_step > state->iteration || state->nan_iterations > state->iteration ||
        state->overflow_iterations > state->iteration - state->adam_step ||
        state->consumed_samples < state->iteration)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s is damaged: its counters disagree (iteration %lld, "
                             "adam_step %lld, nan_iterations %lld, overflow_iterations %lld, "
                             "consumed_samples %lld: each iteration consumes samples and takes "
                             "at most one step, and an overflowed one none); load an earlier "
                             "checkpoint",
                             path, (long long)state->iteration, (long long)state->adam_step,
                             (long long)state->nan_iterations,
                             (long long)state->overflow_iterations,
                             (long long)state->consumed_samples);
    shape_attr shape[12];
    int n = model_shape(cfg, shape);
    for (int i = 0; i < n; i++) {
        int64_t saved = 0;
        if ((r = read_i64(file, shape[i].name, &saved)) != ATTR_READ)
            return attr_error(r, path, shape[i].name);
        if (saved != shape[i].value)
            return tsr_error_set(TSR_ERR_FORMAT,
                                 "checkpoint %s was written for a different model: %s is %lld "
                                 "there but %lld in this run; use the model flags it was "
                                 "saved with",
                                 path, shape[i].name, (long long)saved,
                                 (long long)shape[i].value);
    }
    int64_t lora_rank = 0;
    if ((r = read_i64(file, "lora_rank", &lora_rank)) == ATTR_DAMAGED)
        return attr_error(r, path, "lora_rank");
    state->adapters = lora_rank > 0;
    state->lora_base[0] = '\0';
    if (lora_rank > 0)
        tsr_checkpoint_read_string(file, "lora_base", state->lora_base, sizeof state->lora_base);
    if (lora_rank > 0 && cfg->lora_rank == 0)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s holds LoRA adapters of rank %lld on a frozen base; "
                             "give --lora-rank %lld (with its --lora-alpha and --lora-target) "
                             "to use them, or fold them into the weights with tessera convert "
                             "--merge-lora",
                             path, (long long)lora_rank, (long long)lora_rank);
    if (lora_rank > 0 && lora_rank != cfg->lora_rank)
        return tsr_error_set(TSR_ERR_FORMAT,
                             "checkpoint %s holds LoRA adapters of rank %lld but this run has "
                             "--lora-rank %d; give --lora-rank %lld",
                             path, (long long)lora_rank, cfg->lora_rank, (long long)lora_rank);
    if (lora_rank > 0)
        return check_lora(file, path, cfg);
    warn_numerics(file, path, cfg);
    return TSR_OK;
}

static tsr_checkpoint_watch watch;

void tsr_checkpoint_set_watch(const tsr_checkpoint_watch *w)
{
    if (w != NULL)
        watch = *w;
    else
        memset(&watch, 0, sizeof watch);
}

void tsr_checkpoint_watch_begin(MPI_Comm comm, const char *what, const char *path)
{
    if (watch.begin != NULL)
        watch.begin(watch.ctx, comm, what, path);
}

void tsr_checkpoint_watch_step(void)
{
    if (watch.step != NULL)
        watch.step(watch.ctx);
}

void tsr_checkpoint_watch_end(void)
{
    if (watch.end != NULL)
        watch.end(watch.ctx);
}

void tsr_checkpoint_test_pause(void)
{
    static long written = 0;
    const char *after = getenv("TSR_CHECKPOINT_TEST_PAUSE_AFTER");
    if (after == NULL)
        return;
    const char *stop_rank = getenv("TSR_CHECKPOINT_TEST_STOP_RANK");
    if (++written == atol(after) && stop_rank != NULL) {
        int rank = 0;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        if (rank == atoi(stop_rank)) {
            fprintf(stderr, "checkpoint: world rank %d stops itself mid-save for the watch test\n",
                    rank);
            fflush(stderr);
            raise(SIGSTOP);
        }
        return;
    }
    if (written == atol(after)) {
        fprintf(stderr, "checkpoint: pausing mid-save for the crash test\n");
        fflush(stderr);
        for (;;)
            pause();
    }
}

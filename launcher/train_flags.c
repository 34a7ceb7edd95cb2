/*
 * train_flags.c - the `tessera train` flag table.
 *
 * Names are Megatron-LM's wherever Megatron has the flag; the few that are
 * tessera's own (--model, --model-plugin, --metrics-file, --log-level, --bind,
 * --backend, --device, --max-nan-iters-in-a-row, --rank-order) say so in their help.
 */
#include "train_flags.h"

#include <stddef.h>
#include <string.h>

#define OFF(field) offsetof(tsr_config, field)
#define BIG 2147483647.0
#define BIG64 9.0e18

static const char *const norm_choices[] = {"LayerNorm", "RMSNorm", NULL};
static const char *const position_choices[] = {"learned_absolute", "rope", NULL};
static const char *const decay_choices[] = {"constant", "linear", "cosine", NULL};
static const char *const granularity_choices[] = {"none", "full", "selective", NULL};
static const char *const recompute_method_choices[] = {"uniform", "block", NULL};
static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const bind_choices[] = {"core", "numa", "none", NULL};
static const char *const backend_choices[] = {"auto", "mpi", "nccl", NULL};
static const char *const device_choices[] = {"cpu", "cuda", NULL};
static const char *const sparse_choices[] = {"none", "fixed", "strided", NULL};
static const char *const balancing_choices[] = {"aux_loss", "seq_aux_loss", "none", NULL};
static const char *const drop_choices[] = {"probs", "position", NULL};
static const char *const dispatcher_choices[] = {"alltoall", "allgather", NULL};
static const char *const save_failure_choices[] = {"exit", "continue", NULL};

static const tsr_flag train_flags[] = {
    /* parallel layout */
    {"--tensor-model-parallel-size", TSR_FLAG_INT, OFF(tensor_model_parallel_size), 1, 1024,
     NULL, "N", "tensor-parallel group size"},
    {"--pipeline-model-parallel-size", TSR_FLAG_INT, OFF(pipeline_model_parallel_size), 1, 1024,
     NULL, "N", "pipeline stages"},
    {"--context-parallel-size", TSR_FLAG_INT, OFF(context_parallel_size), 1, 1024, NULL, "N",
     "context-parallel group size"},
    {"--expert-model-parallel-size", TSR_FLAG_INT, OFF(expert_model_parallel_size), 1, 1024,
     NULL, "N", "expert-parallel group size"},
    {"--num-layers-per-virtual-pipeline-stage", TSR_FLAG_INT,
     OFF(num_layers_per_virtual_pipeline_stage), 1, BIG, NULL, "N",
     "layers per virtual stage (interleaved 1F1B)"},
    {"--decoder-first-pipeline-num-layers", TSR_FLAG_INT, OFF(decoder_first_pipeline_num_layers),
     1, BIG, NULL, "N", "layers on the first pipeline stage (uneven split)"},
    {"--decoder-last-pipeline-num-layers", TSR_FLAG_INT, OFF(decoder_last_pipeline_num_layers),
     1, BIG, NULL, "N", "layers on the last pipeline stage (uneven split)"},
    {"--sequence-parallel", TSR_FLAG_BOOL, OFF(sequence_parallel), 0, 0, NULL, NULL,
     "split norm/dropout regions along the sequence across TP"},
    {"--use-distributed-optimizer", TSR_FLAG_BOOL, OFF(use_distributed_optimizer), 0, 0, NULL,
     NULL, "shard optimizer state across data-parallel ranks"},
    {"--grad-reduce-in-bf16", TSR_FLAG_BOOL, OFF(grad_reduce_in_bf16), 0, 0, NULL, NULL,
     "data-parallel gradient reductions in bf16 (with --bf16; half the bytes)"},
    {"--fp32-residual-connection", TSR_FLAG_BOOL, OFF(fp32_residual_connection), 0, 0, NULL,
     NULL, "keep the residual stream between layers in fp32 (with --bf16 / --fp16)"},
    {"--overlap-grad-reduce", TSR_FLAG_BOOL, OFF(overlap_grad_reduce), 0, 0, NULL, NULL,
     "overlap gradient reduction with backward"},
    {"--overlap-param-gather", TSR_FLAG_BOOL, OFF(overlap_param_gather), 0, 0, NULL, NULL,
     "overlap the parameter all-gather with the next forward"},
    {"--ddp-bucket-size", TSR_FLAG_INT64, OFF(ddp_bucket_size), 1, BIG64, NULL, "ELEMENTS",
     "gradient bucket size for data-parallel reduction"},
    {"--rank-order", TSR_FLAG_STRING, OFF(rank_order), 0, 0, NULL, "ORDER",
     "order of parallel dimensions, fastest first (tessera)"},

    /* model */
    {"--model", TSR_FLAG_STRING, OFF(model_name), 0, 0, NULL, "NAME",
     "model to train: gpt (shaped by the flags below), the presets gpt2 and llama "
     "(explicit flags override their shape), or a model a --model-plugin registers (tessera)"},
    {"--model-plugin", TSR_FLAG_STRING, OFF(model_plugin), 0, 0, NULL, "PATH.so",
     "load a shared object whose tsr_plugin_register() adds models for --model "
     "(examples/custom_model) (tessera)"},
    {"--num-layers", TSR_FLAG_INT, OFF(num_layers), 1, 100000, NULL, "N", "transformer layers"},
    {"--hidden-size", TSR_FLAG_INT, OFF(hidden_size), 1, 1048576, NULL, "N", "model width"},
    {"--num-attention-heads", TSR_FLAG_INT, OFF(num_attention_heads), 1, 65536, NULL, "N",
     "attention heads"},
    {"--group-query-attention", TSR_FLAG_BOOL, OFF(group_query_attention), 0, 0, NULL, NULL,
     "use grouped query attention (with --num-query-groups)"},
    {"--num-query-groups", TSR_FLAG_INT, OFF(num_query_groups), 1, 65536, NULL, "N",
     "key/value heads for grouped query attention"},
    {"--ffn-hidden-size", TSR_FLAG_INT, OFF(ffn_hidden_size), 1, 4194304, NULL, "N",
     "MLP width (default 4h, or 8h/3 rounded up to 64 with --swiglu)"},
    {"--seq-length", TSR_FLAG_INT, OFF(seq_length), 1, 1048576, NULL, "N",
     "tokens per sample"},
    {"--max-position-embeddings", TSR_FLAG_INT, OFF(max_position_embeddings), 1, 1048576, NULL,
     "N", "longest sequence the position embedding covers (default --seq-length)"},
    {"--vocab-size", TSR_FLAG_INT, OFF(vocab_size), 1, 16777216, NULL, "N",
     "vocabulary size before padding (default: from the dataset)"},
    {"--make-vocab-size-divisible-by", TSR_FLAG_INT, OFF(make_vocab_size_divisible_by), 1,
     65536, NULL, "N", "pad the vocabulary to a multiple of N x tensor-parallel size"},
    {"--normalization", TSR_FLAG_CHOICE, OFF(normalization), 0, 0, norm_choices, "KIND",
     "normalization layer"},
    {"--norm-epsilon", TSR_FLAG_DOUBLE, OFF(norm_epsilon), 1e-12, 1.0, NULL, "EPS",
     "epsilon of the normalization layers"},
    {"--position-embedding-type", TSR_FLAG_CHOICE, OFF(position_embedding_type), 0, 0,
     position_choices, "KIND", "position embedding"},
    {"--rotary-base", TSR_FLAG_DOUBLE, OFF(rotary_base), 1.0, 1e12, NULL, "BASE",
     "base of the rotary frequencies"},
    {"--swiglu", TSR_FLAG_BOOL, OFF(swiglu), 0, 0, NULL, NULL, "SwiGLU MLP instead of GELU"},
    {"--disable-bias-linear", TSR_FLAG_BOOL, OFF(disable_bias_linear), 0, 0, NULL, NULL,
     "no biases in linear layers"},
    {"--untie-embeddings-and-output-weights", TSR_FLAG_BOOL,
     OFF(untie_embeddings_and_output_weights), 0, 0, NULL, NULL,
     "separate output projection instead of the tied embedding"},
    {"--hidden-dropout", TSR_FLAG_DOUBLE, OFF(hidden_dropout), 0.0, 1.0, NULL, "P",
     "dropout after attention and MLP"},
    {"--attention-dropout", TSR_FLAG_DOUBLE, OFF(attention_dropout), 0.0, 1.0, NULL, "P",
     "dropout of attention probabilities"},
    {"--attention-pattern", TSR_FLAG_STRING, OFF(attention_pattern), 0, 0, NULL, "LIST",
     "attention of each layer: dense, window, sparse, fixed or strided, one per layer; "
     "NAME*N and (LIST)*N repeat, e.g. (dense,window)*6 (tessera)"},
    {"--window-size", TSR_FLAG_INT, OFF(window_size), 1, BIG, NULL, "W",
     "sliding-window attention: each query sees its W most recent keys, itself included"},
    {"--sparse-attention", TSR_FLAG_CHOICE, OFF(sparse_attention), 0, 0, sparse_choices, "KIND",
     "block-sparse attention (Child et al. 2019) of the sparse layers (tessera)"},
    {"--sparse-block", TSR_FLAG_INT, OFF(sparse_block), 1, BIG, NULL, "B",
     "block size of the sparse patterns; divides --seq-length (tessera)"},
    {"--sparse-stride", TSR_FLAG_INT, OFF(sparse_stride), 1, BIG, NULL, "S",
     "stride of the sparse patterns, a multiple of --sparse-block (tessera)"},
    {"--prefix-lm", TSR_FLAG_BOOL, OFF(prefix_lm), 0, 0, NULL, NULL,
     "bidirectional attention over the prefix (prompt) the data defines, causal after it; "
     "targets inside a prefix leave the loss (tessera)"},
    {"--reset-attention-mask", TSR_FLAG_BOOL, OFF(reset_attention_mask), 0, 0, NULL, NULL,
     "no attention across the end-of-document token"},
    {"--reset-position-ids", TSR_FLAG_BOOL, OFF(reset_position_ids), 0, 0, NULL, NULL,
     "positions restart after the end-of-document token (needs --reset-attention-mask)"},
    {"--eod-token", TSR_FLAG_INT, OFF(eod_token), 0, BIG, NULL, "ID",
     "end-of-document token of a file dataset, for --reset-attention-mask (tessera)"},
    {"--init-method-std", TSR_FLAG_DOUBLE, OFF(init_method_std), 0.0, 10.0, NULL, "STD",
     "standard deviation of the initial weights"},
    {"--num-experts", TSR_FLAG_INT, OFF(num_experts), 1, 65536, NULL, "N",
     "experts per MoE layer (mixture of experts)"},
    {"--moe-router-topk", TSR_FLAG_INT, OFF(moe_router_topk), 1, 65536, NULL, "K",
     "experts each token is routed to"},
    {"--moe-ffn-hidden-size", TSR_FLAG_INT, OFF(moe_ffn_hidden_size), 1, BIG, NULL, "N",
     "each expert's MLP width (default --ffn-hidden-size)"},
    {"--moe-layer-freq", TSR_FLAG_STRING, OFF(moe_layer_freq), 0, 0, NULL, "N|LIST",
     "every N-th layer is MoE (from layer 0), or one 0/1 per layer: [1,0,1,0] (default 1)"},
    {"--moe-shared-expert-intermediate-size", TSR_FLAG_INT,
     OFF(moe_shared_expert_intermediate_size), 1, BIG, NULL, "N",
     "a shared expert of width N that every token passes through"},
    {"--moe-router-pre-softmax", TSR_FLAG_BOOL, OFF(moe_router_pre_softmax), 0, 0, NULL, NULL,
     "top-k over the softmax of all experts (default: softmax over the top-k logits)"},
    {"--moe-router-load-balancing-type", TSR_FLAG_CHOICE, OFF(moe_router_load_balancing_type),
     0, 0, balancing_choices, "KIND",
     "aux_loss (over the micro batch), seq_aux_loss (per sequence) or none"},
    {"--moe-aux-loss-coeff", TSR_FLAG_DOUBLE, OFF(moe_aux_loss_coeff), 0.0, 1e3, NULL, "C",
     "weight of the load-balancing loss (0: none)"},
    {"--moe-z-loss-coeff", TSR_FLAG_DOUBLE, OFF(moe_z_loss_coeff), 0.0, 1e3, NULL, "C",
     "weight of the router z-loss, mean of logsumexp(logits)^2 (0: none)"},
    {"--moe-expert-capacity-factor", TSR_FLAG_DOUBLE, OFF(moe_expert_capacity_factor), 1e-6, 1e6,
     NULL, "F",
     "each expert takes at most ceil(F x tokens x k / experts) assignments of a micro batch, "
     "the rest dropped (default: no dropping)"},
    {"--moe-token-drop-policy", TSR_FLAG_CHOICE, OFF(moe_token_drop_policy), 0, 0, drop_choices,
     "KIND", "which assignments an expert over capacity keeps: probs (the most probable) or "
     "position (the first in token order)"},
    {"--moe-pad-expert-input-to-capacity", TSR_FLAG_BOOL, OFF(moe_pad_expert_input_to_capacity),
     0, 0, NULL, NULL,
     "pad every expert's input from every rank to its capacity (zero rows): the exchanges "
     "have fixed sizes; needs --moe-expert-capacity-factor"},
    {"--expert-tensor-parallel-size", TSR_FLAG_INT, OFF(expert_tensor_parallel_size), 1, 1024,
     NULL, "N",
     "tensor parallelism of the experts: 1 (default: each tensor-parallel rank runs its "
     "experts whole on its sequence-parallel share of the rows) or the TP size (each expert "
     "cut over tp like the dense MLP, the layer's rows gathered)"},
    {"--moe-token-dispatcher-type", TSR_FLAG_CHOICE, OFF(moe_token_dispatcher_type), 0, 0,
     dispatcher_choices, "KIND",
     "how tokens reach their experts' ranks under expert parallelism: alltoall (each row to "
     "its experts' ranks) or allgather (every rank's rows to every rank, outputs "
     "reduce-scattered back)"},
    {"--lora-rank", TSR_FLAG_INT, OFF(lora_rank), 1, 65536, NULL, "R",
     "train rank-R adapters (LoRA) on the linears of --lora-target, every other parameter "
     "frozen; needs a base (--pretrained-checkpoint or --load)"},
    {"--lora-alpha", TSR_FLAG_DOUBLE, OFF(lora_alpha), 1e-6, 1e6, NULL, "A",
     "adapter scale A / R (default A = R: scale 1)"},
    {"--lora-dropout", TSR_FLAG_DOUBLE, OFF(lora_dropout), 0.0, 1.0, NULL, "P",
     "dropout on each adapter's input"},
    {"--lora-target", TSR_FLAG_STRING, OFF(lora_target), 0, 0, NULL, "LIST",
     "linears to adapt: a comma-separated subset of qkv,proj,fc1,fc2 (default all four)"},

    /* training */
    {"--micro-batch-size", TSR_FLAG_INT, OFF(micro_batch_size), 1, 1048576, NULL, "N",
     "samples per micro batch"},
    {"--global-batch-size", TSR_FLAG_INT, OFF(global_batch_size), 1, BIG, NULL, "N",
     "samples per iteration over all data-parallel ranks (default micro x dp)"},
    {"--train-iters", TSR_FLAG_INT64, OFF(train_iters), 0, BIG64, NULL, "N",
     "iterations to train"},
    {"--lr", TSR_FLAG_DOUBLE, OFF(lr), 0.0, 1e3, NULL, "LR", "peak learning rate"},
    {"--min-lr", TSR_FLAG_DOUBLE, OFF(min_lr), 0.0, 1e3, NULL, "LR",
     "learning rate at the end of the decay"},
    {"--lr-warmup-iters", TSR_FLAG_INT64, OFF(lr_warmup_iters), 0, BIG64, NULL, "N",
     "linear warmup iterations"},
    {"--lr-decay-iters", TSR_FLAG_INT64, OFF(lr_decay_iters), 1, BIG64, NULL, "N",
     "iterations over which to decay (default --train-iters)"},
    {"--lr-decay-style", TSR_FLAG_CHOICE, OFF(lr_decay_style), 0, 0, decay_choices, "STYLE",
     "learning-rate decay"},
    {"--weight-decay", TSR_FLAG_DOUBLE, OFF(weight_decay), 0.0, 100.0, NULL, "WD",
     "decoupled weight decay (AdamW)"},
    {"--adam-beta1", TSR_FLAG_DOUBLE, OFF(adam_beta1), 0.0, 1.0, NULL, "B1", "Adam beta1"},
    {"--adam-beta2", TSR_FLAG_DOUBLE, OFF(adam_beta2), 0.0, 1.0, NULL, "B2", "Adam beta2"},
    {"--adam-eps", TSR_FLAG_DOUBLE, OFF(adam_eps), 0.0, 1.0, NULL, "EPS", "Adam epsilon"},
    {"--clip-grad", TSR_FLAG_DOUBLE, OFF(clip_grad), 0.0, 1e12, NULL, "NORM",
     "global gradient-norm clipping (0: off)"},
    {"--seed", TSR_FLAG_INT64, OFF(seed), 0, BIG64, NULL, "N",
     "seed of weights, dropout and data order"},
    {"--bf16", TSR_FLAG_BOOL, OFF(bf16), 0, 0, NULL, NULL,
     "bf16 matrix products (fp32 accumulation) with fp32 master weights"},
    {"--fp16", TSR_FLAG_BOOL, OFF(fp16), 0, 0, NULL, NULL,
     "fp16 products (fp32 accumulation), fp32 master weights, loss scaling"},
    {"--loss-scale", TSR_FLAG_DOUBLE, OFF(loss_scale), 1e-30, 1e30, NULL, "S",
     "fixed fp16 loss scale (default: dynamic)"},
    {"--initial-loss-scale", TSR_FLAG_DOUBLE, OFF(initial_loss_scale), 1e-30, 1e30, NULL, "S",
     "first dynamic fp16 loss scale (default 2^32)"},
    {"--min-loss-scale", TSR_FLAG_DOUBLE, OFF(min_loss_scale), 1e-30, 1e30, NULL, "S",
     "lowest dynamic fp16 loss scale (default 1)"},
    {"--loss-scale-window", TSR_FLAG_INT, OFF(loss_scale_window), 1, BIG, NULL, "N",
     "steps without overflow before the scale doubles (default 1000)"},
    {"--hysteresis", TSR_FLAG_INT, OFF(hysteresis), 1, BIG, NULL, "N",
     "overflows tolerated before the scale halves (default 2)"},
    {"--max-nan-iters-in-a-row", TSR_FLAG_INT, OFF(max_nan_iters_in_a_row), 1, BIG, NULL, "N",
     "stop after this many consecutive NaN/Inf iterations (tessera)"},
    {"--recompute-granularity", TSR_FLAG_CHOICE, OFF(recompute_granularity), 0, 0,
     granularity_choices, "KIND", "activation recomputation"},
    {"--recompute-method", TSR_FLAG_CHOICE, OFF(recompute_method), 0, 0,
     recompute_method_choices, "METHOD", "which layers full recomputation covers"},
    {"--recompute-num-layers", TSR_FLAG_INT, OFF(recompute_num_layers), 1, 100000, NULL, "N",
     "layers per recomputed group (uniform) or recomputed layers per stage (block)"},

    /* data */
    {"--data-path", TSR_FLAG_WORDS, OFF(data_path), 0, 0, NULL, "PATH...",
     "dataset: PREFIX of .bin/.idx, FILE.h5, a blend W1 PREFIX1 W2 PREFIX2 ... (separate "
     "or quoted words), synthetic:addition[:DIGITS] or synthetic:random"},
    {"--split", TSR_FLAG_STRING, OFF(split), 0, 0, NULL, "A,B,C",
     "train,valid,test proportions"},
    {"--eval-interval", TSR_FLAG_INT64, OFF(eval_interval), 0, BIG64, NULL, "N",
     "iterations between evaluations, also run after the last iteration (0: no evaluation)"},
    {"--eval-iters", TSR_FLAG_INT64, OFF(eval_iters), 1, BIG64, NULL, "N",
     "batches per evaluation"},
    {"--skip-train", TSR_FLAG_BOOL, OFF(skip_train), 0, 0, NULL, NULL,
     "no training: evaluate the model (from --load or --pretrained-checkpoint) on "
     "--eval-iters validation batches and exit, saving nothing"},

    /* checkpoints */
    {"--save", TSR_FLAG_STRING, OFF(save), 0, 0, NULL, "DIR", "checkpoint directory to write"},
    {"--load", TSR_FLAG_STRING, OFF(load), 0, 0, NULL, "DIR", "checkpoint directory to resume from"},
    {"--save-interval", TSR_FLAG_INT64, OFF(save_interval), 1, BIG64, NULL, "N",
     "iterations between checkpoints"},
    {"--ckpt-step", TSR_FLAG_INT64, OFF(ckpt_step), 0, BIG64, NULL, "N",
     "load the checkpoint of iteration N instead of the latest"},
    {"--pretrained-checkpoint", TSR_FLAG_STRING, OFF(pretrained_checkpoint), 0, 0, NULL, "DIR",
     "when --load holds no checkpoint (or is not given), fine-tune from DIR's weights"},
    {"--finetune", TSR_FLAG_BOOL, OFF(finetune), 0, 0, NULL, NULL,
     "load weights only: iteration, optimizer state and data position start fresh"},
    {"--no-load-optim", TSR_FLAG_BOOL, OFF(no_load_optim), 0, 0, NULL, NULL,
     "do not load the optimizer state (fresh Adam moments and step count)"},
    {"--no-load-rng", TSR_FLAG_BOOL, OFF(no_load_rng), 0, 0, NULL, NULL,
     "accepted for Megatron command lines: checkpoints hold no random state"},
    {"--save-failure", TSR_FLAG_CHOICE, OFF(save_failure), 0, 0, save_failure_choices, "WHAT",
     "when a save fails (disk full, unwritable): exit (exit 1) or continue training, warned "
     "(tessera)"},
    {"--async-save", TSR_FLAG_BOOL, OFF(async_save), 0, 0, NULL, NULL,
     "write checkpoints in a background thread while training goes on"},
    {"--exit-interval", TSR_FLAG_INT64, OFF(exit_interval), 0, BIG64, NULL, "N",
     "stop (saving a checkpoint) at the first iteration divisible by N (0: never)"},
    {"--exit-duration-in-mins", TSR_FLAG_DOUBLE, OFF(exit_duration_mins), 0, 1e9, NULL, "M",
     "stop (saving a checkpoint) once the run has trained M minutes (0: no limit)"},
    {"--exit-signal-handler", TSR_FLAG_BOOL, OFF(exit_signal_handler), 0, 0, NULL, NULL,
     "on SIGTERM or SIGUSR1, stop at the end of the iteration, saving a checkpoint"},

    /* logging and runtime */
    {"--log-interval", TSR_FLAG_INT64, OFF(log_interval), 1, BIG64, NULL, "N",
     "iterations between log lines"},
    {"--cluster", TSR_FLAG_STRING, OFF(cluster), 0, 0, NULL, "PRESET|FILE",
     "predict the iteration time on this machine (dgx-a100, dgx-h100, local, or a file of "
     "'tessera calibrate') and log it beside the measured one"},
    {"--metrics-file", TSR_FLAG_STRING, OFF(metrics_file), 0, 0, NULL, "FILE",
     "also write each log line as JSON to FILE (tessera)"},
    {"--log-level", TSR_FLAG_CHOICE, OFF(log_level), 0, 0, log_level_choices, "LEVEL",
     "least severe message printed (tessera)"},
    {"--distributed-timeout-minutes", TSR_FLAG_DOUBLE, OFF(distributed_timeout_minutes), 0.001,
     1e6, NULL, "MIN", "end the job if a collective waits longer (fractions allowed)"},
    {"--watchdog-dir", TSR_FLAG_STRING, OFF(watchdog_dir), 0, 0, NULL, "DIR",
     "where a watchdog that fires writes each rank's recent communication calls (default: "
     "the working directory) (tessera)"},
    {"--bind", TSR_FLAG_CHOICE, OFF(bind), 0, 0, bind_choices, "POLICY",
     "bind each rank to its cores, its NUMA node, or not at all (tessera)"},
    {"--backend", TSR_FLAG_CHOICE, OFF(backend), 0, 0, backend_choices, "NAME",
     "communication backend (tessera)"},
    {"--device", TSR_FLAG_CHOICE, OFF(device), 0, 0, device_choices, "NAME",
     "where the model computes: cpu (the default), or cuda, which is not built yet (tessera)"},
};

const tsr_flag_table tsr_train_flag_table = {
    "train", train_flags, sizeof train_flags / sizeof train_flags[0]};

/* The presets among the model names; every other name (gpt, a plugin's)
 * takes its shape from the flags alone. Whether a name is registered is
 * known only once plugins are loaded (launcher/model_select.c). */
static tsr_model_preset preset_of(const char *model_name)
{
    if (strcmp(model_name, "gpt2") == 0)
        return TSR_PRESET_GPT2;
    if (strcmp(model_name, "llama") == 0)
        return TSR_PRESET_LLAMA;
    return TSR_PRESET_NONE;
}

/* The preset must be applied before the other flags so that they win; find
 * its value without judging the rest of argv (the full parse does that). */
static tsr_status find_preset(int argc, char **argv, tsr_model_preset *preset)
{
    tsr_config scratch;
    tsr_config_defaults(&scratch);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        char *pair[2] = {argv[i], i + 1 < argc ? argv[i + 1] : NULL};
        int n = 0;
        if (strcmp(argv[i], "--model") == 0)
            n = pair[1] ? 2 : 1;
        else if (strncmp(argv[i], "--model=", 8) == 0)
            n = 1;
        if (n == 0)
            continue;
        tsr_status st = tsr_flags_parse(&tsr_train_flag_table, &scratch, n, pair, NULL);
        if (st != TSR_OK)
            return st;
        *preset = preset_of(scratch.model_name);
    }
    return TSR_OK;
}

tsr_status tsr_train_config_from_args(tsr_config *cfg, int argc, char **argv, int world_size)
{
    tsr_status st = tsr_train_config_parse(cfg, argc, argv);
    return st != TSR_OK ? st : tsr_config_validate(cfg, world_size);
}

tsr_status tsr_train_config_parse(tsr_config *cfg, int argc, char **argv)
{
    tsr_config_defaults(cfg);
    tsr_status st = find_preset(argc, argv, &cfg->model);
    if (st != TSR_OK)
        return st;
    tsr_config_apply_preset(cfg);
    int rest = 0;
    st = tsr_flags_parse(&tsr_train_flag_table, cfg, argc, argv, &rest);
    if (st != TSR_OK)
        return st;
    if (rest != argc)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "unexpected '--' in 'tessera train' arguments; remove it");
    if (cfg->num_query_groups > 0 && cfg->num_query_groups != cfg->num_attention_heads)
        cfg->group_query_attention = true;
    return TSR_OK;
}

/*
 * cmd_preprocess.c - `tessera preprocess`: text -> Megatron .bin/.idx.
 *
 * Reads --input one document per line: plain text (.txt and anything not
 * .json/.jsonl: the line without its line break is the document), or JSON
 * lines (.jsonl/.json: one object per line, the documents are the string
 * values of --json-keys, default "text"). Writes, per key, the pair
 * <output-prefix>_<key>_document.bin/.idx exactly as Megatron's
 * preprocess_data.py names and lays it out: one sequence per non-empty
 * document (with the end-of-document id appended under --append-eod), one
 * document index per input line, tokens stored as uint16 below 65500 ids
 * and int32 above. Runs as one process; no MPI. On any error the partial
 * outputs are removed and the exit code is 2 for bad input, 1 otherwise.
 * --input may be a pipe (it is read once, front to back); the directory of
 * --output-prefix must exist (it is not created). With --sft the input is
 * instruction data, one conversation per line, written with its loss mask
 * (preprocess_sft.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "commands.h"
#include "data/file_check.h"
#include "data/indexed.h"
#include "data/tokenizer.h"
#include "data/tokenizer_json.h"
#include "flags.h"
#include "preprocess_sft.h"
#include "rank_env.h"

enum { MAX_KEYS = 16 };

typedef struct preprocess_args {
    const char *input;
    const char *output_prefix;
    int tokenizer_type;
    const char *vocab_file;
    const char *merge_file;
    const char *json_keys;
    bool append_eod;
    bool sft;
    const char *prompt_key, *response_key;
    int chat_template;
} preprocess_args;

static const char *const tokenizer_choices[] = {"byte", "gpt2", "GPT2BPETokenizer", NULL};
static const char *const template_choices[] = {"none", "chatml", NULL};

#define OFF(f) offsetof(preprocess_args, f)
static const tsr_flag preprocess_flags[] = {
    {"--input", TSR_FLAG_STRING, OFF(input), 0, 0, NULL, "FILE",
     "text to tokenize: .txt (one document per line) or .jsonl (one JSON object per line)"},
    {"--output-prefix", TSR_FLAG_STRING, OFF(output_prefix), 0, 0, NULL, "P",
     "writes P_<key>_document.bin/.idx (key: text for .txt input)"},
    {"--tokenizer-type", TSR_FLAG_CHOICE, OFF(tokenizer_type), 0, 0, tokenizer_choices, "TYPE",
     "byte (ids 0-255, end of document 256) or gpt2 (byte-level BPE; GPT2BPETokenizer is "
     "Megatron's name for it)"},
    {"--vocab-file", TSR_FLAG_STRING, OFF(vocab_file), 0, 0, NULL, "FILE",
     "GPT-2 vocab.json (gpt2 only)"},
    {"--merge-file", TSR_FLAG_STRING, OFF(merge_file), 0, 0, NULL, "FILE",
     "GPT-2 merges.txt (gpt2 only)"},
    {"--json-keys", TSR_FLAG_STRING, OFF(json_keys), 0, 0, NULL, "\"K1 K2\"",
     "keys of the .jsonl objects to tokenize, one output pair each (default: text)"},
    {"--append-eod", TSR_FLAG_BOOL, OFF(append_eod), 0, 0, NULL, NULL,
     "end every non-empty document with the end-of-document id"},
    {"--sft", TSR_FLAG_BOOL, OFF(sft), 0, 0, NULL, NULL,
     "instruction data: one conversation per .jsonl line into P_sft_document.bin/.idx and "
     "its loss mask P_sft_document_lossmask.bin/.idx (the loss trains on responses only)"},
    {"--prompt-key", TSR_FLAG_STRING, OFF(prompt_key), 0, 0, NULL, "K",
     "--sft: the key of the prompt (default prompt)"},
    {"--response-key", TSR_FLAG_STRING, OFF(response_key), 0, 0, NULL, "K",
     "--sft: the key of the response (default response)"},
    {"--chat-template", TSR_FLAG_CHOICE, OFF(chat_template), 0, 0, template_choices, "NAME",
     "--sft: read \"messages\" lists of {role, content} rendered as chatml "
     "(<|im_start|>role\\ncontent<|im_end|>), assistant turns trained on"},
};
#undef OFF

static const tsr_flag_table preprocess_table = {
    "preprocess", preprocess_flags, sizeof preprocess_flags / sizeof preprocess_flags[0]};

typedef struct job {
    const preprocess_args *args;
    tsr_tokenizer *tok;
    bool jsonl;
    int key_count;
    char *keys[MAX_KEYS];
    char *key_storage;
    tsr_indexed_writer *writers[MAX_KEYS];
    tsr_json_text values[MAX_KEYS];
    tsr_token_buffer ids;
    int64_t documents, tokens[MAX_KEYS];
} job;

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static tsr_status parse_keys(job *jb)
{
    const char *text = jb->args->json_keys ? jb->args->json_keys : "text";
    jb->key_storage = strdup(text);
    if (jb->key_storage == NULL)
        return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot copy --json-keys");
    for (char *p = strtok(jb->key_storage, " ,"); p != NULL; p = strtok(NULL, " ,")) {
        if (jb->key_count == MAX_KEYS)
            return tsr_error_set(TSR_ERR_INVALID_ARG, "--json-keys names more than %d keys",
                                 MAX_KEYS);
        jb->keys[jb->key_count++] = p;
    }
    if (jb->key_count == 0)
        return tsr_error_set(TSR_ERR_INVALID_ARG, "--json-keys names no key");
    return TSR_OK;
}

static tsr_status open_tokenizer(job *jb)
{
    const preprocess_args *a = jb->args;
    if (a->tokenizer_type == 0) {
        if (a->vocab_file != NULL || a->merge_file != NULL)
            return tsr_error_set(TSR_ERR_INVALID_ARG,
                                 "--vocab-file and --merge-file belong to --tokenizer-type "
                                 "gpt2; the byte tokenizer needs no files");
        return tsr_tokenizer_byte(&jb->tok);
    }
    if (a->vocab_file == NULL || a->merge_file == NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--tokenizer-type gpt2 needs --vocab-file vocab.json and "
                             "--merge-file merges.txt");
    return tsr_tokenizer_gpt2_open(a->vocab_file, a->merge_file, &jb->tok);
}

/* Every output's directory must exist: like Megatron's preprocess_data.py,
 * tessera creates files, never directories, so a mistyped prefix fails
 * here instead of leaving a tree of directories behind. */
static tsr_status check_outputs(const job *jb)
{
    static const char *const extensions[] = {".bin", ".idx"};
    tsr_status st = TSR_OK;
    for (int k = 0; st == TSR_OK && k < jb->key_count; k++)
        for (int e = 0; st == TSR_OK && e < 2; e++) {
            size_t n = strlen(jb->args->output_prefix) + strlen(jb->keys[k]) + 16;
            char *path = malloc(n);
            if (path == NULL)
                return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a path");
            snprintf(path, n, "%s_%s_document%s", jb->args->output_prefix, jb->keys[k],
                     extensions[e]);
            st = tsr_file_check_output(path, "output");
            free(path);
        }
    return st;
}

static tsr_status open_writers(job *jb)
{
    int64_t vocab = tsr_tokenizer_vocab_size(jb->tok);
    for (int k = 0; k < jb->key_count; k++) {
        size_t n = strlen(jb->args->output_prefix) + strlen(jb->keys[k]) + 16;
        char *prefix = malloc(n);
        if (prefix == NULL)
            return tsr_error_set(TSR_ERR_OUT_OF_MEMORY, "cannot allocate a path");
        snprintf(prefix, n, "%s_%s_document", jb->args->output_prefix, jb->keys[k]);
        tsr_status st = tsr_indexed_writer_open(prefix, tsr_indexed_best_dtype(vocab),
                                                &jb->writers[k]);
        free(prefix);
        if (st != TSR_OK)
            return st;
    }
    return TSR_OK;
}

/* Tokenizes one document into writer k. */
static tsr_status add_document(job *jb, int k, const char *text, size_t len)
{
    jb->ids.count = 0;
    tsr_status st = tsr_tokenizer_encode(jb->tok, text, len, &jb->ids);
    if (st == TSR_OK && jb->ids.count > 0 && jb->args->append_eod)
        st = tsr_token_buffer_push(&jb->ids, tsr_tokenizer_eod(jb->tok));
    if (st == TSR_OK && jb->ids.count > 0) /* Megatron stores no empty sequence */
        st = tsr_indexed_writer_add(jb->writers[k], jb->ids.ids, jb->ids.count);
    if (st == TSR_OK)
        st = tsr_indexed_writer_end_document(jb->writers[k]);
    jb->tokens[k] += jb->ids.count;
    return st;
}

static tsr_status json_line(job *jb, const char *line, size_t len, const char *where)
{
    tsr_json j;
    tsr_json_init(&j, line, len, where);
    bool found[MAX_KEYS] = {false};
    tsr_json_text key = {0};
    tsr_status st = tsr_json_expect(&j, '{', "each line must be one JSON object");
    if (st == TSR_OK && tsr_json_peek(&j) == '}')
        j.pos++;
    else
        while (st == TSR_OK) {
            st = tsr_json_string(&j, &key);
            if (st == TSR_OK)
                st = tsr_json_expect(&j, ':', "expected ':' after a key");
            int wanted = -1;
            for (int k = 0; st == TSR_OK && k < jb->key_count; k++)
                if (strlen(jb->keys[k]) == key.len && memcmp(jb->keys[k], key.data, key.len) == 0)
                    wanted = k;
            if (st == TSR_OK && wanted >= 0) {
                if (tsr_json_peek(&j) != '"')
                    st = tsr_error_set(TSR_ERR_FORMAT, "%s: the value of \"%s\" is not a string",
                                       where, jb->keys[wanted]);
                else
                    st = tsr_json_string(&j, &jb->values[wanted]);
                found[wanted] = true;
            } else if (st == TSR_OK) {
                st = tsr_json_skip(&j);
            }
            if (st != TSR_OK)
                break;
            int c = tsr_json_peek(&j);
            if (c == '}') {
                j.pos++;
                break;
            }
            st = tsr_json_expect(&j, ',', "expected ',' or '}'");
        }
    tsr_json_text_free(&key);
    if (st == TSR_OK)
        st = tsr_json_end(&j);
    for (int k = 0; st == TSR_OK && k < jb->key_count; k++)
        if (!found[k])
            st = tsr_error_set(TSR_ERR_FORMAT, "%s has no key \"%s\" (set --json-keys)", where,
                               jb->keys[k]);
    for (int k = 0; st == TSR_OK && k < jb->key_count; k++)
        st = add_document(jb, k, jb->values[k].data, jb->values[k].len);
    return st;
}

static tsr_status run(job *jb)
{
    FILE *in = fopen(jb->args->input, "rb");
    if (in == NULL)
        return tsr_error_set(errno == ENOENT ? TSR_ERR_INVALID_ARG : TSR_ERR_IO,
                             "cannot open --input %s: %s", jb->args->input, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    tsr_status st = TSR_OK;
    int64_t line_no = 0;
    while (st == TSR_OK && (n = getline(&line, &cap, in)) >= 0) {
        line_no++;
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (jb->jsonl) {
            size_t blank = 0;
            while (blank < len && (line[blank] == ' ' || line[blank] == '\t'))
                blank++;
            if (blank == len)
                continue; /* blank lines hold no object */
            char where[512];
            snprintf(where, sizeof where, "%s line %lld", jb->args->input, (long long)line_no);
            st = json_line(jb, line, len, where);
        } else {
            st = add_document(jb, 0, line, len);
        }
        jb->documents++;
    }
    if (st == TSR_OK && ferror(in))
        st = tsr_error_set(TSR_ERR_IO, "cannot read %s", jb->args->input);
    free(line);
    fclose(in);
    return st;
}

static void job_free(job *jb, bool keep_outputs)
{
    for (int k = 0; k < jb->key_count; k++) {
        if (jb->writers[k] != NULL && !keep_outputs)
            tsr_indexed_writer_abort(jb->writers[k]);
        tsr_json_text_free(&jb->values[k]);
    }
    tsr_token_buffer_free(&jb->ids);
    tsr_tokenizer_destroy(jb->tok);
    free(jb->key_storage);
}

/* Like tsr_args_want_help (main.c), kept here so that the command links
 * into test programs without main.c. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

static void print_help(void)
{
    preprocess_args defaults = {0};
    puts("usage: tessera preprocess --input FILE --output-prefix P --tokenizer-type byte|gpt2\n"
         "                          [--vocab-file vocab.json --merge-file merges.txt]\n"
         "                          [--json-keys \"text\"] [--append-eod]\n\n"
         "tokenizes one document per line into Megatron's .bin/.idx layout; train on it\n"
         "with --data-path P_text_document --vocab-size N (N as printed)\n\nflags:");
    tsr_flags_print_help(&preprocess_table, &defaults, stdout);
}

static tsr_status check_sft_args(const preprocess_args *a)
{
    if (!a->sft && (a->prompt_key != NULL || a->response_key != NULL || a->chat_template != 0))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--prompt-key, --response-key and --chat-template belong to --sft");
    if (!a->sft)
        return TSR_OK;
    if (!has_suffix(a->input, ".jsonl") && !has_suffix(a->input, ".json"))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--sft reads JSON lines (.jsonl), one conversation per line; %s "
                             "is not .jsonl",
                             a->input);
    if (a->json_keys != NULL)
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--sft names its keys with --prompt-key and --response-key (or "
                             "reads \"messages\" with --chat-template), not --json-keys");
    if (a->chat_template != 0 && (a->prompt_key != NULL || a->response_key != NULL))
        return tsr_error_set(TSR_ERR_INVALID_ARG,
                             "--chat-template reads \"messages\" lists; --prompt-key and "
                             "--response-key are for prompt/response pairs");
    return TSR_OK;
}

static int run_sft(const preprocess_args *args, tsr_tokenizer *tok)
{
    char prefix[4096], path[4200];
    snprintf(prefix, sizeof prefix, "%s_sft_document", args->output_prefix);
    tsr_status st = TSR_OK;
    static const char *const outputs[] = {".bin", ".idx", "_lossmask.bin", "_lossmask.idx"};
    for (int i = 0; st == TSR_OK && i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", prefix, outputs[i]);
        st = tsr_file_check_output(path, "output");
    }
    if (st == TSR_OK && args->append_eod && tsr_tokenizer_eod(tok) < 0)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--append-eod: the tokenizer has no end-of-document token");
    tsr_sft_job job = {args->input,
                       prefix,
                       args->prompt_key != NULL ? args->prompt_key : "prompt",
                       args->response_key != NULL ? args->response_key : "response",
                       (tsr_chat_template)args->chat_template,
                       args->append_eod,
                       tok,
                       0,
                       0,
                       0};
    if (st == TSR_OK)
        st = tsr_preprocess_sft(&job);
    if (st != TSR_OK) {
        fprintf(stderr, "tessera preprocess: error: %s\n", tsr_last_error());
        return tsr_status_exit_code(st);
    }
    printf("wrote %s.bin/.idx and %s_lossmask.bin/.idx: %lld conversations, %lld tokens, %lld "
           "(%.1f%%) trained on\n",
           prefix, prefix, (long long)job.conversations, (long long)job.tokens,
           (long long)job.trained_tokens,
           job.tokens > 0 ? 100.0 * (double)job.trained_tokens / (double)job.tokens : 0.0);
    printf("train with: --data-path %s --vocab-size %lld (the loss mask beside it is read "
           "with it)\n",
           prefix, (long long)tsr_tokenizer_vocab_size(tok));
    return 0;
}

int tsr_cmd_preprocess(int argc, char **argv)
{
    int rank = tsr_rank_info_from_env().rank;
    if (wants_help(argc, argv)) {
        if (rank == 0)
            print_help();
        return 0;
    }
    preprocess_args args = {0};
    job jb = {0};
    jb.args = &args;
    tsr_status st = tsr_flags_parse(&preprocess_table, &args, argc, argv, NULL);
    if (st == TSR_OK && (args.input == NULL || args.output_prefix == NULL))
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "give --input FILE and --output-prefix P (see 'tessera preprocess "
                           "--help')");
    if (st == TSR_OK)
        st = tsr_file_check_stream(args.input, "--input");
    if (st == TSR_OK)
        st = check_sft_args(&args);
    if (st == TSR_OK && args.sft) {
        st = open_tokenizer(&jb);
        int rc = st == TSR_OK ? run_sft(&args, jb.tok) : -1;
        if (rc < 0)
            fprintf(stderr, "tessera preprocess: error: %s\n", tsr_last_error());
        tsr_tokenizer_destroy(jb.tok);
        return rc < 0 ? tsr_status_exit_code(st) : rc;
    }
    if (st == TSR_OK) {
        jb.jsonl = has_suffix(args.input, ".jsonl") || has_suffix(args.input, ".json");
        if (!jb.jsonl && args.json_keys != NULL)
            st = tsr_error_set(TSR_ERR_INVALID_ARG,
                               "--json-keys applies to .jsonl input; %s is read as plain text, "
                               "one document per line",
                               args.input);
    }
    if (st == TSR_OK)
        st = parse_keys(&jb);
    if (st == TSR_OK)
        st = check_outputs(&jb);
    if (st == TSR_OK)
        st = open_tokenizer(&jb);
    if (st == TSR_OK && args.append_eod && tsr_tokenizer_eod(jb.tok) < 0)
        st = tsr_error_set(TSR_ERR_INVALID_ARG,
                           "--append-eod: %s has no \"<|endoftext|>\" token to end documents "
                           "with",
                           args.vocab_file);
    if (st == TSR_OK)
        st = open_writers(&jb);
    if (st == TSR_OK)
        st = run(&jb);
    for (int k = 0; st == TSR_OK && k < jb.key_count; k++) {
        tsr_indexed_writer *w = jb.writers[k];
        jb.writers[k] = NULL;
        st = tsr_indexed_writer_finish(w);
    }
    if (st != TSR_OK) { /* one process, so no rank-0 gate (and no MPI) */
        fprintf(stderr, "tessera preprocess: error: %s\n", tsr_last_error());
        job_free(&jb, false);
        return tsr_status_exit_code(st);
    }
    int64_t vocab = tsr_tokenizer_vocab_size(jb.tok);
    for (int k = 0; k < jb.key_count; k++)
        printf("wrote %s_%s_document.bin/.idx: %lld documents, %lld tokens (%s)\n",
               args.output_prefix, jb.keys[k], (long long)jb.documents, (long long)jb.tokens[k],
               tsr_indexed_dtype_name(tsr_indexed_best_dtype(vocab)));
    printf("train with: --data-path %s_%s_document --vocab-size %lld\n", args.output_prefix,
           jb.keys[0], (long long)vocab);
    job_free(&jb, true);
    return 0;
}

/*
 * preprocess_sft.h - `tessera preprocess --sft`: instruction data into
 * tokens and a loss mask.
 *
 * Each line of the JSON-lines input is one conversation: either a prompt
 * and a response (two string keys), or, with a chat template, a
 * "messages" list of {"role", "content"} objects rendered by it. One
 * sequence per conversation goes to PREFIX.bin/.idx and its mask, 1 on
 * the tokens the loss trains on (the response; every assistant turn and
 * its end marker), 0 elsewhere, to PREFIX_lossmask.bin/.idx
 * (runtime/data/loss_mask.h). Each piece is tokenized apart, so the
 * mask's boundaries are the pieces' own.
 */
#ifndef TSR_LAUNCHER_PREPROCESS_SFT_H
#define TSR_LAUNCHER_PREPROCESS_SFT_H

#include <stdbool.h>
#include <stdint.h>

#include "data/tokenizer.h"

typedef enum tsr_chat_template { TSR_CHAT_NONE = 0, TSR_CHAT_CHATML } tsr_chat_template;

typedef struct tsr_sft_job {
    const char *input;
    const char *prefix; /* writes prefix.bin/.idx and prefix_lossmask.bin/.idx */
    const char *prompt_key, *response_key;
    tsr_chat_template chat_template;
    bool append_eod; /* end each conversation with the end-of-document token, trained on */
    tsr_tokenizer *tok;
    /* results */
    int64_t conversations, tokens, trained_tokens;
} tsr_sft_job;

/* Runs the job; on error removes what it wrote. Errors in the input are
 * TSR_ERR_FORMAT naming the line. */
tsr_status tsr_preprocess_sft(tsr_sft_job *job);

#endif /* TSR_LAUNCHER_PREPROCESS_SFT_H */

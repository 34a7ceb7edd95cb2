/*
 * loss_mask.h - a dataset's loss mask: which tokens are trained on.
 *
 * Beside an indexed dataset PREFIX.bin/.idx, the pair
 * PREFIX_lossmask.bin/.idx (written by `tessera preprocess --sft`) holds
 * for every token a uint8 0 or 1 in the same sequences: 1 where the token
 * is a target the loss counts (a response), 0 where it is not (a prompt).
 * The sample a token lands in, and its position there, are those of the
 * token itself, so packing and shuffling carry the mask along.
 */
#ifndef TSR_RUNTIME_LOSS_MASK_H
#define TSR_RUNTIME_LOSS_MASK_H

#include <stdbool.h>

#include "data/gpt_samples.h"
#include "data/indexed.h"

#define TSR_LOSS_MASK_SUFFIX "_lossmask"

/* Whether PREFIX has a loss-mask sidecar (its .idx exists). */
bool tsr_loss_mask_present(const char *prefix);

/* Opens PREFIX's sidecar and returns a source that reads tokens from
 * `tokens` (an indexed source of PREFIX; owned by the result from here
 * on, also on failure) and the mask from the sidecar. TSR_ERR_FORMAT when
 * the sidecar's sequences differ from the tokens' in number or length, or
 * hold values other than 0 and 1. */
tsr_status tsr_loss_mask_attach(const char *prefix, tsr_indexed *tokens, tsr_token_source **out);

#endif /* TSR_RUNTIME_LOSS_MASK_H */

/*
 * config_lora.c - the LoRA flags: which linears get adapters, their scale,
 * and the combinations refused before anything starts.
 */
#include <stdio.h>
#include <string.h>

#include "tessera/config.h"

#define INVALID(...) tsr_error_set(TSR_ERR_INVALID_ARG, __VA_ARGS__)

static const struct {
    const char *word;
    unsigned bit;
} target_words[] = {
    {"qkv", TSR_LORA_QKV}, {"proj", TSR_LORA_PROJ}, {"fc1", TSR_LORA_FC1}, {"fc2", TSR_LORA_FC2}};

tsr_status tsr_config_lora_targets(const tsr_config *cfg, unsigned *targets)
{
    *targets = 0;
    if (cfg->lora_rank <= 0)
        return TSR_OK;
    if (cfg->lora_target == NULL) {
        *targets = TSR_LORA_QKV | TSR_LORA_PROJ | TSR_LORA_FC1 | TSR_LORA_FC2;
        return TSR_OK;
    }
    const char *s = cfg->lora_target;
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof target_words / sizeof target_words[0]; i++)
            if (strlen(target_words[i].word) == n && strncmp(s, target_words[i].word, n) == 0) {
                *targets |= target_words[i].bit;
                known = true;
            }
        if (!known)
            return INVALID("--lora-target %s: '%.*s' is not a linear LoRA adapts; give a "
                           "comma-separated subset of qkv,proj,fc1,fc2",
                           cfg->lora_target, (int)n, s);
        s += n;
        if (*s == ',')
            s++;
    }
    if (*targets == 0)
        return INVALID("--lora-target is empty; give a comma-separated subset of "
                       "qkv,proj,fc1,fc2");
    return TSR_OK;
}

void tsr_config_lora_target_text(unsigned targets, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof target_words / sizeof target_words[0]; i++)
        if ((targets & target_words[i].bit) && used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used > 0 ? "," : "",
                                     target_words[i].word);
}

double tsr_config_lora_scale(const tsr_config *cfg)
{
    if (cfg->lora_rank <= 0)
        return 0.0;
    double alpha = cfg->lora_alpha > 0.0 ? cfg->lora_alpha : (double)cfg->lora_rank;
    return alpha / (double)cfg->lora_rank;
}

tsr_status tsr_config_validate_lora(const tsr_config *cfg)
{
    if (cfg->lora_rank <= 0) {
        const char *given = cfg->lora_alpha > 0.0      ? "--lora-alpha"
                            : cfg->lora_dropout > 0.0  ? "--lora-dropout"
                            : cfg->lora_target != NULL ? "--lora-target"
                                                       : NULL;
        if (given != NULL)
            return INVALID("%s is set but --lora-rank is not; give --lora-rank R to train "
                           "low-rank adapters",
                           given);
        return TSR_OK;
    }
    unsigned targets = 0;
    tsr_status st = tsr_config_lora_targets(cfg, &targets);
    if (st != TSR_OK)
        return st;
    if (cfg->lora_dropout >= 1.0)
        return INVALID("--lora-dropout %g must be below 1", cfg->lora_dropout);
    if (cfg->lora_rank > cfg->hidden_size)
        return INVALID("--lora-rank %d is larger than --hidden-size %d: a low-rank adapter "
                       "has a rank below the width it adapts",
                       cfg->lora_rank, cfg->hidden_size);
    if (cfg->load == NULL && cfg->pretrained_checkpoint == NULL)
        return INVALID("--lora-rank trains adapters on a frozen base, but there is no base: "
                       "give --pretrained-checkpoint DIR (or --load DIR) with the weights to "
                       "adapt");
    return TSR_OK;
}

/*
 * embed.c - a program linking the installed libtessera.a (find_package or
 * pkg-config): the configuration, a kernel and a model-spec arena through
 * the public headers. Prints "embed ok VERSION" and exits 0 when all agree.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tessera/config.h"
#include "tessera/kernels.h"
#include "tessera/spec.h"
#include "tessera/version.h"

int main(void)
{
    tsr_config cfg;
    tsr_config_defaults(&cfg);
    if (tsr_config_validate(&cfg, 1) != TSR_OK || strcmp(cfg.model_name, "gpt") != 0) {
        fprintf(stderr, "embed: default config: %s\n", tsr_last_error());
        return 1;
    }
    /* out (1, 2) = inp (1, 3) . weight (2, 3)^T + bias */
    float inp[3] = {1, 2, 3}, weight[6] = {1, 0, 0, 0, 1, 1}, bias[2] = {0.5f, -1}, out[2];
    tsr_linear_forward(out, inp, weight, bias, 1, 3, 2);
    if (fabsf(out[0] - 1.5f) > 1e-6f || fabsf(out[1] - 4.0f) > 1e-6f) {
        fprintf(stderr, "embed: linear gave %g %g, expected 1.5 4\n", out[0], out[1]);
        return 1;
    }
    tsr_spec_arena *arena = NULL;
    if (tsr_spec_arena_create(&arena) != TSR_OK) {
        fprintf(stderr, "embed: %s\n", tsr_last_error());
        return 1;
    }
    const char *copy = tsr_spec_strdup(arena, "decoder.layers");
    int ok = copy != NULL && strcmp(copy, "decoder.layers") == 0;
    tsr_spec_arena_destroy(arena);
    if (!ok)
        return 1;
    printf("embed ok %s\n", TSR_VERSION_STRING);
    return 0;
}

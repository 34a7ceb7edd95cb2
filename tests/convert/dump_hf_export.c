/*
 * dump_hf_export.c - writes the test models (hf_test_models.h) as Hugging
 * Face directories, for make_hf_fixtures.py:
 *
 *   dump_hf_export gpt2|llama OUT_DIR
 *
 * OUT_DIR/model.safetensors and OUT_DIR/config.json, exactly as
 * `tessera convert` writes them (tsr_hf_export, tsr_hf_config_write).
 */
#include <stdio.h>
#include <string.h>

#include "hf_test_models.h"
#include "tessera/log.h"

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "gpt2") != 0 && strcmp(argv[1], "llama") != 0)) {
        fprintf(stderr, "usage: dump_hf_export gpt2|llama OUT_DIR\n");
        return 2;
    }
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    hf_test_model m;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", argv[2]);
    tsr_status st = hf_test_model_build(argv[1], true, &m);
    if (st == TSR_OK)
        st = tsr_hf_export(&m.cfg, m.family, m.views, m.view_count, path);
    snprintf(path, sizeof path, "%s/config.json", argv[2]);
    if (st == TSR_OK)
        st = tsr_hf_config_write(path, &m.cfg, HF_TEST_VOCAB, m.family);
    hf_test_model_free(&m);
    if (st != TSR_OK) {
        fprintf(stderr, "dump_hf_export: %s\n", tsr_last_error());
        return 1;
    }
    return 0;
}

/*
 * test_hf_convert.c - the Hugging Face export against transformers' own
 * forward pass, and the round trip.
 *
 * fixtures/hf_export.h5 (make_hf_fixtures.py) holds, per test model, the
 * logits a plain-PyTorch transcription of GPT2LMHeadModel /
 * LlamaForCausalLM computes (float64) from the files this export wrote,
 * and the CRC-32C of that model.safetensors. Here:
 *   1. the export of the same weights is still byte for byte that file
 *      (so the fixture's logits are of exactly what we write now);
 *   2. tessera's logits of the same tokens equal the fixture's:
 *      max |difference| <= 1e-5 (the logits are of order 1);
 *   3. importing the file into a model with other weights restores every
 *      tensor bitwise, and exporting that again gives the same bytes.
 */
#include <CUnit/CUnit.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/crc32c.h"
#include "harness.h"
#include "hf_test_models.h"
#include "tessera/log.h"

#define LOGIT_TOLERANCE 1e-5

static void temp_dir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/tsr_hf_XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/again.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

static void check_against_fixture(const char *preset)
{
    hf_test_model m;
    CU_ASSERT_EQUAL_FATAL(hf_test_model_build(preset, true, &m), TSR_OK);
    char dir[64], path[4096];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(tsr_hf_export(&m.cfg, m.family, m.views, m.view_count, path), TSR_OK);
    size_t len = 0;
    char *bytes = tsr_test_read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);

    hid_t fx = H5Fopen(TSR_FIXTURE_DIR "/hf_export.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(fx >= 0);
    hid_t group = H5Gopen2(fx, preset, H5P_DEFAULT);
    uint32_t want_crc = 0;
    hid_t attr = H5Aopen(group, "file_crc32c", H5P_DEFAULT);
    H5Aread(attr, H5T_NATIVE_UINT32, &want_crc);
    H5Aclose(attr);
    uint32_t crc = tsr_crc32c(0, bytes, len);
    if (crc != want_crc)
        fprintf(stderr,
                "%s: export crc32c %08x, fixture's %08x: the export changed; rerun "
                "make_hf_fixtures.py if that was meant\n",
                preset, (unsigned)crc, (unsigned)want_crc);
    CU_ASSERT_EQUAL(crc, want_crc);

    int32_t tokens[HF_TEST_BATCH * HF_TEST_SEQ];
    size_t rows = HF_TEST_BATCH * HF_TEST_SEQ;
    double *want = malloc(rows * HF_TEST_VOCAB * sizeof *want);
    float *got = malloc(rows * HF_TEST_VOCAB * sizeof *got);
    hid_t set = H5Dopen2(group, "tokens", H5P_DEFAULT);
    H5Dread(set, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens);
    H5Dclose(set);
    set = H5Dopen2(group, "logits", H5P_DEFAULT);
    H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, want);
    H5Dclose(set);
    H5Gclose(group);
    H5Fclose(fx);

    int64_t width = 0;
    CU_ASSERT_EQUAL_FATAL(tsr_net_logits(m.t.net, tokens, got, &width), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(width, HF_TEST_VOCAB);
    double worst = 0.0, largest = 0.0;
    for (size_t i = 0; i < rows * HF_TEST_VOCAB; i++) {
        worst = fmax(worst, fabs((double)got[i] - want[i]));
        largest = fmax(largest, fabs(want[i]));
    }
    printf("\n  %s: tessera vs transformers' forward on the exported file: max |diff| %.2e "
           "(logits up to %.2f)\n",
           preset, worst, largest);
    CU_ASSERT(largest > 0.5); /* not a degenerate model */
    CU_ASSERT(worst <= LOGIT_TOLERANCE);
    free(want);
    free(got);
    free(bytes);
    hf_test_model_free(&m);
    remove_dir(dir);
}

/* Import into a model that holds other weights, compare, export again. */
static void check_round_trip(const char *preset)
{
    hf_test_model src, dst;
    CU_ASSERT_EQUAL_FATAL(hf_test_model_build(preset, true, &src), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(hf_test_model_build(preset, false, &dst), TSR_OK);
    char dir[64], path[4096], again[4096];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(again, sizeof again, "%s/again.safetensors", dir);
    CU_ASSERT_EQUAL_FATAL(tsr_hf_export(&src.cfg, src.family, src.views, src.view_count, path),
                          TSR_OK);
    tsr_st_file f;
    CU_ASSERT_EQUAL_FATAL(tsr_st_open(path, &f), TSR_OK);
    CU_ASSERT_EQUAL(tsr_hf_check(&dst.cfg, dst.family, &f, 1), TSR_OK);
    CU_ASSERT_EQUAL_FATAL(tsr_hf_import(&dst.cfg, dst.family, &f, 1, dst.views, dst.view_count),
                          TSR_OK);
    tsr_st_close(&f);
    CU_ASSERT_EQUAL_FATAL(src.view_count, dst.view_count);
    size_t differing = 0;
    for (size_t k = 0; k < src.view_count; k++) {
        size_t n = (size_t)(src.views[k].rows * src.views[k].cols);
        if (memcmp(src.views[k].data, dst.views[k].data, n * sizeof(float)) != 0) {
            fprintf(stderr, "%s: tensor %s differs after the round trip\n", preset,
                    src.views[k].name);
            differing++;
        }
    }
    CU_ASSERT_EQUAL(differing, 0);
    CU_ASSERT_EQUAL_FATAL(tsr_hf_export(&dst.cfg, dst.family, dst.views, dst.view_count, again),
                          TSR_OK);
    size_t a = 0, b = 0;
    char *x = tsr_test_read_file(path, &a), *y = tsr_test_read_file(again, &b);
    CU_ASSERT_FATAL(x != NULL && y != NULL);
    CU_ASSERT(a == b && memcmp(x, y, a) == 0);
    free(x);
    free(y);
    hf_test_model_free(&src);
    hf_test_model_free(&dst);
    remove_dir(dir);
}

static void test_gpt2_export_matches_transformers(void)
{
    check_against_fixture("gpt2");
}

static void test_llama_export_matches_transformers(void)
{
    check_against_fixture("llama");
}

static void test_gpt2_round_trip_is_bitwise(void)
{
    check_round_trip("gpt2");
}

static void test_llama_round_trip_is_bitwise(void)
{
    check_round_trip("llama");
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_gpt2_export_matches_transformers),
    TSR_TEST(test_llama_export_matches_transformers),
    TSR_TEST(test_gpt2_round_trip_is_bitwise),
    TSR_TEST(test_llama_round_trip_is_bitwise),
};

int main(void)
{
    tsr_log_configure(0, 1, TSR_LOG_WARN);
    const tsr_test_suite suites[] = {TSR_SUITE("hf_convert", cases)};
    return tsr_test_main(suites, 1);
}

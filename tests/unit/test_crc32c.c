/*
 * test_crc32c.c - the checkpoint checksum: the published CRC-32C test
 * vectors (RFC 3720, B.4), chaining, the hardware and table paths equal,
 * and every single flipped bit of a buffer detected.
 */
#include <stdint.h>
#include <string.h>

#include "checkpoint/crc32c.h"
#include "harness.h"

static void test_published_vectors(void)
{
    unsigned char zeros[32], ones[32], up[32], down[32];
    memset(zeros, 0, sizeof zeros);
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++) {
        up[i] = (unsigned char)i;
        down[i] = (unsigned char)(31 - i);
    }
    CU_ASSERT_EQUAL(tsr_crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(tsr_crc32c(0, zeros, 32), 0x8A9136AAu);
    CU_ASSERT_EQUAL(tsr_crc32c(0, ones, 32), 0x62A8AB43u);
    CU_ASSERT_EQUAL(tsr_crc32c(0, up, 32), 0x46DD794Eu);
    CU_ASSERT_EQUAL(tsr_crc32c(0, down, 32), 0x113FDB5Cu);
    CU_ASSERT_EQUAL(tsr_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(tsr_crc32c(0, "", 0), 0u);
}

static void test_chaining_and_paths_agree(void)
{
    static unsigned char buf[4099];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    uint32_t whole = tsr_crc32c(0, buf, sizeof buf);
    CU_ASSERT_EQUAL(tsr_crc32c_portable(0, buf, sizeof buf), whole);
    for (size_t cut = 0; cut <= sizeof buf; cut += 511) /* odd cuts: unaligned tails */
        CU_ASSERT_EQUAL(tsr_crc32c(tsr_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
    CU_ASSERT_EQUAL(tsr_crc32c_portable(tsr_crc32c(0, buf, 1000), buf + 1000, sizeof buf - 1000),
                    whole);
}

static void test_every_flipped_bit_changes_the_value(void)
{
    static float data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (float)i * 0.37f - 11.0f;
    uint32_t clean = tsr_crc32c(0, data, sizeof data);
    unsigned char *bytes = (unsigned char *)data;
    int missed = 0;
    for (size_t bit = 0; bit < sizeof data * 8; bit++) {
        bytes[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        missed += tsr_crc32c(0, data, sizeof data) == clean;
        bytes[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(missed, 0);
    CU_ASSERT_EQUAL(tsr_crc32c(0, data, sizeof data), clean);
}

static const tsr_test_case cases[] = {
    TSR_TEST(test_published_vectors),
    TSR_TEST(test_chaining_and_paths_agree),
    TSR_TEST(test_every_flipped_bit_changes_the_value),
};

int main(void)
{
    const tsr_test_suite suites[] = {TSR_SUITE("crc32c", cases)};
    return tsr_test_main(suites, 1);
}

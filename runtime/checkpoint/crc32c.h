/*
 * crc32c.h - CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and
 * Btrfs), the checksum a checkpoint stores beside each tensor.
 *
 * Chosen over zlib's CRC-32 because x86-64 computes it in hardware (the
 * SSE4.2 crc32 instruction, used when the CPU has it, found at run time),
 * so checking a checkpoint costs about as much as reading it. Any single
 * flipped bit, and any burst of up to 32 flipped bits, changes the value.
 */
#ifndef TSR_RUNTIME_CRC32C_H
#define TSR_RUNTIME_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of data[0, len) continuing from crc (0 to start):
 * tsr_crc32c(tsr_crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * tsr_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t tsr_crc32c(uint32_t crc, const void *data, size_t len);

/* The same by table, whatever the CPU has (the tests compare the two). */
uint32_t tsr_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif /* TSR_RUNTIME_CRC32C_H */

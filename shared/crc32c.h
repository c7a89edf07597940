/*
 * crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Used for record payloads (proto/record.md), TensorBoard event framing
 * (with crc32c_mask) and shard checksums in the manifest.  Uses the SSE4.2
 * crc32 instruction when the CPU has it, a slicing-by-8 table otherwise; both
 * give the same value.  crc32c("123456789") == 0xE3069283.
 */
#ifndef DEEPER_CRC32C_H
#define DEEPER_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) with n bytes. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);
static inline uint32_t crc32c(const void *data, size_t n) { return crc32c_update(0, data, n); }

/* CRC of the concatenation A||B from crc32c(A), crc32c(B) and len(B), in
 * O(log len) without touching the data (zlib's crc32_combine method). */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* TFRecord / TensorBoard masking: ((c >> 15) | (c << 17)) + 0xA282EAD8. */
static inline uint32_t crc32c_mask(uint32_t c)
{
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

#endif

/*
 * record.h — the record codec: one image as one LMDB value.
 *
 * A record carries one example: its label, its image geometry, how the
 * pixels are stored (raw 8-bit HWC, or the bytes of a JPEG file), the name of
 * the file it came from, and a CRC-32C of the payload.  The byte layout is
 * specified in proto/record.md (version 1); in short, little-endian:
 *
 *     0  u8[4] magic "DRC1"        16 u32 width
 *     4  u16   version (1)         20 u32 payload CRC-32C
 *     6  u8    storage (0 raw,     24 u32 payload length
 *              1 jpeg)             28 u16 name length
 *     7  u8    channels (1 or 3)   30 u16 reserved (0)
 *     8  i32   label               32 name bytes, zero-padded to a multiple of 8
 *    12  u32   height              .. payload
 *
 * The value size must equal 32 + pad8(name length) + payload length exactly,
 * and for raw storage the payload length must equal height*width*channels.
 * The decoder checks every length against the value size before it forms a
 * pointer from it; it never trusts a field it has not checked.
 *
 * Decoding is zero-copy: struct record then points into the caller's buffer
 * (for a shard reader, the LMDB map, valid while the read transaction lives).
 */
#ifndef DEEPER_RECORD_H
#define DEEPER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

#define RECORD_MAGIC0 'D'
#define RECORD_MAGIC1 'R'
#define RECORD_MAGIC2 'C'
#define RECORD_MAGIC3 '1'
#define RECORD_VERSION 1
#define RECORD_HEADER_SIZE 32
#define RECORD_NAME_MAX 65535u          /* longer source names are truncated by the encoder */
#define RECORD_DIM_MAX 65535u           /* height and width limits */

enum record_storage {
    RECORD_RAW = 0,   /* payload = height*width*channels bytes, row-major HWC, uint8 */
    RECORD_JPEG = 1,  /* payload = a complete JPEG file; height/width/channels describe
                         the image it decodes to (channels = what to decode it to) */
};

/* A decoded (or to-be-encoded) record.  All pointers are borrowed. */
struct record {
    int32_t label;
    uint32_t height, width, channels;
    enum record_storage storage;
    const char *name;        /* source file name, NOT NUL-terminated */
    size_t name_len;
    const uint8_t *payload;
    size_t payload_len;
    uint32_t crc;            /* CRC-32C of payload (filled by decode and by encode) */
};

/* Size of the encoded value for this record (name truncated to RECORD_NAME_MAX). */
size_t record_encoded_size(const struct record *r);

/* Encode r into out[0..cap).  Computes the payload CRC (stored into r->crc).
 * Fails with STATUS_FORMAT when the fields are invalid (bad storage/channels,
 * raw payload length not h*w*c, dimension too large) and with STATUS_USAGE when
 * cap < record_encoded_size(r).  *written (optional) gets the size. */
status record_encode(struct record *r, uint8_t *out, size_t cap, size_t *written);

/* In-place encoding, for payloads produced straight into the value buffer
 * (a decoder writing into the LMDB batch): the payload starts at
 * out + record_payload_offset(name_len); record_encode_header writes all but
 * the payload (fields checked as in record_encode, r->payload ignored, r->crc
 * stored as given); record_set_crc patches the CRC field afterwards. */
size_t record_payload_offset(size_t name_len);
status record_encode_header(const struct record *r, uint8_t *out, size_t cap);
void record_set_crc(uint8_t *value, uint32_t crc);

/* Decode a value of `size` bytes.  Checks magic, version, every length against
 * `size`, storage, channels and (raw) h*w*c == payload length.  With
 * verify_crc, also recomputes the payload CRC (STATUS_CORRUPT on mismatch).
 * On success *out points into buf. */
status record_decode(const void *buf, size_t size, int verify_crc, struct record *out);

/* Recompute the payload CRC of a decoded record; STATUS_CORRUPT on mismatch. */
status record_verify(const struct record *r);

const char *record_storage_name(enum record_storage s);   /* "raw" / "jpeg" */
/* Parse "raw"/"jpeg"; STATUS_USAGE otherwise. */
status record_storage_parse(const char *s, enum record_storage *out);

#endif

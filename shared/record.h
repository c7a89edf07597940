/*
 * record.h — the record codec: one image as one LMDB value.
 *
 * A record carries one example: its label, its image geometry, how the
 * pixels are stored (raw 8-bit HWC, or the bytes of a JPEG file), the name of
 * the file it came from, optional bounding boxes, and a CRC-32C.  The byte
 * layout is specified in proto/record.md (version 2; version 1 still reads);
 * in short, little-endian:
 *
 *     0  u8[4] magic "DRC1"        16 u32 width
 *     4  u16   version (2)         20 u32 CRC-32C (see below)
 *     6  u8    storage (0 raw,     24 u32 payload length
 *              1 jpeg)             28 u16 name length
 *     7  u8    channels (1 or 3)   30 u16 num_boxes (v1: reserved, 0)
 *     8  i32   label               32 name bytes, zero-padded to a multiple of 8
 *    12  u32   height              .. num_boxes x 4 f32 (ymin, xmin, ymax, xmax)
 *                                  .. payload
 *
 * The value size must equal 32 + pad8(name length) + 16*num_boxes + payload
 * length exactly, the name padding must be zero, and for raw storage the
 * payload length must equal height*width*channels.  The decoder checks every
 * length against the value size before it forms a pointer from it; it never
 * trusts a field it has not checked.
 *
 * CRC: version 2 covers the whole value except the CRC field itself (bytes
 * 0..19 and 24..end: label, geometry, storage, channels, name, boxes,
 * payload), so a flipped label is caught.  Version 1 covered the payload
 * only; its label is protected by nothing but the reader's range check.
 *
 * Boxes are normalised to [0,1] in TF's order (ymin, xmin, ymax, xmax) with
 * ymin <= ymax and xmin <= xmax; the decoder refuses any other value.
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
#define RECORD_VERSION 2              /* what the encoder writes; 1 and 2 are read */
#define RECORD_BOX_BYTES 16             /* one box: 4 little-endian float32 */
#define RECORD_BOXES_MAX 65535u
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
    uint32_t crc;            /* the stored CRC-32C (filled by decode and by encode) */
    uint32_t num_boxes;      /* bounding boxes (0: none) */
    const uint8_t *boxes;    /* decode: num_boxes x 16 bytes in the value (maybe unaligned);
                                read them with record_box_get */
    const float *boxes_in;   /* encode: num_boxes x 4 floats, host order (ymin, xmin, ymax,
                                xmax); decode sets it to NULL */
    uint32_t version;        /* decode: the value's format version (1 or 2) */
    const uint8_t *value;    /* decode: the whole value, for record_verify */
    size_t value_size;
};

/* Box i (< r->num_boxes) of a decoded record: out = ymin, xmin, ymax, xmax. */
void record_box_get(const struct record *r, uint32_t i, float out[4]);

/* Size of the encoded value for this record (name truncated to RECORD_NAME_MAX). */
size_t record_encoded_size(const struct record *r);

/* Encode r into out[0..cap) as version 2, with r->num_boxes boxes taken from
 * r->boxes_in.  Computes the CRC (stored into r->crc).  Fails with
 * STATUS_FORMAT when the fields are invalid (bad storage/channels, raw
 * payload length not h*w*c, dimension too large, a box not finite, outside
 * [0,1] or with min > max) and with STATUS_USAGE when cap <
 * record_encoded_size(r).  *written (optional) gets the size. */
status record_encode(struct record *r, uint8_t *out, size_t cap, size_t *written);

/* In-place encoding, for payloads produced straight into the value buffer
 * (a decoder writing into the LMDB batch): the payload starts at
 * out + record_payload_offset(r); record_encode_header writes all but the
 * payload (fields checked as in record_encode, r->payload ignored, CRC 0);
 * once the payload is in place, record_seal computes and stores the CRC from
 * payload_crc (the CRC-32C of the payload bytes, which the caller usually
 * has) and returns the CRC-32C of the whole finished value (what the shard
 * content checksum wants), so no byte is read twice. */
size_t record_payload_offset(const struct record *r);
status record_encode_header(const struct record *r, uint8_t *out, size_t cap);
uint32_t record_seal(uint8_t *value, size_t size, uint32_t payload_crc);

/* Decode a value of `size` bytes.  Checks magic, version (1 or 2), every
 * length against `size`, storage, channels, zero name padding, (raw) h*w*c ==
 * payload length and every box.  With verify_crc, also recomputes the CRC
 * (STATUS_CORRUPT on mismatch).  On success *out points into buf. */
status record_decode(const void *buf, size_t size, int verify_crc, struct record *out);

/* Recompute the CRC of a decoded record; STATUS_CORRUPT on mismatch. */
status record_verify(const struct record *r);

/* Is the label one of the dataset's, lo <= label < hi (the manifest's
 * label_offset and label_offset + classes)?  STATUS_CORRUPT with a message
 * giving the label and the range when not. */
status record_check_label(const struct record *r, int32_t lo, int32_t hi);

const char *record_storage_name(enum record_storage s);   /* "raw" / "jpeg" */
/* Parse "raw"/"jpeg"; STATUS_USAGE otherwise. */
status record_storage_parse(const char *s, enum record_storage *out);

#endif

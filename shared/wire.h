/*
 * wire.h — the batch message codec (augment workers -> trainer over ZeroMQ).
 *
 * One batch is one ZeroMQ multipart message of exactly four frames
 * (proto/batch.md is the normative description):
 *
 *   frame 0  header   64 bytes, little-endian, struct wire_header below
 *   frame 1  labels   int32[N]
 *   frame 2  ids      uint64[N]   example ids (the record key in its subset)
 *   frame 3  pixels   uint8[N*H*W*C], NHWC, row-major
 *
 * An end-of-pass marker (eval mode) is the same four frames with N = 0, the
 * WIRE_FLAG_END_OF_PASS flag, empty data frames, and `count` = the number of
 * examples this worker sent in the pass that just ended.
 *
 * Conventions: all integers little-endian on the wire (wire_header_pack /
 * wire_header_unpack do the byte order, so the struct itself is host order
 * and never sent raw).  A decoder never trusts a field it has not checked:
 * wire_header_unpack checks magic, version, header size, dtype and that the
 * frame sizes N*4, N*8, N*H*W*C do not overflow; wire_header_check compares
 * against what a receiver expects.  Nothing here allocates or touches ZeroMQ;
 * the sender (augment/) and receiver (shared/stream.c) do the socket work.
 */
#ifndef DEEPER_WIRE_H
#define DEEPER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

#define WIRE_MAGIC        0x48425044u  /* "DPBH" as little-endian bytes 'D','P','B','H' */
#define WIRE_VERSION      1u
#define WIRE_HEADER_SIZE  64u
#define WIRE_NUM_FRAMES   4

/* Pixel dtypes (only uint8 is produced today). */
enum wire_dtype { WIRE_DTYPE_U8 = 1 };

/* Header flags. */
enum wire_flag {
    WIRE_FLAG_END_OF_PASS = 1u << 0,  /* N = 0 marker closing one eval pass of one worker */
    WIRE_FLAG_EVAL        = 1u << 1,  /* eval stream: central crop, no distortions, finite passes */
    WIRE_FLAG_GRAY_EXPAND = 1u << 2,  /* C = 3 made by repeating a gray channel */
};
#define WIRE_FLAGS_KNOWN 0x7u

/* Hard limits a header must respect whatever a receiver expects. */
#define WIRE_MAX_N      65536u
#define WIRE_MAX_SIDE   16384u
#define WIRE_MAX_C      4u
#define WIRE_MAX_PIXELS (1ull << 34)   /* bytes in one pixels frame */

struct wire_header {
    uint32_t magic;        /* WIRE_MAGIC */
    uint16_t version;      /* WIRE_VERSION */
    uint16_t header_size;  /* WIRE_HEADER_SIZE */
    uint32_t flags;        /* enum wire_flag bits */
    uint16_t worker;       /* sender's worker index, < num_workers */
    uint16_t num_workers;  /* W of the sender's run */
    uint64_t seq;          /* per-worker batch sequence number, from 0, +1 per message */
    uint64_t epoch;        /* train: epoch the batch's first example was read in;
                              eval: pass number */
    uint32_t n, h, w, c;   /* batch size and image shape; n = 0 for END_OF_PASS */
    uint32_t dtype;        /* enum wire_dtype */
    uint32_t count;        /* END_OF_PASS: examples this worker sent in the pass; else 0 */
    uint64_t seed;         /* the sender's --seed (lets a consumer check determinism) */
};

/* Frame sizes in bytes implied by a header (no overflow once unpacked OK). */
static inline size_t wire_labels_bytes(const struct wire_header *h) { return (size_t)h->n * 4u; }
static inline size_t wire_ids_bytes(const struct wire_header *h) { return (size_t)h->n * 8u; }
static inline size_t wire_image_bytes(const struct wire_header *h)
{
    return (size_t)h->h * h->w * h->c;
}
static inline size_t wire_pixels_bytes(const struct wire_header *h)
{
    return (size_t)h->n * wire_image_bytes(h);
}

/* Serialise `h` into exactly WIRE_HEADER_SIZE bytes at `out` (reserved bytes zeroed). */
void wire_header_pack(const struct wire_header *h, uint8_t out[WIRE_HEADER_SIZE]);

/* Parse a header frame of `size` bytes.  Checks size, magic, version, header
 * size, dtype, unknown flags, n/h/w/c against the WIRE_MAX_* limits and
 * END_OF_PASS <=> n == 0.  STATUS_FORMAT with a message naming the field
 * otherwise; *out is only meaningful on STATUS_OK. */
status wire_header_unpack(const void *buf, size_t size, struct wire_header *out);

/* What a receiver accepts; 0 in a field means "any" (within WIRE_MAX_*). */
struct wire_expect {
    uint32_t max_n;        /* n <= max_n */
    uint32_t h, w, c;      /* exact shape, or 0 */
    uint32_t max_h, max_w, max_c; /* bounds when the shape is not fixed */
    uint16_t num_workers;  /* exact W, or 0 */
    uint64_t max_pixels;   /* pixels frame bytes <= this (a receiver's buffer size) */
};

/* Compare an unpacked header with expectations.  STATUS_FORMAT + message. */
status wire_header_check(const struct wire_header *h, const struct wire_expect *e);

/* Fill a header for a data batch. */
void wire_header_init(struct wire_header *h, uint16_t worker, uint16_t num_workers,
                      uint64_t seq, uint64_t epoch, uint32_t n, uint32_t height,
                      uint32_t width, uint32_t channels, uint32_t flags, uint64_t seed);

#endif

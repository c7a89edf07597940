/*
 * wire.c — pack/unpack/check of the batch header (see wire.h, proto/batch.md).
 *
 * Byte order is written out explicitly (little-endian) so the format does
 * not depend on the host; header layout offsets:
 *   0 magic u32 | 4 version u16 | 6 header_size u16 | 8 flags u32 |
 *   12 worker u16 | 14 num_workers u16 | 16 seq u64 | 24 epoch u64 |
 *   32 n u32 | 36 h u32 | 40 w u32 | 44 c u32 | 48 dtype u32 | 52 count u32 |
 *   56 seed u64 | 64 end
 */
#include "shared/wire.h"

#include <string.h>

#include "shared/endian.h"
void wire_header_init(struct wire_header *h, uint16_t worker, uint16_t num_workers,
                      uint64_t seq, uint64_t epoch, uint32_t n, uint32_t height,
                      uint32_t width, uint32_t channels, uint32_t flags, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    h->magic = WIRE_MAGIC;
    h->version = WIRE_VERSION;
    h->header_size = WIRE_HEADER_SIZE;
    h->flags = flags;
    h->worker = worker;
    h->num_workers = num_workers;
    h->seq = seq;
    h->epoch = epoch;
    h->n = n;
    h->h = height;
    h->w = width;
    h->c = channels;
    h->dtype = WIRE_DTYPE_U8;
    h->seed = seed;
}

void wire_header_pack(const struct wire_header *h, uint8_t out[WIRE_HEADER_SIZE])
{
    memset(out, 0, WIRE_HEADER_SIZE);
    le_put_u32(out + 0, h->magic);
    le_put_u16(out + 4, h->version);
    le_put_u16(out + 6, h->header_size);
    le_put_u32(out + 8, h->flags);
    le_put_u16(out + 12, h->worker);
    le_put_u16(out + 14, h->num_workers);
    le_put_u64(out + 16, h->seq);
    le_put_u64(out + 24, h->epoch);
    le_put_u32(out + 32, h->n);
    le_put_u32(out + 36, h->h);
    le_put_u32(out + 40, h->w);
    le_put_u32(out + 44, h->c);
    le_put_u32(out + 48, h->dtype);
    le_put_u32(out + 52, h->count);
    le_put_u64(out + 56, h->seed);
}

status wire_header_unpack(const void *buf, size_t size, struct wire_header *o)
{
    const uint8_t *p = buf;
    if (size != WIRE_HEADER_SIZE)
        return FAIL(STATUS_FORMAT, "batch header: %zu bytes, expected %u", size, WIRE_HEADER_SIZE);
    o->magic = le_get_u32(p + 0);
    o->version = le_get_u16(p + 4);
    o->header_size = le_get_u16(p + 6);
    o->flags = le_get_u32(p + 8);
    o->worker = le_get_u16(p + 12);
    o->num_workers = le_get_u16(p + 14);
    o->seq = le_get_u64(p + 16);
    o->epoch = le_get_u64(p + 24);
    o->n = le_get_u32(p + 32);
    o->h = le_get_u32(p + 36);
    o->w = le_get_u32(p + 40);
    o->c = le_get_u32(p + 44);
    o->dtype = le_get_u32(p + 48);
    o->count = le_get_u32(p + 52);
    o->seed = le_get_u64(p + 56);
    if (o->magic != WIRE_MAGIC) return FAIL(STATUS_FORMAT, "batch header: bad magic 0x%08x", o->magic);
    if (o->version != WIRE_VERSION)
        return FAIL(STATUS_FORMAT, "batch header: version %u, this build reads %u", o->version, WIRE_VERSION);
    if (o->header_size != WIRE_HEADER_SIZE)
        return FAIL(STATUS_FORMAT, "batch header: header_size %u", o->header_size);
    if (o->dtype != WIRE_DTYPE_U8) return FAIL(STATUS_FORMAT, "batch header: dtype %u unknown", o->dtype);
    if (o->flags & ~WIRE_FLAGS_KNOWN) return FAIL(STATUS_FORMAT, "batch header: unknown flags 0x%x", o->flags);
    if (o->num_workers == 0 || o->worker >= o->num_workers)
        return FAIL(STATUS_FORMAT, "batch header: worker %u of %u", o->worker, o->num_workers);
    if (o->n > WIRE_MAX_N) return FAIL(STATUS_FORMAT, "batch header: n %u > %u", o->n, WIRE_MAX_N);
    if (o->h == 0 || o->w == 0 || o->c == 0 || o->h > WIRE_MAX_SIDE || o->w > WIRE_MAX_SIDE || o->c > WIRE_MAX_C)
        return FAIL(STATUS_FORMAT, "batch header: shape %ux%ux%u out of range", o->h, o->w, o->c);
    if ((uint64_t)o->n * o->h * o->w * o->c > WIRE_MAX_PIXELS)
        return FAIL(STATUS_FORMAT, "batch header: pixels frame too large");
    int end = (o->flags & WIRE_FLAG_END_OF_PASS) != 0;
    if (end && o->n != 0) return FAIL(STATUS_FORMAT, "batch header: end-of-pass marker with n = %u", o->n);
    if (!end && o->n == 0) return FAIL(STATUS_FORMAT, "batch header: empty batch without end-of-pass flag");
    if (!end && o->count != 0) return FAIL(STATUS_FORMAT, "batch header: count set on a data batch");
    return STATUS_OK;
}

status wire_header_check(const struct wire_header *h, const struct wire_expect *e)
{
    if (e->max_n && h->n > e->max_n) return FAIL(STATUS_FORMAT, "batch: n %u > expected max %u", h->n, e->max_n);
    if ((e->h && h->h != e->h) || (e->w && h->w != e->w) || (e->c && h->c != e->c))
        return FAIL(STATUS_FORMAT, "batch: shape %ux%ux%u, expected %ux%ux%u", h->h, h->w, h->c, e->h, e->w, e->c);
    if ((e->max_h && h->h > e->max_h) || (e->max_w && h->w > e->max_w) || (e->max_c && h->c > e->max_c))
        return FAIL(STATUS_FORMAT, "batch: shape %ux%ux%u exceeds %ux%ux%u", h->h, h->w, h->c,
                    e->max_h, e->max_w, e->max_c);
    if (e->num_workers && h->num_workers != e->num_workers)
        return FAIL(STATUS_FORMAT, "batch: from a run with %u workers, expected %u", h->num_workers, e->num_workers);
    if (e->max_pixels && wire_pixels_bytes(h) > e->max_pixels)
        return FAIL(STATUS_FORMAT, "batch: pixels %zu bytes exceed buffer %llu", wire_pixels_bytes(h),
                    (unsigned long long)e->max_pixels);
    return STATUS_OK;
}

/*
 * record.c — encode and decode records (see record.h and proto/record.md).
 *
 * Little-endian fields are written and read byte by byte, so the code does
 * not depend on the host's byte order or on alignment of the LMDB value.
 */
#include "shared/record.h"

#include <stdio.h>
#include <string.h>

#include "shared/crc32c.h"

#include "shared/endian.h"
static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static size_t record_name_len(const struct record *r)
{
    return r->name_len > RECORD_NAME_MAX ? RECORD_NAME_MAX : r->name_len;
}

size_t record_payload_offset(const struct record *r)
{
    return RECORD_HEADER_SIZE + pad8(record_name_len(r)) + (size_t)r->num_boxes * RECORD_BOX_BYTES;
}

size_t record_encoded_size(const struct record *r)
{
    return record_payload_offset(r) + r->payload_len;
}

void record_box_get(const struct record *r, uint32_t i, float out[4])
{
    for (int k = 0; k < 4; k++) out[k] = le_get_f32(r->boxes + (size_t)i * RECORD_BOX_BYTES + 4 * (size_t)k);
}

/* A box: finite, in [0,1], min <= max (written so that NaN fails). */
static status record_check_box(uint32_t i, const float b[4])
{
    for (int k = 0; k < 4; k++)
        if (!(b[k] >= 0.0f && b[k] <= 1.0f))
            return FAIL(STATUS_FORMAT, "record: box %u coordinate %d is %g (expected a number in [0,1])", i, k,
                        (double)b[k]);
    if (!(b[0] <= b[2]) || !(b[1] <= b[3]))
        return FAIL(STATUS_FORMAT, "record: box %u is (%g, %g, %g, %g): ymin > ymax or xmin > xmax", i, (double)b[0],
                    (double)b[1], (double)b[2], (double)b[3]);
    return STATUS_OK;
}

const char *record_storage_name(enum record_storage s)
{
    switch (s) {
    case RECORD_RAW: return "raw";
    case RECORD_JPEG: return "jpeg";
    }
    return "?";
}

status record_storage_parse(const char *s, enum record_storage *out)
{
    if (!strcmp(s, "raw")) { *out = RECORD_RAW; return STATUS_OK; }
    if (!strcmp(s, "jpeg")) { *out = RECORD_JPEG; return STATUS_OK; }
    return FAIL(STATUS_USAGE, "storage '%s': expected raw or jpeg", s);
}

/* Field checks shared by encode and decode. */
static status record_check_fields(uint32_t storage, uint32_t channels, uint32_t h, uint32_t w,
                                  uint64_t payload_len)
{
    if (storage != RECORD_RAW && storage != RECORD_JPEG)
        return FAIL(STATUS_FORMAT, "record: unknown storage %u", storage);
    if (channels != 1 && channels != 3)
        return FAIL(STATUS_FORMAT, "record: channels %u (expected 1 or 3)", channels);
    if (h == 0 || w == 0 || h > RECORD_DIM_MAX || w > RECORD_DIM_MAX)
        return FAIL(STATUS_FORMAT, "record: image size %ux%u out of range (1..%u)", h, w, RECORD_DIM_MAX);
    if (payload_len > UINT32_MAX)
        return FAIL(STATUS_FORMAT, "record: payload of %llu bytes exceeds 4 GiB", (unsigned long long)payload_len);
    if (storage == RECORD_RAW && payload_len != (uint64_t)h * w * channels)
        return FAIL(STATUS_FORMAT, "record: raw payload is %llu bytes, %ux%ux%u needs %llu",
                    (unsigned long long)payload_len, h, w, channels,
                    (unsigned long long)((uint64_t)h * w * channels));
    if (payload_len == 0) return FAIL(STATUS_FORMAT, "record: empty payload");
    return STATUS_OK;
}

status record_encode_header(const struct record *r, uint8_t *out, size_t cap)
{
    TRY(record_check_fields((uint32_t)r->storage, r->channels, r->height, r->width, r->payload_len));
    if (r->num_boxes > RECORD_BOXES_MAX)
        return FAIL(STATUS_FORMAT, "record: %u boxes (at most %u)", r->num_boxes, RECORD_BOXES_MAX);
    if (r->num_boxes && !r->boxes_in) return FAIL(STATUS_USAGE, "record_encode: %u boxes but no boxes_in", r->num_boxes);
    for (uint32_t i = 0; i < r->num_boxes; i++) TRY(record_check_box(i, r->boxes_in + 4 * (size_t)i));
    size_t name_len = record_name_len(r);
    size_t need = record_encoded_size(r);
    if (cap < need) return FAIL(STATUS_USAGE, "record_encode: buffer of %zu bytes, need %zu", cap, need);
    out[0] = RECORD_MAGIC0; out[1] = RECORD_MAGIC1; out[2] = RECORD_MAGIC2; out[3] = RECORD_MAGIC3;
    le_put_u16(out + 4, RECORD_VERSION);
    out[6] = (uint8_t)r->storage;
    out[7] = (uint8_t)r->channels;
    le_put_u32(out + 8, (uint32_t)r->label);
    le_put_u32(out + 12, r->height);
    le_put_u32(out + 16, r->width);
    le_put_u32(out + 20, 0);
    le_put_u32(out + 24, (uint32_t)r->payload_len);
    le_put_u16(out + 28, (uint32_t)name_len);
    le_put_u16(out + 30, r->num_boxes);
    uint8_t *p = out + RECORD_HEADER_SIZE;
    if (name_len) memcpy(p, r->name, name_len);
    memset(p + name_len, 0, pad8(name_len) - name_len);
    p += pad8(name_len);
    for (size_t i = 0; i < 4 * (size_t)r->num_boxes; i++) le_put_f32(p + 4 * i, r->boxes_in[i]);
    return STATUS_OK;
}

/* Version 2 CRC: bytes [0,20) and [24,size) of the value; the part from 24
 * up to the payload is read here, the payload's own CRC is combined in. */
static uint32_t record_crc_v2(const uint8_t *v, size_t size, size_t payload_len, uint32_t payload_crc,
                              uint32_t *tail)
{
    size_t off = size - payload_len;
    *tail = crc32c_combine(crc32c(v + 24, off - 24), payload_crc, payload_len);   /* CRC of [24,size) */
    return crc32c_combine(crc32c(v, 20), *tail, size - 24);
}

uint32_t record_seal(uint8_t *value, size_t size, uint32_t payload_crc)
{
    uint32_t tail;
    uint32_t c = record_crc_v2(value, size, le_get_u32(value + 24), payload_crc, &tail);
    le_put_u32(value + 20, c);
    return crc32c_combine(crc32c(value, 24), tail, size - 24);
}

status record_encode(struct record *r, uint8_t *out, size_t cap, size_t *written)
{
    TRY(record_encode_header(r, out, cap));
    size_t size = record_encoded_size(r);
    memcpy(out + record_payload_offset(r), r->payload, r->payload_len);
    record_seal(out, size, crc32c(r->payload, r->payload_len));
    r->crc = le_get_u32(out + 20);
    if (written) *written = size;
    return STATUS_OK;
}

status record_decode(const void *buf, size_t size, int verify_crc, struct record *out)
{
    const uint8_t *b = buf;
    if (size < RECORD_HEADER_SIZE)
        return FAIL(STATUS_CORRUPT, "record: %zu bytes, shorter than the %d-byte header", size, RECORD_HEADER_SIZE);
    if (b[0] != RECORD_MAGIC0 || b[1] != RECORD_MAGIC1 || b[2] != RECORD_MAGIC2 || b[3] != RECORD_MAGIC3)
        return FAIL(STATUS_CORRUPT, "record: bad magic %02x %02x %02x %02x (expected \"DRC1\")", b[0], b[1], b[2], b[3]);
    uint32_t version = le_get_u16(b + 4);
    if (version != 1 && version != 2)
        return FAIL(STATUS_UNSUPPORTED, "record: version %u (this program reads 1 and 2)", version);
    uint32_t storage = b[6], channels = b[7];
    uint32_t h = le_get_u32(b + 12), w = le_get_u32(b + 16);
    uint64_t payload_len = le_get_u32(b + 24);
    uint64_t name_len = le_get_u16(b + 28);
    uint64_t num_boxes = le_get_u16(b + 30);
    status st = record_check_fields(storage, channels, h, w, payload_len);
    if (st != STATUS_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", status_msg());
        return FAIL(STATUS_CORRUPT, "%s", why);
    }
    if (version == 1 && num_boxes != 0) return FAIL(STATUS_CORRUPT, "record: reserved field is not zero");
    /* all of these are < 2^33, so the sum cannot overflow 64 bits */
    uint64_t need = (uint64_t)RECORD_HEADER_SIZE + pad8(name_len) + num_boxes * RECORD_BOX_BYTES + payload_len;
    if (need != (uint64_t)size)
        return FAIL(STATUS_CORRUPT, "record: value is %zu bytes, header describes %llu", size, (unsigned long long)need);
    for (size_t i = RECORD_HEADER_SIZE + name_len; i < RECORD_HEADER_SIZE + pad8(name_len); i++)
        if (b[i]) return FAIL(STATUS_CORRUPT, "record: name padding byte %zu is not zero", i);
    out->label = (int32_t)le_get_u32(b + 8);
    out->height = h;
    out->width = w;
    out->channels = channels;
    out->storage = (enum record_storage)storage;
    out->name = (const char *)b + RECORD_HEADER_SIZE;
    out->name_len = (size_t)name_len;
    out->num_boxes = (uint32_t)num_boxes;
    out->boxes = b + RECORD_HEADER_SIZE + pad8(name_len);
    out->boxes_in = NULL;
    out->payload = out->boxes + num_boxes * RECORD_BOX_BYTES;
    out->payload_len = (size_t)payload_len;
    out->crc = le_get_u32(b + 20);
    out->version = version;
    out->value = b;
    out->value_size = size;
    for (uint32_t i = 0; i < out->num_boxes; i++) {
        float box[4];
        record_box_get(out, i, box);
        if (record_check_box(i, box) != STATUS_OK) {
            char why[256];
            snprintf(why, sizeof why, "%s", status_msg());
            return FAIL(STATUS_CORRUPT, "%s", why);
        }
    }
    if (verify_crc) TRY(record_verify(out));
    return STATUS_OK;
}

status record_verify(const struct record *r)
{
    uint32_t pc = crc32c(r->payload, r->payload_len);
    if (r->version == 1) {
        if (pc != r->crc)
            return FAIL(STATUS_CORRUPT, "record: payload crc32c %08x, header says %08x", pc, r->crc);
        return STATUS_OK;
    }
    uint32_t tail;
    uint32_t c = record_crc_v2(r->value, r->value_size, r->payload_len, pc, &tail);
    if (c != r->crc) return FAIL(STATUS_CORRUPT, "record: crc32c %08x, header says %08x", c, r->crc);
    return STATUS_OK;
}

status record_check_label(const struct record *r, int32_t lo, int32_t hi)
{
    if (r->label < lo || r->label >= hi)
        return FAIL(STATUS_CORRUPT, "record: label %d outside the dataset's labels %d..%d", r->label, lo, hi - 1);
    return STATUS_OK;
}

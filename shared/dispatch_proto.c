/*
 * dispatch_proto.c — encode/parse of the dispatcher protocol (see
 * dispatch_proto.h and proto/dispatch.md).
 *
 * Body layouts (offsets after the 16-byte header):
 *   REGISTER    0 crc u32 | 4 0 u32 | 8 manifest_len u64 | 16 records u64 |
 *               24 subset[16] | 40 batch u32 | 44 image u32 | 48 channels u32 |
 *               52 flip i8 | 53 color i8 | 54 crop i8 | 55 color_ordering i8 |
 *               56 resize u8 | 57 fast_jpeg u8 | 58 has_seed u8 | 59..63 0 |
 *               64 seed u64 | 72 name[64] | 136 end
 *   REGISTERED  0 batch | 4 image | 8 channels | 12 split_batches | 16 heartbeat_ms |
 *               20 timeout_ms | 24 eval | 28 window (u32 each) | 32 seed u64 |
 *               40 examples u64 | 48 flip i8 | 49 color i8 | 50 crop i8 | 51..55 0 |
 *               56 subset[16] | 72 end
 *   REFUSED     0 field[32] | 32 ours[64] | 96 theirs[64] | 160 end
 *   REQUEST     0 done u64 (the lease finished or dropped, 0 none) | 8 holds u64 |
 *               16 want u32 | 20 0 u32 | 24 end
 *   BYE         empty
 *   LEASE       0 lease | 8 first | 16 end | 24 limit | 32 after (u64 each) | 40 end
 *   CREDIT      0 lease | 8 limit | 16 end
 *   HEARTBEAT   0 lease u64 | 8 next u64 | 16 state u32 | 20 0 u32 | 24 end
 *   RESET       0 reason u32 | 4 0 u32 | 8 end
 *   BATCH       0 lease u64 | 8 index u64 | 16 wire header (64) | labels | ids | pixels
 * Strings are NUL-padded; a parser requires a NUL inside the field and only
 * printable ASCII before it.
 */
#include "shared/dispatch_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shared/crc32c.h"
#include "shared/endian.h"
#include "shared/manifest.h"

static const char *const type_names[] = {
    "?", "REGISTER", "REGISTERED", "REFUSED", "REQUEST", "LEASE", "CREDIT", "BATCH", "HEARTBEAT", "RESET", "BYE",
};

const char *dproto_type_name(uint16_t type) { return type <= DPROTO_TYPE_MAX ? type_names[type] : "?"; }

size_t dproto_body_size(uint16_t type)
{
    switch (type) {
    case DPROTO_REGISTER: return 136;
    case DPROTO_REGISTERED: return 72;
    case DPROTO_REFUSED: return 160;
    case DPROTO_REQUEST: return 24;
    case DPROTO_BYE: return 0;
    case DPROTO_LEASE: return 40;
    case DPROTO_CREDIT: return 16;
    case DPROTO_HEARTBEAT: return 24;
    case DPROTO_RESET: return 8;
    case DPROTO_BATCH: return 16;
    default: return 0;
    }
}

size_t dproto_batch_size(uint32_t n, uint32_t h, uint32_t w, uint32_t c)
{
    if (n > WIRE_MAX_N || h > WIRE_MAX_SIDE || w > WIRE_MAX_SIDE || c > WIRE_MAX_C) return 0;
    uint64_t px = (uint64_t)n * h * w * c;
    if (px > WIRE_MAX_PIXELS) return 0;
    return dproto_batch_pixels_off(n) + (size_t)px;
}

static void put_str(uint8_t *p, size_t field, const char *s)
{
    memset(p, 0, field);
    if (!s) return;
    size_t n = strnlen(s, field - 1);
    memcpy(p, s, n);
}

static status get_str(const uint8_t *p, size_t field, char *out, const char *what)
{
    size_t i = 0;
    for (; i < field && p[i]; i++)
        if (p[i] < 0x20 || p[i] > 0x7e) return FAIL(STATUS_FORMAT, "%s: byte %zu is not printable ASCII", what, i);
    if (i == field) return FAIL(STATUS_FORMAT, "%s: no NUL within %zu bytes", what, field);
    memcpy(out, p, i);
    out[i] = 0;
    return STATUS_OK;
}

static void put_header(uint8_t *buf, uint16_t type, uint64_t session)
{
    le_put_u32(buf, DPROTO_MAGIC);
    le_put_u16(buf + 4, DPROTO_VERSION);
    le_put_u16(buf + 6, type);
    le_put_u64(buf + 8, session);
}

size_t dproto_encode(const struct dproto_msg *m, uint8_t *buf, size_t cap)
{
    if (m->type == DPROTO_BATCH || m->type < 1 || m->type > DPROTO_TYPE_MAX) return 0;
    size_t size = DPROTO_HEADER_SIZE + dproto_body_size(m->type);
    if (cap < size) return 0;
    memset(buf, 0, size);
    put_header(buf, m->type, m->session);
    uint8_t *b = buf + DPROTO_HEADER_SIZE;
    switch (m->type) {
    case DPROTO_REGISTER: {
        const struct dproto_register *r = &m->u.reg;
        le_put_u32(b, r->manifest_crc);
        le_put_u64(b + 8, r->manifest_len);
        le_put_u64(b + 16, r->records);
        put_str(b + 24, DPROTO_SUBSET_MAX, r->subset);
        le_put_u32(b + 40, r->batch_size);
        le_put_u32(b + 44, r->image_size);
        le_put_u32(b + 48, r->channels);
        b[52] = (uint8_t)r->flip; b[53] = (uint8_t)r->color; b[54] = (uint8_t)r->crop;
        b[55] = (uint8_t)r->color_ordering; b[56] = r->resize_method; b[57] = r->fast_jpeg; b[58] = r->has_seed;
        le_put_u64(b + 64, r->seed);
        put_str(b + 72, DPROTO_NAME_MAX, r->name);
        break;
    }
    case DPROTO_REGISTERED: {
        const struct dproto_registered *r = &m->u.ok;
        const uint32_t v[8] = { r->batch_size, r->image_size, r->channels, r->split_batches, r->heartbeat_ms,
                                r->timeout_ms, r->eval, r->window };
        for (int i = 0; i < 8; i++) le_put_u32(b + 4 * i, v[i]);
        le_put_u64(b + 32, r->seed);
        le_put_u64(b + 40, r->examples);
        b[48] = (uint8_t)r->flip; b[49] = (uint8_t)r->color; b[50] = (uint8_t)r->crop;
        put_str(b + 56, DPROTO_SUBSET_MAX, r->subset);
        break;
    }
    case DPROTO_REFUSED:
        put_str(b, DPROTO_FIELD_MAX, m->u.refused.field);
        put_str(b + 32, DPROTO_NAME_MAX, m->u.refused.ours);
        put_str(b + 96, DPROTO_NAME_MAX, m->u.refused.theirs);
        break;
    case DPROTO_LEASE:
        le_put_u64(b, m->u.lease.lease); le_put_u64(b + 8, m->u.lease.first);
        le_put_u64(b + 16, m->u.lease.end); le_put_u64(b + 24, m->u.lease.limit);
        le_put_u64(b + 32, m->u.lease.after);
        break;
    case DPROTO_CREDIT:
        le_put_u64(b, m->u.credit.lease); le_put_u64(b + 8, m->u.credit.limit);
        break;
    case DPROTO_HEARTBEAT:
        le_put_u64(b, m->u.hb.lease); le_put_u64(b + 8, m->u.hb.next); le_put_u32(b + 16, m->u.hb.state);
        break;
    case DPROTO_RESET:
        le_put_u32(b, m->u.reset_reason);
        break;
    case DPROTO_REQUEST:
        le_put_u64(b, m->u.done); le_put_u64(b + 8, m->u.holds); le_put_u32(b + 16, m->u.want);
        break;
    default:
        break;
    }
    return size;
}

void dproto_batch_begin(uint8_t *buf, uint64_t session, uint64_t lease, uint64_t index, const struct wire_header *h)
{
    put_header(buf, DPROTO_BATCH, session);
    le_put_u64(buf + DPROTO_HEADER_SIZE, lease);
    le_put_u64(buf + DPROTO_HEADER_SIZE + 8, index);
    wire_header_pack(h, buf + DPROTO_BATCH_FIXED);
}

static int switch_ok(int8_t v) { return v >= -1 && v <= 1; }

status dproto_parse(const void *buf, size_t len, struct dproto_msg *out)
{
    const uint8_t *p = buf;
    memset(out, 0, sizeof *out);
    if (len < DPROTO_HEADER_SIZE) return FAIL(STATUS_FORMAT, "message of %zu bytes, shorter than the 16-byte header", len);
    uint32_t magic = le_get_u32(p);
    if (magic != DPROTO_MAGIC) return FAIL(STATUS_FORMAT, "magic 0x%08x is not a dispatcher message", magic);
    uint16_t version = le_get_u16(p + 4), type = le_get_u16(p + 6);
    if (version != DPROTO_VERSION) return FAIL(STATUS_FORMAT, "protocol version %u, this side speaks %u", version, DPROTO_VERSION);
    if (type < 1 || type > DPROTO_TYPE_MAX) return FAIL(STATUS_FORMAT, "unknown message type %u", type);
    out->type = type;
    out->session = le_get_u64(p + 8);
    const uint8_t *b = p + DPROTO_HEADER_SIZE;
    size_t want = DPROTO_HEADER_SIZE + dproto_body_size(type);
    if (type == DPROTO_BATCH) {
        if (len < DPROTO_BATCH_FIXED + WIRE_HEADER_SIZE)
            return FAIL(STATUS_FORMAT, "BATCH of %zu bytes is shorter than its headers", len);
    } else if (len != want) {
        return FAIL(STATUS_FORMAT, "%s of %zu bytes, expected %zu", dproto_type_name(type), len, want);
    }
    switch (type) {
    case DPROTO_REGISTER: {
        struct dproto_register *r = &out->u.reg;
        r->manifest_crc = le_get_u32(b);
        r->manifest_len = le_get_u64(b + 8);
        r->records = le_get_u64(b + 16);
        TRY(get_str(b + 24, DPROTO_SUBSET_MAX, r->subset, "REGISTER subset"));
        r->batch_size = le_get_u32(b + 40);
        r->image_size = le_get_u32(b + 44);
        r->channels = le_get_u32(b + 48);
        r->flip = (int8_t)b[52]; r->color = (int8_t)b[53]; r->crop = (int8_t)b[54]; r->color_ordering = (int8_t)b[55];
        r->resize_method = b[56]; r->fast_jpeg = b[57]; r->has_seed = b[58];
        r->seed = le_get_u64(b + 64);
        TRY(get_str(b + 72, DPROTO_NAME_MAX, r->name, "REGISTER name"));
        if (r->batch_size > WIRE_MAX_N) return FAIL(STATUS_FORMAT, "REGISTER batch_size %u > %u", r->batch_size, WIRE_MAX_N);
        if (r->image_size > WIRE_MAX_SIDE) return FAIL(STATUS_FORMAT, "REGISTER image_size %u > %u", r->image_size, WIRE_MAX_SIDE);
        if (r->channels > WIRE_MAX_C) return FAIL(STATUS_FORMAT, "REGISTER channels %u > %u", r->channels, WIRE_MAX_C);
        if (!switch_ok(r->flip) || !switch_ok(r->color) || !switch_ok(r->crop) || !switch_ok(r->color_ordering))
            return FAIL(STATUS_FORMAT, "REGISTER switch out of range (-1, 0, 1)");
        if (r->resize_method > 2 || r->fast_jpeg > 1 || r->has_seed > 1)
            return FAIL(STATUS_FORMAT, "REGISTER resize_method/fast_jpeg/has_seed out of range");
        break;
    }
    case DPROTO_REGISTERED: {
        struct dproto_registered *r = &out->u.ok;
        uint32_t v[8];
        for (int i = 0; i < 8; i++) v[i] = le_get_u32(b + 4 * i);
        r->batch_size = v[0]; r->image_size = v[1]; r->channels = v[2]; r->split_batches = v[3];
        r->heartbeat_ms = v[4]; r->timeout_ms = v[5]; r->eval = v[6]; r->window = v[7];
        r->seed = le_get_u64(b + 32);
        r->examples = le_get_u64(b + 40);
        r->flip = (int8_t)b[48]; r->color = (int8_t)b[49]; r->crop = (int8_t)b[50];
        TRY(get_str(b + 56, DPROTO_SUBSET_MAX, r->subset, "REGISTERED subset"));
        if (r->batch_size < 1 || r->batch_size > WIRE_MAX_N) return FAIL(STATUS_FORMAT, "REGISTERED batch_size %u", r->batch_size);
        if (r->image_size < 1 || r->image_size > WIRE_MAX_SIDE) return FAIL(STATUS_FORMAT, "REGISTERED image_size %u", r->image_size);
        if (r->channels < 1 || r->channels > WIRE_MAX_C) return FAIL(STATUS_FORMAT, "REGISTERED channels %u", r->channels);
        if (r->split_batches < 1 || r->split_batches > (1u << 20)) return FAIL(STATUS_FORMAT, "REGISTERED split_batches %u", r->split_batches);
        if (r->heartbeat_ms < 1 || r->timeout_ms < r->heartbeat_ms) return FAIL(STATUS_FORMAT, "REGISTERED heartbeat %u ms / timeout %u ms", r->heartbeat_ms, r->timeout_ms);
        if (r->eval > 1) return FAIL(STATUS_FORMAT, "REGISTERED eval %u", r->eval);
        if (r->window < 1 || r->window > (1u << 16)) return FAIL(STATUS_FORMAT, "REGISTERED window %u", r->window);
        if (r->examples < 1) return FAIL(STATUS_FORMAT, "REGISTERED examples 0");
        if (!switch_ok(r->flip) || !switch_ok(r->color) || !switch_ok(r->crop))
            return FAIL(STATUS_FORMAT, "REGISTERED switch out of range (-1, 0, 1)");
        break;
    }
    case DPROTO_REFUSED:
        TRY(get_str(b, DPROTO_FIELD_MAX, out->u.refused.field, "REFUSED field"));
        TRY(get_str(b + 32, DPROTO_NAME_MAX, out->u.refused.ours, "REFUSED ours"));
        TRY(get_str(b + 96, DPROTO_NAME_MAX, out->u.refused.theirs, "REFUSED theirs"));
        break;
    case DPROTO_LEASE: {
        struct dproto_lease *l = &out->u.lease;
        l->lease = le_get_u64(b); l->first = le_get_u64(b + 8);
        l->end = le_get_u64(b + 16); l->limit = le_get_u64(b + 24); l->after = le_get_u64(b + 32);
        if (l->lease == 0 || l->first >= l->end || l->limit > l->end || l->after == l->lease)
            return FAIL(STATUS_FORMAT, "LEASE %llu [%llu, %llu) limit %llu is not a range", (unsigned long long)l->lease,
                        (unsigned long long)l->first, (unsigned long long)l->end, (unsigned long long)l->limit);
        break;
    }
    case DPROTO_CREDIT:
        out->u.credit.lease = le_get_u64(b);
        out->u.credit.limit = le_get_u64(b + 8);
        if (out->u.credit.lease == 0) return FAIL(STATUS_FORMAT, "CREDIT for lease 0");
        break;
    case DPROTO_HEARTBEAT:
        out->u.hb.lease = le_get_u64(b);
        out->u.hb.next = le_get_u64(b + 8);
        out->u.hb.state = le_get_u32(b + 16);
        if (out->u.hb.state > DPROTO_REGISTERING) return FAIL(STATUS_FORMAT, "HEARTBEAT state %u", out->u.hb.state);
        break;
    case DPROTO_RESET:
        out->u.reset_reason = le_get_u32(b);
        break;
    case DPROTO_REQUEST:
        out->u.done = le_get_u64(b);
        out->u.holds = le_get_u64(b + 8);
        out->u.want = le_get_u32(b + 16);
        if (out->u.want > 1) return FAIL(STATUS_FORMAT, "REQUEST want %u", out->u.want);
        break;
    case DPROTO_BATCH: {
        struct dproto_batch *bt = &out->u.batch;
        bt->lease = le_get_u64(b);
        bt->index = le_get_u64(b + 8);
        TRY(wire_header_unpack(p + DPROTO_BATCH_FIXED, WIRE_HEADER_SIZE, &bt->header));
        const struct wire_header *h = &bt->header;
        if (h->n == 0 || (h->flags & WIRE_FLAG_END_OF_PASS))
            return FAIL(STATUS_FORMAT, "BATCH with n = 0 or an END_OF_PASS flag");
        size_t total = dproto_batch_size(h->n, h->h, h->w, h->c);
        if (total == 0 || len != total)
            return FAIL(STATUS_FORMAT, "BATCH of %zu bytes, its header (n %u, %ux%ux%u) implies %zu", len, h->n, h->h,
                        h->w, h->c, total);
        bt->labels = p + dproto_batch_labels_off();
        bt->ids = p + dproto_batch_ids_off(h->n);
        bt->pixels = p + dproto_batch_pixels_off(h->n);
        break;
    }
    default:
        break;
    }
    return STATUS_OK;
}

status dproto_dataset_identity(const char *data_dir, uint32_t *crc, uint64_t *len, uint64_t *records)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, MANIFEST_FILE);
    FILE *fp = fopen(path, "rb");
    if (!fp) return FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
    uint32_t c = 0;
    uint64_t n = 0;
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, fp)) > 0) { c = crc32c_update(c, chunk, k); n += k; }
    fclose(fp);
    struct manifest *m = NULL;
    TRY(manifest_load(data_dir, &m));
    uint64_t total = 0;
    for (int i = 0; i < m->nsubsets; i++) total += m->subsets[i].count;
    manifest_free(&m);
    *crc = c;
    *len = n;
    *records = total;
    return STATUS_OK;
}

/*
 * dispatch_check.c — what the dispatcher checks before it trusts a worker or
 * a batch (see dispatch_check.h): pure functions of the run's settings and
 * a parsed message.
 */
#include "trainer/dispatch_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "shared/endian.h"

static const char *sw_name(int8_t v) { return v < 0 ? "the dataset profile's" : v ? "on" : "off"; }

int dispatch_register_differs(const struct dispatcher_config *c, const struct dproto_register *r, char field[DPROTO_FIELD_MAX],
                              char ours[DPROTO_NAME_MAX], char theirs[DPROTO_NAME_MAX])
{
#define DIFF(f, ...) do { snprintf(field, DPROTO_FIELD_MAX, "%s", f); snprintf(ours, DPROTO_NAME_MAX, __VA_ARGS__); \
                          return 1; } while (0)
    if (r->manifest_crc != c->manifest_crc || r->manifest_len != c->manifest_len) {
        snprintf(theirs, DPROTO_NAME_MAX, "crc32c:%08x:%" PRIu64, r->manifest_crc, r->manifest_len);
        DIFF("dataset (manifest checksum)", "crc32c:%08x:%" PRIu64, c->manifest_crc, c->manifest_len);
    }
    if (r->records != c->records) {
        snprintf(theirs, DPROTO_NAME_MAX, "%" PRIu64, r->records);
        DIFF("dataset (records)", "%" PRIu64, c->records);
    }
    if (r->subset[0] && strcmp(r->subset, c->subset) != 0) { snprintf(theirs, DPROTO_NAME_MAX, "%s", r->subset); DIFF("subset", "%s", c->subset); }
    if (r->batch_size && r->batch_size != c->batch_size) { snprintf(theirs, DPROTO_NAME_MAX, "%u", r->batch_size); DIFF("batch_size", "%u", c->batch_size); }
    if (r->image_size && r->image_size != c->image_size) { snprintf(theirs, DPROTO_NAME_MAX, "%u", r->image_size); DIFF("image_size", "%u", c->image_size); }
    if (r->channels && r->channels != c->channels) { snprintf(theirs, DPROTO_NAME_MAX, "%u", r->channels); DIFF("channels", "%u", c->channels); }
    if (r->has_seed && r->seed != c->seed) { snprintf(theirs, DPROTO_NAME_MAX, "%" PRIu64, r->seed); DIFF("seed", "%" PRIu64, c->seed); }
    if (r->flip >= 0 && r->flip != c->flip) { snprintf(theirs, DPROTO_NAME_MAX, "%s", sw_name(r->flip)); DIFF("flip", "%s", sw_name(c->flip)); }
    if (r->color >= 0 && r->color != c->color) { snprintf(theirs, DPROTO_NAME_MAX, "%s", sw_name(r->color)); DIFF("color", "%s", sw_name(c->color)); }
    if (r->crop >= 0 && r->crop != c->crop) { snprintf(theirs, DPROTO_NAME_MAX, "%s", sw_name(r->crop)); DIFF("crop", "%s", sw_name(c->crop)); }
    if (r->color_ordering != -1) { snprintf(theirs, DPROTO_NAME_MAX, "%d", r->color_ordering); DIFF("color_ordering", "-1"); }
    if (r->resize_method != 0) { snprintf(theirs, DPROTO_NAME_MAX, "%u", r->resize_method); DIFF("resize_method", "0 (bilinear)"); }
    if (r->fast_jpeg != 1) { snprintf(theirs, DPROTO_NAME_MAX, "%u", r->fast_jpeg); DIFF("fast_jpeg", "1"); }
#undef DIFF
    return 0;
}

const char *dispatch_batch_wrong(const struct dispatcher_config *c, const struct dproto_batch *b, char *buf, size_t n)
{
    const struct wire_header *h = &b->header;
    uint32_t want_n = c->batch_size;
    if (c->eval) {
        uint64_t nb = (c->examples + c->batch_size - 1) / c->batch_size, j = b->index % nb;
        uint64_t left = c->examples - j * c->batch_size;
        want_n = left < c->batch_size ? (uint32_t)left : c->batch_size;
    }
    /* eval: a worker leaves a bad record's slot empty, so a batch may be short */
    if (c->eval ? h->n > want_n : h->n != want_n) {
        snprintf(buf, n, "batch %" PRIu64 " has %u examples, expected %s%u", b->index, h->n, c->eval ? "at most " : "",
                 want_n);
        return buf;
    }
    if (h->h != c->image_size || h->w != c->image_size || h->c != c->channels) {
        snprintf(buf, n, "images of %ux%ux%u, expected %ux%ux%u", h->h, h->w, h->c, c->image_size, c->image_size, c->channels);
        return buf;
    }
    if (h->seq != b->index || h->seed != c->seed || !!(h->flags & WIRE_FLAG_EVAL) != !!c->eval) {
        snprintf(buf, n, "header (seq %" PRIu64 ", seed %" PRIu64 ", flags %u) does not match batch %" PRIu64 " of this run",
                 h->seq, h->seed, h->flags, b->index);
        return buf;
    }
    if (c->num_classes > 0)
        for (uint32_t i = 0; i < h->n; i++) {
            int32_t l = (int32_t)le_get_u32(b->labels + 4 * i);
            if (l < 0 || l >= c->num_classes) { snprintf(buf, n, "label %d out of range", l); return buf; }
        }
    for (uint32_t i = 0; i < h->n; i++)
        if (le_get_u64(b->ids + 8 * (size_t)i) >= (c->id_limit ? c->id_limit : c->records)) {
            snprintf(buf, n, "example id out of range");
            return buf;
        }
    return NULL;
}


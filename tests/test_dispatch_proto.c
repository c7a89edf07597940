/*
 * test_dispatch_proto.c — the dispatcher protocol's codec: every message type
 * round-trips, the byte layout matches proto/dispatch.md, and malformed input
 * (short, wrong magic/version/type/size, strings without NUL, out-of-range
 * fields, a BATCH whose size disagrees with its header, random bytes and
 * every truncation of a valid message) is refused with a message, never
 * read past its end.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "shared/dispatch_proto.h"
#include "shared/endian.h"
#include "shared/rng.h"

static size_t enc(struct dproto_msg *m, uint8_t *buf, size_t cap)
{
    size_t n = dproto_encode(m, buf, cap);
    cr_assert_gt(n, 0u);
    return n;
}

Test(dispatch_proto, register_round_trip_and_layout)
{
    struct dproto_msg m = { .type = DPROTO_REGISTER }, g;
    struct dproto_register *r = &m.u.reg;
    r->manifest_crc = 0xdeadbeef; r->manifest_len = 1234; r->records = 650;
    strcpy(r->subset, "train"); r->batch_size = 16; r->image_size = 28; r->channels = 1;
    r->flip = -1; r->color = 0; r->crop = 1; r->color_ordering = -1; r->fast_jpeg = 1; r->has_seed = 1; r->seed = 99;
    strcpy(r->name, "host:42");
    uint8_t buf[256];
    size_t n = enc(&m, buf, sizeof buf);
    cr_assert_eq(n, 16u + 136u);
    cr_assert_eq(memcmp(buf, "DPDS", 4), 0);
    cr_assert_eq(buf[4], 2); cr_assert_eq(buf[6], DPROTO_REGISTER);
    cr_assert_eq(buf[16], 0xef);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(g.type, DPROTO_REGISTER);
    cr_assert_eq(g.u.reg.manifest_crc, 0xdeadbeef);
    cr_assert_eq(g.u.reg.records, 650u);
    cr_assert_str_eq(g.u.reg.subset, "train");
    cr_assert_str_eq(g.u.reg.name, "host:42");
    cr_assert_eq(g.u.reg.flip, -1); cr_assert_eq(g.u.reg.crop, 1); cr_assert_eq(g.u.reg.seed, 99u);
}

Test(dispatch_proto, control_round_trips)
{
    uint8_t buf[512];
    struct dproto_msg m = { .type = DPROTO_REGISTERED, .session = 77 }, g;
    m.u.ok = (struct dproto_registered){ 16, 28, 1, 4, 1000, 5000, 0, 16, 5, 600, -1, -1, 0, "train" };
    size_t n = enc(&m, buf, sizeof buf);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(g.session, 77u); cr_assert_eq(g.u.ok.window, 16u); cr_assert_str_eq(g.u.ok.subset, "train");
    m = (struct dproto_msg){ .type = DPROTO_LEASE, .session = 77 };
    m.u.lease = (struct dproto_lease){ 3, 8, 12, 10, 0 };
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(g.u.lease.first, 8u); cr_assert_eq(g.u.lease.limit, 10u);
    m = (struct dproto_msg){ .type = DPROTO_REFUSED };
    strcpy(m.u.refused.field, "image_size"); strcpy(m.u.refused.ours, "28"); strcpy(m.u.refused.theirs, "32");
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_OK, "%s", status_msg());
    cr_assert_str_eq(g.u.refused.theirs, "32");
    m = (struct dproto_msg){ .type = DPROTO_REQUEST, .session = 1 };
    m.u.done = 5;
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(g.u.done, 5u);
    m = (struct dproto_msg){ .type = DPROTO_BATCH };
    cr_assert_eq(dproto_encode(&m, buf, sizeof buf), 0u);   /* BATCH is built with dproto_batch_begin */
}

static size_t make_batch(uint8_t **out, uint32_t n)
{
    size_t sz = dproto_batch_size(n, 4, 4, 1);
    uint8_t *b = calloc(1, sz);
    struct wire_header h;
    wire_header_init(&h, 0, 1, 9, 0, n, 4, 4, 1, 0, 5);
    dproto_batch_begin(b, 7, 2, 9, &h);
    for (uint32_t i = 0; i < n; i++) le_put_u64(b + dproto_batch_ids_off(n) + 8 * i, 100 + i);
    *out = b;
    return sz;
}

Test(dispatch_proto, batch_round_trip_and_size_check)
{
    uint8_t *b;
    size_t sz = make_batch(&b, 3);
    struct dproto_msg g;
    cr_assert_eq(dproto_parse(b, sz, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(g.u.batch.index, 9u);
    cr_assert_eq(g.u.batch.header.n, 3u);
    cr_assert_eq(le_get_u64(g.u.batch.ids + 16), 102u);
    cr_assert_eq(g.u.batch.pixels, b + dproto_batch_pixels_off(3));
    cr_assert_eq(dproto_parse(b, sz - 1, &g), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "implies") != NULL, "%s", status_msg());
    free(b);
}

Test(dispatch_proto, malformed_refused)
{
    uint8_t buf[512];
    struct dproto_msg m = { .type = DPROTO_LEASE }, g;
    m.u.lease = (struct dproto_lease){ 1, 4, 8, 8, 0 };
    size_t n = enc(&m, buf, sizeof buf);
    cr_assert_eq(dproto_parse(buf, 3, &g), STATUS_FORMAT);
    buf[0] ^= 1;
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "magic") != NULL);
    buf[0] ^= 1; buf[4] = DPROTO_VERSION + 1;
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "version") != NULL);
    buf[4] = DPROTO_VERSION; buf[6] = 99;
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
    buf[6] = DPROTO_LEASE;
    cr_assert_eq(dproto_parse(buf, n + 1, &g), STATUS_FORMAT);
    le_put_u64(buf + 16 + 16, 4);   /* end == first */
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
    /* a REFUSED whose field has no NUL */
    m = (struct dproto_msg){ .type = DPROTO_REFUSED };
    n = enc(&m, buf, sizeof buf);
    memset(buf + 16, 'A', 32);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "NUL") != NULL);
    /* a REGISTER with a switch of 7 */
    m = (struct dproto_msg){ .type = DPROTO_REGISTER };
    n = enc(&m, buf, sizeof buf);
    buf[16 + 52] = 7;
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
}

/* Every truncation of every valid message, and random bytes behind a valid
 * header: refused or parsed, never a crash (run under ASan by make test-asan). */
Test(dispatch_proto, truncations_and_noise)
{
    uint8_t *b;
    size_t sz = make_batch(&b, 2);
    struct dproto_msg g;
    for (size_t k = 0; k < sz; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, b, k);
        cr_assert_eq(dproto_parse(copy, k, &g), STATUS_FORMAT);
        free(copy);
    }
    free(b);
    struct rng r;
    rng_init(&r, 1, 2);
    for (int t = 0; t < 20000; t++) {
        size_t len = rng_below(&r, 400);
        uint8_t *buf = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rng_u32(&r);
        if (len >= 16 && (t & 1)) {
            le_put_u32(buf, DPROTO_MAGIC);
            buf[4] = 1; buf[5] = 0;
            buf[6] = (uint8_t)(1 + rng_below(&r, DPROTO_TYPE_MAX)); buf[7] = 0;
        }
        status st = dproto_parse(buf, len, &g);
        cr_assert(st == STATUS_OK || st == STATUS_FORMAT);
        free(buf);
    }
}

/* Version 2: a LEASE may follow the worker's current lease (`after`), and a
 * REQUEST says which lease the worker holds and whether it wants one. */
Test(dispatch_proto, queued_lease_and_request_v2)
{
    uint8_t buf[512];
    struct dproto_msg m = { .type = DPROTO_LEASE, .session = 9 }, g;
    m.u.lease = (struct dproto_lease){ .lease = 5, .first = 12, .end = 16, .limit = 14, .after = 4 };
    size_t n = enc(&m, buf, sizeof buf);
    cr_assert_eq(n, 16u + 40u);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(g.u.lease.after, 4u);
    le_put_u64(buf + 16 + 32, 5);   /* a lease cannot follow itself */
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
    m = (struct dproto_msg){ .type = DPROTO_REQUEST, .session = 9 };
    m.u.done = 3; m.u.holds = 4; m.u.want = 1;
    n = enc(&m, buf, sizeof buf);
    cr_assert_eq(n, 16u + 24u);
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(g.u.done, 3u); cr_assert_eq(g.u.holds, 4u); cr_assert_eq(g.u.want, 1u);
    buf[16 + 16] = 2;               /* want is 0 or 1 */
    cr_assert_eq(dproto_parse(buf, n, &g), STATUS_FORMAT);
}

/*
 * test_wire.c — the batch header codec: round trip, byte layout, and that
 * every malformed header is refused with a message naming the field.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "shared/wire.h"

static struct wire_header sample(void)
{
    struct wire_header h;
    wire_header_init(&h, 2, 3, 77, 5, 32, 299, 299, 3, 0, 1234);
    return h;
}

Test(wire, round_trip_and_layout)
{
    struct wire_header h = sample(), g;
    uint8_t buf[WIRE_HEADER_SIZE];
    wire_header_pack(&h, buf);
    cr_assert_eq(buf[0], 'D'); cr_assert_eq(buf[1], 'P'); cr_assert_eq(buf[2], 'B'); cr_assert_eq(buf[3], 'H');
    cr_assert_eq(buf[4], 1); cr_assert_eq(buf[6], 64);
    cr_assert_eq(buf[16], 77);      /* seq, little-endian */
    cr_assert_eq(buf[32], 32);      /* n */
    cr_assert_eq(buf[36], 299 & 255); cr_assert_eq(buf[37], 299 >> 8);
    cr_assert_eq(wire_header_unpack(buf, sizeof buf, &g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(memcmp(&h, &g, sizeof h), 0);
    cr_assert_eq(wire_pixels_bytes(&g), (size_t)32 * 299 * 299 * 3);
    cr_assert_eq(wire_labels_bytes(&g), 128u);
    cr_assert_eq(wire_ids_bytes(&g), 256u);
}

static void expect_bad(struct wire_header h, const char *word)
{
    uint8_t buf[WIRE_HEADER_SIZE];
    struct wire_header g;
    wire_header_pack(&h, buf);
    cr_assert_eq(wire_header_unpack(buf, sizeof buf, &g), STATUS_FORMAT, "accepted a header with bad %s", word);
    cr_assert(strstr(status_msg(), word), "message '%s' does not name '%s'", status_msg(), word);
}

Test(wire, rejects_malformed)
{
    struct wire_header h;
    h = sample(); h.magic = 0x12345678; expect_bad(h, "magic");
    h = sample(); h.version = 9; expect_bad(h, "version");
    h = sample(); h.header_size = 65; expect_bad(h, "header_size");
    h = sample(); h.dtype = 7; expect_bad(h, "dtype");
    h = sample(); h.flags = 0x100; expect_bad(h, "flags");
    h = sample(); h.worker = 3; expect_bad(h, "worker");
    h = sample(); h.n = WIRE_MAX_N + 1; expect_bad(h, "n");
    h = sample(); h.h = 0; expect_bad(h, "shape");
    h = sample(); h.c = 5; expect_bad(h, "shape");
    h = sample(); h.n = 0; expect_bad(h, "end-of-pass");
    h = sample(); h.flags = WIRE_FLAG_END_OF_PASS; expect_bad(h, "end-of-pass");
    h = sample(); h.count = 3; expect_bad(h, "count");
    h = sample(); h.n = 65536; h.h = h.w = 16384; h.c = 4; expect_bad(h, "too large");
    /* wrong size */
    uint8_t buf[WIRE_HEADER_SIZE + 1] = { 0 };
    struct wire_header g;
    cr_assert_eq(wire_header_unpack(buf, 63, &g), STATUS_FORMAT);
    cr_assert_eq(wire_header_unpack(buf, 65, &g), STATUS_FORMAT);
    /* an END marker is fine */
    h = sample(); h.n = 0; h.flags = WIRE_FLAG_END_OF_PASS | WIRE_FLAG_EVAL; h.count = 10;
    wire_header_pack(&h, buf);
    cr_assert_eq(wire_header_unpack(buf, WIRE_HEADER_SIZE, &g), STATUS_OK, "%s", status_msg());
}

Test(wire, check_against_expectations)
{
    struct wire_header h = sample();
    struct wire_expect e = { .max_n = 32, .h = 299, .w = 299, .c = 3, .num_workers = 3 };
    cr_assert_eq(wire_header_check(&h, &e), STATUS_OK);
    e.max_n = 16; cr_assert_eq(wire_header_check(&h, &e), STATUS_FORMAT);
    e.max_n = 32; e.h = 224; cr_assert_eq(wire_header_check(&h, &e), STATUS_FORMAT);
    e.h = 299; e.num_workers = 2; cr_assert_eq(wire_header_check(&h, &e), STATUS_FORMAT);
    e.num_workers = 0; e.max_pixels = 1000; cr_assert_eq(wire_header_check(&h, &e), STATUS_FORMAT);
    struct wire_expect any = { .max_h = 300, .max_w = 300, .max_c = 3 };
    cr_assert_eq(wire_header_check(&h, &any), STATUS_OK);
    any.max_w = 100; cr_assert_eq(wire_header_check(&h, &any), STATUS_FORMAT);
}

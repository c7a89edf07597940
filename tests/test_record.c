/*
 * test_record.c — the record codec: round trip, and a decoder that refuses
 * every malformed value (bad magic, version, lengths, storage, CRC) without
 * reading outside the buffer.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "shared/record.h"

static uint8_t *encode(struct record *r, size_t *n)
{
    *n = record_encoded_size(r);
    uint8_t *buf = malloc(*n);
    cr_assert_eq(record_encode(r, buf, *n, NULL), STATUS_OK, "%s", status_msg());
    return buf;
}

Test(record, raw_round_trip)
{
    uint8_t px[4 * 5 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 13 + 1);
    struct record r = { .label = 7, .height = 4, .width = 5, .channels = 3, .storage = RECORD_RAW,
                        .name = "cat/a b.jpg", .name_len = 11, .payload = px, .payload_len = sizeof px };
    size_t n;
    uint8_t *buf = encode(&r, &n);
    cr_assert_eq(n, 32 + 16 + sizeof px);
    struct record d;
    cr_assert_eq(record_decode(buf, n, 1, &d), STATUS_OK, "%s", status_msg());
    cr_assert_eq(d.label, 7);
    cr_assert_eq(d.height, 4);
    cr_assert_eq(d.width, 5);
    cr_assert_eq(d.channels, 3);
    cr_assert_eq(d.storage, RECORD_RAW);
    cr_assert_eq(d.name_len, 11);
    cr_assert(!memcmp(d.name, "cat/a b.jpg", 11));
    cr_assert_eq(d.payload_len, sizeof px);
    cr_assert(!memcmp(d.payload, px, sizeof px));
    cr_assert_eq(d.crc, r.crc);
    cr_assert_eq((uintptr_t)(d.payload - buf) % 8, 0, "payload is 8-aligned within the value");
    free(buf);
}

Test(record, negative_label_and_jpeg_storage)
{
    uint8_t jpg[10] = { 0xff, 0xd8, 0xff, 1, 2, 3, 4, 5, 6, 7 };
    struct record r = { .label = -1, .height = 300, .width = 200, .channels = 1, .storage = RECORD_JPEG,
                        .name = "", .name_len = 0, .payload = jpg, .payload_len = sizeof jpg };
    size_t n;
    uint8_t *buf = encode(&r, &n);
    struct record d;
    cr_assert_eq(record_decode(buf, n, 1, &d), STATUS_OK);
    cr_assert_eq(d.label, -1);
    cr_assert_eq(d.storage, RECORD_JPEG);
    cr_assert_eq(d.height, 300);
    cr_assert_eq(d.payload_len, sizeof jpg);
    free(buf);
}

Test(record, encoder_refuses_bad_fields)
{
    uint8_t px[12], out[256];
    struct record r = { .height = 2, .width = 2, .channels = 3, .storage = RECORD_RAW, .payload = px, .payload_len = 11 };
    cr_assert_eq(record_encode(&r, out, sizeof out, NULL), STATUS_FORMAT);
    r.payload_len = 12;
    r.channels = 2;
    cr_assert_eq(record_encode(&r, out, sizeof out, NULL), STATUS_FORMAT);
    r.channels = 3;
    cr_assert_eq(record_encode(&r, out, 20, NULL), STATUS_USAGE);
    cr_assert_eq(record_encode(&r, out, sizeof out, NULL), STATUS_OK);
}

Test(record, decoder_refuses_every_malformation)
{
    uint8_t px[2 * 3 * 1] = { 1, 2, 3, 4, 5, 6 };
    struct record r = { .label = 1, .height = 2, .width = 3, .channels = 1, .storage = RECORD_RAW,
                        .name = "x.png", .name_len = 5, .payload = px, .payload_len = 6 };
    size_t n;
    uint8_t *good = encode(&r, &n);
    uint8_t *b = malloc(n);
    struct record d;
    /* every truncation, exactly sized copies so ASan sees any over-read */
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, good, cut);
        cr_assert_eq(record_decode(t, cut, 0, &d), STATUS_CORRUPT, "truncated to %zu accepted", cut);
        free(t);
    }
#define MUTATE(off, val, expect) do { memcpy(b, good, n); b[off] = (uint8_t)(val); \
        cr_assert_eq(record_decode(b, n, 1, &d), expect, "byte %d = %d: %s", off, val, status_msg()); } while (0)
    MUTATE(0, 'X', STATUS_CORRUPT);          /* magic */
    MUTATE(4, 2, STATUS_UNSUPPORTED);        /* version */
    MUTATE(6, 9, STATUS_CORRUPT);            /* storage */
    MUTATE(7, 4, STATUS_CORRUPT);            /* channels */
    MUTATE(12, 3, STATUS_CORRUPT);           /* height: h*w*c != payload */
    MUTATE(24, 7, STATUS_CORRUPT);           /* payload length vs value size */
    MUTATE(27, 0x80, STATUS_CORRUPT);        /* huge payload length */
    MUTATE(28, 200, STATUS_CORRUPT);         /* name length beyond the value */
    MUTATE(30, 1, STATUS_CORRUPT);           /* reserved */
    MUTATE(n - 1, 99, STATUS_CORRUPT);       /* payload byte: crc */
    MUTATE(20, good[20] ^ 1, STATUS_CORRUPT);/* stored crc */
    /* without crc verification a payload flip passes structurally, then record_verify catches it */
    memcpy(b, good, n);
    b[n - 1] ^= 0x40;
    cr_assert_eq(record_decode(b, n, 0, &d), STATUS_OK);
    cr_assert_eq(record_verify(&d), STATUS_CORRUPT);
    /* trailing garbage */
    uint8_t *longer = calloc(1, n + 8);
    memcpy(longer, good, n);
    cr_assert_eq(record_decode(longer, n + 8, 0, &d), STATUS_CORRUPT);
    free(longer);
    free(b);
    free(good);
}

Test(record, storage_names)
{
    enum record_storage s;
    cr_assert_eq(record_storage_parse("jpeg", &s), STATUS_OK);
    cr_assert_eq(s, RECORD_JPEG);
    cr_assert_str_eq(record_storage_name(RECORD_RAW), "raw");
    cr_assert_eq(record_storage_parse("png", &s), STATUS_USAGE);
}

Test(record, in_place_encoding_equals_encode)
{
    uint8_t px[3 * 4 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 5);
    struct record r = { .label = 2, .height = 3, .width = 4, .channels = 3, .storage = RECORD_RAW,
                        .name = "abc", .name_len = 3, .payload = px, .payload_len = sizeof px };
    size_t n;
    uint8_t *want = encode(&r, &n);
    uint8_t *got = calloc(1, n);
    struct record h = r;
    h.payload = NULL;
    h.crc = 0;
    cr_assert_eq(record_encode_header(&h, got, n), STATUS_OK);
    memcpy(got + record_payload_offset(3), px, sizeof px);
    record_set_crc(got, r.crc);
    cr_assert_eq(memcmp(got, want, n), 0);
    free(got);
    free(want);
}

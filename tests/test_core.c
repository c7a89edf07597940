/*
 * test_core.c — status, flags, CRC32C and the counter-based RNG.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "shared/crc32c.h"
#include "shared/flags.h"
#include "shared/rng.h"
#include "shared/status.h"

Test(crc32c, known_vectors)
{
    cr_assert_eq(crc32c("123456789", 9), 0xE3069283u);
    cr_assert_eq(crc32c("", 0), 0u);
    unsigned char zeros[32] = { 0 };
    cr_assert_eq(crc32c(zeros, 32), 0x8A9136AAu);   /* RFC 3720 B.4 */
    unsigned char ones[32];
    memset(ones, 0xff, 32);
    cr_assert_eq(crc32c(ones, 32), 0x62A8AB43u);
}

Test(crc32c, incremental_equals_whole)
{
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7 + 3);
    uint32_t whole = crc32c(buf, sizeof buf);
    for (int cut = 0; cut <= 1000; cut += 37) {
        uint32_t c = crc32c_update(crc32c_update(0, buf, (size_t)cut), buf + cut, (size_t)(1000 - cut));
        cr_assert_eq(c, whole, "split at %d", cut);
    }
}

/* long buffers take the interleaved three-stream path: compare with a
 * bit-at-a-time reference at odd lengths and misaligned starts */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = ~0u;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

Test(crc32c, long_buffers_match_bitwise_reference)
{
    size_t cap = 200000;
    unsigned char *buf = malloc(cap);
    cr_assert_not_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < cap; i++) { x = x * 1103515245u + 12345u; buf[i] = (unsigned char)(x >> 16); }
    size_t lens[] = { 12287, 12288, 12289, 24577, 65536, 100003, 199990 };
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (size_t off = 0; off < 8; off += 3) {
            uint32_t want = crc32c_bitwise(buf + off, lens[li]), got = crc32c(buf + off, lens[li]);
            cr_assert_eq(got, want, "len %zu offset %zu: %08x, reference %08x", lens[li], off, got, want);
            /* and as the continuation of a running CRC */
            uint32_t c2 = crc32c_update(crc32c(buf, off), buf + off, lens[li]);
            cr_assert_eq(c2, crc32c_bitwise(buf, off + lens[li]), "len %zu after %zu bytes", lens[li], off);
        }
    free(buf);
}

Test(rng, philox_known_answers)
{
    /* Random123 known-answer tests for philox4x32-10 */
    uint32_t ctr0[4] = { 0, 0, 0, 0 }, key0[2] = { 0, 0 }, out[4];
    rng_philox(ctr0, key0, out);
    cr_assert_eq(out[0], 0x6627e8d5u); cr_assert_eq(out[1], 0xe169c58du);
    cr_assert_eq(out[2], 0xbc57ac4cu); cr_assert_eq(out[3], 0x9b00dbd8u);
    uint32_t ctr1[4] = { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu }, key1[2] = { 0xffffffffu, 0xffffffffu };
    rng_philox(ctr1, key1, out);
    cr_assert_eq(out[0], 0x408f276du); cr_assert_eq(out[1], 0x41c83b0eu);
    cr_assert_eq(out[2], 0xa20bc7c6u); cr_assert_eq(out[3], 0x6d5451fdu);
}

Test(rng, same_key_same_numbers_and_uniform)
{
    struct rng a, b;
    rng_init(&a, 42, rng_stream(1, 2, RNG_WHAT_CROP));
    rng_init(&b, 42, rng_stream(1, 2, RNG_WHAT_CROP));
    for (int i = 0; i < 100; i++) cr_assert_eq(rng_u32(&a), rng_u32(&b));
    rng_init(&b, 42, rng_stream(1, 2, RNG_WHAT_FLIP));
    int same = 0;
    for (int i = 0; i < 100; i++) same += rng_u32(&a) == rng_u32(&b);
    cr_assert_lt(same, 3);
    /* mean and bucket counts of rng_below */
    int counts[10] = { 0 };
    double sum = 0;
    for (int i = 0; i < 100000; i++) { counts[rng_below(&a, 10)]++; sum += rng_uniform(&a); }
    for (int k = 0; k < 10; k++) cr_assert(counts[k] > 9500 && counts[k] < 10500, "bucket %d: %d", k, counts[k]);
    cr_assert(fabs(sum / 100000 - 0.5) < 0.01);
}

Test(rng, shuffle_is_permutation)
{
    struct rng r;
    rng_init(&r, 7, 0);
    uint32_t v[257];
    for (uint32_t i = 0; i < 257; i++) v[i] = i;
    rng_shuffle_u32(&r, v, 257);
    int seen[257] = { 0 }, moved = 0;
    for (uint32_t i = 0; i < 257; i++) { seen[v[i]]++; moved += v[i] != i; }
    for (int i = 0; i < 257; i++) cr_assert_eq(seen[i], 1);
    cr_assert_gt(moved, 200);
}

Test(flags, tf_names_dashes_bools_and_errors)
{
    const char *dir = "/tmp/x";
    int steps = 5, once = 0, flip = 1;
    float lr = 0.1f;
    int steps_set = 0;
    struct flag table[] = {
        { "train_dir", FLAG_STRING, &dir, "where", NULL },
        { "max_steps", FLAG_INT, &steps, "steps", &steps_set },
        { "run_once", FLAG_BOOL, &once, "once", NULL },
        { "flip", FLAG_BOOL, &flip, "flip", NULL },
        { "initial_learning_rate", FLAG_FLOAT, &lr, "lr", NULL },
    };
    struct flags_spec spec = { "t", "[flags] FILE", NULL, table, FLAGS_COUNT(table), 1, 2 };
    char *argv[] = { "t", "--train-dir=/a", "--max_steps", "12", "--run_once", "--noflip",
                     "--initial-learning-rate=0.5", "file1", NULL };
    char *pos[9];
    int np = 0;
    cr_assert_eq(flags_parse(&spec, 8, argv, pos, &np), STATUS_OK, "%s", status_msg());
    cr_assert_str_eq(dir, "/a");
    cr_assert_eq(steps, 12); cr_assert_eq(steps_set, 1);
    cr_assert_eq(once, 1); cr_assert_eq(flip, 0);
    cr_assert_float_eq(lr, 0.5f, 1e-7);
    cr_assert_eq(np, 1); cr_assert_str_eq(pos[0], "file1");

    char *bad1[] = { "t", "--max_steps=abc", "f", NULL };
    cr_assert_eq(flags_parse(&spec, 3, bad1, pos, &np), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "max_steps"));
    char *bad2[] = { "t", "--nope", "f", NULL };
    cr_assert_eq(flags_parse(&spec, 3, bad2, pos, &np), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "nope"));
    char *bad3[] = { "t", NULL };
    cr_assert_eq(flags_parse(&spec, 1, bad3, pos, &np), STATUS_USAGE);
    char *bad4[] = { "t", "--run_once=maybe", "f", NULL };
    cr_assert_eq(flags_parse(&spec, 3, bad4, pos, &np), STATUS_USAGE);
}

Test(status, fail_records_message_and_where)
{
    status st = FAIL(STATUS_CORRUPT, "file %s: bad crc", "a.mdb");
    cr_assert_eq(st, STATUS_CORRUPT);
    cr_assert_str_eq(status_msg(), "file a.mdb: bad crc");
    cr_assert(strstr(status_where(), "test_core.c:"));
    cr_assert_str_eq(status_str(STATUS_CORRUPT), "corrupt");
}

/* A message formatted from the previous one (FAIL(st, "%s: %s", path,
 * status_msg())) must come out whole, not overwritten while it is copied. */
Test(status, message_formatted_from_itself)
{
    FAIL(STATUS_DECODE, "not a JPEG, PNG or WebP (unknown signature)");
    status st = FAIL(STATUS_DECODE, "%s: %s", "notes.txt", status_msg());
    cr_assert_eq(st, STATUS_DECODE);
    cr_assert_str_eq(status_msg(), "notes.txt: not a JPEG, PNG or WebP (unknown signature)");
    /* twice more, and with the old message first */
    FAIL(STATUS_IO, "%s (while reading %s)", status_msg(), "a/b.jpg");
    FAIL(STATUS_IO, "x: %s", status_msg());
    cr_assert_str_eq(status_msg(), "x: notes.txt: not a JPEG, PNG or WebP (unknown signature) (while reading a/b.jpg)");
    /* a message as long as the buffer is cut, never overrun */
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    FAIL(STATUS_IO, "%s", big);
    FAIL(STATUS_IO, "p: %s", status_msg());
    cr_assert(strncmp(status_msg(), "p: aaaa", 7) == 0);
    cr_assert_eq(strlen(status_msg()), 1023u);
}

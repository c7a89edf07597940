/*
 * test_shard.c — LMDB shards: write/read round trip, MDB_APPEND order,
 * map growth ahead of each batch (values reserved in place), taking back a
 * reserved value, cursor/get/seek, the content
 * checksum, and opening readers in forked children.  Every test that is not
 * about liblmdb's map runs with both writer engines (shard.h);
 * test_shard_direct.c has the direct engine's own tests.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/crc32c.h"
#include "shared/shard.h"
#include "tests/tmpdir_util.h"

TestSuite(shard, .init = tmpdir_make, .fini = tmpdir_remove);

static const int engines[2] = { SHARD_ENGINE_LMDB, SHARD_ENGINE_DIRECT };
static const char *const engine_names[2] = { "lmdb", "direct" };

/* value i: length varies, bytes derived from i */
static size_t value_of(uint64_t i, uint8_t *buf)
{
    size_t len = 1 + (i * 7919) % 3000;
    for (size_t j = 0; j < len; j++) buf[j] = (uint8_t)(i * 31 + j);
    return len;
}

Test(shard, key_encoding_sorts_numerically)
{
    uint8_t a[8], b[8];
    shard_key_encode(255, a);
    shard_key_encode(256, b);
    cr_assert_lt(memcmp(a, b, 8), 0);
    cr_assert_eq(shard_key_decode(b), 256);
    shard_key_encode(0x0102030405060708ull, a);
    cr_assert_eq(a[0], 1);
    cr_assert_eq(a[7], 8);
    char name[64];
    cr_assert_eq(shard_file_name("train", 3, 16, name, sizeof name), STATUS_OK);
    cr_assert_str_eq(name, "train-00003-of-00016.mdb");
}

Test(shard, map_grows_ahead_of_each_batch)
{
    char path[300];
    snprintf(path, sizeof path, "%s/s.mdb", tmpdir);
    struct shard_writer_opts o = { .engine = SHARD_ENGINE_LMDB, .map_size = 64 << 10, .batch_records = 50,
                                   .batch_bytes = 32 << 10 };
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK, "%s", status_msg());
    uint8_t buf[4096];
    uint32_t crc = 0;
    const uint64_t n = 2000;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t key = i * 3 + 5;          /* gaps, like rejected inputs */
        size_t len = value_of(i, buf);
        cr_assert_eq(shard_writer_put(w, key, buf, len), STATUS_OK, "%s", status_msg());
        crc = shard_checksum_update(crc, key, buf, len);
    }
    int grows = shard_writer_grows(w);
    cr_assert_gt(grows, 3, "a 64 KiB map must grow for ~3 MB of values (doubled %d times)", grows);
    cr_assert_leq(shard_writer_map_size(w), (size_t)64 << 20, "map of %zu bytes for ~3 MB", shard_writer_map_size(w));
    uint64_t records;
    uint32_t sum;
    cr_assert_eq(shard_writer_close(&w, &records, &sum), STATUS_OK, "%s", status_msg());
    cr_assert_eq(records, n);
    cr_assert_eq(sum, crc);

    struct shard_reader *r;
    cr_assert_eq(shard_reader_open(path, &r), STATUS_OK, "%s", status_msg());
    cr_assert_eq(shard_reader_count(r), n);
    struct shard_txn *t;
    cr_assert_eq(shard_txn_begin(r, &t), STATUS_OK);
    uint64_t i = 0, key;
    const void *val;
    size_t len;
    while (shard_txn_next(t, &key, &val, &len) == STATUS_OK) {
        size_t want = value_of(i, buf);
        cr_assert_eq(key, i * 3 + 5);
        cr_assert_eq(len, want);
        cr_assert(!memcmp(val, buf, len), "value %llu differs", (unsigned long long)i);
        i++;
    }
    cr_assert_eq(i, n);
    cr_assert_eq(shard_txn_get(t, 3 * 100 + 5, &val, &len), STATUS_OK);
    cr_assert_eq(len, value_of(100, buf));
    cr_assert_eq(shard_txn_get(t, 6, &val, &len), STATUS_NOT_FOUND);
    uint64_t found;
    cr_assert_eq(shard_txn_seek(t, 6, &found, &val, &len), STATUS_OK);
    cr_assert_eq(found, 8);
    cr_assert_eq(shard_txn_next(t, &key, NULL, NULL), STATUS_OK);
    cr_assert_eq(key, 11);
    cr_assert_eq(shard_txn_seek(t, 1000000, &found, NULL, NULL), STATUS_NOT_FOUND);
    shard_txn_reset(t);
    cr_assert_eq(shard_txn_renew(t), STATUS_OK);
    cr_assert_eq(shard_txn_next(t, &key, NULL, NULL), STATUS_OK);
    cr_assert_eq(key, 5);
    shard_txn_end(t);
    uint64_t *keys, nk;
    cr_assert_eq(shard_reader_keys(r, &keys, &nk), STATUS_OK);
    cr_assert_eq(nk, n);
    cr_assert_eq(keys[n - 1], (n - 1) * 3 + 5);
    free(keys);
    shard_reader_free(&r);
}

Test(shard, keys_must_ascend)
{
    for (int e = 0; e < 2; e++) {
        char path[300];
        snprintf(path, sizeof path, "%s/a-%s.mdb", tmpdir, engine_names[e]);
        struct shard_writer_opts o = { .engine = engines[e] };
        struct shard_writer *w;
        cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK);
        cr_assert_eq(shard_writer_put(w, 10, "x", 1), STATUS_OK);
        cr_assert_eq(shard_writer_put(w, 10, "y", 1), STATUS_STATE, "%s", engine_names[e]);
        cr_assert_eq(shard_writer_put(w, 9, "y", 1), STATUS_STATE, "%s", engine_names[e]);
        cr_assert_eq(shard_writer_put(w, 11, "y", 1), STATUS_OK);
        uint64_t rec;
        cr_assert_eq(shard_writer_close(&w, &rec, NULL), STATUS_OK);
        cr_assert_eq(rec, 2, "%s", engine_names[e]);
    }
}

Test(shard, rewrite_truncates_and_empty_shard_reads)
{
    for (int e = 0; e < 2; e++) {
        char path[300];
        snprintf(path, sizeof path, "%s/e-%s.mdb", tmpdir, engine_names[e]);
        struct shard_writer_opts o = { .engine = engines[e] };
        struct shard_writer *w;
        cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK);
        for (int i = 0; i < 10; i++) cr_assert_eq(shard_writer_put(w, (uint64_t)i, "abc", 3), STATUS_OK);
        shard_writer_free(&w);                    /* abandoned: nothing committed */
        cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK);
        uint64_t rec;
        cr_assert_eq(shard_writer_close(&w, &rec, NULL), STATUS_OK);
        cr_assert_eq(rec, 0);
        struct shard_reader *r;
        cr_assert_eq(shard_reader_open(path, &r), STATUS_OK, "%s: %s", engine_names[e], status_msg());
        cr_assert_eq(shard_reader_count(r), 0);
        struct shard_txn *t;
        cr_assert_eq(shard_txn_begin(r, &t), STATUS_OK);
        cr_assert_eq(shard_txn_next(t, NULL, NULL, NULL), STATUS_NOT_FOUND);
        shard_txn_end(t);
        shard_reader_free(&r);
    }
    struct shard_reader *r;
    cr_assert_eq(shard_reader_open("/nonexistent/x.mdb", &r), STATUS_NOT_FOUND);
}

Test(shard, readers_in_forked_children)
{
    for (int e = 0; e < 2; e++) {
        char path[300];
        snprintf(path, sizeof path, "%s/f-%s.mdb", tmpdir, engine_names[e]);
        struct shard_writer_opts o = { .engine = engines[e] };
        struct shard_writer *w;
        cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK);
        uint8_t buf[4096];
        for (uint64_t i = 0; i < 300; i++) {
            size_t len = value_of(i, buf);
            cr_assert_eq(shard_writer_put(w, i, buf, len), STATUS_OK);
        }
        cr_assert_eq(shard_writer_close(&w, NULL, NULL), STATUS_OK);
        pid_t kids[3];
        for (int k = 0; k < 3; k++) {
            kids[k] = fork();
            cr_assert_geq(kids[k], 0);
            if (kids[k] == 0) {
                struct shard_reader *r;
                if (shard_reader_open(path, &r) != STATUS_OK) _exit(2);
                struct shard_txn *t;
                if (shard_txn_begin(r, &t) != STATUS_OK) _exit(3);
                uint8_t want[4096];
                for (uint64_t i = (uint64_t)k; i < 300; i += 3) {
                    const void *v;
                    size_t len;
                    if (shard_txn_get(t, i, &v, &len) != STATUS_OK) _exit(4);
                    if (len != value_of(i, want) || memcmp(v, want, len)) _exit(5);
                }
                shard_txn_end(t);
                shard_reader_free(&r);
                _exit(0);
            }
        }
        for (int k = 0; k < 3; k++) {
            int ws;
            cr_assert_eq(waitpid(kids[k], &ws, 0), kids[k]);
            cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "%s: child %d failed (%d)", engine_names[e], k, ws);
        }
    }
}

Test(shard, unreserve_and_caller_crc)
{
    for (int e = 0; e < 2; e++) {
        char path[300];
        snprintf(path, sizeof path, "%s/u-%s.mdb", tmpdir, engine_names[e]);
        struct shard_writer_opts o = { .engine = engines[e], .batch_records = 4, .max_leaf_keys = 4 };
        struct shard_writer *w;
        cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK);
        uint32_t crc = 0;
        uint8_t buf[4096];
        for (uint64_t i = 0; i < 20; i++) {
            void *dst;
            size_t len = value_of(i, buf);
            cr_assert_eq(shard_writer_reserve(w, i, len, &dst), STATUS_OK);
            memcpy(dst, buf, len);
            if (i % 3 == 1) {                                             /* "decode failed" */
                cr_assert_eq(shard_writer_unreserve(w), STATUS_OK, "%s", status_msg());
                if (i == 4) {       /* the key taken back may be used again */
                    cr_assert_eq(shard_writer_reserve(w, i, len, &dst), STATUS_OK, "%s", status_msg());
                    cr_assert_eq(shard_writer_unreserve(w), STATUS_OK, "%s", status_msg());
                }
                continue;
            }
            if (i % 2) shard_writer_value_crc(w, crc32c(buf, len));      /* caller-provided value CRC */
            crc = shard_checksum_update(crc, i, buf, len);
        }
        uint64_t rec;
        uint32_t sum;
        cr_assert_eq(shard_writer_close(&w, &rec, &sum), STATUS_OK, "%s", status_msg());
        cr_assert_eq(rec, 13);
        cr_assert_eq(sum, crc, "checksum with combined CRCs %08x, expected %08x", sum, crc);
        struct shard_reader *r;
        cr_assert_eq(shard_reader_open(path, &r), STATUS_OK);
        cr_assert_eq(shard_reader_count(r), 13);
        shard_reader_free(&r);
    }
}

/* values larger than the batch and than the initial map: the map grows to
 * fit the batch before it begins, and the values round-trip */
Test(shard, values_larger_than_batch_and_map)
{
    for (int e = 0; e < 2; e++) {
        char path[300];
        snprintf(path, sizeof path, "%s/big-%s.mdb", tmpdir, engine_names[e]);
        /* direct engine: 1 MiB write buffers, so the 3 and 9 MiB values grow one */
        struct shard_writer_opts o = { .engine = engines[e], .map_size = 64 << 10, .batch_bytes = 1 << 20,
                                       .chunk_bytes = 1 << 20 };
        struct shard_writer *w;
        cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK);
        size_t lens[] = { 100, 3 << 20, 5000, 700 << 10, 700 << 10, 9 << 20, 1 };
        size_t n = sizeof lens / sizeof *lens, maxlen = 9 << 20;
        uint8_t *buf = malloc(maxlen);
        cr_assert_not_null(buf);
        uint32_t crc = 0;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < lens[i]; j++) buf[j] = (uint8_t)(i * 13 + j * 7 + (j >> 12));
            cr_assert_eq(shard_writer_put(w, i, buf, lens[i]), STATUS_OK, "value %zu: %s", i, status_msg());
            crc = shard_checksum_update(crc, i, buf, lens[i]);
        }
        uint64_t rec;
        uint32_t sum;
        cr_assert_eq(shard_writer_close(&w, &rec, &sum), STATUS_OK, "%s", status_msg());
        cr_assert_eq(rec, n);
        cr_assert_eq(sum, crc);
        struct shard_reader *r;
        cr_assert_eq(shard_reader_open(path, &r), STATUS_OK);
        struct shard_txn *t;
        cr_assert_eq(shard_txn_begin(r, &t), STATUS_OK);
        for (size_t i = 0; i < n; i++) {
            const void *val;
            size_t len;
            cr_assert_eq(shard_txn_get(t, i, &val, &len), STATUS_OK);
            cr_assert_eq(len, lens[i]);
            for (size_t j = 0; j < lens[i]; j++) buf[j] = (uint8_t)(i * 13 + j * 7 + (j >> 12));
            cr_assert(!memcmp(val, buf, len), "value %zu differs", i);
        }
        shard_txn_end(t);
        shard_reader_free(&r);
        free(buf);
    }
}

Test(shard, crc32c_combine_matches_whole)
{
    uint8_t b[5000];
    for (int i = 0; i < 5000; i++) b[i] = (uint8_t)(i * 131 + 7);
    for (size_t cut = 0; cut <= 5000; cut += 611) {
        uint32_t a = crc32c(b, cut), c = crc32c(b + cut, 5000 - cut);
        cr_assert_eq(crc32c_combine(a, c, 5000 - cut), crc32c(b, 5000), "cut %zu", cut);
    }
}

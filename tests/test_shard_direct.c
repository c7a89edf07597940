/*
 * test_shard_direct.c — the direct (bulk, O_DIRECT) shard writer against
 * liblmdb: the same records written by both engines dump identically with
 * lmdb-utils' mdb_dump and give the same mdb_stat figures; deep trees (tiny
 * fan-out), values taken back at leaf and buffer edges, buffered and O_DIRECT
 * writes giving the same bytes, an abandoned file refused by readers, and a
 * write error (file size limit) reported with the shard's name.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "shared/shard.h"
#include "tests/tmpdir_util.h"

TestSuite(shard_direct, .init = tmpdir_make, .fini = tmpdir_remove);

/* sizes around every boundary of the layout: inline/overflow (2022/2023),
 * one page of overflow (4080/4081), several pages, a photograph */
static size_t size_of(uint64_t i)
{
    static const size_t edge[] = { 0, 1, 2021, 2022, 2023, 4079, 4080, 4081, 8177, 10000, 562500 };
    if (i % 5 == 0) return edge[(i / 5) % (sizeof edge / sizeof *edge)];
    return (i * 7919) % 1500;
}

static void fill(uint64_t i, uint8_t *buf, size_t len)
{
    for (size_t j = 0; j < len; j++) buf[j] = (uint8_t)(i * 29 + j * 3 + (j >> 9));
}

static void write_shard(const char *path, const struct shard_writer_opts *o, uint64_t n, uint32_t *sum)
{
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(path, o, &w), STATUS_OK, "%s", status_msg());
    uint8_t *buf = malloc(600000);
    for (uint64_t i = 0; i < n; i++) {
        size_t len = size_of(i);
        fill(i, buf, len);
        cr_assert_eq(shard_writer_put(w, 2 * i + 1, buf, len), STATUS_OK, "record %llu: %s", (unsigned long long)i,
                     status_msg());
    }
    free(buf);
    uint64_t rec;
    cr_assert_eq(shard_writer_close(&w, &rec, sum), STATUS_OK, "%s", status_msg());
    cr_assert_eq(rec, n);
}

/* whole stdout of a command (malloc'd) */
static char *run_cmd(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    size_t cap = 1 << 20, n = 0;
    char *out = malloc(cap);
    size_t k;
    while ((k = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 2) out = realloc(out, cap *= 2);
    }
    out[n] = 0;
    int rc = pclose(p);
    cr_assert_eq(rc, 0, "`%s` failed (%d); lmdb-utils is installed by scripts/setup", cmd, rc);
    return out;
}

static void check_reads(const char *path, uint64_t n)
{
    struct shard_reader *r;
    cr_assert_eq(shard_reader_open(path, &r), STATUS_OK, "%s", status_msg());
    cr_assert_eq(shard_reader_count(r), n);
    struct shard_txn *t;
    cr_assert_eq(shard_txn_begin(r, &t), STATUS_OK);
    uint8_t *want = malloc(600000);
    uint64_t key, i = 0;
    const void *val;
    size_t len;
    while (shard_txn_next(t, &key, &val, &len) == STATUS_OK) {
        cr_assert_eq(key, 2 * i + 1);
        cr_assert_eq(len, size_of(i), "record %llu: %zu bytes, want %zu", (unsigned long long)i, len, size_of(i));
        fill(i, want, len);
        cr_assert(len == 0 || !memcmp(val, want, len), "record %llu differs", (unsigned long long)i);
        i++;
    }
    cr_assert_eq(i, n);
    for (uint64_t j = 0; j < n; j += 7) {
        cr_assert_eq(shard_txn_get(t, 2 * j + 1, &val, &len), STATUS_OK);
        cr_assert_eq(len, size_of(j));
        uint64_t found;
        cr_assert_eq(shard_txn_seek(t, 2 * j, &found, NULL, NULL), STATUS_OK);   /* a gap: the next key */
        cr_assert_eq(found, 2 * j + 1);
    }
    cr_assert_eq(shard_txn_get(t, 2 * n + 1, &val, &len), STATUS_NOT_FOUND);
    free(want);
    shard_txn_end(t);
    shard_reader_free(&r);
}

Test(shard_direct, same_records_as_liblmdb_by_mdb_dump_and_mdb_stat)
{
    char a[300], b[300], cmd[800];
    snprintf(a, sizeof a, "%s/lmdb.mdb", tmpdir);
    snprintf(b, sizeof b, "%s/direct.mdb", tmpdir);
    const uint64_t n = 2500;      /* 498 leaves: two branch levels */
    struct shard_writer_opts ol = { .engine = SHARD_ENGINE_LMDB }, od = { .engine = SHARD_ENGINE_DIRECT };
    uint32_t sa, sb;
    write_shard(a, &ol, n, &sa);
    write_shard(b, &od, n, &sb);
    cr_assert_eq(sa, sb, "content checksums differ: lmdb %08x, direct %08x", sa, sb);
    check_reads(b, n);
    /* the header's mapsize= line differs (liblmdb's map is 64 MiB, the
     * direct writer records the file size); every other line must not */
    snprintf(cmd, sizeof cmd, "mdb_dump -n '%s' | grep -v '^mapsize='", a);
    char *da = run_cmd(cmd);
    snprintf(cmd, sizeof cmd, "mdb_dump -n '%s' | grep -v '^mapsize='", b);
    char *db = run_cmd(cmd);
    cr_assert_gt(strlen(da), 1000000, "mdb_dump printed only %zu bytes", strlen(da));
    cr_assert(strcmp(da, db) == 0, "mdb_dump of the two files differs");
    snprintf(cmd, sizeof cmd, "mdb_stat -n '%s'", a);
    char *ta = run_cmd(cmd);
    snprintf(cmd, sizeof cmd, "mdb_stat -n '%s'", b);
    char *tb = run_cmd(cmd);
    cr_assert_str_eq(ta, tb, "mdb_stat differs:\nliblmdb:\n%s\ndirect:\n%s", ta, tb);
    cr_assert(strstr(tb, "Tree depth: 3"), "%s", tb);
    free(da); free(db); free(ta); free(tb);
}

Test(shard_direct, deep_tree_with_tiny_fanout)
{
    char p[300], cmd[400];
    snprintf(p, sizeof p, "%s/deep.mdb", tmpdir);
    struct shard_writer_opts o = { .max_leaf_keys = 2, .max_branch_keys = 3, .chunk_bytes = 64 << 10 };
    const uint64_t n = 700;       /* 350 leaves; 3 per branch: 6 branch levels */
    write_shard(p, &o, n, NULL);
    check_reads(p, n);
    snprintf(cmd, sizeof cmd, "mdb_stat -n '%s'", p);
    char *st = run_cmd(cmd);
    cr_assert(strstr(st, "Tree depth: 7"), "%s", st);
    cr_assert(strstr(st, "Leaf pages: 350"), "%s", st);
    free(st);
}

Test(shard_direct, unreserve_at_leaf_and_buffer_edges)
{
    char p[300];
    snprintf(p, sizeof p, "%s/u.mdb", tmpdir);
    struct shard_writer_opts o = { .chunk_bytes = 64 << 10, .max_leaf_keys = 3 };
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(p, &o, &w), STATUS_OK);
    uint8_t *buf = malloc(600000);
    uint32_t crc = 0;
    uint64_t kept = 0;
    for (uint64_t i = 0; i < 400; i++) {
        size_t len = i % 4 == 3 ? 30000 + i : size_of(i);       /* 30 KB values cross the 64 KiB buffers */
        fill(i, buf, len);
        void *dst;
        cr_assert_eq(shard_writer_reserve(w, i, len, &dst), STATUS_OK, "%s", status_msg());
        memcpy(dst, buf, len);
        if (i % 3 == 2 || i % 7 == 0) {
            cr_assert_eq(shard_writer_unreserve(w), STATUS_OK);
            continue;
        }
        crc = shard_checksum_update(crc, i, buf, len);
        kept++;
    }
    uint64_t rec;
    uint32_t sum;
    cr_assert_eq(shard_writer_close(&w, &rec, &sum), STATUS_OK, "%s", status_msg());
    cr_assert_eq(rec, kept);
    cr_assert_eq(sum, crc);
    struct shard_reader *r;
    cr_assert_eq(shard_reader_open(p, &r), STATUS_OK, "%s", status_msg());
    struct shard_txn *t;
    cr_assert_eq(shard_txn_begin(r, &t), STATUS_OK);
    uint64_t key, got = 0;
    const void *val;
    size_t len;
    while (shard_txn_next(t, &key, &val, &len) == STATUS_OK) {
        cr_assert(!(key % 3 == 2 || key % 7 == 0), "key %llu was taken back", (unsigned long long)key);
        size_t want = key % 4 == 3 ? 30000 + key : size_of(key);
        cr_assert_eq(len, want);
        fill(key, buf, len);
        cr_assert(len == 0 || !memcmp(val, buf, len), "value of key %llu differs", (unsigned long long)key);
        got++;
    }
    cr_assert_eq(got, kept);
    shard_txn_end(t);
    shard_reader_free(&r);
    free(buf);
}

Test(shard_direct, buffered_and_odirect_write_the_same_bytes)
{
    char a[300], b[300], cmd[700];
    snprintf(a, sizeof a, "%s/odirect.mdb", tmpdir);
    snprintf(b, sizeof b, "%s/buffered.mdb", tmpdir);
    struct shard_writer_opts od = { .chunk_bytes = 256 << 10 }, ob = { .chunk_bytes = 256 << 10, .buffered_io = 1 };
    write_shard(a, &od, 300, NULL);
    write_shard(b, &ob, 300, NULL);
    snprintf(cmd, sizeof cmd, "cmp '%s' '%s' && echo same", a, b);
    char *out = run_cmd(cmd);
    cr_assert_str_eq(out, "same\n");
    free(out);
}

Test(shard_direct, abandoned_file_is_refused_by_readers)
{
    char p[300];
    snprintf(p, sizeof p, "%s/cut.mdb", tmpdir);
    struct shard_writer_opts o = { .chunk_bytes = 64 << 10 };
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(p, &o, &w), STATUS_OK);
    uint8_t buf[20000] = { 0 };
    for (uint64_t i = 0; i < 50; i++) cr_assert_eq(shard_writer_put(w, i, buf, sizeof buf), STATUS_OK);
    cr_assert_eq(shard_writer_flush(w), STATUS_OK, "%s", status_msg());
    shard_writer_free(&w);                  /* a killed ingest: data written, no meta pages */
    struct shard_reader *r = NULL;
    status st = shard_reader_open(p, &r);
    cr_assert_neq(st, STATUS_OK, "a shard without meta pages must not open");
    cr_assert(strstr(status_msg(), "cut.mdb"), "the message names the file: %s", status_msg());
}

Test(shard_direct, write_error_names_the_shard)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { 1 << 20, 1 << 20 };            /* files may not grow past 1 MiB */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    char p[300];
    snprintf(p, sizeof p, "%s/limit.mdb", tmpdir);
    struct shard_writer_opts o = { .chunk_bytes = 256 << 10 };
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(p, &o, &w), STATUS_OK);
    uint8_t buf[100000] = { 0 };
    status st = STATUS_OK;
    for (uint64_t i = 0; i < 40 && st == STATUS_OK; i++) st = shard_writer_put(w, i, buf, sizeof buf);
    if (st == STATUS_OK) st = shard_writer_close(&w, NULL, NULL);
    else shard_writer_free(&w);
    cr_assert_eq(st, STATUS_IO, "4 MB into a 1 MiB file limit must fail (status %d)", st);
    cr_assert(strstr(status_msg(), "limit.mdb"), "the message names the shard: %s", status_msg());
}

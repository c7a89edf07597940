/*
 * test_lmdb_layout.c — shared/lmdb_layout.h against the liblmdb this build
 * links: the version check accepts the linked library and refuses another
 * major.minor with one line naming both; the constants the direct writer
 * uses (magic, data version, meta offsets, page flags, the inline/overflow
 * limit) are what liblmdb's own writer puts in a file.
 */
#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/lmdb_layout.h"
#include "shared/shard.h"
#include "tests/tmpdir_util.h"

TestSuite(lmdb_layout, .init = tmpdir_make, .fini = tmpdir_remove);

Test(lmdb_layout, linked_liblmdb_is_the_layout_series)
{
    int major, minor, patch;
    mdb_version(&major, &minor, &patch);
    cr_assert_eq(major, LMDB_LAYOUT_MAJOR);
    cr_assert_eq(minor, LMDB_LAYOUT_MINOR);
    cr_assert_eq(lmdb_layout_check("x.mdb"), STATUS_OK, "%s", status_msg());
}

Test(lmdb_layout, another_version_is_one_line_naming_both)
{
    cr_assert_eq(lmdb_layout_check_version("out/train-00000-of-00002.mdb", 0, 9, 33), STATUS_OK);
    cr_assert_eq(lmdb_layout_check_version("out/train-00000-of-00002.mdb", 1, 0, 0), STATUS_UNSUPPORTED);
    const char *m = status_msg();
    cr_assert_not_null(strstr(m, "out/train-00000-of-00002.mdb"), "%s", m);
    cr_assert_not_null(strstr(m, "LMDB 0.9"), "%s", m);
    cr_assert_not_null(strstr(m, "1.0.0"), "%s", m);
    cr_assert_not_null(strstr(m, "DEEPER_SHARD_WRITER=lmdb"), "%s", m);
    cr_assert_null(strchr(m, '\n'), "%s", m);
    cr_assert_eq(lmdb_layout_check_version("a.mdb", 0, 10, 0), STATUS_UNSUPPORTED);
}

static uint64_t u64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t u32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t u16_at(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* n records of `len` bytes through liblmdb's own writer; the file's bytes */
static uint8_t *lmdb_file(const char *name, uint64_t n, size_t len, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    struct shard_writer_opts o = { .engine = SHARD_ENGINE_LMDB };
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(path, &o, &w), STATUS_OK, "%s", status_msg());
    uint8_t *val = calloc(1, len + 1);
    for (uint64_t i = 0; i < n; i++) cr_assert_eq(shard_writer_put(w, i, val, len), STATUS_OK, "%s", status_msg());
    free(val);
    cr_assert_eq(shard_writer_close(&w, NULL, NULL), STATUS_OK, "%s", status_msg());
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*size);
    cr_assert_eq(fread(b, 1, *size, f), *size);
    fclose(f);
    return b;
}

/* the meta page liblmdb wrote last (the higher txnid of pages 0 and 1) */
static const uint8_t *newest_meta(const uint8_t *file)
{
    const uint8_t *m0 = file + LM_PAGEHDRSZ, *m1 = file + LM_PSIZE + LM_PAGEHDRSZ;
    return u64_at(m1 + LM_META_TXNID) > u64_at(m0 + LM_META_TXNID) ? m1 : m0;
}

Test(lmdb_layout, constants_match_what_liblmdb_writes)
{
    size_t size;
    uint8_t *f = lmdb_file("inline.mdb", 7, LM_MAX_INLINE, &size);
    for (int i = 0; i < 2; i++) {
        const uint8_t *pg = f + (size_t)i * LM_PSIZE;
        cr_assert_eq(u64_at(pg + LM_PAGE_PGNO), (uint64_t)i);
        cr_assert_eq(u16_at(pg + LM_PAGE_FLAGS), LM_P_META, "meta page %d flags %#x", i, u16_at(pg + LM_PAGE_FLAGS));
        cr_assert_eq(u32_at(pg + LM_PAGEHDRSZ + LM_META_MAGIC), LM_MAGIC);
        cr_assert_eq(u32_at(pg + LM_PAGEHDRSZ + LM_META_VERSION), LM_DATA_VERSION);
        cr_assert_eq(u32_at(pg + LM_PAGEHDRSZ + LM_META_FREE_DB + LM_DB_PAD), LM_PSIZE);
    }
    const uint8_t *m = newest_meta(f), *main_db = m + LM_META_MAIN_DB;
    cr_assert_eq(u64_at(main_db + LM_DB_ENTRIES), 7);
    cr_assert_eq(u64_at(main_db + LM_DB_OVERFLOW_PAGES), 0, "a %u-byte value is inline", LM_MAX_INLINE);
    /* at most two values this size fit a leaf: 7 records make a branch root */
    cr_assert_eq(u16_at(main_db + LM_DB_DEPTH), 2);
    cr_assert_geq(u64_at(main_db + LM_DB_LEAF_PAGES), 4);
    cr_assert_eq(u64_at(main_db + LM_DB_BRANCH_PAGES), 1);
    uint64_t root = u64_at(main_db + LM_DB_ROOT);
    cr_assert_lt((root + 1) * LM_PSIZE, size + 1);
    cr_assert_eq(u16_at(f + root * LM_PSIZE + LM_PAGE_FLAGS), LM_P_BRANCH);
    cr_assert_leq((u64_at(m + LM_META_LAST_PG) + 1) * LM_PSIZE, size);
    free(f);

    /* one byte more goes to an overflow page: a F_BIGDATA node */
    f = lmdb_file("overflow.mdb", 1, LM_MAX_INLINE + 1, &size);
    main_db = newest_meta(f) + LM_META_MAIN_DB;
    cr_assert_eq(u64_at(main_db + LM_DB_OVERFLOW_PAGES), 1);
    root = u64_at(main_db + LM_DB_ROOT);
    const uint8_t *leaf = f + root * LM_PSIZE;
    uint16_t ofs = u16_at(leaf + LM_PAGEHDRSZ);
    cr_assert_eq(u16_at(leaf + ofs + 4), LM_F_BIGDATA, "node flags %#x", u16_at(leaf + ofs + 4));
    uint64_t ov = u64_at(leaf + ofs + LM_NODESIZE + 8);
    cr_assert_eq(u16_at(f + ov * LM_PSIZE + LM_PAGE_FLAGS), LM_P_OVERFLOW);
    cr_assert_eq(u32_at(f + ov * LM_PSIZE + LM_PAGE_OVPAGES), 1);
    free(f);
}

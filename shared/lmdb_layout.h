/*
 * lmdb_layout.h — the parts of LMDB 0.9's on-disk format that the direct
 * shard writer (shard_direct.c) writes itself, in one place.
 *
 * liblmdb does not export its page layout: these values are copied from
 * mdb.c of the 0.9 series (MDB_DATA_VERSION 1), where they have not changed
 * since 0.9.0.  A liblmdb of another major.minor may read or write another
 * layout, so lmdb_layout_check() compares the linked library's
 * mdb_version() with LMDB_LAYOUT_MAJOR.LMDB_LAYOUT_MINOR and refuses the
 * direct writer with one line if they differ (the liblmdb writer,
 * DEEPER_SHARD_WRITER=lmdb, needs no such check).  tests/test_shard_direct.c
 * checks the bytes: liblmdb's writer and the direct one give the same
 * mdb_dump and mdb_stat for the same records.
 *
 * Layout (native endian, 4 KiB pages), proto/shard.md has the prose:
 *   page header  pgno u64 | pad u16 | flags u16 | lower u16, upper u16
 *                (an overflow page has its page count u32 there instead);
 *   node         lo u16 | hi u16 | flags u16 | ksize u16 | key | data
 *                (leaf: lo/hi = data size, F_BIGDATA data = overflow pgno;
 *                 branch: lo/hi/flags = child pgno, 48 bits), 2-byte aligned,
 *                offsets from the page start in the page's slot array;
 *   meta page    header, then MDB_meta: magic u32, version u32, address u64,
 *                mapsize u64, dbs[FREE, MAIN] (MDB_db, 48 bytes each),
 *                last_pg u64, txnid u64.
 */
#ifndef DEEPER_LMDB_LAYOUT_H
#define DEEPER_LMDB_LAYOUT_H

#include <stdint.h>

#include "shared/status.h"

/* the liblmdb series this layout is taken from */
#define LMDB_LAYOUT_MAJOR 0
#define LMDB_LAYOUT_MINOR 9

#define LM_MAGIC 0xBEEFC0DEu      /* MDB_MAGIC */
#define LM_DATA_VERSION 1u        /* MDB_DATA_VERSION */
#define LM_PSIZE 4096u            /* the page size the direct writer uses */
#define LM_P_BRANCH 0x01
#define LM_P_LEAF 0x02
#define LM_P_OVERFLOW 0x04
#define LM_P_META 0x08
#define LM_F_BIGDATA 0x01         /* leaf node: the data is on overflow pages */
#define LM_PAGEHDRSZ 16u          /* PAGEHDRSZ */
#define LM_PAGE_PGNO 0u           /* MDB_page fields, from the page start */
#define LM_PAGE_PAD 8u
#define LM_PAGE_FLAGS 10u
#define LM_PAGE_LOWER 12u
#define LM_PAGE_UPPER 14u
#define LM_PAGE_OVPAGES 12u       /* overflow pages: page count instead of lower/upper */
#define LM_NODESIZE 8u            /* NODESIZE: lo, hi, flags, ksize */
#define LM_P_INVALID (~(uint64_t)0)
#define LM_EVEN(n) (((n) + 1u) & ~1u)
/* mdb_leaf_size's rule: a value goes to overflow pages when NODESIZE + key +
 * value exceeds me_nodemax, 2038 for 4 KiB pages; with 8-byte keys the
 * largest inline value is 2022 bytes. */
#define LM_MAX_INLINE 2022u

/* MDB_meta, after the page header */
#define LM_META_SIZE 136u
#define LM_META_MAGIC 0u
#define LM_META_VERSION 4u
#define LM_META_MAPSIZE 16u
#define LM_META_FREE_DB 24u
#define LM_META_MAIN_DB 72u
#define LM_META_LAST_PG 120u
#define LM_META_TXNID 128u
/* MDB_db, from the start of a dbs[] entry (the FREE db's pad holds the page size) */
#define LM_DB_PAD 0u
#define LM_DB_FLAGS 4u
#define LM_DB_DEPTH 6u
#define LM_DB_BRANCH_PAGES 8u
#define LM_DB_LEAF_PAGES 16u
#define LM_DB_OVERFLOW_PAGES 24u
#define LM_DB_ENTRIES 32u
#define LM_DB_ROOT 40u

/* (Both defined in shard_direct.c, the only writer of this layout.)
 * STATUS_UNSUPPORTED with one line naming both versions when the given
 * liblmdb version is not of the LMDB_LAYOUT_MAJOR.LMDB_LAYOUT_MINOR series;
 * `what` names the file being written. */
status lmdb_layout_check_version(const char *what, int major, int minor, int patch);

/* The same for the liblmdb this program is linked with (mdb_version()). */
status lmdb_layout_check(const char *what);

#endif

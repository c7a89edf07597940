/*
 * shard.h — one LMDB file of records: the writer ingest uses, the reader the
 * augment workers and `deeper info` use.
 *
 * A shard is a single LMDB environment opened with MDB_NOSUBDIR, so the path
 * is the data file itself ("train-00003-of-00016.mdb").  Keys are example ids
 * as 8-byte big-endian unsigned integers, so memcmp order is numeric order;
 * values are records (shared/record.h).
 *
 * Writer (one process owns one shard file; open it in the process that writes
 * it, never before a fork).  Two engines make the same kind of file
 * (shard_engine.h): the default builds the LMDB pages itself and writes them
 * with O_DIRECT (shard_direct.h: no page-cache copy, writes overlap
 * decoding); the other goes through liblmdb's own write path (shard_lmdb.c:
 * MDB_APPEND | MDB_RESERVE puts committed in batches, the map grown before
 * each batch).  For both:
 *   - keys must be strictly ascending;
 *   - reserve hands out room in the engine's own buffers (the direct
 *     engine's write chunks, LMDB's dirty pages): the caller fills the value
 *     where it will be written to the file from, with no copy;
 *   - nobody reads a shard before the manifest lists it; shard_writer_close()
 *     writes what is left and syncs it to disk before the caller writes the
 *     manifest;
 *   - the writer keeps a content checksum: CRC-32C over, for every record in
 *     key order, the 8 key bytes followed by the value bytes.  It does not
 *     depend on LMDB's page layout, so `deeper info --verify` recomputes it
 *     from the records (shard_checksum_update).
 *
 * Reader (open per process, after any fork; one reader per file per process):
 *   - MDB_RDONLY|MDB_NOSUBDIR|MDB_NOTLS|MDB_NORDAHEAD; when the lock file
 *     cannot be created (a read-only dataset directory) it falls back to
 *     MDB_NOLOCK, which is safe because listed shards never change;
 *   - mdb_reader_check() at open clears slots left by killed readers;
 *   - a struct shard_txn is a read transaction with a cursor; it is used by
 *     one thread at a time (any thread, thanks to MDB_NOTLS).  Values returned
 *     by get/next point into the map (zero-copy) and stay valid until the
 *     transaction is reset or ended;
 *   - a damaged file can make LMDB hand out a key or value that lies outside
 *     the file (a flipped length or overflow page number), which would crash
 *     whoever reads it.  get/next/seek check every key and value against the
 *     part of the map the file backs (mdb_env_info's map, cut to the file
 *     size) and return STATUS_CORRUPT naming the record instead (next and
 *     seek still set *key when the key itself is inside); the cursor
 *     has then moved onto that record, so next() goes on after it;
 *     shard_reader_keys lists such a record's key.  Damage
 *     LMDB itself detects (a bad page number or page type) comes back as
 *     STATUS_LMDB and leaves the cursor unusable.
 */
#ifndef DEEPER_SHARD_H
#define DEEPER_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

/* Big-endian key bytes for an example id, and back. */
void shard_key_encode(uint64_t id, uint8_t out[8]);
uint64_t shard_key_decode(const uint8_t in[8]);

/* "<subset>-%05d-of-%05d.mdb" into buf; STATUS_USAGE if it does not fit. */
status shard_file_name(const char *subset, int index, int count, char *buf, size_t size);

/* Extend a shard content checksum with one (key, value) pair. */
uint32_t shard_checksum_update(uint32_t crc, uint64_t key, const void *val, size_t len);

/* ---------------------------------------------------------------- writer */

enum shard_engine {
    SHARD_ENGINE_DIRECT = 0, /* default: builds the LMDB file itself, O_DIRECT (shard_direct.h) */
    SHARD_ENGINE_LMDB = 1,   /* liblmdb's own write path (mdb_put), the reference */
};

struct shard_writer_opts {
    int engine;              /* enum shard_engine */
    /* liblmdb engine (shard_lmdb.c) */
    size_t map_size;         /* initial map size in bytes (default 64 MiB); grows by doubling */
    size_t batch_records;    /* commit after this many puts (default 1000) */
    size_t batch_bytes;      /* ... or this many value bytes (default 16 MiB) */
    /* direct engine (shard_direct.c) */
    size_t chunk_bytes;      /* write buffer size (default 4 MiB; three of them) */
    int buffered_io;         /* 1: never O_DIRECT */
    unsigned max_leaf_keys;  /* tests: at most this many records per leaf (0: as many as fit) */
    unsigned max_branch_keys;/* tests: at most this many children per branch page (0: as fit) */
};

/* The engine a writer uses when opts do not say: SHARD_ENGINE_DIRECT unless
 * the environment variable DEEPER_SHARD_WRITER is "lmdb". */
int shard_engine_default(void);

struct shard_writer;

/* Create (or truncate) the shard file at path and open it for writing.
 * opts may be NULL for the defaults.  Caller finishes with shard_writer_close
 * or abandons with shard_writer_free. */
status shard_writer_open(const char *path, const struct shard_writer_opts *opts,
                         struct shard_writer **out);

/* Reserve len bytes for the value of key (> every earlier key) in the open
 * transaction and return where to write them (LMDB's dirty page; not
 * zeroed).  Fill them before the next call on this writer: the pointer is
 * only valid until then.  The value is committed at the next batch commit. */
status shard_writer_reserve(struct shard_writer *w, uint64_t key, size_t len, void **buf);

/* Optional, right after reserve and filling: the CRC-32C of the whole value,
 * when the caller has it (saves the writer a pass over the bytes for the
 * content checksum). */
void shard_writer_value_crc(struct shard_writer *w, uint32_t crc);

/* Take back the value reserved last (not yet committed), e.g. when filling it
 * failed; its key may be used again.  Fails only if LMDB does (then the
 * batch is lost and the writer can only be freed). */
status shard_writer_unreserve(struct shard_writer *w);

/* Copy one value (reserve + memcpy). */
status shard_writer_put(struct shard_writer *w, uint64_t key, const void *val, size_t len);

/* Commit what is buffered (done automatically when a batch limit is hit). */
status shard_writer_flush(struct shard_writer *w);

/* Commit, sync to disk, close.  Frees *w and sets it to NULL in every case;
 * *records and *checksum (optional) receive the totals. */
status shard_writer_close(struct shard_writer **w, uint64_t *records, uint32_t *checksum);

/* Abandon: abort the pending batch and close without syncing.  NULL is fine. */
void shard_writer_free(struct shard_writer **w);

uint64_t shard_writer_count(const struct shard_writer *w);   /* records put so far */
size_t shard_writer_map_size(const struct shard_writer *w);  /* current map size */
int shard_writer_grows(const struct shard_writer *w);        /* how many times the map doubled */

/* ---------------------------------------------------------------- reader */

struct shard_reader;
struct shard_txn;

/* Open a shard read-only.  Caller frees with shard_reader_free (after ending
 * every transaction). */
status shard_reader_open(const char *path, struct shard_reader **out);
void shard_reader_free(struct shard_reader **r);

uint64_t shard_reader_count(const struct shard_reader *r);    /* number of records */
const char *shard_reader_path(const struct shard_reader *r);

/* Start a read transaction (with a cursor).  Caller ends it with shard_txn_end. */
status shard_txn_begin(struct shard_reader *r, struct shard_txn **out);
void shard_txn_end(struct shard_txn *t);
/* Release the snapshot but keep the slot (cheap), then take a fresh one. */
void shard_txn_reset(struct shard_txn *t);
status shard_txn_renew(struct shard_txn *t);

/* Value of key: STATUS_NOT_FOUND when absent.  *val points into the map. */
status shard_txn_get(struct shard_txn *t, uint64_t key, const void **val, size_t *len);

/* Start reading key's value from disk in the background (MADV_WILLNEED) when
 * it spans many pages; nothing for small or absent values.  get and next do
 * it for the value they return (next also for the record after it): shards
 * are opened MDB_NORDAHEAD, right for small records read at random, but a
 * cold 562 KB record would otherwise arrive one 4 KiB page fault at a time
 * (`deeper info --verify` of a cold 1.7 GB dataset: 33 s before, 2.1 s
 * after).  The augment worker calls it for the record it will fetch next. */
void shard_txn_prefetch(struct shard_txn *t, uint64_t key);

/* Cursor: the first call after begin/renew/rewind returns the first record,
 * each later call the next; STATUS_NOT_FOUND after the last.  key/val/len may
 * be NULL when not wanted. */
status shard_txn_next(struct shard_txn *t, uint64_t *key, const void **val, size_t *len);
/* Position at the first key >= key and return it (STATUS_NOT_FOUND if none);
 * the following shard_txn_next returns the record after it. */
status shard_txn_seek(struct shard_txn *t, uint64_t key, uint64_t *found, const void **val, size_t *len);
void shard_txn_rewind(struct shard_txn *t);

/* All keys in ascending order (malloc'd; caller frees with free()). */
status shard_reader_keys(struct shard_reader *r, uint64_t **keys, uint64_t *n);

/* ------------------------------------------------------------- structure */

/* Walk the file's LMDB tree with pread (no liblmdb, no map) and check every
 * page and node: pages inside the file and reached once, node offsets and
 * keys inside their page, keys ascending, each value inside its page or on
 * overflow pages that are inside the file and say so, the entry count
 * (shard_check.c lists every check).  liblmdb trusts its pages, and a
 * damaged branch or leaf page can make it read outside its map and crash the
 * process; a file that passes this walk cannot.  STATUS_CORRUPT names the
 * page and what is wrong; *entries (optional) gets the record count and
 * *bad_values (optional) the number of records whose value lies outside its
 * page or overflow run (damage confined to one value, which liblmdb only
 * points at: reading the shard then reports each such record).  It reads
 * every branch and leaf page, and with read_overflow the first header of
 * each overflow run too (one more read per large record).  `deeper info
 * --verify` runs it (read_overflow 1) before reading a shard through
 * liblmdb; an augment worker runs it (read_overflow 0) the first time it
 * reads a shard, just before it reads the shard's keys (the same pages). */
status shard_check_file(const char *path, int read_overflow, uint64_t *entries, uint64_t *bad_values);

#endif

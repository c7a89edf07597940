/*
 * shard_lmdb.c — the liblmdb shard writer engine (shard_engine.h): the same
 * file as the direct engine, made through liblmdb's own write path.  It is
 * the reference the direct engine is tested against (tests/test_shard*.c)
 * and what DEEPER_SHARD_WRITER=lmdb selects.
 *
 *   - puts go straight into an open write transaction (MDB_APPEND |
 *     MDB_RESERVE: the caller fills the value in LMDB's own dirty pages, so
 *     a decoder writes pixels where they will be written to the file from,
 *     with no copy), committed in batches (records or bytes, whichever
 *     limit comes first);
 *   - the map grows (doubling) *before* a batch begins, to fit the whole
 *     batch (batch_bytes or the first value if larger, plus a page and a
 *     node per record and 2 MiB): LMDB cannot grow it inside a transaction,
 *     and a MDB_MAP_FULL there would lose the values already in it.  A
 *     MDB_MAP_FULL anyway (it cannot happen with these margins) is an error,
 *     not replayed;
 *   - after each commit the new part of the file is sent to the disk
 *     (sync_file_range, not waited for); the part committed two batches
 *     earlier is waited for and dropped from the page cache
 *     (POSIX_FADV_DONTNEED), so writeback streams while the next batch is
 *     prepared and a finished shard is not left in the page cache;
 *   - the environment is opened MDB_NOSYNC|MDB_NOLOCK (nobody reads a shard
 *     before the manifest lists it); close commits the last batch and calls
 *     mdb_env_sync(env, 1) so the data is on disk before the caller writes
 *     the manifest.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "shared/shard_engine.h"

/* Writeback streaming: after each commit the new part of the file is sent to
 * the disk (SYNC_FILE_RANGE_WRITE, not waited for); the part committed
 * SHARD_STREAM_LAG commits earlier is waited for and dropped from the page
 * cache (POSIX_FADV_DONTNEED).  The dropped pages go straight back to the
 * allocator and serve the next batch, so the page-cache working set stays a
 * few batches instead of the whole shard (a never-touched page is expensive
 * on a VM: its first touch faults in the host; measured: the kernel's copy
 * into the page cache ran at ~1.3 GB/s into fresh pages, several times faster
 * into recycled ones) and the final sync has little left to do. */
#define SHARD_STREAM_LAG 2
/* Map room kept per record beyond its value: overflow-page rounding (one
 * page), the leaf node and slot, and a share of branch pages. */
#define SHARD_RECORD_SLACK(psize) ((size_t)(psize) + 64)
#define SHARD_TXN_SLACK ((size_t)2 << 20)    /* freelist, meta, leaf copies */

struct shard_lmdb {
    char *path;
    MDB_env *env;
    MDB_dbi dbi;
    int fd;
    size_t psize;
    size_t batch_records, batch_bytes;
    size_t map_size;
    int grows;
    /* the open write transaction (NULL between batches) */
    MDB_txn *txn;
    size_t nent, txn_bytes, txn_room;
    uint64_t committed;
    /* streamed writeback: file ends after the last commits, and how far the
       file is known written and dropped from the page cache */
    off_t ends[SHARD_STREAM_LAG];
    unsigned nends;
    off_t dropped;
};

static void lmdb_free(void *e)
{
    struct shard_lmdb *l = e;
    if (!l) return;
    if (l->txn) mdb_txn_abort(l->txn);
    if (l->env) mdb_env_close(l->env);
    free(l->path);
    free(l);
}

static status lmdb_open(const char *path, const struct shard_writer_opts *opts, void **out)
{
    status st = STATUS_OK;
    struct shard_lmdb *l = calloc(1, sizeof *l);
    if (!l) return FAIL(STATUS_NOMEM, "%s: out of memory", path);
    l->path = strdup(path);
    if (!l->path) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }
    l->map_size = opts && opts->map_size ? opts->map_size : (size_t)64 << 20;
    l->batch_records = opts && opts->batch_records ? opts->batch_records : 1000;
    l->batch_bytes = opts && opts->batch_bytes ? opts->batch_bytes : (size_t)16 << 20;
    /* a fresh file: remove what an earlier (maybe killed) run left */
    if (unlink(path) != 0 && errno != ENOENT) {
        st = FAIL(STATUS_IO, "%s: cannot remove the old shard: %s", path, strerror(errno));
        goto fail;
    }
    char lock[4200];
    snprintf(lock, sizeof lock, "%s-lock", path);
    (void)unlink(lock);
    int rc = mdb_env_create(&l->env);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_env_create"); goto fail; }
    rc = mdb_env_set_mapsize(l->env, l->map_size);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_env_set_mapsize"); goto fail; }
    rc = mdb_env_open(l->env, path, MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOLOCK, 0644);
    if (rc) { st = shard_lmdb_fail(rc, path, "cannot create the shard"); goto fail; }
    MDB_stat ms;
    rc = mdb_env_get_fd(l->env, &l->fd);
    if (rc == 0) rc = mdb_env_stat(l->env, &ms);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_env_stat"); goto fail; }
    l->psize = ms.ms_psize;
    MDB_txn *txn;
    rc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_txn_begin"); goto fail; }
    rc = mdb_dbi_open(txn, NULL, 0, &l->dbi);
    if (rc == 0) rc = mdb_txn_commit(txn); else mdb_txn_abort(txn);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_dbi_open"); goto fail; }
    *out = l;
    return STATUS_OK;
fail:
    lmdb_free(l);
    return st;
}

static void lmdb_stream(struct shard_lmdb *l)
{
    MDB_envinfo info;
    if (mdb_env_info(l->env, &info) != 0) return;
    off_t end = (off_t)(info.me_last_pgno + 1) * (off_t)l->psize;
    off_t prev = l->nends ? l->ends[(l->nends - 1) % SHARD_STREAM_LAG] : 0;
    if (end > prev) (void)sync_file_range(l->fd, prev, end - prev, SYNC_FILE_RANGE_WRITE);
    if (l->nends >= SHARD_STREAM_LAG) {
        off_t old = l->ends[l->nends % SHARD_STREAM_LAG];
        if (old > l->dropped) {
            (void)sync_file_range(l->fd, l->dropped, old - l->dropped,
                                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
            (void)posix_fadvise(l->fd, l->dropped, old - l->dropped, POSIX_FADV_DONTNEED);
            l->dropped = old;
        }
    }
    l->ends[l->nends % SHARD_STREAM_LAG] = end;
    l->nends++;
}

/* Start the write transaction of a batch whose first value has `len` bytes,
 * growing the map first so that the whole batch fits: LMDB cannot grow the
 * map inside a transaction, and a MDB_MAP_FULL would lose the values already
 * written into it. */
static status lmdb_begin(struct shard_lmdb *l, size_t len)
{
    MDB_envinfo info;
    int rc = mdb_env_info(l->env, &info);
    if (rc) return shard_lmdb_fail(rc, l->path, "mdb_env_info");
    size_t bytes = len > l->batch_bytes ? len : l->batch_bytes;
    size_t room = bytes + l->batch_records * SHARD_RECORD_SLACK(l->psize) + SHARD_TXN_SLACK;
    size_t used = (info.me_last_pgno + 1) * l->psize;
    if (used + room > l->map_size) {
        size_t grown = l->map_size;
        int doublings = 0;
        for (; grown < used + room; doublings++) grown *= 2;
        rc = mdb_env_set_mapsize(l->env, grown);
        if (rc) return shard_lmdb_fail(rc, l->path, "growing the map");
        l->map_size = grown;
        l->grows += doublings;
    }
    rc = mdb_txn_begin(l->env, NULL, 0, &l->txn);
    if (rc) { l->txn = NULL; return shard_lmdb_fail(rc, l->path, "mdb_txn_begin"); }
    l->nent = 0;
    l->txn_bytes = 0;
    l->txn_room = room;
    return STATUS_OK;
}

static status lmdb_flush(void *e)
{
    struct shard_lmdb *l = e;
    if (!l->txn) return STATUS_OK;
    int rc = mdb_txn_commit(l->txn);          /* frees the txn whatever it returns */
    l->txn = NULL;
    if (rc == MDB_MAP_FULL)
        return FAIL(STATUS_LMDB, "%s: committing a batch: map full after growing it to %zu bytes", l->path,
                    l->map_size);
    if (rc == EIO) {
        /* LMDB reports a short write (the disk filled up in the middle of
           it) as EIO: tell a full disk from a failing one by the free space */
        struct statvfs sv;
        if (fstatvfs(l->fd, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < l->txn_room)
            return FAIL(STATUS_IO, "%s: committing a batch: no space left on device (disk full: %llu KiB free)",
                        l->path, (unsigned long long)sv.f_bavail * sv.f_frsize / 1024);
    }
    if (rc) return shard_lmdb_fail(rc, l->path, "committing a batch");
    l->committed += l->nent;
    l->nent = 0;
    lmdb_stream(l);
    return STATUS_OK;
}

/* the value's room in the open write transaction */
static status lmdb_reserve(void *e, uint64_t key, size_t len, void **buf)
{
    struct shard_lmdb *l = e;
    if (l->txn && l->nent > 0 &&
        (l->nent >= l->batch_records || l->txn_bytes + len > l->batch_bytes ||
         l->txn_bytes + (l->nent + 1) * SHARD_RECORD_SLACK(l->psize) + len + SHARD_TXN_SLACK > l->txn_room))
        TRY(lmdb_flush(l));
    if (!l->txn) TRY(lmdb_begin(l, len));
    uint8_t k[8];
    shard_key_encode(key, k);
    MDB_val mk = { 8, k }, mv = { len, NULL };
    int rc = mdb_put(l->txn, l->dbi, &mk, &mv, MDB_APPEND | MDB_RESERVE);
    if (rc) {
        mdb_txn_abort(l->txn);
        l->txn = NULL;
        if (rc == MDB_KEYEXIST) return FAIL(STATUS_STATE, "%s: keys not ascending (MDB_APPEND refused)", l->path);
        if (rc == MDB_MAP_FULL)
            return FAIL(STATUS_LMDB, "%s: map full after growing it to %zu bytes", l->path, l->map_size);
        return shard_lmdb_fail(rc, l->path, "mdb_put");
    }
    l->nent++;
    l->txn_bytes += len;
    *buf = mv.mv_data;
    return STATUS_OK;
}

/* delete the value reserved last from the transaction */
static status lmdb_unreserve(void *e, uint64_t key, size_t len)
{
    struct shard_lmdb *l = e;
    ASSERT(l->txn && l->nent > 0);
    uint8_t k[8];
    shard_key_encode(key, k);
    MDB_val mk = { 8, k };
    int rc = mdb_del(l->txn, l->dbi, &mk, NULL);
    if (rc) {
        mdb_txn_abort(l->txn);
        l->txn = NULL;
        return shard_lmdb_fail(rc, l->path, "taking back a reserved value");
    }
    l->nent--;
    l->txn_bytes -= len;
    return STATUS_OK;
}

static status lmdb_close(void *e, uint64_t *records)
{
    struct shard_lmdb *l = e;
    status st = lmdb_flush(l);
    if (st == STATUS_OK) {
        int rc = mdb_env_sync(l->env, 1);
        if (rc) st = shard_lmdb_fail(rc, l->path, "mdb_env_sync");
    }
    if (st == STATUS_OK) {
        (void)posix_fadvise(l->fd, l->dropped, 0, POSIX_FADV_DONTNEED);   /* synced: clean, droppable */
        if (records) *records = l->committed;
    }
    lmdb_free(l);
    return st;
}

static uint64_t lmdb_count(const void *e)
{
    const struct shard_lmdb *l = e;
    return l->committed + l->nent;
}
static size_t lmdb_size(const void *e) { return ((const struct shard_lmdb *)e)->map_size; }
static int lmdb_grows(const void *e) { return ((const struct shard_lmdb *)e)->grows; }

const struct shard_engine_ops shard_engine_lmdb = {
    .name = "lmdb",
    .open = lmdb_open,
    .reserve = lmdb_reserve,
    .unreserve = lmdb_unreserve,
    .flush = lmdb_flush,
    .close = lmdb_close,
    .free = lmdb_free,
    .count = lmdb_count,
    .size = lmdb_size,
    .grows = lmdb_grows,
};

/*
 * shard_direct.c — the bulk LMDB writer (see shard_direct.h for why and for
 * the file layout it produces).
 *
 * Three parts:
 *   - the stream: page numbers are handed out in file order; pages live in
 *     one of SHARD_DIRECT_CHUNKS page-aligned chunk buffers; a full chunk is
 *     queued to the I/O thread, which writes chunks in ring order (pwrite,
 *     O_DIRECT when the filesystem takes it) while the caller fills the next;
 *   - the leaf being filled (an in-memory page: small values are reserved
 *     inside it, big ones in the stream with a F_BIGDATA node pointing at
 *     them); it joins the stream when the next node does not fit;
 *   - the level list: (first key, page) of every leaf, turned into branch
 *     pages at close, level by level, until one root is left.
 * Byte layout: liblmdb 0.9's, whose constants and offsets are in
 * lmdb_layout.h (checked against the linked liblmdb's version at open).
 */
#include "shared/shard_direct.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "shared/lmdb_layout.h"
#include "shared/shard_engine.h"

#define SHARD_DIRECT_CHUNKS 3
#define SHARD_DIRECT_CHUNK_DEFAULT ((size_t)4 << 20)

struct chunk {
    uint8_t *buf;
    size_t cap, len;
    off_t off;
    int busy;                 /* queued to or being written by the I/O thread */
};

struct level_entry {
    uint64_t key;
    uint64_t pgno;
};

struct shard_direct {
    char *path;
    int fd, odirect;
    size_t psize, chunk_bytes;
    unsigned max_leaf_keys, max_branch_keys;   /* test knobs; 0: as many as fit */

    /* stream */
    struct chunk ch[SHARD_DIRECT_CHUNKS];
    int cur;
    uint64_t next_pgno;
    pthread_t io;
    int io_started;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    int stop, io_err;
    off_t drop_ends[2];       /* buffered mode: chunk ends, for the lagged drop */
    unsigned ndrop;
    off_t dropped;

    /* the leaf being filled */
    uint8_t *leaf;
    unsigned leaf_n, leaf_upper;
    uint64_t leaf_key0;

    /* leaves so far, then each branch level in turn */
    struct level_entry *lv;
    size_t nlv, caplv;

    /* meta counters */
    uint64_t entries, leaf_pages, branch_pages, overflow_pages;
    uint16_t depth;
    uint64_t root;

    /* the last reservation, for unreserve */
    int last_big;
    uint64_t last_npages;
};

/* ------------------------------------------------------------ page bytes */

static void page_header(uint8_t *pg, uint64_t pgno, uint16_t flags)
{
    uint16_t pad = 0;
    memcpy(pg + LM_PAGE_PGNO, &pgno, 8);
    memcpy(pg + LM_PAGE_PAD, &pad, 2);
    memcpy(pg + LM_PAGE_FLAGS, &flags, 2);
}

static void page_bounds(uint8_t *pg, uint16_t lower, uint16_t upper)
{
    memcpy(pg + LM_PAGE_LOWER, &lower, 2);
    memcpy(pg + LM_PAGE_UPPER, &upper, 2);
}

/* A node at offset ofs of page pg: lo/hi/flags carry a leaf's data size or a
 * branch's child page number (48 bits); the key follows the 8-byte head. */
static void node_put(uint8_t *pg, unsigned idx, unsigned ofs, uint64_t lohi, uint16_t flags, const uint8_t *key,
                     uint16_t ksize)
{
    uint16_t o = (uint16_t)ofs, lo = (uint16_t)lohi, hi = (uint16_t)(lohi >> 16);
    memcpy(pg + LM_PAGEHDRSZ + 2 * idx, &o, 2);
    memcpy(pg + ofs, &lo, 2);
    memcpy(pg + ofs + 2, &hi, 2);
    memcpy(pg + ofs + 4, &flags, 2);
    memcpy(pg + ofs + 6, &ksize, 2);
    if (ksize) memcpy(pg + ofs + LM_NODESIZE, key, ksize);
}

/* --------------------------------------------------------------- the I/O */

static status io_fail(struct shard_direct *d, int err, const char *what)
{
    if (err == ENOSPC || err == EDQUOT) {
        struct statvfs sv;
        unsigned long long kib = fstatvfs(d->fd, &sv) == 0 ? (unsigned long long)sv.f_bavail * sv.f_frsize / 1024 : 0;
        return FAIL(STATUS_IO, "%s: %s: no space left on device (disk full: %llu KiB free)", d->path, what, kib);
    }
    return FAIL(STATUS_IO, "%s: %s: %s", d->path, what, strerror(err));
}

/* Write a whole range; a filesystem that took O_DIRECT at open but refuses
 * it on the first write (EINVAL) gets buffered writes from then on. */
static int write_all(struct shard_direct *d, const uint8_t *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t k = pwrite(d->fd, p, len, off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EINVAL && d->odirect) {
            int fl = fcntl(d->fd, F_GETFL);
            if (fl >= 0 && fcntl(d->fd, F_SETFL, fl & ~O_DIRECT) == 0) { d->odirect = 0; continue; }
        }
        if (k < 0) return errno;
        if (k == 0) return ENOSPC;
        p += k; len -= (size_t)k; off += k;
    }
    return 0;
}

/* Buffered mode only: start writeback of the new range, wait for the one two
 * chunks back and drop it from the page cache (as shard_lmdb.c does). */
static void io_stream_buffered(struct shard_direct *d, off_t end)
{
    if (d->odirect) return;
    off_t prev = d->ndrop ? d->drop_ends[(d->ndrop - 1) % 2] : 0;
    if (end > prev) (void)sync_file_range(d->fd, prev, end - prev, SYNC_FILE_RANGE_WRITE);
    if (d->ndrop >= 2) {
        off_t old = d->drop_ends[d->ndrop % 2];
        if (old > d->dropped) {
            (void)sync_file_range(d->fd, d->dropped, old - d->dropped,
                                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
            (void)posix_fadvise(d->fd, d->dropped, old - d->dropped, POSIX_FADV_DONTNEED);
            d->dropped = old;
        }
    }
    d->drop_ends[d->ndrop % 2] = end;
    d->ndrop++;
}

static void *io_thread(void *arg)
{
    struct shard_direct *d = arg;
    int q = 0;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        while (!d->ch[q].busy && !d->stop) pthread_cond_wait(&d->work, &d->mu);
        if (!d->ch[q].busy) { pthread_mutex_unlock(&d->mu); break; }
        int failed = d->io_err;
        pthread_mutex_unlock(&d->mu);
        struct chunk *c = &d->ch[q];
        int err = failed ? 0 : write_all(d, c->buf, c->len, c->off);
        if (!failed && !err) io_stream_buffered(d, c->off + (off_t)c->len);
        pthread_mutex_lock(&d->mu);
        if (err && !d->io_err) d->io_err = err;
        c->busy = 0;
        pthread_cond_broadcast(&d->done);
        pthread_mutex_unlock(&d->mu);
        q = (q + 1) % SHARD_DIRECT_CHUNKS;
    }
    return NULL;
}

static status io_error_status(struct shard_direct *d)
{
    pthread_mutex_lock(&d->mu);
    int err = d->io_err;
    pthread_mutex_unlock(&d->mu);
    return err ? io_fail(d, err, "writing") : STATUS_OK;
}

/* Queue the chunk being filled and make the next one current (waiting for
 * the I/O thread to finish with it). */
static status stream_submit(struct shard_direct *d)
{
    struct chunk *c = &d->ch[d->cur];
    pthread_mutex_lock(&d->mu);
    if (c->len > 0) {
        c->busy = 1;
        pthread_cond_signal(&d->work);
        d->cur = (d->cur + 1) % SHARD_DIRECT_CHUNKS;
    }
    struct chunk *n = &d->ch[d->cur];
    while (n->busy && !d->io_err) pthread_cond_wait(&d->done, &d->mu);
    pthread_mutex_unlock(&d->mu);
    n->len = 0;
    n->off = (off_t)(d->next_pgno * d->psize);
    return io_error_status(d);
}

/* Wait until every queued chunk is on its way to the file. */
static status stream_drain(struct shard_direct *d)
{
    TRY(stream_submit(d));
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < SHARD_DIRECT_CHUNKS; i++)
        while (d->ch[i].busy && !d->io_err) pthread_cond_wait(&d->done, &d->mu);
    pthread_mutex_unlock(&d->mu);
    return io_error_status(d);
}

/* npages consecutive pages at the end of the file: their bytes, and their
 * first page number in *pgno. */
static status stream_take(struct shard_direct *d, uint64_t npages, uint8_t **out, uint64_t *pgno)
{
    size_t need = (size_t)npages * d->psize;
    struct chunk *c = &d->ch[d->cur];
    if (c->len + need > c->cap) {
        if (c->len > 0) TRY(stream_submit(d));
        c = &d->ch[d->cur];
        if (need > c->cap) {
            size_t cap = need > d->chunk_bytes ? need : d->chunk_bytes;
            void *nb = NULL;
            cap = (cap + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
            if (posix_memalign(&nb, (size_t)2 << 20, cap) != 0)
                return FAIL(STATUS_NOMEM, "%s: out of memory for a %zu-byte write buffer", d->path, cap);
            (void)madvise(nb, cap, MADV_HUGEPAGE);
            free(c->buf);
            c->buf = nb;
            c->cap = cap;
        }
    }
    *out = c->buf + c->len;
    *pgno = d->next_pgno;
    c->len += need;
    d->next_pgno += npages;
    return STATUS_OK;
}

/* ---------------------------------------------------------------- levels */

static status level_push(struct shard_direct *d, uint64_t key, uint64_t pgno)
{
    if (d->nlv == d->caplv) {
        size_t nc = d->caplv ? 2 * d->caplv : 1024;
        struct level_entry *p = realloc(d->lv, nc * sizeof *p);
        if (!p) return FAIL(STATUS_NOMEM, "%s: out of memory for the page index", d->path);
        d->lv = p;
        d->caplv = nc;
    }
    d->lv[d->nlv++] = (struct level_entry){ key, pgno };
    return STATUS_OK;
}

static unsigned leaf_lower(const struct shard_direct *d) { return LM_PAGEHDRSZ + 2 * d->leaf_n; }

static void leaf_reset(struct shard_direct *d)
{
    memset(d->leaf, 0, d->psize);
    d->leaf_n = 0;
    d->leaf_upper = (unsigned)d->psize;
}

static status leaf_emit(struct shard_direct *d)
{
    if (d->leaf_n == 0) return STATUS_OK;
    uint8_t *pg;
    uint64_t pgno;
    TRY(stream_take(d, 1, &pg, &pgno));
    page_header(d->leaf, pgno, LM_P_LEAF);
    page_bounds(d->leaf, (uint16_t)leaf_lower(d), (uint16_t)d->leaf_upper);
    memcpy(pg, d->leaf, d->psize);
    d->leaf_pages++;
    TRY(level_push(d, d->leaf_key0, pgno));
    leaf_reset(d);
    return STATUS_OK;
}

/* Branch pages over the current level list until one page is left. */
static status build_branches(struct shard_direct *d)
{
    unsigned fit = 1 + (unsigned)((d->psize - LM_PAGEHDRSZ - (LM_NODESIZE + 2)) / (LM_EVEN(LM_NODESIZE + 8) + 2));
    unsigned cap = d->max_branch_keys && d->max_branch_keys < fit ? d->max_branch_keys : fit;
    if (cap < 2) cap = 2;
    uint8_t *pgbuf = calloc(1, d->psize);
    if (!pgbuf) return FAIL(STATUS_NOMEM, "%s: out of memory", d->path);
    status st = STATUS_OK;
    while (d->nlv > 1 && st == STATUS_OK) {
        size_t n = d->nlv, pages = (n + cap - 1) / cap;
        for (size_t p = 0; p < pages && st == STATUS_OK; p++) {
            size_t a = p * n / pages, b = (p + 1) * n / pages;
            memset(pgbuf, 0, d->psize);
            unsigned upper = (unsigned)d->psize;
            uint64_t first_key = d->lv[a].key;
            for (size_t i = a; i < b; i++) {
                uint8_t k[8];
                shard_key_encode(d->lv[i].key, k);
                uint16_t ks = i == a ? 0 : 8;          /* liblmdb leaves the first key of a branch empty */
                upper -= LM_EVEN(LM_NODESIZE + ks);
                uint64_t c = d->lv[i].pgno;
                node_put(pgbuf, (unsigned)(i - a), upper, c & 0xffffffffu, (uint16_t)(c >> 32), k, ks);
            }
            uint8_t *pg;
            uint64_t pgno;
            st = stream_take(d, 1, &pg, &pgno);
            if (st != STATUS_OK) break;
            page_header(pgbuf, pgno, LM_P_BRANCH);
            page_bounds(pgbuf, (uint16_t)(LM_PAGEHDRSZ + 2 * (b - a)), (uint16_t)upper);
            memcpy(pg, pgbuf, d->psize);
            d->branch_pages++;
            d->lv[p] = (struct level_entry){ first_key, pgno };   /* p <= a: read before overwritten */
        }
        d->nlv = pages;
        d->depth++;
    }
    free(pgbuf);
    return st;
}

/* ---------------------------------------------------------------- public */

static void direct_free(void *e);

static status direct_open(const char *path, const struct shard_writer_opts *o, void **out)
{
    *out = NULL;
    TRY(lmdb_layout_check(path));
    struct shard_direct *d = calloc(1, sizeof *d);
    if (!d) return FAIL(STATUS_NOMEM, "%s: out of memory", path);
    d->fd = -1;
    d->psize = LM_PSIZE;
    d->chunk_bytes = o && o->chunk_bytes ? (o->chunk_bytes + 4095) & ~(size_t)4095 : SHARD_DIRECT_CHUNK_DEFAULT;
    d->max_leaf_keys = o ? o->max_leaf_keys : 0;
    d->max_branch_keys = o ? o->max_branch_keys : 0;
    d->next_pgno = 2;                       /* pages 0 and 1: the metas, written at close */
    d->root = LM_P_INVALID;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->work, NULL);
    pthread_cond_init(&d->done, NULL);
    status st = STATUS_OK;
    d->path = strdup(path);
    d->leaf = malloc(d->psize);
    if (!d->path || !d->leaf) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }
    leaf_reset(d);
    char lock[4200];
    snprintf(lock, sizeof lock, "%s-lock", path);
    (void)unlink(lock);
    if (unlink(path) != 0 && errno != ENOENT) {
        st = FAIL(STATUS_IO, "%s: cannot remove the old shard: %s", path, strerror(errno));
        goto fail;
    }
    int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    if (!(o && o->buffered_io)) {
        d->fd = open(path, flags | O_DIRECT, 0644);
        d->odirect = d->fd >= 0;
    }
    if (d->fd < 0) d->fd = open(path, flags, 0644);
    if (d->fd < 0) { st = FAIL(STATUS_IO, "%s: cannot create the shard: %s", path, strerror(errno)); goto fail; }
    d->ch[0].off = (off_t)(d->next_pgno * d->psize);
    if (pthread_create(&d->io, NULL, io_thread, d) != 0) {
        st = FAIL(STATUS_NOMEM, "%s: cannot start the writer thread", path);
        goto fail;
    }
    d->io_started = 1;
    *out = d;
    return STATUS_OK;
fail:
    direct_free(d);
    return st;
}

static status direct_reserve(void *e, uint64_t key, size_t len, void **buf)
{
    struct shard_direct *d = e;
    if (len > 0xffffffffu) return FAIL(STATUS_TOO_BIG, "%s: a value of %zu bytes is over LMDB's 4 GiB", d->path, len);
    int big = len > LM_MAX_INLINE;
    unsigned nsize = LM_EVEN(LM_NODESIZE + 8 + (big ? 8u : (unsigned)len));
    int full = leaf_lower(d) + 2 + nsize > d->leaf_upper || (d->max_leaf_keys && d->leaf_n >= d->max_leaf_keys);
    if (full) TRY(leaf_emit(d));
    uint8_t *val;
    uint64_t lohi = len, npages = 0;
    uint8_t k[8];
    shard_key_encode(key, k);
    unsigned ofs = d->leaf_upper - nsize;
    if (big) {
        uint8_t *pg;
        uint64_t pgno;
        npages = (LM_PAGEHDRSZ + len + d->psize - 1) / d->psize;
        TRY(stream_take(d, npages, &pg, &pgno));
        page_header(pg, pgno, LM_P_OVERFLOW);
        uint32_t np32 = (uint32_t)npages;
        memcpy(pg + LM_PAGE_OVPAGES, &np32, 4);
        size_t tail = npages * d->psize - LM_PAGEHDRSZ - len;
        memset(pg + LM_PAGEHDRSZ + len, 0, tail);
        val = pg + LM_PAGEHDRSZ;
        node_put(d->leaf, d->leaf_n, ofs, lohi, LM_F_BIGDATA, k, 8);
        memcpy(d->leaf + ofs + LM_NODESIZE + 8, &pgno, 8);
        d->overflow_pages += npages;
    } else {
        node_put(d->leaf, d->leaf_n, ofs, lohi, 0, k, 8);
        val = d->leaf + ofs + LM_NODESIZE + 8;
    }
    if (d->leaf_n == 0) d->leaf_key0 = key;
    d->leaf_n++;
    d->leaf_upper = ofs;
    d->entries++;
    d->last_big = big;
    d->last_npages = npages;
    *buf = val;
    return STATUS_OK;
}

static status direct_unreserve(void *e, uint64_t key, size_t len)
{
    struct shard_direct *d = e;
    ASSERT(d->leaf_n > 0);
    unsigned idx = d->leaf_n - 1;
    uint16_t ofs;
    memcpy(&ofs, d->leaf + LM_PAGEHDRSZ + 2 * idx, 2);
    unsigned nsize = LM_EVEN(LM_NODESIZE + 8 + (d->last_big ? 8u : (unsigned)len));
    memset(d->leaf + ofs, 0, nsize);
    memset(d->leaf + LM_PAGEHDRSZ + 2 * idx, 0, 2);
    d->leaf_upper = ofs + nsize;
    d->leaf_n--;
    if (d->last_big) {                       /* its pages are the last ones taken */
        struct chunk *c = &d->ch[d->cur];
        size_t bytes = (size_t)d->last_npages * d->psize;
        ASSERT(c->len >= bytes);
        c->len -= bytes;
        d->next_pgno -= d->last_npages;
        d->overflow_pages -= d->last_npages;
    }
    d->entries--;
    return STATUS_OK;
}

static status direct_flush(void *e) { return stream_drain(e); }

static status write_metas(struct shard_direct *d)
{
    uint8_t *m = NULL;
    if (posix_memalign((void **)&m, 4096, 2 * d->psize) != 0) return FAIL(STATUS_NOMEM, "%s: out of memory", d->path);
    memset(m, 0, 2 * d->psize);
    /* MDB_meta: magic, version, address, mapsize, dbs[FREE, MAIN], last_pg, txnid;
     * MDB_db: pad (FREE: the page size), flags, depth, branch, leaf, overflow pages, entries, root */
    uint8_t meta[LM_META_SIZE] = { 0 };
    uint32_t magic = LM_MAGIC, version = LM_DATA_VERSION, psize = (uint32_t)d->psize;
    uint64_t mapsize = d->next_pgno * d->psize, last_pg = d->next_pgno - 1, txnid = 1;
    uint16_t free_flags = MDB_NOSUBDIR | MDB_INTEGERKEY, main_flags = 0, free_depth = 0;
    memcpy(meta + LM_META_MAGIC, &magic, 4);
    memcpy(meta + LM_META_VERSION, &version, 4);
    memcpy(meta + LM_META_MAPSIZE, &mapsize, 8);
    uint8_t *fdb = meta + LM_META_FREE_DB, *mdb = meta + LM_META_MAIN_DB;
    memcpy(fdb + LM_DB_PAD, &psize, 4);
    memcpy(fdb + LM_DB_FLAGS, &free_flags, 2);
    memcpy(fdb + LM_DB_DEPTH, &free_depth, 2);
    uint64_t inval = LM_P_INVALID;
    memcpy(fdb + LM_DB_ROOT, &inval, 8);
    memcpy(mdb + LM_DB_FLAGS, &main_flags, 2);
    memcpy(mdb + LM_DB_DEPTH, &d->depth, 2);
    memcpy(mdb + LM_DB_BRANCH_PAGES, &d->branch_pages, 8);
    memcpy(mdb + LM_DB_LEAF_PAGES, &d->leaf_pages, 8);
    memcpy(mdb + LM_DB_OVERFLOW_PAGES, &d->overflow_pages, 8);
    memcpy(mdb + LM_DB_ENTRIES, &d->entries, 8);
    memcpy(mdb + LM_DB_ROOT, &d->root, 8);
    memcpy(meta + LM_META_LAST_PG, &last_pg, 8);
    memcpy(meta + LM_META_TXNID, &txnid, 8);
    for (int i = 0; i < 2; i++) {
        uint8_t *pg = m + (size_t)i * d->psize;
        page_header(pg, (uint64_t)i, LM_P_META);
        memcpy(pg + LM_PAGEHDRSZ, meta, sizeof meta);
    }
    int err = write_all(d, m, 2 * d->psize, 0);
    free(m);
    return err ? io_fail(d, err, "writing the meta pages") : STATUS_OK;
}

static status direct_close(void *e, uint64_t *records)
{
    struct shard_direct *d = e;
    status st = leaf_emit(d);
    if (st == STATUS_OK && d->nlv > 0) {
        d->depth = 1;
        st = build_branches(d);
        if (st == STATUS_OK) d->root = d->lv[0].pgno;
    }
    if (st == STATUS_OK) st = stream_drain(d);
    if (st == STATUS_OK) st = write_metas(d);
    if (st == STATUS_OK && fdatasync(d->fd) != 0) st = io_fail(d, errno, "fdatasync");
    if (st == STATUS_OK) {
        if (!d->odirect) (void)posix_fadvise(d->fd, 0, 0, POSIX_FADV_DONTNEED);   /* synced: clean, droppable */
        if (records) *records = d->entries;
    }
    direct_free(d);
    return st;
}

static void direct_free(void *e)
{
    struct shard_direct *d = e;
    if (!d) return;
    if (d->io_started) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->work);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->io, NULL);
    }
    if (d->fd >= 0) close(d->fd);
    for (int i = 0; i < SHARD_DIRECT_CHUNKS; i++) free(d->ch[i].buf);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->work);
    pthread_cond_destroy(&d->done);
    free(d->lv);
    free(d->leaf);
    free(d->path);
    free(d);
}

static uint64_t direct_count(const void *e) { return ((const struct shard_direct *)e)->entries; }
static size_t direct_size(const void *e)
{
    const struct shard_direct *d = e;
    return (size_t)(d->next_pgno * d->psize);
}
static int direct_grows(const void *e) { return 0; }

const struct shard_engine_ops shard_engine_direct = {
    .name = "direct",
    .open = direct_open,
    .reserve = direct_reserve,
    .unreserve = direct_unreserve,
    .flush = direct_flush,
    .close = direct_close,
    .free = direct_free,
    .count = direct_count,
    .size = direct_size,
    .grows = direct_grows,
};

/* ------------------------------------------------------ the layout check */

status lmdb_layout_check_version(const char *what, int major, int minor, int patch)
{
    if (major == LMDB_LAYOUT_MAJOR && minor == LMDB_LAYOUT_MINOR) return STATUS_OK;
    return FAIL(STATUS_UNSUPPORTED,
                "%s: the direct shard writer writes LMDB %d.%d's file layout but liblmdb %d.%d.%d is linked; "
                "use DEEPER_SHARD_WRITER=lmdb",
                what, LMDB_LAYOUT_MAJOR, LMDB_LAYOUT_MINOR, major, minor, patch);
}

status lmdb_layout_check(const char *what)
{
    int major = 0, minor = 0, patch = 0;
    (void)mdb_version(&major, &minor, &patch);
    return lmdb_layout_check_version(what, major, minor, patch);
}

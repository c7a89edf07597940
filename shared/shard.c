/*
 * shard.c — LMDB shard writer front and reader (see shard.h for the
 * contract).
 *
 * The writer keeps what both engines share (key order, the content
 * checksum, unreserve's bookkeeping) and calls its engine through a table
 * (shard_engine.h): the direct engine in shard_direct.c, liblmdb's in
 * shard_lmdb.c.  The reader is liblmdb's, zero-copy inside a read
 * transaction.
 */
#include "shared/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "shared/crc32c.h"
#include "shared/shard_engine.h"

/* ------------------------------------------------------------------ keys */

void shard_key_encode(uint64_t id, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--) { out[i] = (uint8_t)id; id >>= 8; }
}

uint64_t shard_key_decode(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | in[i];
    return v;
}

status shard_file_name(const char *subset, int index, int count, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s-%05d-of-%05d.mdb", subset, index, count);
    if (n < 0 || (size_t)n >= size) return FAIL(STATUS_USAGE, "shard name for subset '%s' is too long", subset);
    return STATUS_OK;
}

uint32_t shard_checksum_update(uint32_t crc, uint64_t key, const void *val, size_t len)
{
    uint8_t k[8];
    shard_key_encode(key, k);
    crc = crc32c_update(crc, k, 8);
    return crc32c_update(crc, val, len);
}

status shard_lmdb_fail(int rc, const char *path, const char *what)
{
    if (rc == ENOSPC)
        return FAIL(STATUS_IO, "%s: %s: no space left on device (disk full)", path, what);
    if (rc > 0)
        return FAIL(STATUS_IO, "%s: %s: %s", path, what, strerror(rc));
    return FAIL(STATUS_LMDB, "%s: %s: %s", path, what, mdb_strerror(rc));
}

/* ---------------------------------------------------------------- writer */

/* The engines (shard_engine.h) only place values and make the file; key
 * order, the content checksum and what unreserve restores are kept here,
 * once for both. */

/* The value reserved last: added to the content checksum once the caller
 * has filled it (at the writer's next call). */
struct shard_pending {
    int on;
    uint64_t key;
    const uint8_t *val;
    size_t len;
    int have_crc;            /* the caller gave the value's CRC: no pass over the bytes */
    uint32_t crc;
};

struct shard_writer {
    char *path;
    const struct shard_engine_ops *ops;
    void *engine;               /* the engine's state (ops->open) */
    /* the value reserved last: added to the checksum at the next call */
    struct shard_pending pending;
    int pending_prev_have;      /* have_last/last_key before it, for unreserve */
    uint64_t pending_prev_key;
    uint32_t checksum;          /* over every settled record */
    int have_last;
    uint64_t last_key;
};

int shard_engine_default(void)
{
    const char *e = getenv("DEEPER_SHARD_WRITER");
    return e && strcmp(e, "lmdb") == 0 ? SHARD_ENGINE_LMDB : SHARD_ENGINE_DIRECT;
}

status shard_writer_open(const char *path, const struct shard_writer_opts *opts, struct shard_writer **out)
{
    status st = STATUS_OK;
    struct shard_writer *w = calloc(1, sizeof *w);
    if (!w) return FAIL(STATUS_NOMEM, "%s: out of memory", path);
    w->path = strdup(path);
    if (!w->path) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }
    int engine = opts ? opts->engine : shard_engine_default();
    w->ops = engine == SHARD_ENGINE_LMDB ? &shard_engine_lmdb : &shard_engine_direct;
    if ((st = w->ops->open(path, opts, &w->engine)) != STATUS_OK) goto fail;
    *out = w;
    return STATUS_OK;
fail:
    shard_writer_free(&w);
    return st;
}

/* Add the value reserved last to the content checksum (its bytes are final:
 * the caller fills a value before its next call on the writer). */
static void shard_writer_settle(struct shard_writer *w)
{
    struct shard_pending *p = &w->pending;
    if (!p->on) return;
    if (p->have_crc) {      /* the caller knows the value's CRC: no second pass over it */
        uint8_t k[8];
        shard_key_encode(p->key, k);
        w->checksum = crc32c_combine(crc32c_update(w->checksum, k, 8), p->crc, p->len);
    } else {
        w->checksum = shard_checksum_update(w->checksum, p->key, p->val, p->len);
    }
    p->on = 0;
}

status shard_writer_flush(struct shard_writer *w)
{
    shard_writer_settle(w);
    return w->ops->flush(w->engine);
}

status shard_writer_reserve(struct shard_writer *w, uint64_t key, size_t len, void **buf)
{
    if (w->have_last && key <= w->last_key)
        return FAIL(STATUS_STATE, "%s: key %llu after %llu: keys must ascend", w->path,
                    (unsigned long long)key, (unsigned long long)w->last_key);
    shard_writer_settle(w);
    void *dst;
    TRY(w->ops->reserve(w->engine, key, len, &dst));
    w->pending = (struct shard_pending){ .on = 1, .key = key, .val = dst, .len = len };
    w->pending_prev_have = w->have_last;
    w->pending_prev_key = w->last_key;
    w->have_last = 1;
    w->last_key = key;
    *buf = dst;
    return STATUS_OK;
}

void shard_writer_value_crc(struct shard_writer *w, uint32_t crc)
{
    ASSERT(w->pending.on);
    w->pending.crc = crc;
    w->pending.have_crc = 1;
}

status shard_writer_unreserve(struct shard_writer *w)
{
    ASSERT(w->pending.on);
    w->pending.on = 0;
    TRY(w->ops->unreserve(w->engine, w->pending.key, w->pending.len));
    w->have_last = w->pending_prev_have;        /* the key may be used again */
    w->last_key = w->pending_prev_key;
    return STATUS_OK;
}

status shard_writer_put(struct shard_writer *w, uint64_t key, const void *val, size_t len)
{
    void *dst;
    TRY(shard_writer_reserve(w, key, len, &dst));
    if (len) memcpy(dst, val, len);
    return STATUS_OK;
}

status shard_writer_close(struct shard_writer **wp, uint64_t *records, uint32_t *checksum)
{
    struct shard_writer *w = *wp;
    shard_writer_settle(w);
    status st = w->ops->close(w->engine, records);   /* frees the engine in every case */
    w->engine = NULL;
    if (st == STATUS_OK && checksum) *checksum = w->checksum;
    shard_writer_free(wp);
    return st;
}

void shard_writer_free(struct shard_writer **wp)
{
    struct shard_writer *w = wp ? *wp : NULL;
    if (!w) return;
    if (w->ops) w->ops->free(w->engine);
    free(w->path);
    free(w);
    *wp = NULL;
}

uint64_t shard_writer_count(const struct shard_writer *w) { return w->ops->count(w->engine); }
size_t shard_writer_map_size(const struct shard_writer *w) { return w->ops->size(w->engine); }
int shard_writer_grows(const struct shard_writer *w) { return w->ops->grows(w->engine); }

/* ---------------------------------------------------------------- reader */

struct shard_reader {
    char *path;
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t count;
    uintptr_t map_lo, map_hi;   /* the mapped bytes that are backed by the file */
};

struct shard_txn {
    struct shard_reader *r;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_cursor *peek;           /* opened on first use: finds the record after the cursor's */
    const void *ahead;          /* the value next() last prefetched for the following call */
    int positioned;
};

static status shard_reader_env_open(struct shard_reader *r, unsigned extra)
{
    int rc = mdb_env_create(&r->env);
    if (rc) return shard_lmdb_fail(rc, r->path, "mdb_env_create");
    rc = mdb_env_open(r->env, r->path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD | extra, 0644);
    if (rc) {
        mdb_env_close(r->env);
        r->env = NULL;
        return rc == ENOENT ? FAIL(STATUS_NOT_FOUND, "%s: no such shard", r->path)
                            : shard_lmdb_fail(rc, r->path, "cannot open the shard");
    }
    return STATUS_OK;
}

/* Where LMDB mapped the file: every value handed out must lie in the map and
 * inside the file (a damaged length or page number can make LMDB point
 * anywhere).  liblmdb does not say where its map is (mdb_env_info's
 * me_mapaddr is only the fixed-map address, 0 here), so after the
 * environment is opened the mappings of this file (device and inode) are
 * looked up in /proc/self/maps: ours is the one no other open reader of this
 * process owns (the registry below).  The part checked is the mapping cut to
 * the file size.  Nothing here reads a page of the file.  Opens are
 * serialised so two readers of one file opening at once cannot take each
 * other's map. */
static pthread_mutex_t shard_maps_mu = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *shard_maps_owned;     /* map starts of the open readers */
static size_t shard_maps_n, shard_maps_cap;

static int shard_maps_is_owned(uintptr_t lo)
{
    for (size_t i = 0; i < shard_maps_n; i++)
        if (shard_maps_owned[i] == lo) return 1;
    return 0;
}

static status shard_reader_map_bounds(struct shard_reader *r)
{
    mdb_filehandle_t fd;
    struct stat sb;
    int rc = mdb_env_get_fd(r->env, &fd);
    if (rc) return shard_lmdb_fail(rc, r->path, "mdb_env_get_fd");
    if (fstat(fd, &sb) != 0) return FAIL(STATUS_IO, "%s: %s", r->path, strerror(errno));
    if (shard_maps_n == shard_maps_cap) {
        size_t cap = shard_maps_cap ? 2 * shard_maps_cap : 64;
        uintptr_t *p = realloc(shard_maps_owned, cap * sizeof *p);
        if (!p) return FAIL(STATUS_NOMEM, "%s: out of memory", r->path);
        shard_maps_owned = p;
        shard_maps_cap = cap;
    }
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return FAIL(STATUS_IO, "%s: cannot read /proc/self/maps to find the shard's map: %s", r->path,
                        strerror(errno));
    char line[4096 + 128], inode[32];
    snprintf(inode, sizeof inode, " %llu ", (unsigned long long)sb.st_ino);
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, off, ino;
        unsigned maj, min;
        if (!strstr(line, inode)) continue;   /* cheap: a process with many shards has many lines */
        if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &lo, &hi, &off, &maj, &min, &ino) != 6) continue;
        if (ino != (unsigned long long)sb.st_ino || maj != major(sb.st_dev) || min != minor(sb.st_dev) || off)
            continue;
        if (shard_maps_is_owned((uintptr_t)lo)) continue;
        found++;
        r->map_lo = (uintptr_t)lo;
        r->map_hi = (uintptr_t)(hi - lo < (unsigned long long)sb.st_size ? hi : lo + (unsigned long long)sb.st_size);
    }
    fclose(f);
    if (found != 1) {
        r->map_lo = r->map_hi = 0;
        return FAIL(STATUS_IO, "%s: %s", r->path, found ? "mapped more than once in this process (another open "
                    "environment of the file): cannot tell which map is this reader's" : "its map is not in "
                    "/proc/self/maps");
    }
    shard_maps_owned[shard_maps_n++] = r->map_lo;
    return STATUS_OK;
}

status shard_reader_open(const char *path, struct shard_reader **out)
{
    status st;
    struct shard_reader *r = calloc(1, sizeof *r);
    if (!r) return FAIL(STATUS_NOMEM, "%s: out of memory", path);
    r->path = strdup(path);
    if (!r->path) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }
    if (access(path, R_OK) != 0) {
        st = errno == ENOENT ? FAIL(STATUS_NOT_FOUND, "%s: no such shard", path)
                             : FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    pthread_mutex_lock(&shard_maps_mu);
    st = shard_reader_env_open(r, 0);
    if (st != STATUS_OK) {
        /* a read-only directory: the lock file cannot be made; shards listed
           in a manifest never change, so reading without locks is safe */
        st = shard_reader_env_open(r, MDB_NOLOCK);
    } else {
        int dead = 0;
        mdb_reader_check(r->env, &dead);
    }
    if (st == STATUS_OK) {
        MDB_txn *txn;
        MDB_stat ms;
        int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
        if (rc) {
            st = shard_lmdb_fail(rc, path, "mdb_txn_begin");
        } else {
            rc = mdb_dbi_open(txn, NULL, 0, &r->dbi);
            if (rc == 0) rc = mdb_stat(txn, r->dbi, &ms);
            mdb_txn_abort(txn);
            if (rc) st = shard_lmdb_fail(rc, path, "reading the database");
            else r->count = ms.ms_entries;
        }
    }
    if (st == STATUS_OK) st = shard_reader_map_bounds(r);
    pthread_mutex_unlock(&shard_maps_mu);
    if (st != STATUS_OK) goto fail;
    *out = r;
    return STATUS_OK;
fail:
    shard_reader_free(&r);
    return st;
}

void shard_reader_free(struct shard_reader **rp)
{
    struct shard_reader *r = rp ? *rp : NULL;
    if (!r) return;
    if (r->map_lo) pthread_mutex_lock(&shard_maps_mu);   /* unmapped and unlisted together */
    if (r->env) mdb_env_close(r->env);
    if (r->map_lo) {
        for (size_t i = 0; i < shard_maps_n; i++)
            if (shard_maps_owned[i] == r->map_lo) { shard_maps_owned[i] = shard_maps_owned[--shard_maps_n]; break; }
        pthread_mutex_unlock(&shard_maps_mu);
    }
    free(r->path);
    free(r);
    *rp = NULL;
}

uint64_t shard_reader_count(const struct shard_reader *r) { return r->count; }
const char *shard_reader_path(const struct shard_reader *r) { return r->path; }

status shard_txn_begin(struct shard_reader *r, struct shard_txn **out)
{
    struct shard_txn *t = calloc(1, sizeof *t);
    if (!t) return FAIL(STATUS_NOMEM, "%s: out of memory", r->path);
    t->r = r;
    int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &t->txn);
    if (rc == 0) rc = mdb_cursor_open(t->txn, r->dbi, &t->cur);
    if (rc) {
        if (t->txn) mdb_txn_abort(t->txn);
        free(t);
        return shard_lmdb_fail(rc, r->path, "starting a read transaction");
    }
    *out = t;
    return STATUS_OK;
}

void shard_txn_end(struct shard_txn *t)
{
    if (!t) return;
    if (t->peek) mdb_cursor_close(t->peek);
    if (t->cur) mdb_cursor_close(t->cur);
    if (t->txn) mdb_txn_abort(t->txn);
    free(t);
}

void shard_txn_reset(struct shard_txn *t)
{
    mdb_txn_reset(t->txn);
    t->positioned = 0;
}

status shard_txn_renew(struct shard_txn *t)
{
    int rc = mdb_txn_renew(t->txn);
    if (rc == 0) rc = mdb_cursor_renew(t->txn, t->cur);
    if (rc == 0 && t->peek) rc = mdb_cursor_renew(t->txn, t->peek);
    if (rc) return shard_lmdb_fail(rc, t->r->path, "renewing a read transaction");
    t->positioned = 0;
    return STATUS_OK;
}

void shard_txn_rewind(struct shard_txn *t) { t->positioned = 0; }

/* A value of many pages read from a cold shard would come in one 4 KiB page
 * fault at a time (the environment is opened MDB_NORDAHEAD, right for small
 * records read at random); ask the kernel for the whole value at once. */
#define SHARD_PREFETCH_MIN ((size_t)32 << 10)
static void shard_value_prefetch(const void *val, size_t len)
{
    if (len < SHARD_PREFETCH_MIN) return;
    uintptr_t a = (uintptr_t)val & ~(uintptr_t)4095, e = ((uintptr_t)val + len + 4095) & ~(uintptr_t)4095;
    (void)madvise((void *)a, e - a, MADV_WILLNEED);
}

/* Does the value lie inside the file's part of the map? */
static int shard_value_inside(const struct shard_reader *r, const MDB_val *mv)
{
    uintptr_t p = (uintptr_t)mv->mv_data;
    return p >= r->map_lo && p <= r->map_hi && mv->mv_size <= r->map_hi - p;
}

static status shard_value_outside(const struct shard_reader *r, const MDB_val *mk, const MDB_val *mv)
{
    char key[32] = "?";
    if (mk && mk->mv_size == 8 && shard_value_inside(r, mk)) snprintf(key, sizeof key, "%llu", (unsigned long long)shard_key_decode(mk->mv_data));
    return FAIL(STATUS_CORRUPT, "%s: record %s: value of %zu bytes at offset %lld lies outside the %llu-byte file "
                "(damaged shard)", r->path, key, mv->mv_size, (long long)((intptr_t)mv->mv_data - (intptr_t)r->map_lo),
                (unsigned long long)(r->map_hi - r->map_lo));
}

status shard_txn_get(struct shard_txn *t, uint64_t key, const void **val, size_t *len)
{
    uint8_t k[8];
    shard_key_encode(key, k);
    MDB_val mk = { 8, k }, mv;
    int rc = mdb_get(t->txn, t->r->dbi, &mk, &mv);
    if (rc == MDB_NOTFOUND)
        return FAIL(STATUS_NOT_FOUND, "%s: no record %llu", t->r->path, (unsigned long long)key);
    if (rc) return shard_lmdb_fail(rc, t->r->path, "mdb_get");
    if (!shard_value_inside(t->r, &mv)) return shard_value_outside(t->r, &mk, &mv);
    if (val) shard_value_prefetch(mv.mv_data, mv.mv_size);
    if (val) *val = mv.mv_data;
    if (len) *len = mv.mv_size;
    return STATUS_OK;
}

static status shard_txn_out(struct shard_txn *t, const MDB_val *mk, const MDB_val *mv,
                            uint64_t *key, const void **val, size_t *len)
{
    if (mk->mv_size != 8)
        return FAIL(STATUS_CORRUPT, "%s: key of %zu bytes (expected 8)", t->r->path, mk->mv_size);
    if (!shard_value_inside(t->r, mk)) return shard_value_outside(t->r, mk, mk);
    if (key) *key = shard_key_decode(mk->mv_data);    /* set even when the value is refused */
    if (!shard_value_inside(t->r, mv)) return shard_value_outside(t->r, mk, mv);
    if (val) *val = mv->mv_data;
    if (len) *len = mv->mv_size;
    return STATUS_OK;
}

void shard_txn_prefetch(struct shard_txn *t, uint64_t key)
{
    uint8_t k[8];
    shard_key_encode(key, k);
    MDB_val mk = { 8, k }, mv;
    if (mdb_get(t->txn, t->r->dbi, &mk, &mv) == 0 && shard_value_inside(t->r, &mv))
        shard_value_prefetch(mv.mv_data, mv.mv_size);
}

status shard_txn_next(struct shard_txn *t, uint64_t *key, const void **val, size_t *len)
{
    MDB_val mk, mv;
    int rc = mdb_cursor_get(t->cur, &mk, &mv, t->positioned ? MDB_NEXT : MDB_FIRST);
    if (rc == MDB_NOTFOUND) return FAIL(STATUS_NOT_FOUND, "%s: end of shard", t->r->path);
    if (rc) return shard_lmdb_fail(rc, t->r->path, "mdb_cursor_get");
    t->positioned = 1;
    /* a scan of big records: start reading the next one while this one is
     * used (this one was started by the previous call, unless it was the first) */
    if (val && mv.mv_size >= SHARD_PREFETCH_MIN && mk.mv_size == 8 && shard_value_inside(t->r, &mv) &&
        shard_value_inside(t->r, &mk)) {
        if (mv.mv_data != t->ahead) shard_value_prefetch(mv.mv_data, mv.mv_size);
        uint64_t id = shard_key_decode(mk.mv_data);
        uint8_t k[8];
        shard_key_encode(id + 1, k);
        MDB_val pk = { 8, k }, pv;
        if (id != UINT64_MAX && (t->peek || mdb_cursor_open(t->txn, t->r->dbi, &t->peek) == 0) &&
            mdb_cursor_get(t->peek, &pk, &pv, MDB_SET_RANGE) == 0 && shard_value_inside(t->r, &pv)) {
            shard_value_prefetch(pv.mv_data, pv.mv_size);
            t->ahead = pv.mv_data;
        }
    }
    return shard_txn_out(t, &mk, &mv, key, val, len);
}

status shard_txn_seek(struct shard_txn *t, uint64_t key, uint64_t *found, const void **val, size_t *len)
{
    uint8_t k[8];
    shard_key_encode(key, k);
    MDB_val mk = { 8, k }, mv;
    int rc = mdb_cursor_get(t->cur, &mk, &mv, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) return FAIL(STATUS_NOT_FOUND, "%s: no record at or after %llu", t->r->path,
                                        (unsigned long long)key);
    if (rc) return shard_lmdb_fail(rc, t->r->path, "mdb_cursor_get");
    t->positioned = 1;
    if (val && shard_value_inside(t->r, &mv)) shard_value_prefetch(mv.mv_data, mv.mv_size);
    return shard_txn_out(t, &mk, &mv, found, val, len);
}

status shard_reader_keys(struct shard_reader *r, uint64_t **keys, uint64_t *n)
{
    struct shard_txn *t;
    TRY(shard_txn_begin(r, &t));
    status st = STATUS_OK;
    uint64_t cap = r->count ? r->count : 1, got = 0;
    uint64_t *k = malloc(cap * sizeof *k);
    if (!k) { shard_txn_end(t); return FAIL(STATUS_NOMEM, "%s: out of memory for %llu keys", r->path,
                                            (unsigned long long)cap); }
    for (;;) {
        uint64_t key = UINT64_MAX;
        st = shard_txn_next(t, &key, NULL, NULL);
        if (st == STATUS_NOT_FOUND) { st = STATUS_OK; break; }
        /* a value outside the file is its reader's to refuse: keep its key */
        if (st == STATUS_CORRUPT && key != UINT64_MAX) st = STATUS_OK;
        if (st != STATUS_OK) break;
        if (got == cap) {
            void *p = realloc(k, cap * 2 * sizeof *k);
            if (!p) { st = FAIL(STATUS_NOMEM, "%s: out of memory for keys", r->path); break; }
            k = p;
            cap *= 2;
        }
        k[got++] = key;
    }
    shard_txn_end(t);
    if (st != STATUS_OK) { free(k); return st; }
    *keys = k;
    *n = got;
    return STATUS_OK;
}

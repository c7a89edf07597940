/*
 * shard.c — LMDB shard writer and reader (see shard.h for the contract).
 *
 * The writer keeps the current batch in memory (an arena of value bytes and
 * a table of keys/offsets) and only talks to LMDB at a commit, so that a
 * MDB_MAP_FULL — which poisons the transaction — can be handled by aborting,
 * doubling the map and replaying the same batch from memory.
 */
#include "shared/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/crc32c.h"

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

static status shard_lmdb_fail(int rc, const char *path, const char *what)
{
    if (rc == ENOSPC)
        return FAIL(STATUS_IO, "%s: %s: no space left on device (disk full)", path, what);
    if (rc > 0)
        return FAIL(STATUS_IO, "%s: %s: %s", path, what, strerror(rc));
    return FAIL(STATUS_LMDB, "%s: %s: %s", path, what, mdb_strerror(rc));
}

/* ---------------------------------------------------------------- writer */

struct shard_entry { uint64_t key; size_t off, len; uint32_t crc; int have_crc; };

struct shard_writer {
    char *path;
    MDB_env *env;
    MDB_dbi dbi;
    struct shard_writer_opts opts;
    size_t map_size;
    int grows;
    /* the batch not yet committed */
    struct shard_entry *ent;
    size_t nent, cap_ent;
    uint8_t *arena;
    size_t arena_len, arena_cap;
    /* totals over committed batches */
    uint64_t committed;
    uint32_t checksum;
    int have_last;
    uint64_t last_key;
    int committed_last_valid;     /* the last committed key, for unreserve */
    uint64_t committed_last;
};

status shard_writer_open(const char *path, const struct shard_writer_opts *opts, struct shard_writer **out)
{
    status st = STATUS_OK;
    struct shard_writer *w = calloc(1, sizeof *w);
    if (!w) return FAIL(STATUS_NOMEM, "%s: out of memory", path);
    w->path = strdup(path);
    if (!w->path) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }
    w->opts.map_size = opts && opts->map_size ? opts->map_size : (size_t)64 << 20;
    w->opts.batch_records = opts && opts->batch_records ? opts->batch_records : 1000;
    w->opts.batch_bytes = opts && opts->batch_bytes ? opts->batch_bytes : (size_t)16 << 20;
    w->map_size = w->opts.map_size;
    /* a fresh file: remove what an earlier (maybe killed) run left */
    if (unlink(path) != 0 && errno != ENOENT) {
        st = FAIL(STATUS_IO, "%s: cannot remove the old shard: %s", path, strerror(errno));
        goto fail;
    }
    char lock[4200];
    snprintf(lock, sizeof lock, "%s-lock", path);
    (void)unlink(lock);
    int rc = mdb_env_create(&w->env);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_env_create"); goto fail; }
    rc = mdb_env_set_mapsize(w->env, w->map_size);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_env_set_mapsize"); goto fail; }
    rc = mdb_env_open(w->env, path, MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOLOCK, 0644);
    if (rc) { st = shard_lmdb_fail(rc, path, "cannot create the shard"); goto fail; }
    MDB_txn *txn;
    rc = mdb_txn_begin(w->env, NULL, 0, &txn);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_txn_begin"); goto fail; }
    rc = mdb_dbi_open(txn, NULL, 0, &w->dbi);
    if (rc == 0) rc = mdb_txn_commit(txn); else mdb_txn_abort(txn);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_dbi_open"); goto fail; }
    *out = w;
    return STATUS_OK;
fail:
    shard_writer_free(w);
    return st;
}

/* Put the whole batch in one transaction; on MDB_MAP_FULL abort, grow, replay. */
status shard_writer_flush(struct shard_writer *w)
{
    if (w->nent == 0) return STATUS_OK;
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(w->env, NULL, 0, &txn);
        if (rc) return shard_lmdb_fail(rc, w->path, "mdb_txn_begin");
        for (size_t i = 0; i < w->nent && rc == 0; i++) {
            uint8_t k[8];
            shard_key_encode(w->ent[i].key, k);
            MDB_val key = { 8, k }, val = { w->ent[i].len, w->arena + w->ent[i].off };
            rc = mdb_put(txn, w->dbi, &key, &val, MDB_APPEND);
        }
        if (rc == 0) {
            rc = mdb_txn_commit(txn);        /* frees txn whatever it returns */
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == MDB_MAP_FULL) {
            size_t grown = w->map_size * 2;
            rc = mdb_env_set_mapsize(w->env, grown);
            if (rc) return shard_lmdb_fail(rc, w->path, "growing the map");
            w->map_size = grown;
            w->grows++;
            continue;                         /* replay the batch */
        }
        if (rc == MDB_KEYEXIST)
            return FAIL(STATUS_STATE, "%s: keys not ascending (MDB_APPEND refused)", w->path);
        if (rc) return shard_lmdb_fail(rc, w->path, "committing a batch");
        break;
    }
    /* start writing the batch back now (without waiting), so that the disk
       works while the next batch is decoded and the final sync is short */
    int fd;
    if (mdb_env_get_fd(w->env, &fd) == 0) (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    for (size_t i = 0; i < w->nent; i++) {
        const struct shard_entry *e = &w->ent[i];
        if (e->have_crc) {            /* the caller knows the value's CRC: no second pass over it */
            uint8_t k[8];
            shard_key_encode(e->key, k);
            w->checksum = crc32c_combine(crc32c_update(w->checksum, k, 8), e->crc, e->len);
        } else {
            w->checksum = shard_checksum_update(w->checksum, e->key, w->arena + e->off, e->len);
        }
    }
    w->committed += w->nent;
    w->committed_last_valid = 1;
    w->committed_last = w->ent[w->nent - 1].key;
    w->nent = 0;
    w->arena_len = 0;
    return STATUS_OK;
}

status shard_writer_reserve(struct shard_writer *w, uint64_t key, size_t len, void **buf)
{
    if (w->have_last && key <= w->last_key)
        return FAIL(STATUS_STATE, "%s: key %llu after %llu: keys must ascend", w->path,
                    (unsigned long long)key, (unsigned long long)w->last_key);
    if (w->nent > 0 && (w->nent >= w->opts.batch_records || w->arena_len + len > w->opts.batch_bytes))
        TRY(shard_writer_flush(w));
    if (w->nent == w->cap_ent) {
        size_t nc = w->cap_ent ? w->cap_ent * 2 : 256;
        void *p = realloc(w->ent, nc * sizeof *w->ent);
        if (!p) return FAIL(STATUS_NOMEM, "%s: out of memory for the batch table", w->path);
        w->ent = p;
        w->cap_ent = nc;
    }
    size_t off = (w->arena_len + 7) & ~(size_t)7;
    if (off + len > w->arena_cap) {
        size_t nc = w->arena_cap ? w->arena_cap : (size_t)1 << 20;
        while (nc < off + len) nc *= 2;
        void *p = realloc(w->arena, nc);
        if (!p) return FAIL(STATUS_NOMEM, "%s: out of memory for a %zu-byte batch", w->path, nc);
        w->arena = p;
        w->arena_cap = nc;
    }
    w->ent[w->nent].key = key;
    w->ent[w->nent].off = off;
    w->ent[w->nent].len = len;
    w->ent[w->nent].have_crc = 0;
    w->nent++;
    w->arena_len = off + len;
    w->have_last = 1;
    w->last_key = key;
    *buf = w->arena + off;
    return STATUS_OK;
}

void shard_writer_value_crc(struct shard_writer *w, uint32_t crc)
{
    ASSERT(w->nent > 0);
    w->ent[w->nent - 1].crc = crc;
    w->ent[w->nent - 1].have_crc = 1;
}

void shard_writer_unreserve(struct shard_writer *w)
{
    ASSERT(w->nent > 0);
    w->nent--;
    w->arena_len = w->ent[w->nent].off;
    w->have_last = w->nent > 0 || w->committed_last_valid;
    w->last_key = w->nent > 0 ? w->ent[w->nent - 1].key : w->committed_last;
}

status shard_writer_put(struct shard_writer *w, uint64_t key, const void *val, size_t len)
{
    void *dst;
    TRY(shard_writer_reserve(w, key, len, &dst));
    if (len) memcpy(dst, val, len);
    return STATUS_OK;
}

status shard_writer_close(struct shard_writer *w, uint64_t *records, uint32_t *checksum)
{
    status st = shard_writer_flush(w);
    if (st == STATUS_OK) {
        int rc = mdb_env_sync(w->env, 1);
        if (rc) st = shard_lmdb_fail(rc, w->path, "mdb_env_sync");
    }
    if (st == STATUS_OK) {
        if (records) *records = w->committed;
        if (checksum) *checksum = w->checksum;
    }
    shard_writer_free(w);
    return st;
}

void shard_writer_free(struct shard_writer *w)
{
    if (!w) return;
    if (w->env) mdb_env_close(w->env);
    free(w->ent);
    free(w->arena);
    free(w->path);
    free(w);
}

uint64_t shard_writer_count(const struct shard_writer *w) { return w->committed + w->nent; }
size_t shard_writer_map_size(const struct shard_writer *w) { return w->map_size; }
int shard_writer_grows(const struct shard_writer *w) { return w->grows; }

/* ---------------------------------------------------------------- reader */

struct shard_reader {
    char *path;
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t count;
};

struct shard_txn {
    struct shard_reader *r;
    MDB_txn *txn;
    MDB_cursor *cur;
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
    st = shard_reader_env_open(r, 0);
    if (st != STATUS_OK) {
        /* a read-only directory: the lock file cannot be made; shards listed
           in a manifest never change, so reading without locks is safe */
        st = shard_reader_env_open(r, MDB_NOLOCK);
        if (st != STATUS_OK) goto fail;
    } else {
        int dead = 0;
        mdb_reader_check(r->env, &dead);
    }
    MDB_txn *txn;
    int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
    if (rc) { st = shard_lmdb_fail(rc, path, "mdb_txn_begin"); goto fail; }
    rc = mdb_dbi_open(txn, NULL, 0, &r->dbi);
    MDB_stat ms;
    if (rc == 0) rc = mdb_stat(txn, r->dbi, &ms);
    mdb_txn_abort(txn);
    if (rc) { st = shard_lmdb_fail(rc, path, "reading the database"); goto fail; }
    r->count = ms.ms_entries;
    *out = r;
    return STATUS_OK;
fail:
    shard_reader_free(r);
    return st;
}

void shard_reader_free(struct shard_reader *r)
{
    if (!r) return;
    if (r->env) mdb_env_close(r->env);
    free(r->path);
    free(r);
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
    if (rc) return shard_lmdb_fail(rc, t->r->path, "renewing a read transaction");
    t->positioned = 0;
    return STATUS_OK;
}

void shard_txn_rewind(struct shard_txn *t) { t->positioned = 0; }

status shard_txn_get(struct shard_txn *t, uint64_t key, const void **val, size_t *len)
{
    uint8_t k[8];
    shard_key_encode(key, k);
    MDB_val mk = { 8, k }, mv;
    int rc = mdb_get(t->txn, t->r->dbi, &mk, &mv);
    if (rc == MDB_NOTFOUND)
        return FAIL(STATUS_NOT_FOUND, "%s: no record %llu", t->r->path, (unsigned long long)key);
    if (rc) return shard_lmdb_fail(rc, t->r->path, "mdb_get");
    if (val) *val = mv.mv_data;
    if (len) *len = mv.mv_size;
    return STATUS_OK;
}

static status shard_txn_out(struct shard_txn *t, const MDB_val *mk, const MDB_val *mv,
                            uint64_t *key, const void **val, size_t *len)
{
    if (mk->mv_size != 8)
        return FAIL(STATUS_CORRUPT, "%s: key of %zu bytes (expected 8)", t->r->path, mk->mv_size);
    if (key) *key = shard_key_decode(mk->mv_data);
    if (val) *val = mv->mv_data;
    if (len) *len = mv->mv_size;
    return STATUS_OK;
}

status shard_txn_next(struct shard_txn *t, uint64_t *key, const void **val, size_t *len)
{
    MDB_val mk, mv;
    int rc = mdb_cursor_get(t->cur, &mk, &mv, t->positioned ? MDB_NEXT : MDB_FIRST);
    if (rc == MDB_NOTFOUND) return FAIL(STATUS_NOT_FOUND, "%s: end of shard", t->r->path);
    if (rc) return shard_lmdb_fail(rc, t->r->path, "mdb_cursor_get");
    t->positioned = 1;
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
        uint64_t key;
        st = shard_txn_next(t, &key, NULL, NULL);
        if (st == STATUS_NOT_FOUND) { st = STATUS_OK; break; }
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

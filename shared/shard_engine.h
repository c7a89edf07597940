/*
 * shard_engine.h — the writer engines behind shard.h's shard_writer_*
 * (internal to shared/).
 *
 * shard.c keeps what both engines share: key order, the content checksum,
 * and what unreserve restores.  An engine only finds room for each value and
 * makes the file: shard_engine_direct (shard_direct.c, the default: builds
 * LMDB 0.9's pages itself and writes them with O_DIRECT) and
 * shard_engine_lmdb (shard_lmdb.c: liblmdb's own write path, the reference
 * the direct engine is tested against).  Both produce the same ordinary
 * LMDB file (proto/shard.md).  `e` is the state the engine's open returned.
 */
#ifndef DEEPER_SHARD_ENGINE_H
#define DEEPER_SHARD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/shard.h"
#include "shared/status.h"

struct shard_engine_ops {
    const char *name;
    /* create (or truncate) the file at path; opts may be NULL */
    status (*open)(const char *path, const struct shard_writer_opts *opts, void **e);
    /* room for the value of key (keys ascend: the caller checks) */
    status (*reserve)(void *e, uint64_t key, size_t len, void **buf);
    /* take back the value reserved last (key, len bytes) */
    status (*unreserve)(void *e, uint64_t key, size_t len);
    /* commit or hand to the disk what is buffered */
    status (*flush)(void *e);
    /* finish the file, sync it and free e in every case; *records the total */
    status (*close)(void *e, uint64_t *records);
    /* abandon without syncing; NULL is fine */
    void (*free)(void *e);
    uint64_t (*count)(const void *e);      /* records reserved so far */
    size_t (*size)(const void *e);         /* map size (liblmdb) or file size (direct) */
    int (*grows)(const void *e);           /* map doublings (liblmdb); 0 for the direct engine */
};

extern const struct shard_engine_ops shard_engine_direct;
extern const struct shard_engine_ops shard_engine_lmdb;

/* One status for a liblmdb error code (an errno or an MDB_ code): a full
 * disk says so; `what` names the step. */
status shard_lmdb_fail(int rc, const char *path, const char *what);

#endif

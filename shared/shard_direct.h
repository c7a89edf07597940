/*
 * shard_direct.h — the bulk shard writer: builds the LMDB file itself and
 * streams it to disk with O_DIRECT (internal to shared/; users call the
 * shard_writer_* functions of shard.h, which forward here by default).
 *
 * Why: a raw photograph record is ~562 KB.  Through liblmdb every record was
 * copied once more by the kernel into the page cache at commit (~100 us of
 * an ~890 us image on the 2-core build VM, perf: copy_folio_from_iter), then
 * the page cache had to be written back and dropped again.  This writer hands
 * out space in its own page-aligned chunk buffers, the decoder fills it, and
 * an I/O thread writes the chunks to the file with O_DIRECT: no copy, no page
 * cache, and the writes overlap the decoding of the next images.
 *
 * The result is an ordinary LMDB 0.9 data file (MDB_NOSUBDIR), the same
 * layout liblmdb produces for ascending MDB_APPEND puts:
 *   - pages 0 and 1 are the meta pages, written last (so a file cut short by
 *     a crash is refused by mdb_env_open: no valid meta);
 *   - a value of more than SHARD_DIRECT_MAX_INLINE bytes goes to overflow
 *     pages (F_BIGDATA node), a smaller one inline in its leaf node;
 *   - leaves are packed full, in key order, and written to the stream as
 *     they fill (after the overflow pages of their values); branch levels
 *     are built at close from each level's (first key, page) list, the
 *     entries spread evenly over ceil(n / capacity) pages;
 *   - the meta records depth, page counts, entries, root and last page the
 *     way liblmdb does, so mdb_stat prints the same figures for the same
 *     records (tests/test_shard.c compares both writers with mdb_dump).
 * Readers are liblmdb (shard_reader_*, mdb_dump, mdb_stat, any binding).
 *
 * Where the filesystem refuses O_DIRECT (at open or on the first write) the
 * writer falls back to buffered writes, streamed to disk and dropped from
 * the page cache two chunks behind, as the liblmdb writer does.
 */
#ifndef DEEPER_SHARD_DIRECT_H
#define DEEPER_SHARD_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/shard.h"
#include "shared/status.h"

/* LMDB's rule (mdb_leaf_size): a value goes to overflow pages when
 * NODESIZE + key + value exceeds me_nodemax, which is 2038 for 4 KiB pages. */
#define SHARD_DIRECT_PSIZE 4096u
#define SHARD_DIRECT_MAX_INLINE 2022u

struct shard_direct;

status shard_direct_open(const char *path, const struct shard_writer_opts *o, struct shard_direct **out);
/* Key order, the content checksum and unreserve's bookkeeping are the
 * caller's (shard.c does them for both engines): these only place values. */
status shard_direct_reserve(struct shard_direct *d, uint64_t key, size_t len, void **buf);
status shard_direct_unreserve(struct shard_direct *d, size_t len);   /* the value reserved last, len bytes */
status shard_direct_flush(struct shard_direct *d);
status shard_direct_close(struct shard_direct *d, uint64_t *records);   /* frees d */
void shard_direct_free(struct shard_direct *d);
uint64_t shard_direct_count(const struct shard_direct *d);
size_t shard_direct_file_size(const struct shard_direct *d);
int shard_direct_uses_odirect(const struct shard_direct *d);

#endif

/*
 * shard_direct.h — the direct shard writer engine: builds the LMDB file
 * itself and streams it to disk with O_DIRECT (internal to shared/; users
 * call the shard_writer_* functions of shard.h, whose default engine this
 * is; the engine table is in shard_engine.h).
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
 *   - a value of more than LM_MAX_INLINE bytes goes to overflow
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

#include "shared/lmdb_layout.h"
#include "shared/shard_engine.h"

/* the engine: shard_engine_direct (shard_engine.h) */

#endif

/*
 * shard_check.c — walk a shard file's LMDB tree without liblmdb and check
 * that every page and node lies where it may (see shard.h).
 *
 * liblmdb trusts its pages: a flipped node offset, page number or size in a
 * branch or leaf page can make it read outside the map and crash the
 * process.  This walker reads the file with pread (no map), so damage is a
 * message, never a fault.  What it checks, with the LMDB 0.9 layout
 * (64-bit, native little-endian; page header 16 bytes: pgno u64, pad u16,
 * flags u16, lower u16, upper u16 or, for overflow pages, pages u32):
 *   - both meta pages have the magic and version, the one liblmdb uses (the
 *     larger transaction id) gives a page size that is a power of two in
 *     4096..65536 and a main-database root inside the file;
 *   - every page reached lies inside the file, is reached once, holds its own
 *     page number, and is a branch page above the leaf level and a leaf page
 *     at it (the meta's depth);
 *   - lower/upper bound the node pointers, each node and its key lie inside
 *     the page; branch keys are 8 bytes (the first may be empty), leaf keys 8
 *     bytes, ascending over the whole tree; no node flag but F_BIGDATA;
 *   - the number of leaf entries equals the meta's entry count;
 *   - counted, not fatal: a value that runs past its page, or whose overflow
 *     run is not ceil((16 + size) / page size) pages inside the file starting
 *     with an overflow page that says so.  liblmdb only forms a pointer from
 *     such a node (it does not read through it), and the reader refuses a
 *     value outside the file by name, so the walk goes on and the records
 *     are then reported one by one.
 * Of overflow pages only the first page header of each run is read, and only
 * when asked (read_overflow), so a shard of photos costs a few reads per
 * hundred records (one more per record with read_overflow); a shard of small
 * records is read whole.
 */
#include "shared/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/endian.h"

#define SC_HDR 16
#define SC_P_BRANCH 0x01
#define SC_P_LEAF 0x02
#define SC_P_OVERFLOW 0x04
#define SC_F_BIGDATA 0x01
#define SC_MAX_DEPTH 16

struct sc {
    const char *path;
    int fd;
    uint64_t psize, npages, entries;
    uint8_t *seen;             /* one bit per page */
    uint8_t *page[SC_MAX_DEPTH];   /* a buffer per level */
    int depth;
    uint64_t last_key;
    int have_key;
    uint64_t bad_values;       /* values outside their page or overflow run */
    int read_overflow;         /* also read each overflow run's first page header */
};

static status sc_read(struct sc *c, uint64_t pgno, uint8_t *buf, size_t n)
{
    ssize_t got = pread(c->fd, buf, n, (off_t)(pgno * c->psize));
    if (got < 0) return FAIL(STATUS_IO, "%s: page %llu: %s", c->path, (unsigned long long)pgno, strerror(errno));
    if ((size_t)got != n) return FAIL(STATUS_CORRUPT, "%s: page %llu is cut short", c->path, (unsigned long long)pgno);
    return STATUS_OK;
}

static status sc_claim(struct sc *c, uint64_t pgno, uint64_t count, const char *what)
{
    if (pgno < 2 || pgno >= c->npages || count > c->npages - pgno)
        return FAIL(STATUS_CORRUPT, "%s: %s page %llu (%llu pages) lies outside the %llu-page file (damaged shard)",
                    c->path, what, (unsigned long long)pgno, (unsigned long long)count,
                    (unsigned long long)c->npages);
    for (uint64_t p = pgno; p < pgno + count; p++) {
        if (c->seen[p / 8] & (1u << (p % 8)))
            return FAIL(STATUS_CORRUPT, "%s: page %llu is reached twice (damaged shard)", c->path,
                        (unsigned long long)p);
        c->seen[p / 8] |= (uint8_t)(1u << (p % 8));
    }
    return STATUS_OK;
}

static status sc_page(struct sc *c, uint64_t pgno, int level)
{
    if (level >= c->depth) return FAIL(STATUS_CORRUPT, "%s: tree deeper than its meta says", c->path);
    int leaf = level == c->depth - 1;
    TRY(sc_claim(c, pgno, 1, leaf ? "leaf" : "branch"));
    uint8_t *b = c->page[level];
    TRY(sc_read(c, pgno, b, c->psize));
#define BAD(...) FAIL(STATUS_CORRUPT, "%s: page %llu: " __VA_ARGS__)
    unsigned long long pg = (unsigned long long)pgno;
    if (le_get_u64(b) != pgno) return BAD("holds page number %llu (damaged shard)", c->path, pg, (unsigned long long)le_get_u64(b));
    uint64_t flags = le_get_u16(b + 10), lower = le_get_u16(b + 12), upper = le_get_u16(b + 14);
    if ((flags & (SC_P_BRANCH | SC_P_LEAF | SC_P_OVERFLOW)) != (leaf ? SC_P_LEAF : SC_P_BRANCH))
        return BAD("flags %#llx, expected a %s page (damaged shard)", c->path, pg, (unsigned long long)flags,
                   leaf ? "leaf" : "branch");
    if (lower < SC_HDR + 2 || (lower & 1) || lower > upper || upper > c->psize)
        return BAD("free-space bounds %llu..%llu are impossible (damaged shard)", c->path, pg,
                   (unsigned long long)lower, (unsigned long long)upper);
    uint64_t n = (lower - SC_HDR) / 2;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = le_get_u16(b + SC_HDR + 2 * i);
        if (off < upper || off + 8 > c->psize) return BAD("node %llu at offset %llu (damaged shard)", c->path, pg,
                                                           (unsigned long long)i, (unsigned long long)off);
        const uint8_t *node = b + off;
        uint64_t lo = le_get_u16(node), hi = le_get_u16(node + 2), nflags = le_get_u16(node + 4), ksize = le_get_u16(node + 6);
        if (off + 8 + ksize > c->psize) return BAD("node %llu's key runs past the page (damaged shard)", c->path, pg,
                                                   (unsigned long long)i);
        if (!leaf) {
            if (ksize != 8 && !(i == 0 && ksize == 0))
                return BAD("branch key %llu of %llu bytes (damaged shard)", c->path, pg, (unsigned long long)i,
                           (unsigned long long)ksize);
            TRY(sc_page(c, lo | hi << 16 | nflags << 32, level + 1));
            continue;
        }
        if (ksize != 8) return BAD("key %llu of %llu bytes, expected 8 (damaged shard)", c->path, pg,
                                   (unsigned long long)i, (unsigned long long)ksize);
        uint64_t key = shard_key_decode(node + 8);
        if (c->have_key && key <= c->last_key)
            return BAD("key %llu after %llu: keys do not ascend (damaged shard)", c->path, pg,
                       (unsigned long long)key, (unsigned long long)c->last_key);
        c->last_key = key;
        c->have_key = 1;
        c->entries++;
        uint64_t size = lo | hi << 16;
        if (nflags & ~(uint64_t)SC_F_BIGDATA)
            return BAD("record %llu: node flags %#llx (damaged shard)", c->path, pg, (unsigned long long)key,
                       (unsigned long long)nflags);
        if (!(nflags & SC_F_BIGDATA)) {
            if (off + 16 + size > c->psize) c->bad_values++;   /* the reader's bounds check names it */
            continue;
        }
        if (off + 24 > c->psize) return BAD("record %llu: node runs past its page (damaged shard)", c->path, pg,
                                            (unsigned long long)key);
        /* a damaged size or page number of one value: liblmdb only forms a
           pointer from them, which the reader checks; count it and go on */
        uint64_t op = le_get_u64(node + 16), pages = (SC_HDR + size + c->psize - 1) / c->psize;
        uint8_t h[SC_HDR];
        status vs = sc_claim(c, op, pages, "overflow");
        if (vs == STATUS_OK && c->read_overflow) {
            vs = sc_read(c, op, h, sizeof h);
            if (vs == STATUS_IO) return vs;
            if (vs == STATUS_OK && (le_get_u64(h) != op || !(le_get_u16(h + 10) & SC_P_OVERFLOW) || le_get_u32(h + 12) != pages))
                vs = STATUS_CORRUPT;
        }
        if (vs != STATUS_OK) c->bad_values++;
    }
#undef BAD
    return STATUS_OK;
}

status shard_check_file(const char *path, int read_overflow, uint64_t *entries, uint64_t *bad_values)
{
    struct sc c = { .path = path, .fd = -1, .read_overflow = read_overflow };
    status st = STATUS_OK;
    c.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c.fd < 0) return errno == ENOENT ? FAIL(STATUS_NOT_FOUND, "%s: no such shard", path)
                                         : FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    uint8_t meta[2][160];
    if (fstat(c.fd, &sb) != 0) { st = FAIL(STATUS_IO, "%s: %s", path, strerror(errno)); goto done; }
    c.psize = 4096;
    for (int m = 0; m < 2; m++) {
        /* meta page m sits at m * (its page size): read page 0 first for the size */
        if ((st = sc_read(&c, (uint64_t)m, meta[m], sizeof meta[m])) != STATUS_OK) goto done;
        if (le_get_u32(meta[m] + 16) != 0xBEEFC0DEu || le_get_u32(meta[m] + 20) != 1) {
            st = FAIL(STATUS_CORRUPT, "%s: meta page %d has no LMDB 0.9 magic (damaged or not a shard)", path, m);
            goto done;
        }
        if (m == 0) c.psize = le_get_u32(meta[0] + 40);
        if (c.psize < 4096 || c.psize > 65536 || (c.psize & (c.psize - 1))) {
            st = FAIL(STATUS_CORRUPT, "%s: page size %llu (damaged shard)", path, (unsigned long long)c.psize);
            goto done;
        }
    }
    const uint8_t *mt = le_get_u64(meta[1] + 144) > le_get_u64(meta[0] + 144) ? meta[1] : meta[0];
    c.npages = (uint64_t)sb.st_size / c.psize;
    c.depth = (int)le_get_u16(mt + 94);
    uint64_t root = le_get_u64(mt + 128), want = le_get_u64(mt + 120);
    if (c.depth > SC_MAX_DEPTH) { st = FAIL(STATUS_CORRUPT, "%s: tree depth %d (damaged shard)", path, c.depth); goto done; }
    c.seen = calloc((size_t)(c.npages / 8 + 1), 1);
    int ok = c.seen != NULL;
    for (int l = 0; l < c.depth; l++) ok &= (c.page[l] = malloc(c.psize)) != NULL;
    if (!ok) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done; }
    if (c.depth > 0 || root != ~(uint64_t)0) {
        if (c.depth == 0) { st = FAIL(STATUS_CORRUPT, "%s: a root page with depth 0 (damaged shard)", path); goto done; }
        if ((st = sc_page(&c, root, 0)) != STATUS_OK) goto done;
    }
    if (c.entries != want) {
        st = FAIL(STATUS_CORRUPT, "%s: the tree holds %llu records, its meta page says %llu (damaged shard)", path,
                  (unsigned long long)c.entries, (unsigned long long)want);
        goto done;
    }
    if (entries) *entries = c.entries;
    if (bad_values) *bad_values = c.bad_values;
done:
    for (int l = 0; l < SC_MAX_DEPTH; l++) free(c.page[l]);
    free(c.seen);
    close(c.fd);
    return st;
}

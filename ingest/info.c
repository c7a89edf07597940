/*
 * info.c — describe a dataset directory, and verify it record by record.
 *
 * The summary comes from the manifest alone (classes, counts per subset and
 * shard, storage, image sizes, profile, size on disk, provenance).  --verify
 * opens every listed shard and checks: its LMDB tree is intact (pages and
 * nodes inside the file, walked without liblmdb, shard_check_file); the
 * file exists and holds exactly the
 * listed number of records; every key lies in the listed id range and keys
 * ascend; every key and value lies inside the file; every value decodes as
 * a record whose CRC-32C matches; label, channels and storage agree with the
 * manifest; and the recomputed shard content checksum equals the listed one.
 * Every problem is printed (shard, record, reason; the first 10 per shard)
 * and verification goes on with the next record, or with the next shard when
 * LMDB finds the shard's tree itself damaged; the result is STATUS_CORRUPT
 * when there was any.
 */
#include "ingest/info.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shared/log.h"
#include "shared/shard.h"

static void info_size(char *buf, size_t n, double bytes)
{
    const char *u[] = { "B", "KB", "MB", "GB", "TB" };
    int i = 0;
    while (bytes >= 1000 && i < 4) { bytes /= 1000; i++; }
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", bytes, u[i]);
}

status info_print(const char *dir, const struct manifest *m, FILE *out)
{
    fprintf(out, "dataset: %s (format %d)\n", dir, m->format_version);
    fprintf(out, "storage: %s, %s", record_storage_name(m->storage), m->image.channels == 1 ? "gray" : "RGB");
    if (m->image.min_height == m->image.max_height && m->image.min_width == m->image.max_width)
        fprintf(out, " %dx%d (HxW)\n", m->image.min_height, m->image.min_width);
    else
        fprintf(out, ", height %d..%d, width %d..%d\n", m->image.min_height, m->image.max_height,
                m->image.min_width, m->image.max_width);
    fprintf(out, "augment profile: %s (flip %s, color %s)\n", manifest_profile_name(m->augment.profile),
            m->augment.flip ? "yes" : "no", m->augment.color ? "yes" : "no");
    fprintf(out, "classes: %d, labels %d..%d%s\n", m->nclasses, m->label_offset, m->label_offset + m->nclasses - 1,
            m->label_offset ? " (0 = background)" : "");
    for (int i = 0; i < m->nclasses; i++) fprintf(out, "  %4d  %s\n", m->classes[i].id, m->classes[i].name);
    double disk = 0;
    for (int s = 0; s < m->nsubsets; s++) {
        const struct manifest_subset *sub = &m->subsets[s];
        fprintf(out, "subset %s: %" PRIu64 " examples in %d shard(s)\n", sub->name, sub->count, sub->nshards);
        for (int i = 0; i < sub->nshards; i++) {
            const struct manifest_shard *d = &sub->shards[i];
            char path[PATH_MAX], sz[32];
            snprintf(path, sizeof path, "%s/%s", dir, d->file);
            struct stat sb;
            double fs = stat(path, &sb) == 0 ? (double)sb.st_size : 0;
            disk += fs;
            info_size(sz, sizeof sz, fs);
            fprintf(out, "  %-28s %8" PRIu64 " records  ids %" PRIu64 "..%" PRIu64 "  %9s  checksum %08" PRIx32 "%s\n",
                    d->file, d->records, d->first_id, d->last_id, sz, d->checksum, fs ? "" : "  (MISSING)");
        }
    }
    char sz[32];
    info_size(sz, sizeof sz, disk);
    fprintf(out, "size on disk: %s\n", sz);
    fprintf(out, "made: %s, seed %" PRIu64 ", by %s\n", m->made.date, m->made.seed, m->made.program);
    fprintf(out, "command: %s\n", m->made.command);
    return STATUS_OK;
}

static status info_verify_shard(const char *dir, const struct manifest *m, const struct manifest_subset *sub,
                                const struct manifest_shard *d, uint64_t *checked, int *problems, FILE *out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, d->file);
    /* the tree first, without liblmdb: a damaged page could crash it */
    status st = shard_check_file(path, 1, NULL, NULL);
    if (st == STATUS_NOMEM) return st;
    if (st != STATUS_OK) {
        fprintf(out, "  %s: %s\n", d->file, status_msg());
        (*problems)++;
        return STATUS_OK;
    }
    struct shard_reader *r;
    st = shard_reader_open(path, &r);
    if (st != STATUS_OK) {
        fprintf(out, "  %s: %s\n", d->file, status_msg());
        (*problems)++;
        return STATUS_OK;
    }
    if (shard_reader_count(r) != d->records) {
        fprintf(out, "  %s: holds %" PRIu64 " records, manifest says %" PRIu64 "\n", d->file, shard_reader_count(r),
                d->records);
        (*problems)++;
    }
    struct shard_txn *t;
    st = shard_txn_begin(r, &t);
    if (st != STATUS_OK) {
        shard_reader_free(&r);
        if (st == STATUS_NOMEM) return st;
        fprintf(out, "  %s: %s\n", d->file, status_msg());
        (*problems)++;
        return STATUS_OK;
    }
    uint32_t sum = 0;
    uint64_t key, n = 0;
    int bad_struct = 0;
    const void *val;
    size_t len;
    int shown = 0;
#define PROBLEM(...) do { (*problems)++; if (shown++ < 10) { fprintf(out, "  %s: ", d->file); \
                          fprintf(out, __VA_ARGS__); fputc('\n', out); } } while (0)
    for (;;) {
        st = shard_txn_next(t, &key, &val, &len);
        if (st == STATUS_NOT_FOUND) break;
        if (st == STATUS_CORRUPT) {       /* a value outside the file: the cursor is past it */
            PROBLEM("%s", status_msg());
            bad_struct = 1;
            if (++n > d->records + 1) break;   /* a damaged tree could loop: never read more than listed */
            continue;
        }
        if (st != STATUS_OK) {            /* LMDB found the tree damaged: the rest is unreachable */
            PROBLEM("%s (%" PRIu64 " records read before it)", status_msg(), n);
            bad_struct = 1;
            st = STATUS_NOT_FOUND;
            break;
        }
        if (++n > d->records + 1) {
            PROBLEM("more records than the %" PRIu64 " listed", d->records);
            bad_struct = 1;
            break;
        }
        sum = shard_checksum_update(sum, key, val, len);
        if (d->records && (key < d->first_id || key > d->last_id))
            PROBLEM("record %" PRIu64 " is outside the listed ids %" PRIu64 "..%" PRIu64, key, d->first_id, d->last_id);
        struct record rec;
        if (record_decode(val, len, 1, &rec) != STATUS_OK) {
            PROBLEM("record %" PRIu64 ": %s", key, status_msg());
            continue;
        }
        if (record_check_label(&rec, m->label_offset, manifest_num_labels(m)) != STATUS_OK)
            PROBLEM("record %" PRIu64 ": %s", key, status_msg());
        if ((int)rec.channels != m->image.channels)
            PROBLEM("record %" PRIu64 ": %u channels, manifest says %d", key, rec.channels, m->image.channels);
        if (rec.storage != m->storage)
            PROBLEM("record %" PRIu64 ": storage %s, manifest says %s", key, record_storage_name(rec.storage),
                    record_storage_name(m->storage));
    }
#undef PROBLEM
    shard_txn_end(t);
    shard_reader_free(&r);
    if (st != STATUS_NOT_FOUND && st != STATUS_CORRUPT) return st;
    if (!bad_struct && sum != d->checksum) {   /* (a damaged tree was reported already) */
        fprintf(out, "  %s: content checksum %08" PRIx32 ", manifest says %08" PRIx32 "\n", d->file, sum, d->checksum);
        (*problems)++;
    }
    (void)sub;
    *checked += n;
    return STATUS_OK;
}

status info_verify(const char *dir, const struct manifest *m, FILE *out)
{
    uint64_t checked = 0;
    int problems = 0;
    double t0 = log_now();
    for (int s = 0; s < m->nsubsets; s++)
        for (int i = 0; i < m->subsets[s].nshards; i++)
            TRY(info_verify_shard(dir, m, &m->subsets[s], &m->subsets[s].shards[i], &checked, &problems, out));
    double dt = log_now() - t0;
    if (problems)
        return FAIL(STATUS_CORRUPT, "%s: verify found %d problem(s) in %" PRIu64 " records", dir, problems, checked);
    fprintf(out, "verify: OK, %" PRIu64 " records, every CRC and shard checksum matches (%.2f s)\n", checked, dt);
    return STATUS_OK;
}

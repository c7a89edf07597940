/*
 * worker.c — one ingest worker process: for each of its shards, read, decode,
 * (resize,) encode and append every example to the shard, in id order.
 *
 * A bad input is a rejection (one log line, one line in the worker's
 * rejection file, the id left unused); a failure of the shard writer (disk
 * full, I/O error) is fatal for the whole run and ends the worker with the
 * message in shared memory for the parent to report.  Progress counters are
 * plain 64-bit atomic stores the parent polls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "shared/crc32c.h"
#include "shared/image.h"
#include "shared/log.h"
#include "shared/shard.h"

#define INGEST_MAX_FILE_BYTES ((size_t)1 << 30)

struct worker {
    struct ingest_ctx *c;
    int p;
    FILE *rej;
    uint8_t *file;            /* reusable file buffer */
    size_t file_cap;
    uint64_t processed, rejected;
};

/* Read a whole file into w->file.  0 on success; otherwise a reason. */
static int worker_read(struct worker *w, const char *path, size_t *n, char *reason, size_t rcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { snprintf(reason, rcap, "cannot open: %s", strerror(errno)); return -1; }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        snprintf(reason, rcap, "not a regular file");
        return -1;
    }
    if ((size_t)sb.st_size > INGEST_MAX_FILE_BYTES) {
        close(fd);
        snprintf(reason, rcap, "file of %lld bytes is larger than 1 GiB", (long long)sb.st_size);
        return -1;
    }
    size_t want = (size_t)sb.st_size;
    if (want + 1 > w->file_cap) {
        size_t nc = want + 1 > (1u << 20) ? want + 1 : (1u << 20);
        uint8_t *p = realloc(w->file, nc);
        if (!p) { close(fd); snprintf(reason, rcap, "out of memory for %zu bytes", want); return -1; }
        w->file = p;
        w->file_cap = nc;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, w->file + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { int e = errno; close(fd); snprintf(reason, rcap, "read error: %s", strerror(e)); return -1; }
        if (r == 0) break;      /* the file shrank meanwhile: decode what is there */
        got += (size_t)r;
    }
    close(fd);
    *n = got;
    return 0;
}

static void worker_reject(struct worker *w, const struct ingest_subset *s, uint64_t id, const char *name,
                          const char *reason)
{
    char esc[2048];
    ingest_escape(name, strlen(name), esc, sizeof esc);
    log_warn("rejected %s/%s: %s", s->name, esc, reason);
    if (w->rej) fprintf(w->rej, "%d\t%llu\t%s\t%s\n", (int)(s - w->c->subsets), (unsigned long long)id, esc, reason);
    w->rejected++;
}

/* Produce the stored image for one item: *img owns pixels; for JPEG sources
 * kept as they are, *keep_file is set.  0 on success, -1 with a reason. */
static int worker_load(struct worker *w, const struct ingest_subset *s, const struct ingest_item *it,
                       struct image *img, size_t *file_len, int *is_plain_jpeg, char *reason, size_t rcap)
{
    const struct ingest_opts *o = w->c->o;
    *is_plain_jpeg = 0;
    if (s->mnist) {
        const struct ingest_mnist *m = s->mnist;
        size_t npx = (size_t)m->rows * m->cols;
        img->pixels = malloc(npx * (size_t)w->c->channels);
        if (!img->pixels) { snprintf(reason, rcap, "out of memory"); return -1; }
        memcpy(img->pixels, m->images + (size_t)it->mnist_index * npx, npx);
        if (w->c->channels == 3) image_gray_to_rgb(img->pixels, img->pixels, npx);
        img->height = (int)m->rows;
        img->width = (int)m->cols;
        img->channels = w->c->channels;
    } else {
        if (worker_read(w, it->path, file_len, reason, rcap) != 0) return -1;
        struct image_decode_opts dopt = { .channels = w->c->channels, .max_pixels = (uint64_t)o->max_pixels };
        if (image_decode(w->file, *file_len, &dopt, img) != STATUS_OK) {
            snprintf(reason, rcap, "%s", status_msg());
            return -1;
        }
        if (image_sniff(w->file, *file_len) == IMAGE_FORMAT_JPEG) {
            struct image_info info;
            *is_plain_jpeg = image_probe(w->file, *file_len, &info) == STATUS_OK && !info.cmyk;
        }
    }
    int nh, nw;
    image_size_short_side(img->height, img->width, o->resize_short, &nh, &nw);
    if (nh != img->height || nw != img->width) {
        uint8_t *dst = malloc((size_t)nh * nw * img->channels);
        struct image_view v = image_view_of(img->pixels, img->height, img->width, img->channels);
        if (!dst || image_resize(&v, dst, nh, nw, 0, IMAGE_RESIZE_AREA) != STATUS_OK) {
            free(dst);
            image_clear(img);
            snprintf(reason, rcap, "resize failed: out of memory");
            return -1;
        }
        free(img->pixels);
        img->pixels = dst;
        img->height = nh;
        img->width = nw;
        *is_plain_jpeg = 0;
    }
    return 0;
}

static void worker_count(struct ingest_shard_result *res, uint64_t id, const struct record *r, size_t size)
{
    if (res->records == 0) res->first_id = id;
    res->last_id = id;
    res->records++;
    res->bytes += size;
    if ((int)r->height < res->min_h) res->min_h = (int)r->height;
    if ((int)r->height > res->max_h) res->max_h = (int)r->height;
    if ((int)r->width < res->min_w) res->min_w = (int)r->width;
    if ((int)r->width > res->max_w) res->max_w = (int)r->width;
}

/* Fast path for raw storage of a file that needs no resize: decode straight
 * into the record's place in LMDB's dirty pages (MDB_RESERVE: no
 * intermediate image, no copy before the kernel's write), CRC it once while
 * it is still in cache, and hand the value's CRC to the writer.  Returns 1 when
 * the record was written, 0 when the generic path must handle the item, -1
 * when the item is rejected (reason set); *fatal on a writer failure. */
static int worker_raw_inplace(struct worker *w, struct shard_writer *sw, const struct ingest_item *it, uint64_t id,
                              struct record *r, size_t *size, char *reason, size_t rcap, status *fatal)
{
    const struct ingest_opts *o = w->c->o;
    size_t n;
    if (worker_read(w, it->path, &n, reason, rcap) != 0) return -1;
    struct image_info info;
    if (image_probe(w->file, n, &info) != STATUS_OK) {
        snprintf(reason, rcap, "%s", status_msg());
        return -1;
    }
    if (info.animated) return 0;    /* let the decoder give its reason */
    if (o->max_pixels && (uint64_t)info.width * (uint64_t)info.height > (uint64_t)o->max_pixels) {
        snprintf(reason, rcap, "header says %dx%d = %llu pixels, over --max_pixels %llu", info.width, info.height,
                 (unsigned long long)((uint64_t)info.width * (uint64_t)info.height), (unsigned long long)o->max_pixels);
        return -1;
    }
    int nh, nw;
    image_size_short_side(info.height, info.width, o->resize_short, &nh, &nw);
    if (nh != info.height || nw != info.width || info.width > (int)RECORD_DIM_MAX || info.height > (int)RECORD_DIM_MAX)
        return 0;
    r->height = (uint32_t)info.height;
    r->width = (uint32_t)info.width;
    r->channels = (uint32_t)w->c->channels;
    r->payload_len = (size_t)info.height * info.width * w->c->channels;
    r->crc = 0;
    *size = record_encoded_size(r);
    void *dst;
    if ((*fatal = shard_writer_reserve(sw, id, *size, &dst)) != STATUS_OK) return -1;
    if ((*fatal = record_encode_header(r, dst, *size)) != STATUS_OK) return -1;
    size_t off = record_payload_offset(r);
    struct image_decode_opts dopt = { .channels = w->c->channels, .max_pixels = (uint64_t)o->max_pixels };
    struct image img;
    if (image_decode_to(w->file, n, &dopt, (uint8_t *)dst + off, r->payload_len, &img) != STATUS_OK ||
        (uint32_t)img.height != r->height || (uint32_t)img.width != r->width) {
        snprintf(reason, rcap, "%s", status_msg());
        *fatal = shard_writer_unreserve(sw);
        return -1;
    }
    uint32_t pcrc = crc32c((uint8_t *)dst + off, r->payload_len);
    shard_writer_value_crc(sw, record_seal(dst, *size, pcrc));
    return 1;
}

static status worker_shard(struct worker *w, const struct ingest_shard_job *job, struct ingest_shard_result *res)
{
    struct ingest_ctx *c = w->c;
    const struct ingest_opts *o = c->o;
    const struct ingest_subset *s = &c->subsets[job->subset];
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", o->output_directory, job->file);
    struct shard_writer *sw;
    TRY(shard_writer_open(path, NULL, &sw));
    status st = STATUS_OK;
    memset(res, 0, sizeof *res);
    res->min_h = res->min_w = INT32_MAX;
    for (uint64_t id = job->lo; id < job->hi; id++) {
        const struct ingest_item *it = &s->items[id - c->first_ids[job->subset]];   /* ids of an append start past the old ones */
        struct image img = { 0 };
        size_t file_len = 0;
        int plain_jpeg = 0;
        char reason[600];
        if (o->storage == RECORD_RAW && !s->mnist) {
            struct record r = { .label = it->class_idx + (o->background_class ? 1 : 0), .storage = RECORD_RAW,
                                .name = it->name, .name_len = strlen(it->name), .num_boxes = it->nboxes,
                                .boxes_in = it->boxes };
            size_t size = 0;
            int got = worker_raw_inplace(w, sw, it, id, &r, &size, reason, sizeof reason, &st);
            if (st != STATUS_OK) break;
            if (got < 0) worker_reject(w, s, id, it->name, reason);
            if (got > 0) worker_count(res, id, &r, size);
            if (got != 0) goto next;
        }
        if (worker_load(w, s, it, &img, &file_len, &plain_jpeg, reason, sizeof reason) != 0) {
            worker_reject(w, s, id, it->name, reason);
        } else {
            struct record r = { .label = it->class_idx + (o->background_class ? 1 : 0),
                                .height = (uint32_t)img.height, .width = (uint32_t)img.width,
                                .channels = (uint32_t)img.channels, .storage = o->storage,
                                .name = it->name, .name_len = strlen(it->name), .num_boxes = it->nboxes,
                                .boxes_in = it->boxes };
            uint8_t *enc = NULL;
            size_t enc_len = 0;
            if (o->storage == RECORD_RAW) {
                r.payload = img.pixels;
                r.payload_len = (size_t)img.height * img.width * img.channels;
            } else if (plain_jpeg) {
                r.payload = w->file;
                r.payload_len = file_len;
            } else {
                st = image_encode_jpeg(img.pixels, img.height, img.width, img.channels, o->jpeg_quality, &enc,
                                       &enc_len);
                if (st != STATUS_OK) {
                    snprintf(reason, sizeof reason, "%s", status_msg());
                    worker_reject(w, s, id, it->name, reason);
                    st = STATUS_OK;
                    image_clear(&img);
                    goto next;
                }
                r.payload = enc;
                r.payload_len = enc_len;
            }
            size_t size = record_encoded_size(&r);
            void *dst;
            st = shard_writer_reserve(sw, id, size, &dst);
            if (st == STATUS_OK) st = record_encode_header(&r, dst, size);
            if (st == STATUS_OK) {
                memcpy((uint8_t *)dst + record_payload_offset(&r), r.payload, r.payload_len);
                shard_writer_value_crc(sw, record_seal(dst, size, crc32c(r.payload, r.payload_len)));
            }
            free(enc);
            image_clear(&img);
            if (st != STATUS_OK) break;
            worker_count(res, id, &r, size);
        }
next:
        w->processed++;
        __atomic_store_n(&c->shared->processed[w->p], w->processed, __ATOMIC_RELAXED);
        __atomic_store_n(&c->shared->rejected[w->p], w->rejected, __ATOMIC_RELAXED);
    }
    if (st != STATUS_OK) { shard_writer_free(&sw); return st; }
    uint64_t records;
    uint32_t checksum;
    TRY(shard_writer_close(&sw, &records, &checksum));
    if (records != res->records)
        return FAIL(STATUS_STATE, "%s: wrote %llu records, counted %llu", path, (unsigned long long)records,
                    (unsigned long long)res->records);
    res->checksum = checksum;
    if (res->records == 0) res->min_h = res->min_w = 0;
    __atomic_store_n(&res->done, 1, __ATOMIC_RELEASE);
    if (!o->quiet)
        log_info("[worker %d]: Wrote %llu images to %s", w->p, (unsigned long long)res->records, job->file);
    return STATUS_OK;
}

status ingest_worker_run(struct ingest_ctx *c, int p)
{
    struct worker w = { .c = c, .p = p };
    /* images and LMDB overflow pages are large, same-sized and short-lived:
       keep them in the heap instead of one mmap/munmap (and page faults) each */
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    char rpath[PATH_MAX];
    snprintf(rpath, sizeof rpath, "%s/.rejected-%d-%d.tmp", c->o->output_directory, c->task, p);
    w.rej = fopen(rpath, "w");
    if (!w.rej) return FAIL(STATUS_IO, "%s: cannot create: %s", rpath, strerror(errno));
    status st = STATUS_OK;
    for (int q = p; q < c->nlocal && st == STATUS_OK; q += c->nprocs)
        st = worker_shard(&w, &c->jobs[c->local[q]], &c->shared->results[c->local[q]]);
    if (fclose(w.rej) != 0 && st == STATUS_OK)
        st = FAIL(STATUS_IO, "%s: write failed: %s", rpath, strerror(errno));
    free(w.file);
    return st;
}

status ingest_decode_only(struct ingest_ctx *c)
{
    struct worker w = { .c = c, .p = 0 };
    uint64_t n = 0, bad = 0, pixels = 0;
    double t0 = log_now();
    for (int k = 0; k < c->nsubsets; k++) {
        const struct ingest_subset *s = &c->subsets[k];
        for (size_t i = 0; i < s->n; i++) {
            struct image img = { 0 };
            size_t len = 0;
            int plain;
            char reason[600];
            if (worker_load(&w, s, &s->items[i], &img, &len, &plain, reason, sizeof reason) != 0) { bad++; continue; }
            pixels += (uint64_t)img.height * img.width;
            image_clear(&img);
            n++;
        }
    }
    double dt = log_now() - t0;
    free(w.file);
    printf("decode_only: %llu images (%llu failed) in %.3f s: %.1f images/s, %.1f MP/s\n", (unsigned long long)n,
           (unsigned long long)bad, dt, dt > 0 ? n / dt : 0.0, dt > 0 ? pixels / dt / 1e6 : 0.0);
    return STATUS_OK;
}

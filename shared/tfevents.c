/*
 * tfevents.c — TensorBoard event files, protobuf encoded by hand.
 *
 * Field numbers and wire types (event.proto, summary.proto):
 *   Event:      wall_time 1 double (tag 0x09), step 2 int64 varint (0x10),
 *               file_version 3 string (0x1A), summary 5 message (0x2A),
 *               session_log 7 message (0x3A)
 *   Summary:    value 1 message, repeated (0x0A)
 *   Value:      tag 1 string (0x0A), simple_value 2 float fixed32 (0x15),
 *               image 4 message (0x22), histo 5 message (0x2A)
 *   Image:      height 1 (0x08), width 2 (0x10), colorspace 3 (0x18) varints,
 *               encoded_image_string 4 bytes (0x22): a PNG here
 *   Histogram:  min 1, max 2, num 3, sum 4, sum_squares 5 doubles (0x09,
 *               0x11, 0x19, 0x21, 0x29), bucket_limit 6 and bucket 7 packed
 *               doubles (0x32, 0x3A); bucket i counts the values in
 *               (bucket_limit[i-1], bucket_limit[i]]
 *   SessionLog: status 1 enum varint (0x08), START = 1
 * An event is built into a small growable buffer, then framed and written.
 */
#include "shared/tfevents.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "shared/crc32c.h"
#include "shared/endian.h"
#include "shared/image.h"

struct tfevents {
    FILE *fp;
    char *path;
};

struct pbuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
};

static void pb_put(struct pbuf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void pb_byte(struct pbuf *b, unsigned char c) { pb_put(b, &c, 1); }

static void pb_varint(struct pbuf *b, uint64_t v)
{
    unsigned char tmp[10];
    int k = 0;
    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        tmp[k++] = c | (v ? 0x80 : 0);
    } while (v);
    pb_put(b, tmp, (size_t)k);
}

static void pb_fixed32(struct pbuf *b, uint32_t v)
{
    uint8_t t[4];
    le_put_u32(t, v);
    pb_put(b, t, 4);
}

static void pb_fixed64(struct pbuf *b, uint64_t v)
{
    uint8_t t[8];
    le_put_u64(t, v);
    pb_put(b, t, 8);
}

static void pb_bytes(struct pbuf *b, unsigned char tag, const void *p, size_t n)
{
    pb_byte(b, tag);
    pb_varint(b, n);
    pb_put(b, p, n);
}

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

/* Event header fields: wall_time and step. */
static void event_begin(struct pbuf *e, int64_t step, int with_step)
{
    double wt = wall_now();
    uint64_t bits;
    memcpy(&bits, &wt, 8);
    pb_byte(e, 0x09);
    pb_fixed64(e, bits);
    if (with_step) {
        pb_byte(e, 0x10);
        pb_varint(e, (uint64_t)step);   /* int64: negative values as 10-byte varints */
    }
}

static status write_record(struct tfevents *w, const struct pbuf *e)
{
    if (e->oom) return FAIL(STATUS_NOMEM, "%s: out of memory building an event", w->path);
    uint8_t head[12], tail[4];
    le_put_u64(head, e->n);
    le_put_u32(head + 8, crc32c_mask(crc32c(head, 8)));
    le_put_u32(tail, crc32c_mask(crc32c(e->p, e->n)));
    if (fwrite(head, 1, 12, w->fp) != 12 || fwrite(e->p, 1, e->n, w->fp) != e->n ||
        fwrite(tail, 1, 4, w->fp) != 4)
        return FAIL(STATUS_IO, "%s: write: %s", w->path, strerror(errno));
    return STATUS_OK;
}

/* mkdir -p */
static status make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return FAIL(STATUS_USAGE, "%s: path too long", dir);
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q) continue;
        char keep = *q;
        *q = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return FAIL(STATUS_IO, "%s: mkdir: %s", p, strerror(errno));
        *q = keep;
        if (!keep) break;
    }
    return STATUS_OK;
}

status tfevents_open(struct tfevents **out, const char *dir)
{
    static atomic_int uid_counter;
    *out = NULL;
    TRY(make_dirs(dir));
    struct tfevents *w = calloc(1, sizeof(*w));
    if (!w) return FAIL(STATUS_NOMEM, "tfevents: out of memory");
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = 0;
    size_t plen = strlen(dir) + strlen(host) + 96;
    w->path = malloc(plen);
    if (!w->path) { free(w); return FAIL(STATUS_NOMEM, "tfevents: out of memory"); }
    int uid = atomic_fetch_add(&uid_counter, 1);
    snprintf(w->path, plen, "%s/events.out.tfevents.%010lld.%s.%d.%d", dir, (long long)time(NULL),
             host, (int)getpid(), uid);
    w->fp = fopen(w->path, "wbx");
    if (!w->fp) {
        status st = FAIL(STATUS_IO, "%s: create: %s", w->path, strerror(errno));
        free(w->path); free(w);
        return st;
    }
    struct pbuf e = { 0 };
    event_begin(&e, 0, 0);
    static const char ver[] = "brain.Event:2";
    pb_bytes(&e, 0x1A, ver, sizeof(ver) - 1);
    status st = write_record(w, &e);
    free(e.p);
    if (st == STATUS_OK) st = tfevents_flush(w);
    if (st != STATUS_OK) { tfevents_free(&w); return st; }
    *out = w;
    return STATUS_OK;
}

const char *tfevents_path(const struct tfevents *w) { return w->path; }

status tfevents_scalars(struct tfevents *w, int64_t step, int n, const char *const *tags,
                        const float *values)
{
    struct pbuf summary = { 0 }, value = { 0 }, e = { 0 };
    for (int i = 0; i < n; i++) {
        value.n = 0;
        pb_bytes(&value, 0x0A, tags[i], strlen(tags[i]));
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        pb_byte(&value, 0x15);
        pb_fixed32(&value, bits);
        if (value.oom) break;
        pb_bytes(&summary, 0x0A, value.p, value.n);
    }
    event_begin(&e, step, 1);
    if (!summary.oom && !value.oom) pb_bytes(&e, 0x2A, summary.p, summary.n);
    else e.oom = 1;
    status st = write_record(w, &e);
    free(summary.p); free(value.p); free(e.p);
    if (st == STATUS_OK) st = tfevents_flush(w);
    return st;
}

static void pb_double(struct pbuf *b, unsigned char tag, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    pb_byte(b, tag);
    pb_fixed64(b, bits);
}

/* Event{step, summary{value{tag, <field> = msg}}} */
static status write_value_event(struct tfevents *w, int64_t step, const char *tag, unsigned char field,
                                const struct pbuf *msg)
{
    struct pbuf value = { 0 }, summary = { 0 }, e = { 0 };
    pb_bytes(&value, 0x0A, tag, strlen(tag));
    pb_bytes(&value, field, msg->p, msg->n);
    pb_bytes(&summary, 0x0A, value.p, value.n);
    event_begin(&e, step, 1);
    pb_bytes(&e, 0x2A, summary.p, summary.n);
    if (msg->oom || value.oom || summary.oom) e.oom = 1;
    status st = write_record(w, &e);
    free(value.p); free(summary.p); free(e.p);
    if (st == STATUS_OK) st = tfevents_flush(w);
    return st;
}

status tfevents_image(struct tfevents *w, int64_t step, const char *tag, const uint8_t *pixels, int height,
                      int width, int channels)
{
    if (channels != 1 && channels != 3) return FAIL(STATUS_USAGE, "tfevents_image: %d channels", channels);
    uint8_t *png = NULL;
    size_t n = 0;
    TRY(image_encode_png(pixels, height, width, channels, &png, &n));
    struct pbuf img = { 0 };
    pb_byte(&img, 0x08); pb_varint(&img, (uint64_t)height);
    pb_byte(&img, 0x10); pb_varint(&img, (uint64_t)width);
    pb_byte(&img, 0x18); pb_varint(&img, (uint64_t)channels);
    pb_bytes(&img, 0x22, png, n);
    free(png);
    status st = write_value_event(w, step, tag, 0x22, &img);
    free(img.p);
    return st;
}

status tfevents_histogram(struct tfevents *w, int64_t step, const char *tag, const float *v, size_t n)
{
    enum { BUCKETS = 30 };
    double lo = 0, hi = 0, sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        if (i == 0 || x < lo) lo = x;
        if (i == 0 || x > hi) hi = x;
        sum += x;
        sq += x * x;
    }
    double count[BUCKETS] = { 0 }, limit[BUCKETS];
    double width = (hi - lo) / BUCKETS;
    int nb = width > 0 ? BUCKETS : 1;
    for (int b = 0; b < nb; b++) limit[b] = b == nb - 1 ? hi : lo + width * (b + 1);
    for (size_t i = 0; i < n; i++) {
        int b = width > 0 ? (int)((v[i] - lo) / width) : 0;
        if (b >= nb) b = nb - 1;
        if (b < 0) b = 0;
        count[b] += 1;
    }
    struct pbuf h = { 0 }, packed = { 0 };
    pb_double(&h, 0x09, lo);
    pb_double(&h, 0x11, hi);
    pb_double(&h, 0x19, (double)n);
    pb_double(&h, 0x21, sum);
    pb_double(&h, 0x29, sq);
    for (int b = 0; b < nb; b++) { uint64_t bits; memcpy(&bits, &limit[b], 8); pb_fixed64(&packed, bits); }
    pb_bytes(&h, 0x32, packed.p, packed.n);
    packed.n = 0;
    for (int b = 0; b < nb; b++) { uint64_t bits; memcpy(&bits, &count[b], 8); pb_fixed64(&packed, bits); }
    pb_bytes(&h, 0x3A, packed.p, packed.n);
    if (packed.oom) h.oom = 1;
    status st = write_value_event(w, step, tag, 0x2A, &h);
    free(h.p); free(packed.p);
    return st;
}

status tfevents_scalar(struct tfevents *w, int64_t step, const char *tag, float value)
{
    return tfevents_scalars(w, step, 1, &tag, &value);
}

status tfevents_session_start(struct tfevents *w, int64_t step)
{
    struct pbuf e = { 0 };
    event_begin(&e, step, 1);
    static const unsigned char slog[2] = { 0x08, 0x01 };   /* status = START */
    pb_bytes(&e, 0x3A, slog, sizeof(slog));
    status st = write_record(w, &e);
    free(e.p);
    if (st == STATUS_OK) st = tfevents_flush(w);
    return st;
}

status tfevents_flush(struct tfevents *w)
{
    if (fflush(w->fp) != 0) return FAIL(STATUS_IO, "%s: flush: %s", w->path, strerror(errno));
    return STATUS_OK;
}

void tfevents_free(struct tfevents **pw)
{
    struct tfevents *w = *pw;
    if (!w) return;
    if (w->fp) fclose(w->fp);
    free(w->path);
    free(w);
    *pw = NULL;
}

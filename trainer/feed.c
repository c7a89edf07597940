/*
 * feed.c — ordered consumption of the batch stream (see feed.h).
 *
 * The batch handed to the caller is always a copy in `cur` (so the
 * receiver's buffer goes back to its pool at once, and the caller may keep
 * the batch while the next one is received).  Copy cost is one memcpy per
 * batch, negligible next to a training step.  The handed-out buffers
 * (pixels, labels) come from the caller's allocator when one is given
 * (feed_new_alloc): the CUDA trainer passes pinned host memory so the upload
 * to the GPU is a single asynchronous DMA.
 *
 * Earlier versions parked early batches in a reorder buffer of their own,
 * which a fast worker could fill without bound while the feed waited for a
 * slow or restarting one (measured: 4,008 parked batches after a worker was
 * killed; at Inception's 8.6 MB per batch the 1 GiB cap would have stopped
 * the run).  With one socket per worker nothing needs parking.
 */
#include "trainer/feed.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"

struct feed {
    struct stream_receiver *r;
    int W, ordered;
    int64_t position;
    uint64_t *expect;         /* per worker */
    int batch, h, w, c;
    size_t img;
    uint64_t dropped;
    struct stream_allocator alloc;   /* batch buffers (pixels, labels): pinned for GPUs */
    /* the batch handed out */
    int n, worker;
    uint64_t seq, epoch;
    int32_t *labels;
    uint64_t *ids;
    uint8_t *pixels;
};

static void *plain_alloc(size_t size, void *ctx) { (void)ctx; return malloc(size); }
static void plain_free(void *p, size_t size, void *ctx) { (void)size; (void)ctx; free(p); }

status feed_new(struct feed **out, struct stream_receiver *r, int num_workers, int ordered,
                int64_t start_position, int batch, int h, int w, int c)
{
    return feed_new_alloc(out, r, num_workers, ordered, start_position, batch, h, w, c, NULL);
}

status feed_new_alloc(struct feed **out, struct stream_receiver *r, int num_workers, int ordered,
                      int64_t start_position, int batch, int h, int w, int c,
                      const struct stream_allocator *alloc)
{
    *out = NULL;
    if (ordered && num_workers > 0 && stream_receiver_per_worker(r) != num_workers)
        return FAIL(STATUS_USAGE, "feed: an ordered feed of %d workers needs a receiver with one socket per worker "
                    "(it has %d)", num_workers, stream_receiver_per_worker(r));
    struct feed *f = calloc(1, sizeof(*f));
    if (!f) return FAIL(STATUS_NOMEM, "feed: out of memory");
    f->alloc = alloc ? *alloc : (struct stream_allocator){ plain_alloc, plain_free, NULL };
    f->r = r;
    f->W = num_workers > 0 ? num_workers : 1;
    f->ordered = ordered && num_workers > 0;
    f->position = start_position;
    f->batch = batch; f->h = h; f->w = w; f->c = c;
    f->img = (size_t)h * w * c;
    f->expect = calloc((size_t)f->W, sizeof(uint64_t));
    f->labels = f->alloc.alloc((size_t)batch * sizeof(int32_t), f->alloc.ctx);
    f->ids = malloc((size_t)batch * sizeof(uint64_t));
    f->pixels = f->alloc.alloc((size_t)batch * f->img + 1, f->alloc.ctx);
    if (!f->expect || !f->labels || !f->ids || !f->pixels) {
        feed_free(&f);
        return FAIL(STATUS_NOMEM, "feed: out of memory");
    }
    for (int i = 0; i < f->W; i++) f->expect[i] = feed_first_seq(start_position, f->W, i);
    *out = f;
    return STATUS_OK;
}

void feed_free(struct feed **pf)
{
    struct feed *f = *pf;
    if (!f) return;
    if (f->labels) f->alloc.free(f->labels, (size_t)f->batch * sizeof(int32_t), f->alloc.ctx);
    if (f->pixels) f->alloc.free(f->pixels, (size_t)f->batch * f->img + 1, f->alloc.ctx);
    free(f->ids);
    free(f->expect);
    free(f);
    *pf = NULL;
}

/* Copy a received batch out, give its buffer back, hand the copy out. */
static void take(struct feed *f, struct stream_batch *b, struct feed_batch *out)
{
    f->n = (int)b->n;
    f->worker = b->header.worker;
    f->seq = b->header.seq;
    f->epoch = b->header.epoch;
    memcpy(f->labels, b->labels, (size_t)b->n * sizeof(int32_t));
    memcpy(f->ids, b->ids, (size_t)b->n * sizeof(uint64_t));
    memcpy(f->pixels, b->pixels, (size_t)b->n * f->img);
    stream_receiver_release(f->r, b);
    out->n = f->n; out->h = f->h; out->w = f->w; out->c = f->c;
    out->labels = f->labels; out->ids = f->ids; out->pixels = f->pixels;
    out->epoch = f->epoch; out->worker = f->worker; out->seq = f->seq;
    if (f->ordered) f->expect[f->worker] = f->seq + 1;
    f->position++;
}

status feed_next(struct feed *f, struct feed_batch *out, volatile sig_atomic_t *stop,
                 void (*on_idle)(void *ctx), void *ctx, double *wait_s)
{
    double t0 = log_now(), last_idle = t0;
    status st = STATUS_OK;
    int want_w = (int)(f->position % f->W);
    for (;;) {
        /* the idle hook also runs while other workers keep the stream busy:
         * that is exactly when a dead worker must be noticed */
        if (on_idle && log_now() - last_idle > 0.2) { on_idle(ctx); last_idle = log_now(); }
        if (stop && *stop) { st = STATUS_INTERRUPTED; goto done; }
        struct stream_batch *b = NULL;
        st = f->ordered ? stream_receiver_next_from(f->r, want_w, &b, 200) : stream_receiver_next(f->r, &b, 200);
        if (st == STATUS_TIMEOUT) {
            if (on_idle) { on_idle(ctx); last_idle = log_now(); }
            continue;
        }
        if (st != STATUS_OK) goto done;
        if (b->end_of_pass || b->n == 0 || (int)b->n != f->batch) {
            if (!b->end_of_pass) {
                f->dropped++;
                log_warn("feed: dropped a batch of %u examples from worker %u (expected %d)", b->n,
                         b->header.worker, f->batch);
            }
            stream_receiver_release(f->r, b);
            continue;
        }
        if (f->ordered) {
            uint64_t want = f->expect[want_w];
            if (b->header.num_workers != f->W || b->header.seq < want) {
                f->dropped++;     /* stale (replayed after a restart) or foreign */
                stream_receiver_release(f->r, b);
                continue;
            }
            if (b->header.seq > want)
                log_warn("feed: worker %d sent batch %" PRIu64 " while %" PRIu64 " was due (batches lost with "
                         "its connection); going on from it", want_w, b->header.seq, want);
        }
        take(f, b, out);
        goto done;
    }
done:
    if (wait_s) *wait_s += log_now() - t0;
    return st;
}

int64_t feed_position(const struct feed *f) { return f->position; }
uint64_t feed_expected_seq(const struct feed *f, int w) { return w < f->W ? f->expect[w] : 0; }
uint64_t feed_dropped(const struct feed *f) { return f->dropped; }

int feed_depth(struct feed *f)
{
    struct stream_stats s;
    stream_receiver_stats(f->r, &s);
    return s.queue_depth;
}

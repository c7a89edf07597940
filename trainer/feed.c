/*
 * feed.c — ordered consumption of the batch stream (see feed.h).
 *
 * The reorder buffer is `max_slots` fixed buffers allocated once, each big
 * enough for one batch; a slot holds a copy of one early batch.  The batch
 * handed to the caller is always a copy in `cur` (so the receiver's buffer
 * goes back to its pool at once).  Copy cost is one memcpy per batch,
 * negligible next to a training step.  The handed-out buffers (pixels,
 * labels) come from the caller's allocator when one is given
 * (feed_new_alloc): the CUDA trainer passes pinned host memory so the
 * upload to the GPU is a single asynchronous DMA.
 */
#include "trainer/feed.h"

#include <stdlib.h>
#include <string.h>

#include "shared/log.h"

/* Reorder buffer limit: beyond this a worker is considered stuck. */
#define FEED_MAX_BYTES (1024.0 * 1024 * 1024)

struct slot {
    int used;
    int worker;
    uint64_t seq, epoch;
    int n;
    int32_t *labels;
    uint64_t *ids;
    uint8_t *pixels;
};

struct feed {
    struct stream_receiver *r;
    int W, ordered;
    int64_t position;
    uint64_t *expect;         /* per worker */
    int nslots;
    struct slot *slots;       /* reorder buffer */
    struct slot cur;          /* the batch handed out */
    int batch, h, w, c;
    size_t img;
    uint64_t dropped;
    int warned_full;
    struct stream_allocator alloc;   /* batch buffers (pixels, labels): pinned for GPUs */
};

static void *plain_alloc(size_t size, void *ctx) { (void)ctx; return malloc(size); }
static void plain_free(void *p, size_t size, void *ctx) { (void)size; (void)ctx; free(p); }

static status slot_alloc(struct feed *f, struct slot *s)
{
    s->labels = f->alloc.alloc((size_t)f->batch * sizeof(int32_t), f->alloc.ctx);
    s->ids = malloc((size_t)f->batch * sizeof(uint64_t));
    s->pixels = f->alloc.alloc((size_t)f->batch * f->img + 1, f->alloc.ctx);
    if (!s->labels || !s->ids || !s->pixels) return FAIL(STATUS_NOMEM, "feed: out of memory");
    return STATUS_OK;
}

static void slot_release(struct feed *f, struct slot *s)
{
    if (s->labels) f->alloc.free(s->labels, (size_t)f->batch * sizeof(int32_t), f->alloc.ctx);
    if (s->pixels) f->alloc.free(s->pixels, (size_t)f->batch * f->img + 1, f->alloc.ctx);
    free(s->ids);
    s->labels = NULL; s->pixels = NULL; s->ids = NULL;
}

status feed_new(struct feed **out, struct stream_receiver *r, int num_workers, int ordered,
                int64_t start_position, int max_slots, int batch, int h, int w, int c)
{
    return feed_new_alloc(out, r, num_workers, ordered, start_position, max_slots, batch, h, w, c, NULL);
}

status feed_new_alloc(struct feed **out, struct stream_receiver *r, int num_workers, int ordered,
                      int64_t start_position, int max_slots, int batch, int h, int w, int c,
                      const struct stream_allocator *alloc)
{
    *out = NULL;
    struct feed *f = calloc(1, sizeof(*f));
    if (!f) return FAIL(STATUS_NOMEM, "feed: out of memory");
    f->alloc = alloc ? *alloc : (struct stream_allocator){ plain_alloc, plain_free, NULL };
    f->r = r;
    f->W = num_workers > 0 ? num_workers : 1;
    f->ordered = ordered && num_workers > 0;
    f->position = start_position;
    f->batch = batch; f->h = h; f->w = w; f->c = c;
    f->img = (size_t)h * w * c;
    f->nslots = max_slots > 0 ? max_slots : 1;
    f->expect = calloc((size_t)f->W, sizeof(uint64_t));
    f->slots = calloc((size_t)f->nslots, sizeof(struct slot));
    status st = STATUS_OK;
    if (!f->expect || !f->slots) { st = FAIL(STATUS_NOMEM, "feed: out of memory"); goto fail; }
    for (int i = 0; i < f->W; i++) f->expect[i] = feed_first_seq(start_position, f->W, i);
    for (int i = 0; i < f->nslots; i++) if ((st = slot_alloc(f, &f->slots[i])) != STATUS_OK) goto fail;
    if ((st = slot_alloc(f, &f->cur)) != STATUS_OK) goto fail;
    *out = f;
    return STATUS_OK;
fail:
    feed_free(&f);
    return st;
}

void feed_free(struct feed **pf)
{
    struct feed *f = *pf;
    if (!f) return;
    if (f->slots) for (int i = 0; i < f->nslots; i++) slot_release(f, &f->slots[i]);
    slot_release(f, &f->cur);
    free(f->slots); free(f->expect);
    free(f);
    *pf = NULL;
}

static void copy_in(struct feed *f, struct slot *s, const struct stream_batch *b)
{
    s->used = 1;
    s->worker = b->header.worker;
    s->seq = b->header.seq;
    s->epoch = b->header.epoch;
    s->n = (int)b->n;
    memcpy(s->labels, b->labels, (size_t)b->n * sizeof(int32_t));
    memcpy(s->ids, b->ids, (size_t)b->n * sizeof(uint64_t));
    memcpy(s->pixels, b->pixels, (size_t)b->n * f->img);
}

static void slot_swap(struct slot *a, struct slot *b)
{
    struct slot t = *a; *a = *b; *b = t;
}

static void hand_out(struct feed *f, struct feed_batch *out)
{
    out->n = f->cur.n; out->h = f->h; out->w = f->w; out->c = f->c;
    out->labels = f->cur.labels; out->ids = f->cur.ids; out->pixels = f->cur.pixels;
    out->epoch = f->cur.epoch; out->worker = f->cur.worker; out->seq = f->cur.seq;
    if (f->ordered) f->expect[f->cur.worker]++;
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
        if (f->ordered) {
            /* already buffered? */
            for (int i = 0; i < f->nslots; i++) {
                struct slot *s = &f->slots[i];
                if (s->used && s->worker == want_w && s->seq == f->expect[want_w]) {
                    slot_swap(&f->cur, s);
                    f->cur.used = 0;
                    s->used = 0;
                    hand_out(f, out);
                    goto done;
                }
            }
        }
        if (stop && *stop) { st = STATUS_INTERRUPTED; goto done; }
        struct stream_batch *b = NULL;
        st = stream_receiver_next(f->r, &b, 200);
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
        if (!f->ordered) {
            copy_in(f, &f->cur, b);
            stream_receiver_release(f->r, b);
            hand_out(f, out);
            goto done;
        }
        int w = b->header.worker;
        if (w >= f->W || b->header.num_workers != f->W || b->header.seq < f->expect[w]) {
            f->dropped++;     /* stale (replayed after a restart) or foreign */
            stream_receiver_release(f->r, b);
            continue;
        }
        if (w == want_w && b->header.seq == f->expect[w]) {
            copy_in(f, &f->cur, b);
            stream_receiver_release(f->r, b);
            hand_out(f, out);
            goto done;
        }
        /* early: park it */
        int free_i = -1;
        for (int i = 0; i < f->nslots; i++) {
            if (f->slots[i].used && f->slots[i].worker == w && f->slots[i].seq == b->header.seq) { free_i = -2; break; }
            if (!f->slots[i].used && free_i == -1) free_i = i;
        }
        if (free_i == -2) { f->dropped++; stream_receiver_release(f->r, b); continue; }
        if (free_i < 0) {
            /* reorder buffer full: one worker is far behind the others.  Grow
             * (never drop: the worker would not send that batch again). */
            int ncap = f->nslots * 2;
            if ((double)ncap * (double)(f->batch * (f->img + 12)) > FEED_MAX_BYTES) {
                stream_receiver_release(f->r, b);
                st = FAIL(STATUS_STATE, "feed: worker %d is more than %d batches behind the others (batch %llu "
                          "expected); giving up instead of buffering more", want_w, f->nslots,
                          (unsigned long long)f->expect[want_w]);
                goto done;
            }
            struct slot *ns = realloc(f->slots, (size_t)ncap * sizeof(*ns));
            if (!ns) { stream_receiver_release(f->r, b); st = FAIL(STATUS_NOMEM, "feed: out of memory"); goto done; }
            memset(ns + f->nslots, 0, (size_t)(ncap - f->nslots) * sizeof(*ns));
            f->slots = ns;
            for (int i = f->nslots; i < ncap; i++)
                if ((st = slot_alloc(f, &f->slots[i])) != STATUS_OK) {
                    f->nslots = i + 1;
                    stream_receiver_release(f->r, b);
                    goto done;
                }
            free_i = f->nslots;
            f->nslots = ncap;
            if (f->warned_full++ < 3)
                log_warn("feed: waiting for worker %d batch %llu while other workers run ahead; reorder buffer now %d batches",
                         want_w, (unsigned long long)f->expect[want_w], ncap);
        }
        copy_in(f, &f->slots[free_i], b);
        stream_receiver_release(f->r, b);
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
    int used = 0;
    for (int i = 0; i < f->nslots; i++) used += f->slots[i].used;
    return used + s.queue_depth;
}

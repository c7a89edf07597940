/*
 * feed.h — the trainer's deterministic view of the batch stream.
 *
 * ZeroMQ's PULL socket fair-queues between workers, so the order in which
 * batches arrive depends on timing.  For a reproducible run (and an exact
 * resume) the trainer consumes them in a fixed order instead: global batch k
 * is worker (k mod W)'s batch number (k div W), identified by the header's
 * (worker, seq).  The ordered feed needs a per_worker receiver (stream.h):
 * each worker has its own socket and the feed takes the next batch from the
 * worker whose turn it is (stream_receiver_next_from), so a worker that runs
 * ahead of a slow or restarting one is held back by its own socket, never
 * buffered without bound.  Batches with a seq below the one expected (a
 * respawned worker replaying, a duplicate) are dropped; a seq above it (batches
 * lost with a dead worker's connection) is taken with a warning.
 *
 * Resume: feed_new(start_position = P) expects worker w's next seq to be
 * feed_first_seq(P, W, w); a worker that restarts its numbering at 0 simply
 * has its first batches skipped, so resuming is exact either way.
 *
 * With `ordered` = 0 (remote workers via --listen, where W is not known),
 * batches are taken in arrival order from a plain receiver.
 */
#ifndef DEEPER_FEED_H
#define DEEPER_FEED_H

#include <signal.h>
#include <stdint.h>

#include "shared/status.h"
#include "shared/stream.h"

struct feed;

struct feed_batch {
    int n, h, w, c;
    const int32_t *labels;
    const uint64_t *ids;
    const uint8_t *pixels;
    uint64_t epoch;
    int worker;
    uint64_t seq;
};

/* Number of batches worker w owes before global position P. */
static inline uint64_t feed_first_seq(int64_t position, int num_workers, int w)
{
    return position > w ? (uint64_t)((position - w + num_workers - 1) / num_workers) : 0;
}

/* r is borrowed; ordered needs r to be a per_worker receiver of num_workers. */
status feed_new(struct feed **out, struct stream_receiver *r, int num_workers, int ordered,
                int64_t start_position, int batch, int h, int w, int c);
/* As feed_new, with the buffers of the batches handed out (pixels and
 * labels) taken from `alloc` (e.g. pinned host memory, so GPU uploads are
 * one DMA); NULL: malloc.  alloc is copied; its ctx must outlive the feed. */
status feed_new_alloc(struct feed **out, struct stream_receiver *r, int num_workers, int ordered,
                      int64_t start_position, int batch, int h, int w, int c,
                      const struct stream_allocator *alloc);
void feed_free(struct feed **f);

/* Next batch in order.  Blocks; every `poll_ms` without progress calls
 * on_idle(ctx) (e.g. to reap dead workers) and checks *stop (returns
 * STATUS_INTERRUPTED).  *out is valid until the next feed_next call.
 * *wait_s accumulates the time spent waiting. */
status feed_next(struct feed *f, struct feed_batch *out, volatile sig_atomic_t *stop,
                 void (*on_idle)(void *ctx), void *ctx, double *wait_s);

/* The global position (batches consumed) and the seq expected from worker w. */
int64_t feed_position(const struct feed *f);
uint64_t feed_expected_seq(const struct feed *f, int w);
/* Batches dropped as stale or duplicate. */
uint64_t feed_dropped(const struct feed *f);
/* Batches waiting in the receiver. */
int feed_depth(struct feed *f);

#endif

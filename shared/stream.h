/*
 * stream.h — the receiving side of the batch stream (used by the trainer,
 * eval, and anything else that consumes `deeper augment` workers).
 *
 * A receiver owns one ZeroMQ PULL socket (bound by default, or connected),
 * a fixed pool of `pool_size` batch buffers allocated once at start (by a
 * caller-supplied allocator, so the CUDA trainer can hand out pinned host
 * memory), and a receive thread.  The thread takes a free buffer, receives the
 * four frames of one message straight into it (zmq_recv into the buffer: no
 * allocation per batch; or, with zero_copy, keeps the pixels frame as the
 * ZeroMQ message itself and saves a copy), checks the header and every frame size against the
 * configured expectations, and appends the buffer to a bounded FIFO of ready
 * batches.  When no buffer is free it stops reading, so the socket's small
 * RCVHWM pushes back on the workers and memory stays bounded.
 *
 * A malformed or hostile message (wrong frame count, bad magic/version,
 * unexpected shape, a frame whose size disagrees with the header, labels out
 * of range) is dropped whole and counted in stream_stats.dropped; it is never
 * trusted and never crashes the receiver.  One warning line is logged for the
 * first few drops.
 *
 * End of pass (eval): each worker ends its pass with an END_OF_PASS marker.
 * Markers are delivered in order as batches with n = 0 and end_of_pass = 1;
 * `pass_complete` is set on the marker that completes the set of
 * `expect_workers` distinct workers for that pass number.
 *
 * Threading: stream_receiver_next / _release / _stats may be called from one
 * consumer thread (release may also come from another thread, e.g. a CUDA
 * copy-completion callback: it is mutex-protected).  The struct
 * stream_receiver is opaque.
 *
 * Typical use:
 *     struct stream_config cfg = stream_config_default();
 *     cfg.endpoint = "tcp://0.0.0.0:5555"; cfg.max_n = 32; cfg.h = cfg.w = 299; cfg.c = 3;
 *     struct stream_receiver *r;
 *     TRY(stream_receiver_new(&cfg, &r));
 *     for (;;) {
 *         struct stream_batch *b;
 *         status st = stream_receiver_next(r, &b, 1000);
 *         if (st == STATUS_TIMEOUT) continue;     // nobody sending yet
 *         ... use b->labels, b->ids, b->pixels (n x h x w x c uint8) ...
 *         stream_receiver_release(r, b);
 *     }
 *     stream_receiver_free(&r);
 */
#ifndef DEEPER_STREAM_H
#define DEEPER_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "shared/curve.h"
#include "shared/status.h"
#include "shared/wire.h"

/* A batch buffer's arrays (labels, ids, pixels) each start on a 64-byte
 * boundary: the size of an array rounded up to that boundary. */
static inline size_t stream_round64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Allocator for pool buffers.  alloc returns memory of at least `size` bytes
 * aligned to 64 bytes (or NULL); free releases it.  Called only from
 * stream_receiver_new / stream_receiver_free, on the caller's thread. */
struct stream_allocator {
    void *(*alloc)(size_t size, void *ctx);
    void (*free)(void *ptr, size_t size, void *ctx);
    void *ctx;
};

struct stream_receiver;   /* opaque */

struct stream_config {
    const char *endpoint;   /* "tcp://0.0.0.0:5555", "ipc:///tmp/x"; several separated by ',' */
    int connect;            /* 0: bind (default), 1: connect */
    uint32_t max_n;         /* largest batch accepted (buffers sized for it); required */
    uint32_t h, w, c;       /* exact image shape; required (buffers sized for it) */
    int pool_size;          /* buffers in the pool (default 4); queue depth <= pool_size */
    int rcvhwm;             /* ZMQ_RCVHWM in messages (default 2) */
    int32_t num_classes;    /* labels must be in [0, num_classes); 0: unchecked */
    uint16_t expect_workers;/* W for end-of-pass tracking; 0 = take from headers */
    const struct stream_allocator *allocator; /* NULL: aligned malloc */
    int zero_copy;          /* 1: pixels point into the received ZeroMQ message (no copy;
                               the pool then holds only labels/ids and the allocator does
                               not hold pixels); 0 (default): pixels copied into the pool */
    int log_drops;          /* log the first N drops (default 5) */
    const struct curve_opts *curve; /* with a secret key: CURVE server (bind: ZAP handler admitting
                               curve->authorized_keys and the receiver's own key) or client
                               (connect: curve->server_key); NULL or no key: plain (see
                               shared/curve.h; the caller applies curve_policy_check) */
};

/* A config with defaults filled in (endpoint NULL; set shape and max_n). */
struct stream_config stream_config_default(void);

/* One received batch.  Borrowed from the receiver's pool: valid until
 * stream_receiver_release.  The three arrays point into one buffer, each
 * 64-byte aligned: labels int32[n], ids uint64[n], pixels uint8[n*h*w*c]. */
struct stream_batch {
    struct wire_header header;  /* as received and checked */
    uint32_t n, h, w, c;        /* copies of header fields for convenience */
    int32_t *labels;
    uint64_t *ids;
    uint8_t *pixels;
    int end_of_pass;            /* END_OF_PASS marker (n == 0) */
    int pass_complete;          /* this marker completed the pass for all workers */
    double received_at;         /* log_now() when the last frame arrived */
    int slot_;                  /* internal */
};

struct stream_stats {
    uint64_t received;          /* good messages (batches + markers) */
    uint64_t examples;          /* examples in good batches */
    uint64_t bytes;             /* payload bytes of good messages */
    uint64_t dropped;           /* malformed messages dropped */
    uint64_t end_markers;       /* END_OF_PASS markers received */
    uint64_t passes_complete;   /* passes completed by all workers */
    int queue_depth;            /* ready batches waiting for stream_receiver_next */
    int pool_size;
    double wait_seconds;        /* time the consumer spent blocked in _next */
};

/* Binds (bind != 0) or connects a ZeroMQ socket to each endpoint of a
 * comma-separated list; both ends of the batch stream (this receiver and
 * augment/sender.c) use it.  When last is not NULL it gets the last endpoint
 * as ZeroMQ resolved it (a wildcard port shows the chosen one).  who starts
 * the error message. */
status stream_socket_attach(void *sock, const char *endpoints, int bind, const char *who,
                            char *last, size_t last_n);

/* Create the socket, bind/connect, allocate the pool, start the thread.
 * On STATUS_OK *out is new; caller frees with stream_receiver_free. */
status stream_receiver_new(const struct stream_config *cfg, struct stream_receiver **out);

/* Wait up to timeout_ms (-1: forever) for the next ready batch.  STATUS_OK and
 * *out set (borrowed; give back with stream_receiver_release), STATUS_TIMEOUT,
 * or STATUS_ZMQ if the receive thread died (message says why). */
status stream_receiver_next(struct stream_receiver *r, struct stream_batch **out, int timeout_ms);

/* Return a batch's buffer to the pool. */
void stream_receiver_release(struct stream_receiver *r, struct stream_batch *b);

/* Snapshot of counters (thread-safe). */
void stream_receiver_stats(struct stream_receiver *r, struct stream_stats *out);

/* The endpoint actually bound/connected last (resolves a wildcard port such as "tcp://127.0.0.1:0" to the
 * chosen port).  Borrowed; valid until stream_receiver_free. */
const char *stream_receiver_endpoint(struct stream_receiver *r);

/* Start a new end-of-pass round (eval: call before consuming pass k+1 if the
 * workers restart their pass numbering).  Usually unnecessary. */
void stream_receiver_reset_pass(struct stream_receiver *r);

/* Stop the thread, close the socket (LINGER 0), free the pool; NULL-safe,
 * sets *r to NULL.  Batches not yet released become invalid. */
void stream_receiver_free(struct stream_receiver **r);

#endif
